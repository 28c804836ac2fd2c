"""Where registry files come from: a (path, bytes) source.

The same loader reads the work tree (`WorkTreeSource`) and any Git revision
(`funnelcheck.load.gitsource.GitTreeSource`), so `--rev` costs no special case downstream.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple, Protocol

from funnelcheck.findings import ERROR, Finding, FunnelcheckError
from funnelcheck.yamlload import MAX_FILE_BYTES


class SourceFile(NamedTuple):
    path: str  # relative to the registry root, '/'-separated: 'parameters/a/b.yaml'
    display: str  # how findings name it: 'registry/parameters/a/b.yaml'
    read: Callable[[], bytes]
    key: str | None = None  # a content id known without reading (a Git blob id), if any
    stamp: tuple | None = None  # (size, mtime_ns, inode) of a work-tree file: tells a cache it is unchanged


class Source(Protocol):
    """A registry's files. `problems` holds what listing them found (escaping symlinks)."""

    root_display: str
    problems: list[Finding]

    def files(self) -> list[SourceFile]: ...


def content_key(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def display_path(path: Path) -> str:
    """A path as the user should see it: relative to the current directory when below it."""
    try:
        return Path(os.path.relpath(path)).as_posix() if not os.path.relpath(path).startswith("..") else path.as_posix()
    except ValueError:
        return path.as_posix()


class WorkTreeSource:
    """The registry folder on disk. Symlinks that leave it are refused; what cannot be listed or
    read (unreadable folders and files, dangling or looping symlinks, FIFOs) is a finding."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root_display = display_path(self.root)
        self.problems: list[Finding] = []

    def files(self) -> list[SourceFile]:
        # os.scandir with plain strings: a registry has thousands of files, and pathlib's
        # per-path objects cost more than reading them.
        self.problems = []
        out: list[SourceFile] = []
        self._scan(str(self.root), "", str(self.root.resolve()), out)
        return out

    def _scan(self, folder: str, prefix: str, real_root: str, out: list[SourceFile]) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self._unusable(prefix.rstrip("/"), "folder", exc)
            return
        for entry in entries:
            rel = prefix + entry.name
            try:
                self._entry(entry, rel, real_root, out)
            except OSError as exc:
                self._unusable(rel, "folder" if entry.is_dir(follow_symlinks=False) else "file", exc)

    def _entry(self, entry: os.DirEntry, rel: str, real_root: str, out: list[SourceFile]) -> None:
        link = entry.is_symlink()
        if entry.is_dir(follow_symlinks=False):
            self._scan(entry.path, rel + "/", real_root, out)
        elif link and entry.is_dir():
            if not _inside(entry.path, real_root):
                self._refuse(Path(entry.path))
            # a symlinked folder inside the registry is not followed (no double listing)
        elif entry.name.endswith((".yaml", ".yml")):
            if link and not _inside(entry.path, real_root):
                self._refuse(Path(entry.path))
                return
            st = entry.stat()
            display = f"{self.root_display}/{rel}"
            if not stat.S_ISREG(st.st_mode):
                self._problem(rel, "unreadable", "not a regular file (a FIFO, socket or device); not read")
            elif not os.access(entry.path, os.R_OK):
                self._problem(rel, "unreadable", "the file cannot be read: permission denied")
            else:
                out.append(SourceFile(rel, display, partial(_read, entry.path, display), None,
                                      (st.st_size, st.st_mtime_ns, st.st_ino)))

    def _unusable(self, rel: str, what: str, exc: OSError) -> None:
        if exc.errno == errno.ELOOP:
            self._problem(rel, "symlink-loop", "the symlink loops (it points, in the end, at itself)")
        elif exc.errno == errno.ENOENT:
            self._problem(rel, "dangling-symlink", f"the symlink points at nothing ({_target(self.root / rel)})")
        else:
            self._problem(rel, "unreadable", f"the {what} cannot be read: {exc.strerror or exc}")

    def _problem(self, rel: str, code: str, message: str) -> None:
        path = f"{self.root_display}/{rel}" if rel else self.root_display
        self.problems.append(Finding(path, 1, 1, ERROR, code, message))

    def _refuse(self, link: Path) -> None:
        rel = link.relative_to(self.root).as_posix()
        self.problems.append(Finding(f"{self.root_display}/{rel}", 1, 1, ERROR, "symlink-escape",
                                     f"symlink points outside the registry ({os.readlink(link)}); refused"))


def _inside(link: str, real_root: str) -> bool:
    target = os.path.realpath(link)
    return target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)


def _target(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"


def _read(path: str, display: str) -> bytes:
    """The file's bytes, at most one past the size limit (the parser refuses bigger files unread)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:  # changed since it was listed
        raise FunnelcheckError(f"{display}: cannot be read: {exc.strerror or exc}") from None


class DictSource:
    """Files held in memory, {registry-relative path: bytes or text}: for generators and tests."""

    def __init__(self, files: dict, root_display: str = "registry"):
        self.root_display = root_display
        self.problems: list[Finding] = []
        self._files = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}

    def files(self) -> list[SourceFile]:
        return [SourceFile(path, f"{self.root_display}/{path}", (lambda raw=raw: raw))
                for path, raw in self._files.items()]
