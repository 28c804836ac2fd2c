"""The history of one parameter across Git commits (docs/cli-git.md), read with pygit2.

Which commits count: the walk starts at a revision and follows Git's default history
simplification, as `git log -- PATH` does. A commit "changed the parameter" when the
parameter's (path, blob) differs from its parent's. A merge that matches one of its parents
(TREESAME) is followed through that parent only and gets no row of its own, so side-branch
edits that the merge discarded do not show; a merge that matches no parent (a conflict
resolved to a new value) gets a row, compared with its first parent.

The parameter is followed by id: its file is `<id>.yaml` anywhere under
`<registry>/parameters/`, where `<registry>` is the folder each commit's own funnelcheck.yaml
names, so a moved registry is followed as a moved file is (the move commit is a `moved` row).
A commit whose parameters folder has a tree id seen before costs no lookup below it; a changed
folder is first asked for the path seen last, and only when the file is not there is it
searched, memoised per tree id. A blob is parsed only when a row needs its value, and once
per blob id, wherever it stands.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import pygit2

from funnelcheck.findings import ERROR
from funnelcheck.model import Estimate
from funnelcheck.load.cache import ParseCache, cache_dir
from funnelcheck.load.registry import load
from funnelcheck.load.sources import SourceFile

PARAMETERS = "parameters"
ADDED, MODIFIED, MOVED, REMOVED, TRUNCATED = "added", "modified", "moved", "removed", "truncated"


class Location(NamedTuple):
    """Where a parameter's file is in one commit: its repository path and its blob id."""

    path: str
    blob: pygit2.Oid


class Value(NamedTuple):
    """What a blob says about the parameter: its estimate, or why it has none."""

    estimate: Estimate | None
    error: str | None = None


class HistoryRow(NamedTuple):
    commit: str
    date: str  # author date, ISO 8601 with the author's UTC offset
    author: str
    email: str
    message: str  # first line
    status: str  # added | modified | moved | removed | truncated (shallow clone boundary)
    path: str | None  # repository path of the file after the commit (None when removed)
    previous_path: str | None
    value: Value | None  # None when removed
    previous: Value | None  # the value at the (first) parent

    @property
    def change(self) -> float | None:
        """Mean after minus mean before, when both exist."""
        new = self.value.estimate if self.value else None
        old = self.previous.estimate if self.previous else None
        return round(new.mean - old.mean, 12) if new and old else None  # 0.6 - 0.55 is 0.05, not 0.0499…93


@dataclass
class History:
    parameter_id: str
    start: str  # the commit the walk started from
    rows: list[HistoryRow] = field(default_factory=list)  # newest first
    commits_scanned: int = 0
    truncated_at: str | None = None  # a shallow clone's boundary commit the walk reached


Progress = Callable[[int, int], None]  # (commits scanned, rows found)
RegistryAt = Callable[[pygit2.Tree], "str | None"]  # a commit's root tree -> its registry folder (None: none)


