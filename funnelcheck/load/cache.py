"""The per-file parse cache: what one file can tell alone, kept by content between runs.

Entries map (kind, display path, content key) to (has a document, its data, its findings):
no marks — they are found again from the file's bytes when a finding needs one — so the
cache stays small and quick to load. `stamps` remember each work-tree file's (size, mtime,
inode) with its content key, so unchanged files are not even read.

On disk (`.funnelcheck/cache/parse.pickle` for the work tree) the cache is an index file plus
shards by display path; a run rewrites only the shards whose files changed, so re-validating
after one edit writes a sixteenth of the cache, not all of it.
"""
from __future__ import annotations

import pickle
import time
import zlib
from pathlib import Path

from funnelcheck import __version__
from funnelcheck.load import schema
from funnelcheck.atomicfile import write_atomic
from funnelcheck.load.sources import SourceFile, content_key


class ParseCache:
    """Per-file parse results keyed by content; in memory only when `path` is None."""

    SHARDS = 16
    # A stamp is trusted only for files last modified this long before it was taken:
    # a change within the file system's timestamp granularity could otherwise go unseen.
    RACY_NS = 2_000_000_000

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict = {}
        self.stamps: dict = {}  # display path -> (stamp, content key, when taken in ns)
        self.dirty = False  # entries were added in this run
        self.used: set = set()  # keys asked for in this run: what `save` keeps
        self.seen: set = set()  # display paths stamped in this run
        self.salt = f"{__version__}:{schema.schemas_fingerprint()}"
        self._changed: set[int] = set()  # shards to rewrite
        self._shards: list[tuple[dict, dict]] = [({}, {}) for _ in range(self.SHARDS)]  # what each holds
        self._indexed = False  # the index on disk matches this cache
        if path is not None:
            self._load()

    def get(self, key):
        self.used.add(key)
        return self.entries.get(key)

    def put(self, key, value) -> None:
        self.used.add(key)
        self.entries[key] = value
        self.dirty = True
        i = _shard(key[1])
        self._shards[i][0][key] = value
        self._changed.add(i)

    def content_key(self, sf: SourceFile) -> tuple[str, bytes | None]:
        """The file's content key, and its bytes when they had to be read to get it."""
        if sf.key is not None:
            return sf.key, None  # a Git blob id is known without reading
        if sf.stamp is not None:
            self.seen.add(sf.display)
            known = self.stamps.get(sf.display)
            if known and known[0] == sf.stamp and sf.stamp[1] < known[2] - self.RACY_NS:
                return known[1], None
        raw = sf.read()
        key = content_key(raw)
        if sf.stamp is not None:
            self.stamps[sf.display] = stamp = (sf.stamp, key, time.time_ns())
            i = _shard(sf.display)
            self._shards[i][1][sf.display] = stamp
            self._changed.add(i)
        return key, raw

    def save(self) -> None:
        """Write what this run used (so deleted files drop out): the changed shards, atomically."""
        if self.path is None:
            return
        for k in [k for k in self.entries if k not in self.used]:
            i = _shard(k[1])
            del self.entries[k], self._shards[i][0][k]
            self._changed.add(i)
        for d in [d for d in self.stamps if d not in self.seen]:
            i = _shard(d)
            del self.stamps[d], self._shards[i][1][d]
            self._changed.add(i)
        if not self._changed and self._indexed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for i in sorted(self._changed):
                write_atomic(self._shard_path(i), pickle.dumps(self._shards[i], pickle.HIGHEST_PROTOCOL))
            if not self._indexed:
                write_atomic(self.path, pickle.dumps((self.salt, self.SHARDS), pickle.HIGHEST_PROTOCOL))
        except OSError:
            return  # a read-only checkout still validates, just without the cache
        self._changed.clear()
        self._indexed = True

    def _shard_path(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.{i:02d}{self.path.suffix}")

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                salt, shards = pickle.load(fh)
        except Exception:  # missing, corrupt or foreign: start afresh, every shard rewritten
            salt, shards = None, None
        if (salt, shards) != (self.salt, self.SHARDS):
            self._changed = set(range(self.SHARDS))
            return
        self._indexed = True
        for i in range(self.SHARDS):
            try:
                with open(self._shard_path(i), "rb") as fh:
                    entries, stamps = pickle.load(fh)
            except Exception:  # a missing or corrupt shard is rebuilt
                self._changed.add(i)
                continue
            self._shards[i] = (entries, stamps)
            self.entries.update(entries)
            self.stamps.update(stamps)


def _shard(display: str) -> int:
    return zlib.crc32(display.encode()) % ParseCache.SHARDS
