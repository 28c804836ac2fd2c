"""The data pipeline (SPEC 8): connections, observations, statistics, persistence, monitor, update.

Everything here needs the `pipeline` extra (SQLAlchemy, DuckDB, numpy). Nothing here is
imported by `funnelcheck validate`; commands import it lazily through `require_extra`.
"""
from __future__ import annotations

from funnelcheck.findings import FunnelcheckError, UsageError


class PipelineError(FunnelcheckError):
    """Bad input met by the pipeline (a connection, a query, a database): one line, exit 1."""

    exit_code = 1


def require_extra(module: str = "sqlalchemy", extra: str = "pipeline") -> None:
    """Say which extra to install when a pipeline dependency is missing (exit 2)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"this command needs the '{extra}' extra: pip install 'funnelcheck[{extra}]' "
                         f"({module} is not installed)") from exc
