"""The findings of the per-graph searches, kept between runs by a fingerprint of what they read.

The outgoing-sum and draws-past-1 searches (`sums`, `draws`) look at one graph at a time: its
file, the parameter files of its edges, and contexts.yaml. After one file changed, only the
graphs that read it need searching again; the others' findings come back from here.

A fingerprint hashes the content keys (the parse cache's, or Git blob ids) and display paths of
those files, with a fingerprint of the code that computes the findings, so an edited file or a
new funnelcheck release is never answered from an old verdict. The store is one JSON file behind a
checksum in the user's cache folder (`load.cache.write_entry`): data only, never run, and a
damaged or edited store is ignored and rebuilt. It keeps only the fingerprints the last run used.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Callable

from funnelcheck import __version__
from funnelcheck.findings import Finding
from funnelcheck.load.cache import read_entry, write_entry
from funnelcheck.model import Graph

# The code whose output is kept: a change to any of these files makes every entry stale.
_CODE = ("checks/memo.py", "checks/sums.py", "checks/draws.py", "checks/index.py", "resolve.py", "model.py",
         "engine/statespace.py", "load/registry.py", "reference.py")


@lru_cache(maxsize=None)
def code_fingerprint() -> str:
    h = hashlib.blake2b(__version__.encode(), digest_size=16)
    package = Path(__file__).resolve().parent.parent
    for rel in _CODE:
        try:
            h.update((package / rel).read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()


class GraphMemo:
    """Per-graph findings by fingerprint; in memory only (nothing kept) when `path` is None."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.stored: dict[str, list[Finding]] = {}
        self.used: dict[str, list[Finding]] = {}
        self.computed = 0  # searches run in this run (the rest were answered from the store)
        if path is not None:
            self.stored = _decode(read_entry(path))

    def findings(self, check: str, fingerprint: str | None, compute: Callable[[], list[Finding]]) -> list[Finding]:
        """`compute()`'s findings, or the stored ones for the same check and fingerprint."""
        if fingerprint is None:
            self.computed += 1
            return compute()
        key = f"{check}:{fingerprint}"
        found = self.stored.get(key)
        if found is None:
            self.computed += 1
            found = compute()
        self.used[key] = found
        return found

    def save(self) -> None:
        """Keep what this run used, atomically; a read-only or full disk only loses the memo."""
        if self.path is None or self.used == self.stored:
            return
        try:
            write_entry(self.path, {"code": code_fingerprint(),
                                    "graphs": {k: [list(f) for f in v] for k, v in self.used.items()}})
        except (OSError, ValueError):
            return
        self.stored = dict(self.used)


def graph_fingerprint(graph: Graph, parameter_files: list[str], contexts_file: str | None,
                      keys: dict[str, str]) -> str | None:
    """What a graph's searches read, hashed: None when some file's content key is unknown (then no memo)."""
    files = [graph.where.path, *sorted(set(parameter_files))]
    if contexts_file is not None:
        files.append(contexts_file)
    h = hashlib.blake2b(digest_size=16)
    for display in files:
        key = keys.get(display)
        if key is None:
            return None
        h.update(display.encode("utf-8", "surrogateescape") + b"\0" + key.encode() + b"\0")
    h.update(b"contexts" if contexts_file is not None else b"no contexts")
    return h.hexdigest()


def _decode(data) -> dict[str, list[Finding]]:
    """The stored findings, or nothing when the store is missing, damaged or made by other code."""
    if not isinstance(data, dict) or data.get("code") != code_fingerprint() or not isinstance(data.get("graphs"), dict):
        return {}
    out = {}
    try:
        for key, rows in data["graphs"].items():
            out[key] = [Finding(*_fields(row)) for row in rows]
    except (TypeError, ValueError):
        return {}
    return out


def _fields(row) -> list:
    if not (isinstance(row, list) and len(row) == 7 and type(row[1]) is int and type(row[2]) is int
            and all(type(x) is str for x in (row[0], *row[3:]))):
        raise ValueError("not a finding")
    return row
