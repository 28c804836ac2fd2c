"""Alerts through the outbox: dedupe over simulated days, renotify, recovery, failed sends kept and
sent by the next run exactly once, and every channel against a real server on 127.0.0.1."""
from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelcheck.pipeline.alerts import alert_message, alert_outbox, dispatch, percent, send_test
from funnelcheck.pipeline.result import MonitorResult, Observed, ParameterCheck, PriorUsed
from funnelcheck.pipeline.store import open_store
from tests.fakeservers import hooks  # noqa: F401  (fixture)

DAY0 = date(2026, 11, 1)
REF = "e.checkout.p.mean"


def check(status: str, n: int = 892, k: int = 375, mean: float = 0.55, pid: str = "checkout-base") -> ParameterCheck:
    rate = k / n
    z = (rate - mean) / math.sqrt(rate * (1 - rate) / n)
    prior = PriorUsed(mean, 0.05, 54.45, 44.55)
    return ParameterCheck(pid, REF, status, "", prior, Observed(n, k), z)


def run(store, day: int, statuses, config, env, **kw):
    checks = [check(s, pid=f"p{i}") if isinstance(s, str) else s for i, s in enumerate(statuses)]
    result = MonitorResult(datetime(2026, 11, 1, 6, tzinfo=timezone.utc), DAY0 + timedelta(days=day), checks)
    return dispatch(result, store, config, env=env, timeout=kw.pop("timeout", 2.0), backoff=0.0)


def postgres_schema():
    """A fresh PostgreSQL schema at 127.0.0.1:5432 (db `test`), dropped afterwards; under CI=true an
    unreachable server fails the test, elsewhere it skips with the reason."""
    try:
        import psycopg

        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3,
                                autocommit=True)
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    schema = f"fc_alerts_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The persistence database on SQLite and on PostgreSQL: alert state and outbox behave the same."""
    if request.param == "sqlite":
        s = open_store("sqlite:///state.db", tmp_path)
        yield s
        s.close()
        return
    for url in postgres_schema():
        s = open_store(url, tmp_path)
        yield s
        s.close()


def webhook_config(**extra):
    return {"alerts": {"webhook": {"url_env": "HOOK"}, **extra}}


def kinds(hooks):
    return [(json.loads(r.body)["kind"], json.loads(r.body)["parameter"]["status"]) for r in hooks.received]


def test_the_message_is_the_seeds_shape():
    c = ParameterCheck("checkout-base", "checkout.p.mean", "red", "", PriorUsed(0.55, 0.05, 1, 1),
                       Observed(892, 375), -3.2)
    assert alert_message(c) == "checkout.p.mean diverging: Expected 55%, Observed 42% (3.2σ), n=892"
    assert percent(0.4234) == "42.3%" and percent(0.5) == "50%"


def test_dedupe_green_amber_amber_red_red_green(store, hooks):
    env = {"HOOK": hooks.url + "/hook"}
    config = webhook_config(notify_recovery=True)
    sent_per_day = []
    for day, status in enumerate(["green", "amber", "amber", "red", "red", "green"]):
        before = len(hooks.received)
        report = run(store, day, [status], config, env)
        assert not report.failed
        sent_per_day.append(len(hooks.received) - before)
    assert sent_per_day == [0, 1, 0, 1, 0, 1]
    assert kinds(hooks) == [("alert", "amber"), ("alert", "red"), ("recovery", "green")]
    body = json.loads(hooks.received[1].body)
    expected = check("red")
    assert body["message"] == alert_message(expected)
    assert body["parameter"]["observed"] == {"n": 892, "k": 375, "rate": 375 / 892}
    assert body["message"].endswith(f"({abs(expected.z):.1f}σ), n=892")


def test_no_recovery_message_unless_asked_and_a_rerun_of_the_same_day_sends_nothing(store, hooks):
    env = {"HOOK": hooks.url + "/hook"}
    for day, status in enumerate(["red", "red", "green"]):
        run(store, day, [status], webhook_config(), env)
    run(store, 0, ["red"], webhook_config(), env)  # the same date again
    assert kinds(hooks) == [("alert", "red")]


def test_renotify_after_n_days_while_it_stays_red(store, hooks):
    env = {"HOOK": hooks.url + "/hook"}
    days_sent = []
    for day in range(7):
        before = len(hooks.received)
        run(store, day, ["red"], webhook_config(renotify_days=3), env)
        if len(hooks.received) > before:
            days_sent.append(day)
    assert days_sent == [0, 3, 6]
    assert [k for k, _ in kinds(hooks)] == ["alert", "reminder", "reminder"]


def test_insufficient_or_error_days_keep_the_state(store, hooks):
    env = {"HOOK": hooks.url + "/hook"}
    for day, status in enumerate(["amber", "insufficient", "error", "amber"]):
        run(store, day, [status], webhook_config(), env)
    assert len(hooks.received) == 1


@pytest.mark.parametrize("failure, says", [
    (500, "answered 500"),
    ("redirect", "redirects are not followed"),
    ("hang", "did not answer within 0.5 s"),
])
def test_a_failed_send_stays_pending_and_goes_exactly_once_with_the_next_run(store, hooks, failure, says):
    env = {"HOOK": hooks.url + "/hook"}
    hooks.answers = [failure] * 3
    hooks.hang_seconds = 1.5
    report = run(store, 0, ["red"], webhook_config(), env, timeout=0.5)
    assert report.queued == 1 and len(report.failed) == 1 and says in report.failed[0].error
    assert report.failed[0].attempts == 3 and hooks.received == []
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(alert_outbox)).one()
    assert row.sent_at is None and says in row.last_error
    report = run(store, 1, ["red"], webhook_config(), env)  # still red: nothing new, the pending one goes
    assert report.queued == 0 and [d.sent for d in report.deliveries] == [True]
    run(store, 2, ["red"], webhook_config(), env)
    assert kinds(hooks) == [("alert", "red")]


