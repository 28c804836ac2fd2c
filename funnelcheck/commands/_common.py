"""What several commands share: finding the project and loading the registry (work tree or --rev)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, fields

from funnelcheck.findings import ERROR, FunnelcheckError
from funnelcheck.load.registry import Loaded, Project, find_project, load_project
from funnelcheck.render.format import json_text


@dataclass(frozen=True, kw_only=True)
class CommonOptions:
    """The options every command takes (`cli.common_options`); each command's `Options` extends them."""

    registry: str | None = None
    config: str | None = None
    debug: bool = False


def typed(options_class: type, namespace: argparse.Namespace):
    """argparse's result as the command's own typed options: the one place a Namespace is read."""
    values = vars(namespace)
    return options_class(**{f.name: values[f.name] for f in fields(options_class) if f.name in values})


def add_rev(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rev", metavar="REV", type=revision,
                        help="read the registry at this Git revision (no checkout)")


def revision(text: str) -> str:
    """An argparse type: a revision is never empty (`--rev ""` must not quietly mean the work tree)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a revision (a branch, tag or commit); leave --rev out to read the work tree")
    return text


def add_format(parser: argparse.ArgumentParser, choices=("text", "json"), default="text") -> None:
    parser.add_argument("--format", choices=choices, default=default, help=f"output format (default: {default})")


def project_of(options: CommonOptions) -> Project:
    """Where funnelcheck.yaml and the registry are, from --config and --registry."""
    return find_project(registry=options.registry, config=options.config)


def open_registry(options: CommonOptions, rev: str | None = None, project: Project | None = None) -> Loaded:
    """The registry of the work tree, or of revision `rev` read straight from the Git object database."""
    project = project or project_of(options)
    if rev:
        from funnelcheck.load.gitsource import load_revision

        return load_revision(project, rev)
    return load_project(project)


class BlockingFindings(FunnelcheckError):
    """The registry has errors that stop a computation; the message lists them."""

    exit_code = 1


def require_clean(loaded: Loaded, what: str = "the registry") -> None:
    """Refuse to compute on a registry whose files failed to load."""
    errors = [f for f in loaded.findings if f.severity == ERROR]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more; run funnelcheck validate)" if len(errors) > 1 else ""
        raise BlockingFindings(f"{what} has errors: {first.path}:{first.line}:{first.column}: {first.message}{more}")


def print_json(data, stream=None) -> None:
    """Indented JSON, written at once (a large result in one write, not thousands of small ones)."""
    (stream or sys.stdout).write(json_text(data))


def refuse_invalid(loaded, what: str) -> None:
    """As `update --write`: nothing is written into a registry that does not validate (its first error)."""
    from funnelcheck.checks import validate
    from funnelcheck.findings import ERROR

    errors = [f for f in validate(loaded) if f.severity == ERROR]
    if errors:
        f = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BlockingFindings(f"{what} refused, nothing written: {f.path}:{f.line}:{f.column}: {f.message}{more}; "
                               "run funnelcheck validate")


def after_command_word(parser: argparse.ArgumentParser) -> None:
    """Accept the common options after the last command word too (SPEC 10), without a sub-command's
    defaults overwriting what was given before it (hence SUPPRESS)."""
    parser.add_argument("--registry", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
