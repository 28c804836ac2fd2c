"""`funnelcheck monitor`: the daily check of every parameter with an observation source (docs/pipeline.md).

Exit: 0; 1 when `--fail-on` is hit or the results could not be stored (they are printed
anyway); 2 on bad usage. `error` parameters do not change the exit code.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from dataclasses import dataclass

from funnelcheck.commands._common import CommonOptions, add_format, print_json, project_of


@dataclass(frozen=True, kw_only=True)
class Options(CommonOptions):
    """`funnelcheck monitor`'s options, typed (built from argparse once, in `cli`)."""

    as_of: str | None = None
    fail_on: str = "never"
    no_alerts: bool = False
    format: str = "text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--as-of, --fail-on, --no-alerts, --format."""
    parser.add_argument("--as-of", metavar="DATE", help="judge the windows ending at DATE 00:00 UTC (default: today)")
    parser.add_argument("--fail-on", choices=("red", "amber", "never"), default="never",
                        help="exit 1 when a parameter is at least this bad (default: never)")
    parser.add_argument("--no-alerts", action="store_true", help="send no alerts for this run")
    add_format(parser, choices=("text", "json", "github"))


def run(args: Options) -> int:
    # One short run that allocates a great deal (the pipeline's imports, the registry, a result per
    # parameter) and frees it by reference counting: the cycle collector's passes over all of it
    # were a tenth of monitor's time on the benchmark, and its peak memory is the same without them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        if collecting:
            gc.enable()


def _run(args: Options) -> int:
    from funnelcheck.pipeline import require_extra
    from funnelcheck.pipeline.monitor import observe, parse_as_of, run_monitor
    from funnelcheck.pipeline.project import open_pipeline, skipped_files
    from funnelcheck.render.progress import Progress

    as_of = parse_as_of(args.as_of)
    project = project_of(args)
    # The warehouse first: on DuckDB the queries need neither SQLAlchemy nor pygit2, so they are
    # imported (and the repository's revision found) in a thread while DuckDB works.
    pipe = open_pipeline(project)
    later = _meanwhile(project.base, pipe.connections.querying)
    for path in skipped_files(pipe.loaded):
        print(f"funnelcheck monitor: warning: {path} has errors and is skipped (run funnelcheck validate)",
              file=sys.stderr)
    bar = Progress(sys.stderr, "monitor")
    try:
        observed = observe(pipe.loaded.registry, pipe.connections, as_of, progress=bar.counter("queries"))
        revision = later()
        require_extra()
        from funnelcheck.pipeline.store import StoreError, open_store, store_url
        from funnelcheck.render import monitor as render

        store, store_error, previous = None, None, {}
        try:
            store = open_store(store_url(pipe.config, pipe.project.base), pipe.project.base)
            previous = store.previous_results(as_of.date())
        except StoreError as exc:
            store_error = str(exc)
        priors = _priors(pipe, store)
        result = run_monitor(pipe.loaded.registry, pipe.connections, as_of, previous, priors=priors,
                             revision=revision, observed=observed)
    finally:
        bar.close()
        pipe.connections.dispose()
    if store is not None:
        try:
            store.write_results(result)
        except StoreError as exc:
            store_error = str(exc)
        if not args.no_alerts:
            _alerts(result, store, pipe.config)
        store.close()
    result.store_error = store_error
    from funnelcheck.render.priors import fallback_lines

    sys.stderr.write(fallback_lines(priors.problems, "monitor"))
    _render(result, args.format, render)
    if store_error:
        print(f"funnelcheck monitor: error: results not stored: {store_error}", file=sys.stderr)
        return 1
    return 1 if result.fails(args.fail_on) else 0


def _meanwhile(base, querying):
    """Import what comes after the queries, and find the revision, in a thread that starts once a
    query leaves the interpreter free (`querying`); the returned function waits for it and gives the
    revision (None outside a repository)."""
    import threading

    from funnelcheck.pipeline.project import head_revision

    answer: list = [None]

    def work() -> None:
        querying.wait()
        try:
            import funnelcheck.pipeline.priors  # noqa: F401  (SQLAlchemy, the store's tables)
            import funnelcheck.pipeline.store  # noqa: F401
        except Exception:  # noqa: BLE001  the main thread imports them again and reports (require_extra)
            pass
        answer[0] = head_revision(base)

    worker = threading.Thread(target=work, name="funnelcheck-monitor-imports", daemon=True)
    worker.start()

    def result():
        querying.set()  # no DuckDB query ran (another database, or none): the work starts now
        worker.join()
        return answer[0]

    return result


def _priors(pipe, store):
    """The live prior of each parameter (prior sources, cached in the store, with fallback)."""
    from funnelcheck.pipeline.priors import live_priors

    return live_priors(pipe.loaded.registry, pipe.connections, pipe.project.base, store)


def _alerts(result, store, config: dict) -> None:
    """Queue and send alerts; a failure is a warning line and never changes the exit code."""
    from funnelcheck.pipeline import alerts
    from funnelcheck.render import alerts as render_alerts

    try:
        sys.stderr.write(render_alerts.text(alerts.dispatch(result, store, config)))
    except Exception as exc:  # the results are stored and will be printed whatever happened here
        print(f"funnelcheck monitor: warning: alerts failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _render(result, fmt: str, render) -> None:
    if fmt == "json":
        print_json(result.to_json())
    elif fmt == "github":
        sys.stdout.write(render.github_annotations(result))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(render.step_summary(result))
        else:
            sys.stdout.write(render.step_summary(result))
    else:
        sys.stdout.write(render.text(result, color=sys.stdout.isatty() and not os.environ.get("NO_COLOR")))
