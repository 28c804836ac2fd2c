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

The walk reads each commit once, children first, and keeps Python out of the loop but for a
few dictionary hits: a root tree or a registry folder whose tree id was met before (nearly
always the parent's) costs no path lookup below it; a changed registry is asked for the path
seen last, and only when the file is not there is it searched, memoised per tree id. A second
pass, parents first, reduces the commits to the changes (`walkindex`); the rows are the
changes reachable from the start, ordered by the changes' graph alone, so a walk cut short by
the persistent index gives the same rows as a full one. A blob is parsed only when a row needs
its value, once per blob id, wherever it stands.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, NamedTuple

import pygit2

from funnelcheck.findings import ERROR
from funnelcheck.git.walkindex import Change, Location, StaleIndex, WalkIndex, shallow_boundary
from funnelcheck.load.cache import ParseCache, cache_dir

if TYPE_CHECKING:
    from funnelcheck.load.sources import SourceFile
    from funnelcheck.model import Estimate

PARAMETERS = "parameters"
ADDED, MODIFIED, MOVED, REMOVED, TRUNCATED = "added", "modified", "moved", "removed", "truncated"
WALK_ORDER = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME
_UNSEEN = object()


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
    commits_scanned: int = 0  # commits read in this run (those an index already described are not)
    from_index: bool = False  # the index described some commits, so they were not read
    truncated_at: str | None = None  # a shallow clone's boundary commit the walk reached


Progress = Callable[[int, int], None]  # (commits scanned, rows found)
RegistryAt = Callable[[pygit2.Tree], "str | None"]  # a commit's root tree -> its registry folder (None: none)


class _Locator:
    """Finds the parameter's file in a commit's tree, by the registry that commit's funnelcheck.yaml names.

    Lookups are memoised by tree id (the walk memoises the root trees): a registry folder with
    the tree id of one seen before (its parent's, nearly always) costs no path lookup below it;
    a changed registry is asked for the path seen last, in one lookup, before its parameters
    are searched.
    """

    def __init__(self, repo: pygit2.Repository, place: RegistryAt, names: tuple[str, ...]):
        self.repo = repo
        self.place = place
        self.names = names
        self.hint: str | None = None  # the path below the registry seen last
        self.by_registry: dict[str, dict[pygit2.Oid, Location | None]] = {}  # registry path -> folder id -> file
        self.by_tree: dict[pygit2.Oid, str | None] = {}

    def locate(self, tree: pygit2.Tree) -> Location | None:
        registry = self.place(tree)
        if registry is None:
            return None
        folder = tree
        if registry:
            try:
                folder = tree[registry]
            except KeyError:
                return None
            if not isinstance(folder, pygit2.Tree):
                return None
        memo = self.by_registry.get(registry)
        if memo is None:
            memo = self.by_registry[registry] = {}
        folder_id = folder.id
        found = memo.get(folder_id, _UNSEEN)  # the registry is unchanged: no lookup below it
        if found is _UNSEEN:
            found = memo[folder_id] = self._find(registry, folder)
        return found

    def _find(self, registry: str, folder: pygit2.Tree) -> Location | None:
        """The parameter's file in a registry folder: at the path seen last first, else by a search."""
        prefix = f"{registry}/" if registry else ""
        if self.hint is not None:
            try:
                entry = folder[self.hint]
                if not isinstance(entry, pygit2.Tree):
                    return Location(prefix + self.hint, str(entry.id))
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
        return Location(prefix + self.hint, str(folder[self.hint].id))

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


def _walk(repo: pygit2.Repository, start: pygit2.Commit, locator: _Locator, index: WalkIndex, shallow: set[str],
          progress: Progress | None, history: History) -> str | None:
    """Read the commits reachable from `start` that no tip of `index` reaches, and record their changes.

    Returns the nearest change at or below `start`.
    """
    walker = repo.walk(start.id, WALK_ORDER)
    for tip in list(index.tips):
        try:
            walker.hide(pygit2.Oid(hex=tip))
        except (KeyError, ValueError, pygit2.GitError):
            index.forget([tip])  # no longer in the repository (rewritten and collected)
    commits, parent_ids, where = _locate_all(walker, locator, progress)
    history.commits_scanned = len(commits)
    nearest, boundary = _reduce(repo, index, commits, parent_ids, where, shallow)
    index.forget(boundary)  # tips below the start: hiding the start hides them
    history.from_index = bool(boundary) or not commits
    return nearest[start.id] if commits else index.nearest(repo, str(start.id))


def _locate_all(walker: pygit2.Walker, locator: _Locator, progress: Progress | None
                ) -> tuple[list[pygit2.Oid], list[list[pygit2.Oid]], list[Location | None]]:
    """Children first: each commit, its parents and where the file is in it. Per commit, a
    dictionary hit unless its root tree is new."""
    commits: list[pygit2.Oid] = []
    parent_ids: list[list[pygit2.Oid]] = []
    where: list[Location | None] = []
    by_root: dict[pygit2.Oid, Location | None] = {}
    locate = locator.locate
    # Like git, read objects without hashing each one again (libgit2 does by default): the walk
    # reads every commit and tree, and rehashing them is about a third of it. zlib still checks them.
    pygit2.settings.enable_strict_hash_verification(False)
    try:
        for commit in walker:
            tree_id = commit.tree_id
            here = by_root.get(tree_id, _UNSEEN)  # merges and reverts meet the same trees again
            if here is _UNSEEN:
                here = by_root[tree_id] = locate(commit.tree)
            commits.append(commit.id)
            parent_ids.append(commit.parent_ids)
            where.append(here)
            if progress is not None and not len(commits) % 4096:
                progress(len(commits), 0)
    finally:
        pygit2.settings.enable_strict_hash_verification(True)
    return commits, parent_ids, where


def _reduce(repo: pygit2.Repository, index: WalkIndex, commits: list[pygit2.Oid], parent_ids: list[list[pygit2.Oid]],
            where: list[Location | None], shallow: set[str]) -> tuple[dict[pygit2.Oid, str | None], set[str]]:
    """Parents first: each commit passes to the nearest change below the parent it matches, or is
    a change (recorded in `index`). Returns each commit's nearest change, and the parents the
    walk did not reach (below a tip: the index answers for them)."""
    changes, links = index.changes, index.links
    nearest: dict[pygit2.Oid, str | None] = {}
    boundary: set[str] = set()
    for i in range(len(commits) - 1, -1, -1):
        commit, parents, here = commits[i], parent_ids[i], where[i]
        same = _UNSEEN
        below = []
        for parent in parents:
            if parent in nearest:
                found = nearest[parent]
            else:
                boundary.add(str(parent))
                found = index.nearest(repo, str(parent))
            if (changes[found].here if found is not None else None) == here:
                same = found
                break
            below.append(found)
        if same is not _UNSEEN:
            nearest[commit] = same
            if len(parents) > 1:
                links[str(commit)] = same  # a TREESAME merge: followed through that parent only
            continue
        if here is None and not parents:
            nearest[commit] = None  # a root commit without the parameter
            continue
        key = str(commit)
        first = changes[below[0]].here if below and below[0] is not None else None
        if not parents and key in shallow:
            status = TRUNCATED
        elif here is None:
            status = REMOVED
        elif first is None:
            status = ADDED
        elif here.blob == first.blob:
            status = MOVED
        else:
            status = MODIFIED
        changes[key] = Change(repo[commit].commit_time, here, first, status,
                              tuple(dict.fromkeys(c for c in below if c is not None)))
        nearest[commit] = key
    return nearest, boundary


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
        self.values: dict[tuple[str, str], Value] = {}

    def of(self, loc: Location) -> Value:
        name = loc.path.rsplit("/", 1)[-1]  # <id>.yaml or <id>.yml: the folder does not change what it says
        key = (name, loc.blob)
        if key not in self.values:
            # The loader's machinery only once a row needs a value.
            from funnelcheck.load.registry import load
            from funnelcheck.load.sources import SourceFile

            repo, blob = self.repo, loc.blob
            rel = f"{PARAMETERS}/{name}"
            sf = SourceFile(rel, rel, lambda: repo[blob].data, blob)
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


def _date(sig: pygit2.Signature) -> str:
    tz = datetime.timezone(datetime.timedelta(minutes=sig.offset))
    return datetime.datetime.fromtimestamp(sig.time, tz).isoformat()


def parameter_history(repo: pygit2.Repository, start: pygit2.Commit, registry: str | RegistryAt, parameter_id: str,
                      limit: int | None = None, progress: Progress | None = None,
                      cache: ParseCache | None = None, index: WalkIndex | None = None) -> History:
    """Every commit reachable from `start` that changed the parameter, newest first (see module doc).

    `registry` is the registry folder in every commit, or a function of a commit's tree that gives
    it (each commit's own funnelcheck.yaml: `gitsource.Placement.registry_at`).
    `cache` holds parsed blobs (a `HistoryCache` keeps them across runs); by default, this run only.
    `index` is what earlier walks learned (`walkindex.walk_index`, for this parameter and this
    `registry`): only commits it does not describe are read, and it learns them. By default, this
    run only. The rows do not depend on it.
    """
    fixed = registry.strip("/") if isinstance(registry, str) else None
    place = registry if fixed is None else (lambda tree: fixed)
    locator = _Locator(repo, place, (f"{parameter_id}.yaml", f"{parameter_id}.yml"))
    values = _Values(repo, parameter_id, cache if cache is not None else ParseCache())
    index = index if index is not None else WalkIndex()
    history = History(parameter_id, str(start.id))
    shallow = shallow_boundary(repo)
    try:
        top = _start(repo, start, locator, index, shallow, progress, history)
    except StaleIndex:
        index.reset()
        top = _start(repo, start, locator, index, shallow, progress, history)
    for key in index.ordered(top, limit):
        change = index.changes[key]
        commit = repo[key]
        if change.status == TRUNCATED:
            history.truncated_at = key
        here, first = change.here, change.first
        history.rows.append(HistoryRow(
            commit=key,
            date=_date(commit.author),
            author=commit.author.name,
            email=commit.author.email,
            message=commit.message.split("\n", 1)[0].strip(),
            status=change.status,
            path=here.path if here else None,
            previous_path=first.path if first else None,
            value=values.of(here) if here else None,
            previous=values.of(first) if first else None,
        ))
    if progress is not None:
        progress(history.commits_scanned, len(history.rows))
    return history


def _start(repo: pygit2.Repository, start: pygit2.Commit, locator: _Locator, index: WalkIndex, shallow: set[str],
           progress: Progress | None, history: History) -> str | None:
    """The nearest change at or below `start`: from the index when `start` was walked before, else by a walk."""
    key = str(start.id)
    if key in index.tips:
        history.from_index = True
        return index.use_tip(key)
    top = _walk(repo, start, locator, index, shallow, progress, history)
    index.add_tip(key, top)
    return top


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
