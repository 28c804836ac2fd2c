"""Registry files straight from the Git object database (pygit2): any revision, no checkout.

`GitTreeSource` is the Git twin of `sources.WorkTreeSource`: it lists the registry's blobs at
one commit and gives each file its blob id as `SourceFile.key`, so `registry.ParseCache`
parses a blob once, whatever revision it is met in. `load_revision` is what `--rev` calls.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import NamedTuple

import pygit2

from funnelcheck.findings import ERROR, Finding, FunnelcheckError, UsageError
from funnelcheck.load.cache import ParseCache, cache_dir
from funnelcheck.load.registry import Loaded, Project, load, load_config, parse_config
from funnelcheck.load.sources import SourceFile, display_path

SHALLOW_HINT = "the clone is shallow: fetch with full history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)"


class Revision(NamedTuple):
    """A commit of the repository that holds a project, and where the registry lives in its trees."""

    repo: pygit2.Repository
    commit: pygit2.Commit
    label: str  # the revision as the user wrote it
    registry_subpath: str  # '/'-separated, relative to the repository root; '' = the root itself
    registry_display: str  # how findings name the registry folder (as for the work tree)
    config_subpath: str | None = None  # funnelcheck.yaml relative to the repository root, if the project has one
    config_display: str | None = None
    config_outside: Path | None = None  # a funnelcheck.yaml outside the repository: read from disk

    @property
    def short(self) -> str:
        return str(self.commit.id)[:10]


class GitTreeSource:
    """The registry folder inside one commit's tree. Symlinks may point only inside the registry."""

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit, registry_subpath: str,
                 root_display: str | None = None):
        self.repo = repo
        self.commit = commit
        self.registry_subpath = registry_subpath.strip("/")
        self.root_display = root_display or self.registry_subpath or "."
        self.problems: list[Finding] = []

    def tree(self) -> pygit2.Tree | None:
        """The registry's tree at this commit, or None when the folder does not exist there."""
        return subtree(self.commit.tree, self.registry_subpath)

    def files(self) -> list[SourceFile]:
        root = self.tree()
        if root is None:
            return []
        out: list[SourceFile] = []
        self._walk(root, "", out)
        out.sort(key=lambda sf: sf.path)
        return out

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
        repo = self.repo
        return SourceFile(rel, f"{self.root_display}/{rel}", lambda: repo[oid].data, str(oid))

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
    repo = pygit2.Repository(found)
    if repo.workdir is None:
        raise UsageError(f"{found} is a bare repository; run funnelcheck inside a clone")
    return repo


def resolve_commit(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    """A branch, tag, SHA or expression like `main~3`, peeled to its commit."""
    try:
        obj = repo.revparse_single(rev)
        return obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        if repo.head_is_unborn:
            raise UsageError(f"unknown revision '{rev}': the repository has no commits yet") from exc
        if repo.is_shallow:
            raise UsageError(f"unknown revision '{rev}' ({SHALLOW_HINT})") from exc
        raise UsageError(f"unknown revision '{rev}': no branch, tag or commit of that name") from exc


def _relative_to_workdir(repo: pygit2.Repository, path: Path, what: str) -> str:
    workdir = os.path.realpath(repo.workdir)
    full = os.path.realpath(os.path.abspath(path))
    rel = os.path.relpath(full, workdir)
    if rel == os.curdir:
        return ""
    if rel.startswith(os.pardir):
        raise UsageError(f"the {what} {display_path(path)} is outside the Git repository at {display_path(Path(workdir))}")
    return Path(rel).as_posix()


def open_revision(project: Project, rev: str, repo: pygit2.Repository | None = None) -> Revision:
    """Find the repository, resolve `rev` and place the registry (and config) inside its trees."""
    repo = repo or open_repository(project)
    commit = resolve_commit(repo, rev)
    reg = _relative_to_workdir(repo, project.registry, "registry folder")
    config, outside = None, None
    if project.config_path is not None:
        try:
            config = _relative_to_workdir(repo, project.config_path, "config file")
        except UsageError:
            outside = project.config_path  # not versioned with the registry: every revision uses it
    return Revision(repo, commit, rev, reg, display_path(project.registry), config,
                    display_path(project.config_path) if config is not None else None, outside)


def blob_cache(project: Project) -> ParseCache:
    """The on-disk parse cache for Git blobs (keyed by blob id), next to the work tree's.

    Kept apart from the work tree's cache because each keeps only what its last run used.
    """
    return ParseCache(cache_dir(project.base) / "git-parse.json")


def registry_exists(revision: Revision) -> bool:
    return subtree(revision.commit.tree, revision.registry_subpath) is not None


def load_tree(revision: Revision, cache: ParseCache) -> Loaded:
    """Load the registry (and funnelcheck.yaml) as they are in the revision's commit."""
    config, config_findings = None, []
    if revision.config_subpath is not None:
        try:
            entry = revision.commit.tree[revision.config_subpath]
        except KeyError:
            entry = None
        if entry is not None and entry.filemode != pygit2.GIT_FILEMODE_TREE:
            config, config_findings = parse_config(revision.config_display, revision.repo[entry.id].data, cache)
    elif revision.config_outside is not None:
        config, config_findings = load_config(revision.config_outside, cache)
    source = GitTreeSource(revision.repo, revision.commit, revision.registry_subpath, revision.registry_display)
    loaded = load(source, config, cache)
    loaded.findings[:0] = config_findings
    if config is not None and config.where is not None:
        loaded.docs[config.path] = config.where.doc
    return loaded


def load_revision(project: Project, rev: str) -> Loaded:
    """The project's registry at `rev`, read from the object database; what `--rev` runs."""
    revision = open_revision(project, rev)
    if not registry_exists(revision):
        raise FunnelcheckError(f"there is no registry folder {revision.registry_subpath}/ at revision '{rev}' "
                               f"(commit {revision.short})")
    return load_tree(revision, blob_cache(project))

