"""Where registry files come from: a (path, bytes) source.

The same loader reads the work tree (`WorkTreeSource`) and any Git revision
(`funnelcheck.gitsource.GitTreeSource`), so `--rev` costs no special case downstream.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, NamedTuple, Protocol

from funnelcheck.findings import ERROR, Finding


class SourceFile(NamedTuple):
    path: str  # relative to the registry root, '/'-separated: 'parameters/a/b.yaml'
    display: str  # how findings name it: 'registry/parameters/a/b.yaml'
    read: Callable[[], bytes]
    key: str | None = None  # a content id known without reading (a Git blob id), if any


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
    """The registry folder on disk. Symlinks that leave it are refused."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root_display = display_path(self.root)
        self.problems: list[Finding] = []

    def files(self) -> list[SourceFile]:
        real_root = self.root.resolve()
        out: list[SourceFile] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            here = Path(dirpath)
            for name in list(dirnames):
                link = here / name
                if link.is_symlink() and not _inside(link, real_root):
                    dirnames.remove(name)
                    self._refuse(link)
            for name in sorted(filenames):
                if not name.endswith((".yaml", ".yml")):
                    continue
                full = here / name
                if full.is_symlink() and not _inside(full, real_root):
                    self._refuse(full)
                    continue
                rel = full.relative_to(self.root).as_posix()
                out.append(SourceFile(rel, f"{self.root_display}/{rel}", full.read_bytes))
        return out

    def _refuse(self, link: Path) -> None:
        rel = link.relative_to(self.root).as_posix()
        self.problems.append(Finding(f"{self.root_display}/{rel}", 1, 1, ERROR, "symlink-escape",
                                     f"symlink points outside the registry ({os.readlink(link)}); refused"))


def _inside(link: Path, real_root: Path) -> bool:
    try:
        link.resolve().relative_to(real_root)
        return True
    except ValueError:
        return False


class DictSource:
    """Files held in memory, {registry-relative path: bytes or text}: for generators and tests."""

    def __init__(self, files: dict, root_display: str = "registry"):
        self.root_display = root_display
        self.problems: list[Finding] = []
        self._files = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}

    def files(self) -> list[SourceFile]:
        return [SourceFile(path, f"{self.root_display}/{path}", (lambda raw=raw: raw))
                for path, raw in self._files.items()]
