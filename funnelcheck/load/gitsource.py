"""Registry files straight from the Git object database (pygit2): any revision, no checkout.

`GitTreeSource` is the Git twin of `sources.WorkTreeSource`: it lists the registry's blobs at
one commit and gives each file its blob id as `SourceFile.key`, so `registry.ParseCache`
parses a blob once, whatever revision it is met in. `load_revision` is what `--rev` calls.
"""
from __future__ import annotations

import os
import posixpath
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import NamedTuple

import pygit2

from funnelcheck.findings import ERROR, Finding, FunnelcheckError, UsageError
from funnelcheck.load.cache import ParseCache
from funnelcheck.load.registry import NO_CONFIG, ConfigFile, Loaded, Project, load_with_config, read_config
from funnelcheck.load.sources import SourceFile, display_path

SHALLOW_HINT = "the clone is shallow: fetch with full history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)"
MISSING_HINT = "the clone is partial or damaged: run git fetch (or clone again)"


class Revision(NamedTuple):
    """A commit of the repository that holds a project, and where the registry lives in its trees."""

    repo: pygit2.Repository
    commit: pygit2.Commit
    label: str  # the revision as the user wrote it
    registry_subpath: str  # '/'-separated, relative to the repository root; '' = the root itself
    registry_display: str  # how findings name the registry folder (as for the work tree)
    config_file: ConfigFile = NO_CONFIG  # funnelcheck.yaml as it is at this revision

    @property
    def short(self) -> str:
        return str(self.commit.id)[:10]


class MissingObject(FunnelcheckError):
    """An object a revision needs is not in the repository (a partial or damaged clone)."""


def missing(label: str, commit: pygit2.Oid | str, oid=None) -> MissingObject:
    """The one message for an unreadable revision: which revision, which object, and `git fetch`."""
    what = f"object {str(oid)[:10]} is missing" if oid is not None else "an object is missing"
    return MissingObject(f"cannot read revision '{label}' (commit {str(commit)[:10]}): {what}; {MISSING_HINT}")


@contextmanager
def reading(label: str, commit: pygit2.Oid):
    """Turn an object missing from the repository, met anywhere in the block, into `missing`."""
    try:
        yield
    except (KeyError, pygit2.GitError) as exc:
        raise missing(label, commit) from exc


class GitTreeSource:
    """The registry folder inside one commit's tree. Symlinks may point only inside the registry."""

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit, registry_subpath: str,
                 root_display: str | None = None, label: str | None = None):
        self.repo = repo
        self.commit = commit
        self.registry_subpath = registry_subpath.strip("/")
        self.root_display = root_display or self.registry_subpath or "."
        self.label = label or str(commit.id)[:10]
        self.problems: list[Finding] = []

    def tree(self) -> pygit2.Tree | None:
        """The registry's tree at this commit, or None when the folder does not exist there."""
        return subtree(self.commit.tree, self.registry_subpath)

    def files(self) -> list[SourceFile]:
        try:
            root = self.tree()
            if root is None:
                return []
            out: list[SourceFile] = []
            self._walk(root, "", out)
        except (KeyError, pygit2.GitError) as exc:
            raise missing(self.label, self.commit.id) from exc
        out.sort(key=lambda sf: sf.path)
        return out

    def read(self, oid: pygit2.Oid) -> bytes:
        """A blob's bytes; a missing object names the revision being read."""
        try:
            return self.repo[oid].data
        except (KeyError, pygit2.GitError) as exc:
            raise missing(self.label, self.commit.id, oid) from exc

    def _walk(self, tree: pygit2.Tree, prefix: str, out: list[SourceFile]) -> None:
        for entry in tree:
            name = entry.name
            if isinstance(entry, pygit2.Tree):  # cheaper than `filemode`, which builds an enum each time
                self._walk(entry, f"{prefix}{name}/", out)
            elif name.endswith((".yaml", ".yml")):
                mode = entry.filemode
                if mode == pygit2.GIT_FILEMODE_LINK:
                    self._add_link(entry, prefix + name, out)
                elif mode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
                    out.append(self._file(prefix + name, entry.id))

    def _file(self, rel: str, oid: pygit2.Oid) -> SourceFile:
        return SourceFile(rel, f"{self.root_display}/{rel}", partial(self.read, oid), str(oid))

    def _add_link(self, entry, rel: str, out: list[SourceFile]) -> None:
        # A symlink blob holds its target path; follow it only while it stays inside the registry.
        target = self.repo[entry.id].data.decode("utf-8", "replace")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        found = None
        if not (target.startswith("/") or resolved.startswith("..")):
            root = self.tree()
            try:
                found = root[resolved] if root is not None else None
            except KeyError:
                found = None
        if found is None or found.filemode not in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
            self.problems.append(Finding(f"{self.root_display}/{rel}", 1, 1, ERROR, "symlink-escape",
                                         f"symlink points outside the registry ({target}); refused"))
            return
        out.append(self._file(rel, found.id))