def test_unreachable_channels_and_an_unknown_one_do_not_stop_the_others(store, hooks):
    env = {"HOOK": hooks.url + "/hook", "SLACK": "http://127.0.0.1:9/slack"}
    config = {"alerts": {"webhook": {"url_env": "HOOK"}, "slack": {"webhook_url_env": "SLACK"},
                         "teams": {"url_env": "X"}}}
    report = run(store, 0, ["amber"], config, env)
    assert any("unknown channel 'teams'" in p for p in report.problems)
    sent = {d.channel: d for d in report.deliveries}
    assert sent["webhook"].sent and not sent["slack"].sent and "cannot reach http://127.0.0.1:9/slack" in sent["slack"].error


def test_slack_gets_the_text(store, hooks):
    report = run(store, 0, ["red"], {"alerts": {"slack": {"webhook_url_env": "SLACK"}}}, {"SLACK": hooks.url + "/s"})
    assert report.deliveries[0].sent
    assert json.loads(hooks.received[0].body) == {"text": alert_message(check("red"))}


def test_an_unset_environment_variable_is_a_pending_failure(store):
    report = run(store, 0, ["red"], {"alerts": {"slack": {"webhook_url_env": "NOPE"}}}, {})
    assert report.failed[0].error == "slack: environment variable NOPE is not set"


# --- email -----------------------------------------------------------------------------------

class Mailbox:
    def __init__(self):
        self.messages = []
        self.refuse = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 Message accepted"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


def test_email_is_sent_and_a_refused_recipient_keeps_it_pending(store, smtp):
    config = {"alerts": {"email": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "fc@example.com",
                                   "to": ["models@example.com"]}}}
    smtp.refuse.add("models@example.com")
    report = run(store, 0, ["red"], config, {})
    assert not report.deliveries[0].sent and "refused every recipient" in report.deliveries[0].error
    assert "550" in report.deliveries[0].error and smtp.messages == []
    smtp.refuse.clear()
    report = run(store, 1, ["red"], config, {})
    assert [d.sent for d in report.deliveries] == [True]
    (to, content), = smtp.messages
    assert to == ["models@example.com"] and alert_message(check("red")) in content
    assert f"Subject: [funnelcheck] RED {REF} diverging" in content


def test_unreachable_smtp_is_one_line(store):
    config = {"alerts": {"email": {"smtp_host": "127.0.0.1", "smtp_port": 9, "from": "a@b.c", "to": "d@e.f"}}}
    report = run(store, 0, ["red"], config, {})
    assert report.failed[0].error.startswith("email: cannot reach 127.0.0.1:9")


def test_alerts_test_reaches_every_channel(hooks, smtp):
    config = {"alerts": {"webhook": {"url_env": "HOOK"}, "slack": {"webhook_url_env": "SLACK"},
                         "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "a@b.c", "to": ["x@y.z"]}}}
    report = send_test(config, {"HOOK": hooks.url + "/h", "SLACK": hooks.url + "/s"}, timeout=2.0)
    assert sorted(d.channel for d in report.deliveries if d.sent) == ["email", "slack", "webhook"]
    assert len(hooks.received) == 2 and len(smtp.messages) == 1


def expected_alerts(statuses: list[str]) -> int:
    """An independent count: per episode (a stretch of amber/red days, insufficient/error days ignored),
    one alert on entering it, plus one when it entered amber and later turned red."""
    judged = [s for s in statuses if s in ("green", "amber", "red")]
    count, i = 0, 0
    while i < len(judged):
        if judged[i] == "green":
            i += 1
            continue
        j = i
        while j < len(judged) and judged[j] != "green":
            j += 1
        episode = judged[i:j]
        count += 1 + (episode[0] == "amber" and "red" in episode)
        i = j
    return count


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["green", "amber", "red", "insufficient", "error"]), max_size=12))
def test_alerts_over_any_sequence_of_days_match_the_episode_count(statuses):
    from funnelcheck.pipeline.alerts import enqueue

    with tempfile.TemporaryDirectory() as tmp:
        s = open_store("sqlite:///state.db", Path(tmp))
        for day, status in enumerate(statuses):
            enqueue(MonitorResult(datetime(2026, 11, 1, tzinfo=timezone.utc), DAY0 + timedelta(days=day),
                                  [check(status)]), s, webhook_config())
        with s.engine.connect() as conn:
            queued = conn.execute(sa.select(sa.func.count()).select_from(alert_outbox)).scalar()
        s.close()
    assert queued == expected_alerts(statuses)


def test_email_logs_in_with_credentials_from_the_environment(store):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        login, password = (v.decode() if isinstance(v, bytes) else v for v in (auth_data.login, auth_data.password))
        seen.append((login, password))
        return AuthResult(success=password == "s3cret")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        config = {"alerts": {"email": {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "fc@example.com",
                                       "to": ["models@example.com"], "username_env": "U", "password_env": "P"}}}
        report = run(store, 0, ["red"], config, {"U": "fc", "P": "wrong"})
        assert not report.deliveries[0].sent and report.deliveries[0].error.startswith("email: 127.0.0.1")
        assert box.messages == []
        report = run(store, 1, ["red"], config, {"U": "fc", "P": "s3cret"})
        assert report.deliveries[0].sent and len(box.messages) == 1
        assert seen[0] == ("fc", "wrong") and seen[-1] == ("fc", "s3cret")
    finally:
        controller.stop()
