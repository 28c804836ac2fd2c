"""The `funnelcheck` command: a thin shell that parses arguments and calls one command module.

Only the chosen command's module is imported, so `funnelcheck validate` (run on every
commit) never pays for numpy, scipy, pygit2 or SQLAlchemy.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from funnelcheck import __version__
from funnelcheck.findings import FunnelcheckError

# name -> (module under funnelcheck.commands, one-line help)
COMMANDS = {
    "validate": ("validate", "check the whole registry (schemas, references, probabilities, graphs)"),
    "format": ("format", "canonicalise references and filter order in registry files, in place"),
    "resolve": ("resolve", "resolve one reference through the fallback hierarchy"),
    "whatif": ("whatif", "funnel conversion for a context mix, with Monte Carlo uncertainty"),
    "history": ("history", "the value of one parameter across the Git commits that changed it"),
    "diff": ("diff", "what-if diff between two revisions (a PR comment with --format md)"),
    "github": ("github", "sticky PR comment / posterior-update PR through the GitHub API"),
    "init": ("init", "scaffold a new funnel models repository"),
    "simulate": ("simulate", "simulated journeys drawn from the model, into the observation tables"),
    "monitor": ("monitor", "daily check: observed rates against the registry, Red/Amber/Green"),
    "update": ("update", "Bayesian update of parameter values from observations (--write to apply)"),
    "dashboard": ("dashboard", "write the what-if, model-fit and history dashboard as one offline HTML file"),
    "serve": ("serve", "serve the dashboard on 127.0.0.1 with live p.mean overrides"),
    "priors": ("priors", "prior sources: sync them into the YAML (--write) / push the registry's values back"),
    "alerts": ("alerts", "send a test message to every configured alert channel"),
}


def common_options() -> argparse.ArgumentParser:
    """Options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--registry", metavar="DIR", help="registry folder (default: from funnelcheck.yaml, else ./registry)")
    p.add_argument("--config", metavar="FILE", help="funnelcheck.yaml to use (default: the nearest one)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funnelcheck", description="Git-native toolkit for conversion-funnel models.")
    parser.add_argument("--version", action="version", version=f"funnelcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parent = common_options()
    # With a known command word only its subparser is built (the others are for the overview, `--help`).
    for name, (module, help_text) in COMMANDS.items() if command is None else [(command, COMMANDS[command])]:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[parent])
        if name == command:
            _module(module).add_arguments(p)
    return parser


def _module(name: str):
    return importlib.import_module(f"funnelcheck.commands.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for bad usage
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        from funnelcheck.commands._common import typed

        module = _module(COMMANDS[args.command][0])
        return module.run(typed(module.Options, args))
    except FunnelcheckError as exc:
        if args.debug:
            raise
        print(f"funnelcheck {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if args.debug or os.environ.get("FUNNELCHECK_DEBUG"):
            raise
        print(f"funnelcheck {args.command}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return 3


def entry() -> None:
    raise SystemExit(main())
