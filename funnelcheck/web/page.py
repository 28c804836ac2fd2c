"""Render a `Dashboard` as one self-contained HTML file (docs/dashboard.md). Renders, never computes.

The page is a small shell: the data as JSON in a `<script type="application/json">` block, the
hand-written scripts and style from `web/static/` inline, and a Content-Security-Policy that
allows exactly those two inline blocks (by hash), no inline event handlers, no remote loads.
Every string from the registry or the database reaches the page only inside the JSON block,
escaped so that nothing in it can end the block, and the script inserts it as text.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from funnelcheck import __version__
from funnelcheck.web.dashboard import Board, Dashboard, GraphPanel, ParameterHistory

STATIC = Path(__file__).resolve().parent / "static"
# The page's script, in load order: element helpers, the re-weighting arithmetic, the board,
# history, then the page itself. Inlined as one block (one hash in the policy).
SCRIPTS = ("dom.js", "mix.js", "board.js", "history.js", "dashboard.js")


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """A file of web/static/ (shipped inside the package)."""
    return (STATIC / name).read_text(encoding="utf-8")


def panel_json(panel: GraphPanel) -> dict:
    """What the what-if panel of one graph re-weights; also the body `serve` answers an override with.

    Segments keep the engine's order; `draws` is their Monte Carlo draws, row after row, as
    little-endian float64 in base64 (exact, and a third of the size of decimal text).
    """
    result = panel.result
    if result is None:
        return {"id": panel.id, "name": panel.name, "description": panel.description, "error": panel.error}
    node_ids = [n.id for n in panel.nodes]
    edge_ids = [e.id for e in panel.edges]
    segments = []
    for seg in result.segments:
        classes = [[key, value, seg.members.get(key, [value])] for key, value in seg.context.items()]
        segments.append({"classes": classes, "weight": seg.weight, "conversion": seg.conversion,
                         "p05": seg.summary.p05 if seg.summary else None,
                         "p95": seg.summary.p95 if seg.summary else None,
                         "visits": [seg.visits[n] for n in node_ids], "flows": [seg.flows[e] for e in edge_ids]})
    draws = np.stack([s.draws for s in result.segments]) if result.segments else np.zeros((0, result.samples))
    return {
        "id": panel.id, "name": panel.name, "description": panel.description,
        "contexts": [{"id": c.id, "name": c.name, "used": c.used,
                      "values": [{"id": v, "label": label, "share": share} for v, label, share in c.values]}
                     for c in panel.contexts],
        "nodes": [n._asdict() for n in panel.nodes], "edges": [e._asdict() for e in panel.edges],
        "samples": result.samples, "seed": result.seed,
        "conversion": result.conversion.to_json(),
        "segments": segments,
        "draws": base64.b64encode(np.ascontiguousarray(draws, dtype="<f8").tobytes()).decode("ascii"),
        "overrides": [{"reference": o.reference, "parameter": o.parameter, "mean": o.mean, "stdev": o.stdev}
                      for o in panel.overrides],
        "applied": [{"reference": o.reference, "value": o.value} for o in result.overrides],
    }


def _board_json(board: Board) -> dict:
    return {"run_date": board.run_date, "note": board.note,
            "rows": [{"param_id": r.param_id, "reference": r.reference, "expected": r.expected,
                      "observed": r.observed, "n": r.n, "k": r.k, "z": r.z, "status": r.status,
                      "message": r.message, "window": r.window, "z_history": list(r.z_history)}
                     for r in board.rows]}


def _history_json(history: list[ParameterHistory] | None) -> list | None:
    if history is None:
        return None
    return [{"param_id": h.param_id, "points": [dataclasses.asdict(p) for p in h.points]} for h in history]


def dashboard_json(dashboard: Dashboard, serve: bool = False) -> dict:
    """The whole page's data, as embedded in it."""
    return {"title": dashboard.title, "generated": dashboard.generated, "version": __version__, "serve": serve,
            "graphs": [panel_json(p) for p in dashboard.graphs], "board": _board_json(dashboard.board),
            "history": _history_json(dashboard.history), "descriptions": dashboard.descriptions}


def script_json(data) -> str:
    """JSON that is safe inside <script type="application/json">: no '<', '>' or '&' survives as such,
    so `</script>` or `<!--` in a description cannot end or bend the block."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(script: str, style: str, serve: bool) -> str:
    """Only the page's own inline script and style run (by hash); nothing loads from anywhere;
    in `serve` the script may call back to the page's own origin."""
    return "; ".join([
        "default-src 'none'", f"script-src {_sha256(script)}", f"style-src {_sha256(style)}", "img-src data:",
        "connect-src 'self'" if serve else "connect-src 'none'",
        "base-uri 'none'", "form-action 'none'",
    ])


def render_page(dashboard: Dashboard, serve: bool = False) -> str:
    """The one HTML file: shell, inline style and script, and the data block."""
    script, style = "\n".join(asset(name) for name in SCRIPTS), asset("dashboard.css")
    csp = content_security_policy(script, style, serve)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{html.escape(csp)}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"generator\" content=\"funnelcheck {html.escape(__version__)}\">\n"
        f"<title>{html.escape(dashboard.title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        "<div id=\"app\"><noscript>The funnelcheck dashboard needs JavaScript.</noscript></div>\n"
        f"<script type=\"application/json\" id=\"funnelcheck-data\">{script_json(dashboard_json(dashboard, serve))}</script>\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )
