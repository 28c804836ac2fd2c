"""Render what alerting did: one line per message sent or still pending. Renderers never compute."""
from __future__ import annotations

from funnelcheck.pipeline.alerts import AlertReport


def text(report: AlertReport, command: str = "monitor") -> str:
    """`alert sent (webhook): ...` / `alert pending (slack): ... : why` lines, problems first."""
    out = [f"funnelcheck {command}: warning: {p}" for p in report.problems]
    for d in report.deliveries:
        if d.sent:
            out.append(f"funnelcheck {command}: {d.kind} sent ({d.channel}): {d.message}")
        else:
            out.append(f"funnelcheck {command}: warning: {d.kind} not sent ({d.channel}), kept in the outbox for the "
                       f"next run after {d.attempts} attempt{'s' if d.attempts != 1 else ''}: {d.error}")
    return "".join(line + "\n" for line in out)


def channel_lines(report: AlertReport) -> str:
    """`alerts test`: one line per channel."""
    out = [f"funnelcheck alerts test: warning: {p}" for p in report.problems]
    for d in report.deliveries:
        out.append(f"  {d.channel}: {'sent' if d.sent else 'FAILED: ' + str(d.error)}")
    return "".join(line + "\n" for line in out)