class _Locator:
    """Finds the parameter's file in a commit, by the registry that commit's funnelcheck.yaml names.

    Lookups are memoised by tree id: a commit whose registry folder has the tree id of one seen
    before (its parent, nearly always) costs no path lookup below it; a changed registry is
    asked for the path seen last, in one lookup, before its parameters are searched.
    """

    def __init__(self, repo: pygit2.Repository, place: RegistryAt, names: tuple[str, ...]):
        self.repo = repo
        self.place = place
        self.names = names
        self.hint: str | None = None  # the path below the registry seen last
        self.by_root: dict[pygit2.Oid, Location | None] = {}
        self.by_registry: dict[pygit2.Oid, tuple[str, pygit2.Oid] | None] = {}
        self.by_tree: dict[pygit2.Oid, str | None] = {}

    def at(self, commit: pygit2.Commit) -> Location | None:
        """Where the file is in `commit`; a commit whose root tree was seen before costs one dictionary hit."""
        tree_id = commit.tree_id
        found = self.by_root.get(tree_id, False)  # merges and reverts meet the same trees again
        if found is False:
            found = self.by_root[tree_id] = self._locate(commit.tree)
        return found

    def _locate(self, tree: pygit2.Tree) -> Location | None:
        registry = self.place(tree)
        if registry is None:
            return None
        try:
            folder = tree[registry] if registry else tree
        except KeyError:
            return None
        if not isinstance(folder, pygit2.Tree):
            return None
        inside = self.by_registry.get(folder.id, False)  # the registry is unchanged: no lookup below it
        if inside is False:
            inside = self.by_registry[folder.id] = self._find(folder)
        if inside is None:
            return None
        return Location(f"{registry}/{inside[0]}" if registry else inside[0], inside[1])

    def _find(self, folder: pygit2.Tree) -> tuple[str, pygit2.Oid] | None:
        """(path below the registry, blob id) of the parameter's file: the path seen last first, else a search."""
        if self.hint is not None:
            try:
                entry = folder[self.hint]
                if not isinstance(entry, pygit2.Tree):
                    return self.hint, entry.id
            except KeyError:
                pass
        try:
            params = folder[PARAMETERS]
        except KeyError:
            return None
        rel = self._search(params.id) if isinstance(params, pygit2.Tree) else None
        if rel is None:
            return None
        self.hint = f"{PARAMETERS}/{rel}"
        return self.hint, folder[self.hint].id

    def _search(self, tree_id: pygit2.Oid) -> str | None:
        if tree_id in self.by_tree:
            return self.by_tree[tree_id]
        result = None
        subtrees = []
        for entry in self.repo[tree_id]:
            if isinstance(entry, pygit2.Tree):
                subtrees.append(entry)
            elif entry.name in self.names and result is None:
                result = entry.name
        if result is None:
            for entry in subtrees:
                below = self._search(entry.id)
                if below is not None:
                    result = f"{entry.name}/{below}"
                    break
        self.by_tree[tree_id] = result
        return result


class _OneBlob:
    """A Source of exactly one parameter file, so a historic blob goes through the normal loader."""

    def __init__(self, sf: SourceFile, root_display: str):
        self.sf = sf
        self.root_display = root_display
        self.problems: list = []

    def files(self) -> list[SourceFile]:
        return [self.sf]


class HistoryCache(ParseCache):
    """Parse results of historic parameter blobs, kept across runs: a blob never changes.

    Unlike the work tree's cache it keeps every entry it holds (they are few and small).
    """

    def save(self) -> None:
        self.used |= set(self.entries)
        ParseCache.save(self)


def history_cache(base) -> HistoryCache:
    """The cache of parsed historic blobs of the project rooted at `base`, in the user's cache folder (`cache_dir`)."""
    return HistoryCache(cache_dir(base) / "history-parse.json")


class _Values:
    """Parsed values by blob id: each blob is parsed once, through `registry.load`, wherever it stands."""

    def __init__(self, repo: pygit2.Repository, parameter_id: str, cache: ParseCache):
        self.repo = repo
        self.parameter_id = parameter_id
        self.cache = cache
        self.values: dict[tuple[str, pygit2.Oid], Value] = {}

    def of(self, loc: Location) -> Value:
        name = loc.path.rsplit("/", 1)[-1]  # <id>.yaml or <id>.yml: the folder does not change what it says
        key = (name, loc.blob)
        if key not in self.values:
            repo, blob = self.repo, loc.blob
            rel = f"{PARAMETERS}/{name}"
            sf = SourceFile(rel, rel, lambda: repo[blob].data, str(blob))
            loaded = load(_OneBlob(sf, PARAMETERS), None, self.cache)
            param = loaded.registry.parameters.get(self.parameter_id)
            errors = [f for f in loaded.findings if f.severity == ERROR]
            if param is not None and param.estimate is not None:
                self.values[key] = Value(param.estimate)
            elif errors:
                first = errors[0]
                self.values[key] = Value(None, f"line {first.line}: {first.message}")
            else:
                self.values[key] = Value(None, "the file gives no value (no value or fallback_value)")
        return self.values[key]


