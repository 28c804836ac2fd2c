"""`funnelcheck alerts test`: one test message to every channel configured in funnelcheck.yaml.

Exit 0 when every channel accepted it; 1 when one failed or none is configured (each with a
line saying why); 2 on bad usage. Nothing goes through the outbox: a test is not kept for later.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from funnelcheck.commands._common import CommonOptions, add_format, after_command_word, print_json, project_of


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck alerts`'s options, typed (built from argparse once, in `cli`)."""

    action: str
    format: str = "text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """test, --format."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("test", help="send a test message to every configured channel")
    add_format(t)
    after_command_word(t)


def run(args: Options) -> int:
    from funnelcheck.pipeline.alerts import send_test
    from funnelcheck.render import alerts as render

    project = project_of(args)
    config = project.config_file.config
    report = send_test(config.data if config else {})
    if args.format == "json":
        print_json(report.to_json())
    else:
        sys.stdout.write(render.channel_lines(report))
    return 0 if report.deliveries and not report.failed else 1
