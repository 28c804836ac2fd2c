"""The per-file parse cache: what one file can tell alone, kept by content between runs.

Entries map (kind, display path, content key) to (has a document, its data, its findings):
no marks — they are found again from the file's bytes when a finding needs one — so the
cache stays small and quick to load. `stamps` remember each work-tree file's (size, mtime,
inode) with its content key, so unchanged files are not even read.

The cache lives outside the repository, in the user's cache folder (`cache_dir`), and holds
data only: every file is JSON behind a checksum (`write_entry`), so a planted or damaged file
is ignored and rebuilt, never trusted and never run. On disk it is an index plus shards by
display path; a run rewrites only the shards whose files changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from functools import lru_cache
from pathlib import Path

from funnelcheck import __version__
from funnelcheck.atomicfile import write_atomic
from funnelcheck.findings import Finding
from funnelcheck.load import schema
from funnelcheck.load.sources import SourceFile, content_key

_MAGIC = b"funnelcheck-cache-1 "


def cache_dir(base: Path) -> Path:
    """The user-cache folder for the project rooted at `base`: $XDG_CACHE_HOME (else ~/.cache)
    /funnelcheck/<folder name>-<hash of its absolute path>, as pre-commit keeps its store."""
    root = os.environ.get("XDG_CACHE_HOME") or ""
    home = Path(root) if os.path.isabs(root) else Path.home() / ".cache"
    real = os.path.realpath(base)
    tag = hashlib.blake2b(real.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(real))[:40] or "root"
    return home / "funnelcheck" / f"{name}-{tag}"


def read_entry(path: Path) -> object | None:
    """The JSON value stored at `path`, or None when it is missing, unreadable or fails its checksum."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    head, _, payload = raw.partition(b"\n")
    if not head.startswith(_MAGIC) or head[len(_MAGIC):] != _digest(payload):
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


def write_entry(path: Path, value) -> None:
    """Store `value` (plain JSON data) at `path` behind a checksum, atomically; folders are made."""
    payload = json.dumps(value, separators=(",", ":")).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _MAGIC + _digest(payload) + b"\n" + payload)


@lru_cache(maxsize=None)
def _rules_fingerprint() -> str:
    """Changes with the code that makes an entry, so a fixed rule is never hidden by a cached verdict."""
    h = hashlib.blake2b(digest_size=8)
    here = Path(__file__).resolve().parent
    for path in (here.parent / "yamlload.py", here / "schema.py", here / "schemafast.py", here / "registry.py"):
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).hexdigest().encode("ascii")


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
        self.salt = f"{__version__}:{schema.schemas_fingerprint()}:{_rules_fingerprint()}"
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
            self.stamps[sf.display] = stamp = (tuple(sf.stamp), key, time.time_ns())
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
            for i in sorted(self._changed):
                write_entry(self._shard_path(i), _encode(self._shards[i]))
            if not self._indexed:
                write_entry(self.path, [self.salt, self.SHARDS])
        except (OSError, ValueError):
            return  # a read-only or full disk still validates, just without the cache
        self._changed.clear()
        self._indexed = True

    def _shard_path(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.{i:02d}{self.path.suffix}")

    def _load(self) -> None:
        if read_entry(self.path) != [self.salt, self.SHARDS]:  # missing, damaged or another version
            self._changed = set(range(self.SHARDS))
            return
        self._indexed = True
        for i in range(self.SHARDS):
            try:
                entries, stamps = _decode(read_entry(self._shard_path(i)))
            except (TypeError, ValueError, KeyError, IndexError):  # missing or not our shape: rebuilt
                self._changed.add(i)
                continue
            self._shards[i] = (entries, stamps)
            self.entries.update(entries)
            self.stamps.update(stamps)


def _encode(shard: tuple[dict, dict]) -> dict:
    """A shard as JSON data. Only file parse results are kept on disk (anything else stays in memory)."""
    entries, stamps = shard
    rows = [[*key, has_doc, data, [list(f) for f in findings]]
            for key, value in entries.items() if _storable(value)
            for has_doc, data, findings in [value]]
    return {"entries": rows, "stamps": [[d, list(s), k, t] for d, (s, k, t) in stamps.items()]}


def _storable(value) -> bool:
    return (isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], bool)
            and all(isinstance(f, Finding) for f in value[2]))


def _decode(data) -> tuple[dict, dict]:
    """A shard back from JSON data; raises TypeError/ValueError/KeyError on any other shape.

    This runs for every file on every run: plain type tests, no generator per entry."""
    entries = {}
    for kind, display, key, has_doc, value, findings in data["entries"]:
        if not (type(kind) is str and type(display) is str and type(key) is str and type(has_doc) is bool):
            raise ValueError("not a cache entry")
        entries[(kind, display, key)] = (has_doc, value,
                                         [Finding(*_finding_fields(f)) for f in findings] if findings else [])
    stamps = {}
    for display, stamp, key, taken in data["stamps"]:
        if not (type(display) is str and type(key) is str and type(taken) is int):
            raise ValueError("not a stamp")
        stamps[display] = (tuple(stamp), key, taken)
    return entries, stamps


def _finding_fields(fields) -> list:
    if not (isinstance(fields, list) and len(fields) == 7 and all(isinstance(x, str) for x in fields[3:])
            and isinstance(fields[0], str) and isinstance(fields[1], int) and isinstance(fields[2], int)):
        raise ValueError("not a finding")
    return fields


def _shard(display: str) -> int:
    return zlib.crc32(display.encode()) % ParseCache.SHARDS
