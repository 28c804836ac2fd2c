"""`funnelcheck init [DIR]`: scaffold a funnel models repository.

Writes a small registry that validates clean, funnelcheck.yaml, .pre-commit-config.yaml
(funnelcheck's hooks), the two GitHub workflows and `.funnelcheck/.gitignore` (the tool's local
state folder ignores itself). Existing files are never overwritten
unless --force is given; nothing is written when any of them exists.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from funnelcheck import __version__
from funnelcheck.atomicfile import write_atomic
from funnelcheck.commands._common import CommonOptions
from funnelcheck.findings import FunnelcheckError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Until you name the repository that publishes funnelcheck's hooks, pre-commit cannot fetch them.
HOOKS_PLACEHOLDER = "https://github.com/OWNER/funnelcheck"

# template (under funnelcheck/templates) -> destination (under DIR); hidden names are
# stored without their dot so that packaging never skips them.
SPECIAL = {
    "pre-commit-config.yaml": ".pre-commit-config.yaml",
    "workflows/funnel-impact.yml": ".github/workflows/funnel-impact.yml",
    "workflows/funnel-monitor.yml": ".github/workflows/funnel-monitor.yml",
    "state-gitignore": ".funnelcheck/.gitignore",
}


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck init`'s options, typed (built from argparse once, in `cli`)."""

    directory: str = "."
    force: bool = False
    hooks_repo: str = "https://github.com/OWNER/funnelcheck"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", nargs="?", default=".", help="where to scaffold (default: .)")
    parser.add_argument("--force", action="store_true", help="overwrite files that already exist")
    parser.add_argument("--hooks-repo", metavar="URL", default=HOOKS_PLACEHOLDER,
                        help="the funnelcheck repository pre-commit fetches the hooks from")


def scaffold() -> dict[str, str]:
    """Destination path (relative, '/'-separated) -> template path (relative to TEMPLATES)."""
    out = {}
    for path in sorted(TEMPLATES.rglob("*")):
        rel = path.relative_to(TEMPLATES).as_posix()
        if path.is_file() and (path.suffix in (".yaml", ".yml") or rel in SPECIAL):
            out[SPECIAL.get(rel, rel)] = rel
    return out


def render(template: str, hooks_repo: str) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return text.replace("@VERSION@", __version__).replace("@HOOKS_REPO@", hooks_repo)


def run(args: Options) -> int:
    root = Path(args.directory)
    if root.exists() and not root.is_dir():
        raise FunnelcheckError(f"{root} exists and is not a folder")
    files = scaffold()
    existing = [dest for dest in files if (root / dest).exists()]
    if existing and not args.force:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise FunnelcheckError(f"refusing to overwrite {shown} in {root} (use --force)")
    for dest, template in files.items():
        try:
            (root / dest).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(root / dest, render(template, args.hooks_repo).encode("utf-8"))
        except OSError as exc:  # a full disk or a read-only folder: what was written stays whole
            raise FunnelcheckError(f"cannot write {root / dest}: {exc.strerror or exc}") from None
    print(f"scaffolded {len(files)} files in {root}:")
    for dest in files:
        print(f"  {dest}{'  (overwritten)' if dest in existing else ''}")
    print("next: funnelcheck validate; funnelcheck whatif signup; pre-commit install")
    if args.hooks_repo == HOOKS_PLACEHOLDER:
        print(f"edit .pre-commit-config.yaml: replace {HOOKS_PLACEHOLDER} with the funnelcheck repository you use")
    return 0

