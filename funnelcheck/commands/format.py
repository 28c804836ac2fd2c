"""`funnelcheck format [FILE...]`: canonicalise references and filter order in place (a pre-commit fixer).

Exit 1 when it changed a file (or could not read one), 0 otherwise — pre-commit's fixer
convention. Files outside the registry, and YAML files the registry does not read, are left alone.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from funnelcheck.commands._common import CommonOptions, project_of
from funnelcheck.findings import UsageError
from funnelcheck.fixer import FormatError, format_file
from funnelcheck.load.registry import kind_of
from funnelcheck.load.sources import WorkTreeSource, display_path


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck format`'s options, typed (built from argparse once, in `cli`)."""

    files: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE", help="files to format (default: the whole registry)")


def run(args: Options) -> int:
    project = project_of(args)
    root = project.registry
    if not root.is_dir():
        raise UsageError(f"registry folder not found: {display_path(root)}")
    targets = _given(root, args.files) if args.files else [
        (root / sf.path, kind_of(sf.path)) for sf in WorkTreeSource(root).files()]
    status = 0
    for path, kind in targets:
        if kind is None or path.is_symlink():
            continue  # not a registry file; a symlink is formatted through its target, if that is in the registry
        try:
            changed = format_file(path, kind)
        except FormatError as exc:
            print(f"{display_path(path)}: cannot format: {exc}", file=sys.stderr)
            status = 1
            continue
        if changed:
            print(f"reformatted {display_path(path)}")
            status = 1
    return status


def _given(root: Path, files: list[str]) -> list[tuple[Path, str | None]]:
    base = os.path.abspath(root)
    out = []
    for name in files:
        if not os.path.isfile(name):
            raise UsageError(f"no such file: {name}")
        full = os.path.abspath(name)
        rel = os.path.relpath(full, base)
        inside = not rel.startswith(os.pardir + os.sep) and rel != os.pardir and not os.path.isabs(rel)
        out.append((Path(full), kind_of(Path(rel).as_posix()) if inside else None))
    return out
