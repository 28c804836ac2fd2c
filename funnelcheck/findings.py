"""Problems found in a registry, as values that carry a file, line and column."""
from __future__ import annotations

from typing import NamedTuple

ERROR = "error"
WARNING = "warning"


class Finding(NamedTuple):
    path: str
    line: int
    column: int
    severity: str
    code: str
    message: str
    json_path: str = "$"

    def as_dict(self) -> dict:
        return self._asdict()


def json_path(parts: tuple) -> str:
    """Render a path tuple like ('edges', 0, 'from') as `$.edges[0].from`."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def sort_key(f: Finding) -> tuple:
    return (f.path, f.line, f.column, f.code, f.message)


class FunnelcheckError(Exception):
    """An error that ends a command with a one-line message and an exit code."""

    exit_code = 1


class UsageError(FunnelcheckError):
    """Bad arguments: exit 2."""

    exit_code = 2
