"""What a history walk learned about one parameter, kept between runs (docs/cli-git.md).

Commits never change, so neither does what a walk learns about them. For one parameter (and
one way of placing the registry) the walk reduces the commit graph to the commits that
*changed* the parameter, each with its location, its first parent's location and, for each
parent, the nearest change below it (following Git's history simplification). Every other
commit passes through to the nearest change below it: a single-parent commit that left the
file alone to its parent, a TREESAME merge to the parent it matches (kept in `links`). The
start commits of earlier walks are `tips`: every commit reachable from a tip is described, so
a later run walks only the commits no tip reaches (they are hidden from the walk) and asks
this index for the commits below them.

On disk it is plain JSON behind a checksum (`load.cache.write_entry`) in the user's cache
folder, never in the repository; an entry that is damaged, of another version or of another
shallow state is ignored and rebuilt by a full walk.
"""
from __future__ import annotations

import hashlib
import heapq
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pygit2

from funnelcheck import __version__
from funnelcheck.load.cache import cache_dir, read_entry, write_entry

if TYPE_CHECKING:
    from funnelcheck.load.gitsource import Placement

FORMAT = 1
MAX_TIPS = 16  # start commits kept as walk boundaries; the least recently used goes first
STATUSES = frozenset(("added", "modified", "moved", "removed", "truncated"))
_HEX = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


class Location(NamedTuple):
    """Where a parameter's file is in one commit: its repository path and its blob id (hex)."""

    path: str
    blob: str


class Change(NamedTuple):
    """A commit that changed the parameter's file (its content or its path)."""

    time: int  # commit time: among changes that are not ancestors of one another, the newest comes first
    here: Location | None  # after the commit (None: removed)
    first: Location | None  # at the first parent (None: not there, or no parent)
    status: str
    parents: tuple[str, ...]  # the nearest change below each parent, without repeats (none: nothing below)


class WalkIndex:
    """The changes of one parameter, the TREESAME merges and the start commits walked so far.

    In memory only when `path` is None. `key` says what the entry is about; an entry on disk
    with another key is not used.
    """

    def __init__(self, path: Path | None = None, key: tuple = ()):
        self.path = path
        self.key = list(key)
        self.changes: dict[str, Change] = {}
        self.links: dict[str, str | None] = {}  # TREESAME merge -> the nearest change below the parent it matches
        self.tips: dict[str, str | None] = {}  # walked start -> the nearest change at or below it
        self.dirty = False
        self.stored = False  # the entry on disk was used
        if path is not None:
            self.stored = self._load()

    def nearest(self, repo: pygit2.Repository, commit: str) -> str | None:
        """The change at or below `commit`, a commit some tip reaches: follows passing commits down."""
        changes, links, tips = self.changes, self.links, self.tips
        while True:
            if commit in changes:
                return commit
            if commit in tips:
                return tips[commit]
            if commit in links:
                return links[commit]
            parents = repo[commit].parent_ids
            if not parents:
                return None  # a root commit without the parameter
            if len(parents) > 1:
                raise StaleIndex(f"merge {commit[:10]} is not in the history index")
            commit = str(parents[0])

    def add_tip(self, commit: str, change: str | None) -> None:
        self.tips.pop(commit, None)
        self.tips[commit] = change  # most recently used last
        while len(self.tips) > MAX_TIPS:
            del self.tips[next(iter(self.tips))]
        self.dirty = True

    def use_tip(self, commit: str) -> str | None:
        """The nearest change of a start walked before (KeyError when it was not); marks it recently used."""
        change = self.tips[commit]
        if next(reversed(self.tips)) != commit:
            self.add_tip(commit, change)
        return change

    def reset(self) -> None:
        """Forget everything learned (a stale entry): the next walk is a full one."""
        self.changes, self.links, self.tips = {}, {}, {}
        self.dirty = True

    def forget(self, tips) -> None:
        for tip in tips:
            if self.tips.pop(tip, False) is not False:
                self.dirty = True

    def ordered(self, top: str | None, limit: int | None = None) -> list[str]:
        """The changes reachable from `top`, children before parents, the newest first among the rest.

        Kahn's algorithm over the changes with a queue by commit time: the order depends on the
        graph alone, not on how (or in how many runs) it was walked.
        """
        if top is None:
            return []
        changes = self.changes
        waiting = {top: 0}  # change -> children not yet listed
        stack = [top]
        while stack:
            for parent in changes[stack.pop()].parents:
                if parent in waiting:
                    waiting[parent] += 1
                else:
                    waiting[parent] = 1
                    stack.append(parent)
        queue = [(-changes[top].time, 0, top)]
        out: list[str] = []
        while queue and (limit is None or len(out) < limit):
            commit = heapq.heappop(queue)[2]
            out.append(commit)
            for parent in changes[commit].parents:
                waiting[parent] -= 1
                if not waiting[parent]:
                    heapq.heappush(queue, (-changes[parent].time, len(out), parent))
        return out

    def save(self) -> None:
        """Write the entry when this run learned something; a parameter never found leaves no entry."""
        if self.path is None or not self.dirty or not (self.changes or self.stored):
            return
        data = {
            "key": self.key,
            "tips": [[c, t] for c, t in self.tips.items()],
            "links": [[c, t] for c, t in self.links.items()],
            "changes": [[c, ch.time, *_loc_out(ch.here), *_loc_out(ch.first), ch.status, list(ch.parents)]
                        for c, ch in self.changes.items()],
        }
        try:
            write_entry(self.path, data)
        except (OSError, ValueError):
            return  # a read-only or full disk: the next run walks again
        self.dirty = False
        self.stored = True

    def _load(self) -> bool:
        data = read_entry(self.path)
        if not isinstance(data, dict) or data.get("key") != self.key:
            return False
        try:
            changes = {}
            for commit, time, here_path, here_blob, first_path, first_blob, status, parents in data["changes"]:
                if not (_commit(commit) and type(time) is int and status in STATUSES and type(parents) is list
                        and all(_commit(p) for p in parents)):
                    raise ValueError("not a change")
                changes[commit] = Change(time, _loc_in(here_path, here_blob), _loc_in(first_path, first_blob), status,
                                         tuple(parents))
            links = _pairs(data["links"])
            tips = _pairs(data["tips"])
        except (TypeError, ValueError, KeyError):
            return False
        known = set(changes)
        if not (all(set(c.parents) <= known for c in changes.values())
                and all(t is None or t in known for t in (*links.values(), *tips.values()))):
            return False  # every change named must be described: `ordered` and `nearest` rely on it
        self.changes, self.links, self.tips = changes, links, tips
        return True