def subtree(tree: pygit2.Tree, subpath: str) -> pygit2.Tree | None:
    """The tree at `subpath` ('' = `tree` itself), or None when there is no folder there."""
    if not subpath:
        return tree
    try:
        entry = tree[subpath]
    except KeyError:
        return None
    return entry if entry.filemode == pygit2.GIT_FILEMODE_TREE else None


def open_repository(project: Project) -> pygit2.Repository:
    """The Git repository that holds the project's registry folder (which need not exist on disk)."""
    start = Path(os.path.abspath(project.registry))
    while not start.exists() and start != start.parent:
        start = start.parent
    found = pygit2.discover_repository(str(start))
    if found is None:
        raise UsageError(f"reading Git revisions needs a Git repository, and {display_path(start)} is not inside one")
    try:
        repo = pygit2.Repository(found)
    except pygit2.GitError as exc:
        if "not owned by current user" not in str(exc):
            raise UsageError(f"cannot open the Git repository at {found}: {exc}") from exc
        top = os.path.dirname(os.path.normpath(found)) if os.path.basename(os.path.normpath(found)) == ".git" else found
        raise UsageError(f"the Git repository at {top} is owned by another user, so Git does not trust it; if you "
                         f"trust it, mark it safe: git config --global --add safe.directory {top}") from exc
    if repo.workdir is None:
        raise UsageError(f"{found} is a bare repository; run funnelcheck inside a clone")
    return repo


def resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    """A branch, tag, SHA or any single-revision syntax of `git rev-parse` (`main~3`, `:/text`), as a commit."""
    if ".." in rev:
        raise UsageError(f"'{rev}' is a range of revisions; give one revision")
    try:
        obj = repo.revparse_single(rev)
    except pygit2.AmbiguousError as exc:
        raise UsageError(f"the short SHA '{rev}' is ambiguous: several objects start with it; give more digits") from exc
    except (KeyError, ValueError, pygit2.GitError) as exc:
        if repo.head_is_unborn:
            raise UsageError(f"unknown revision '{rev}': the repository has no commits yet") from exc
        if repo.is_shallow:
            raise UsageError(f"unknown revision '{rev}' ({SHALLOW_HINT})") from exc
        if rev.startswith(":/"):
            raise UsageError(f"unknown revision '{rev}': no commit message matches '{rev[2:]}'") from exc
        raise UsageError(f"unknown revision '{rev}': no branch, tag or commit of that name") from exc
    try:
        return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError) as exc:
        raise UsageError(f"revision '{rev}' names a {obj.type_str}, not a commit") from exc
    except KeyError as exc:  # the commit a tag points to is not in the repository
        raise missing(rev, obj.id) from exc


def _relative_to_workdir(repo: pygit2.Repository, path: Path, what: str) -> str:
    workdir = os.path.realpath(repo.workdir)
    full = os.path.realpath(os.path.abspath(path))
    rel = os.path.relpath(full, workdir)
    if rel == os.curdir:
        return ""
    if rel.startswith(os.pardir):
        raise UsageError(f"the {what} {display_path(path)} is outside the Git repository at {display_path(Path(workdir))}")
    return Path(rel).as_posix()


