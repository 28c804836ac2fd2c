"""Renderers: turn results into text, JSON, Markdown, GitHub annotations. They never compute."""
from __future__ import annotations

from funnelcheck.engine.statespace import OTHER


def segment_label(context: dict, members: dict, sep: str = " ") -> str:
    """`channel=google device=mobile utm_source=adwords|none`: a '*' class lists the values it stands for."""
    parts = [f"{key}={'|'.join(members.get(key, ())) or 'other' if value == OTHER else value}"
             for key, value in context.items()]
    return sep.join(parts) or "all traffic"