class StaleIndex(Exception):
    """The index does not describe a commit it should: it is dropped and the walk done in full."""


def shallow_boundary(repo: pygit2.Repository) -> set[str]:
    """The commits whose parents a shallow clone lacks (empty for a full clone)."""
    if not repo.is_shallow:
        return set()
    try:
        with open(os.path.join(repo.path, "shallow")) as fh:
            return {line.strip() for line in fh if line.strip()}
    except OSError:
        return set()


def walk_index(base: Path, parameter_id: str, registry: str | Placement, repo: pygit2.Repository) -> WalkIndex:
    """The index of one parameter of the project rooted at `base`, in the user's cache folder.

    `registry` is what `parameter_history` is given to find each commit's registry folder: a
    fixed folder, or the project's `Placement` (the funnelcheck.yaml at one path, unless the
    folder is fixed). Each has its own entry. The key holds the shallow boundary too, since
    deepening a clone gives its boundary commits their parents back.
    """
    if isinstance(registry, str):
        where = f"registry:{registry.strip('/')}"
    else:
        where = f"registry:{registry.fixed}" if registry.fixed is not None else f"config:{registry.config_subpath}"
    shallow = hashlib.blake2b("\n".join(sorted(shallow_boundary(repo))).encode(), digest_size=8).hexdigest()
    tag = hashlib.blake2b(where.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()
    return WalkIndex(cache_dir(base) / "history-index" / f"{parameter_id}-{tag}.json",
                     (FORMAT, __version__, parameter_id, where, shallow))


def _commit(value) -> bool:
    return type(value) is str and _HEX.match(value) is not None


def _loc_out(loc: Location | None) -> tuple:
    return (loc.path, loc.blob) if loc else (None, None)


def _loc_in(path, blob) -> Location | None:
    if path is None and blob is None:
        return None
    if type(path) is not str or not _commit(blob):
        raise ValueError("not a location")
    return Location(path, blob)


def _pairs(rows) -> dict[str, str | None]:
    out = {}
    for commit, change in rows:
        if not (_commit(commit) and (change is None or _commit(change))):
            raise ValueError("not a commit pair")
        out[commit] = change
    return out
