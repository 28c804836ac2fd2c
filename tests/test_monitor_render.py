"""The monitor renderers: worst first, colour only when asked, GitHub output escaped."""
from __future__ import annotations

from datetime import date, datetime, timezone

from funnelcheck.pipeline.result import MonitorResult, Observed, ParameterCheck, PriorUsed
from funnelcheck.render import monitor as render


def result() -> MonitorResult:
    prior = PriorUsed(0.32, 0.06, 19.0, 40.4)
    checks = [
        ParameterCheck("ok", "e.signup.p.mean", "green", "fine", prior, Observed(900, 290), 0.3,
                       file="registry/parameters/ok.yaml", previous_z=0.1, previous_status="green"),
        ParameterCheck("bad", "e.signup.context(channel='a|b').p.mean", "red", "Expected 32.0%, observed 45.3% (+3.3σ)",
                       prior, Observed(150, 68), 3.28, file="registry/parameters/x,y.yaml", previous_status="amber"),
        ParameterCheck("meh", "e.checkout.p.mean", "amber", "m", prior, Observed(500, 185), -2.2,
                       file="registry/parameters/meh.yaml"),
        ParameterCheck("broken", "e.view.p.mean", "error", "registry/parameters/b.yaml:5:3: observation_source.query: boom"),
    ]
    return MonitorResult(datetime(2026, 11, 29, 6, tzinfo=timezone.utc), date(2026, 11, 29), checks)


def test_text_is_worst_first_with_changes():
    out = render.text(result())
    rows = [line for line in out.splitlines() if line.startswith("  ") and line.split()[0].isupper()]
    assert [r.split()[0] for r in rows] == ["RED", "AMBER", "ERROR", "GREEN"]
    assert "was amber" in rows[0] and rows[1].rstrip().endswith("new") and "+0.20σ" in rows[3]
    assert "45.3%" in rows[0] and "+3.28" in rows[0]
    assert "broken: registry/parameters/b.yaml:5:3" in out
    assert "summary: 1 green, 1 amber, 1 red, 0 insufficient, 1 error" in out
    assert "\033[" not in out and "\033[31m" in render.text(result(), color=True)


def test_github_annotations_and_summary_are_escaped():
    notes = render.github_annotations(result()).splitlines()
    assert notes[0].startswith("::error file=registry/parameters/x%2Cy.yaml,title=funnelcheck monitor%3A bad red::")
    assert notes[1].startswith("::warning ") and notes[2].startswith("::error ") and len(notes) == 3
    summary = render.step_summary(result())
    assert "a\\|b" in summary and "| 🔴 red |" in summary


def test_fail_on():
    r = result()
    assert r.fails("red") and r.fails("amber") and not r.fails("never")
    green = MonitorResult(r.run_at, r.as_of, [r.parameters[0], r.parameters[3]])
    assert not green.fails("amber")