class Placement:
    """Where a project's registry is in any commit: named by funnelcheck.yaml as it is in that commit.

    Without a versioned funnelcheck.yaml (none, one outside the repository) or with `--registry`,
    the registry stays at the work tree's place. A commit without the file uses the default
    `registry/` next to where it stands. Readings are memoised by the file's blob id.
    """

    def __init__(self, repo: pygit2.Repository, project: Project):
        self.repo = repo
        self.workdir = Path(repo.workdir)
        self.disk_config = project.config_file
        self.config_subpath: str | None = None
        if project.config_path is not None:
            try:
                self.config_subpath = _relative_to_workdir(repo, project.config_path, "config file")
            except UsageError:
                pass  # not versioned with the registry: every revision uses the file on disk
        self.config_display = display_path(project.config_path) if project.config_path else None
        self.fixed = None
        if project.registry_given or self.config_subpath is None:
            self.fixed = _relative_to_workdir(repo, project.registry, "registry folder")
        try:  # the work tree's own registry keeps the name the user sees for it
            self.work_registry = (_relative_to_workdir(repo, project.registry, "registry folder"),
                                  display_path(project.registry))
        except UsageError:
            self.work_registry = None
        self._by_blob: dict = {}

    def at(self, tree: pygit2.Tree) -> tuple[str | None, ConfigFile]:
        """(registry subpath or None when the config names a folder outside the repository, config) in `tree`."""
        if self.config_subpath is None:
            return self.fixed, self.disk_config
        entry = _entry(tree, self.config_subpath)
        blob = entry.id if isinstance(entry, pygit2.Blob) else None
        hit = self._by_blob.get(blob)
        if hit is None:
            config = read_config(self.config_display, self.repo[blob].data) if blob is not None else NO_CONFIG
            if self.fixed is not None:
                hit = (self.fixed, config)
            else:
                folder = posixpath.dirname(self.config_subpath)
                sub = posixpath.normpath(posixpath.join(folder, config.registry))
                hit = (None if sub.startswith("../") or sub == ".." or posixpath.isabs(config.registry)
                       else "" if sub == "." else sub, config)
            self._by_blob[blob] = hit
        return hit

    def registry_at(self, tree: pygit2.Tree) -> str | None:
        """The registry folder in a commit's tree (what `git.history` follows), None when it is outside."""
        return self.at(tree)[0]

    def display(self, subpath: str) -> str:
        """How findings name a registry folder of the repository (relative to the current directory)."""
        if self.work_registry is not None and self.work_registry[0] == subpath:
            return self.work_registry[1]
        return display_path(self.workdir / subpath) if subpath else display_path(self.workdir)


def _entry(tree: pygit2.Tree, path: str):
    try:
        return tree[path]
    except KeyError:
        return None


def open_revision(project: Project, rev: str, repo: pygit2.Repository | None = None,
                  placement: Placement | None = None) -> Revision:
    """Find the repository, resolve `rev` and place the registry inside its tree by that revision's config."""
    repo = repo or open_repository(project)
    placement = placement or Placement(repo, project)
    commit = resolve_commit(repo, rev)
    try:
        subpath, config = placement.at(commit.tree)
    except (KeyError, pygit2.GitError) as exc:
        raise missing(rev, commit.id) from exc
    if subpath is None:
        raise FunnelcheckError(f"{placement.config_display} at revision '{rev}' names a registry folder outside the "
                               f"repository ({config.registry})")
    return Revision(repo, commit, rev, subpath, placement.display(subpath), config)


def blob_cache(project: Project) -> ParseCache:
    """The on-disk parse cache for Git blobs (keyed by blob id), next to the work tree's.

    Kept apart from the work tree's cache because each keeps only what its last run used.
    """
    return ParseCache(project.cache_file("git-parse"))


def registry_exists(revision: Revision) -> bool:
    return subtree(revision.commit.tree, revision.registry_subpath) is not None


def load_tree(revision: Revision, cache: ParseCache) -> Loaded:
    """Load the registry (and funnelcheck.yaml) as they are in the revision's commit; the cache is not saved."""
    source = GitTreeSource(revision.repo, revision.commit, revision.registry_subpath, revision.registry_display,
                           revision.label)
    return load_with_config(source, revision.config_file, cache)


def load_revision(project: Project, rev: str) -> Loaded:
    """The project's registry at `rev`, read from the object database; what `--rev` runs."""
    revision = open_revision(project, rev)
    if not registry_exists(revision):
        raise FunnelcheckError(f"there is no registry folder {revision.registry_subpath or '.'}/ at revision '{rev}' "
                               f"(commit {revision.short})")
    cache = blob_cache(project)
    loaded = load_tree(revision, cache)
    cache.save()
    return loaded