def _shallow_boundary(repo: pygit2.Repository) -> set[str]:
    path = os.path.join(repo.path, "shallow")
    try:
        with open(path) as fh:
            return {line.strip() for line in fh if line.strip()}
    except OSError:
        return set()


def _date(sig: pygit2.Signature) -> str:
    tz = datetime.timezone(datetime.timedelta(minutes=sig.offset))
    return datetime.datetime.fromtimestamp(sig.time, tz).isoformat()


def parameter_history(repo: pygit2.Repository, start: pygit2.Commit, registry: str | RegistryAt, parameter_id: str,
                      limit: int | None = None, progress: Progress | None = None,
                      cache: ParseCache | None = None) -> History:
    """Every commit reachable from `start` that changed the parameter, newest first (see module doc).

    `registry` is the registry folder in every commit, or a function of a commit's tree that gives
    it (each commit's own funnelcheck.yaml: `gitsource.Placement.registry_at`).
    `cache` holds parsed blobs (a `HistoryCache` keeps them across runs); by default, this run only.
    """
    place = (lambda tree, fixed=registry.strip("/"): fixed) if isinstance(registry, str) else registry
    locator = _Locator(repo, place, (f"{parameter_id}.yaml", f"{parameter_id}.yml"))
    values = _Values(repo, parameter_id, cache if cache is not None else ParseCache())
    shallow = _shallow_boundary(repo) if repo.is_shallow else set()
    history = History(parameter_id, str(start.id))
    # One pass over the commits locates the file in each (children come before parents), so
    # every commit is read once; the pass below decides the rows from these locations alone.
    order: list[tuple[pygit2.Oid, list[pygit2.Oid]]] = []
    where: dict[pygit2.Oid, Location | None] = {}
    at = locator.at
    for commit in repo.walk(start.id, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME):
        commit_id = commit.id
        order.append((commit_id, commit.parent_ids))
        where[commit_id] = at(commit)
        if progress is not None and len(order) % 4096 == 0:
            progress(len(order), 0)
    kept = {start.id}
    for commit_id, parents in order:
        history.commits_scanned += 1
        if commit_id not in kept:
            continue
        kept.discard(commit_id)
        here = where[commit_id]
        before = [where[p] for p in parents]  # a parent the walk did not reach is missing: KeyError
        same = next((p for p, loc in zip(parents, before) if loc == here), None)
        if same is not None:
            kept.add(same)
            continue
        if here is None and not parents:
            continue  # a root commit without the parameter
        kept.update(parents)
        first = before[0] if before else None
        if not parents and str(commit_id) in shallow:
            status = TRUNCATED
            history.truncated_at = str(commit_id)
        elif here is None:
            status = REMOVED
        elif first is None:
            status = ADDED
        elif here.blob == first.blob:
            status = MOVED
        else:
            status = MODIFIED
        commit = repo.get(commit_id)
        history.rows.append(HistoryRow(
            commit=str(commit_id),
            date=_date(commit.author),
            author=commit.author.name,
            email=commit.author.email,
            message=commit.message.split("\n", 1)[0].strip(),
            status=status,
            path=here.path if here else None,
            previous_path=first.path if first else None,
            value=values.of(here) if here else None,
            previous=values.of(first) if first else None,
        ))
        if limit is not None and len(history.rows) >= limit:
            break
    if progress is not None:
        progress(history.commits_scanned, len(history.rows))
    return history


def row_json(row: HistoryRow) -> dict:
    """the `history` JSON row of docs/cli.md, plus status, change, email, previous values and any parse error."""
    est = row.value.estimate if row.value else None
    prev = row.previous.estimate if row.previous else None
    out = {
        "commit": row.commit, "date": row.date, "author": row.author, "message": row.message, "path": row.path,
        "mean": est.mean if est else None, "stdev": est.stdev if est else None,
        "status": row.status, "change": row.change, "email": row.email,
        "previous": {"path": row.previous_path, "mean": prev.mean if prev else None,
                     "stdev": prev.stdev if prev else None} if row.previous else None,
    }
    if row.value and row.value.error:
        out["error"] = row.value.error
    return out
