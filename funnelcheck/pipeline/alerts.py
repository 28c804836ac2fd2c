"""Alerts (SPEC 8.4): Slack, a generic JSON webhook and email, through an outbox table.

A parameter alerts when it enters amber or red, or worsens (amber → red); not again while it
stays there unless `renotify_days` passed since its last alert; a recovery to green notifies once
when `notify_recovery` is true. Deciding and queueing happen in one transaction with the alert
state, so a crash loses nothing. Each queued message is then sent with bounded retries; a
message is marked sent only after the server accepted it, a failed one stays pending and goes
out with the next run, and a claim on the row keeps two runs at once from sending it twice.
"""
from __future__ import annotations

import json
import os
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage

import sqlalchemy as sa

from funnelcheck.pipeline.httpclient import HttpFailure, call
from funnelcheck.pipeline.priors import ensure_tables
from funnelcheck.pipeline.result import SEVERITY, MonitorResult, ParameterCheck
from funnelcheck.pipeline.stats import AMBER, GREEN, RED
from funnelcheck.pipeline.store import Store, metadata

CHANNELS = ("slack", "webhook", "email")
SETTINGS = ("renotify_days", "notify_recovery")
ALERT, RECOVERY, REMINDER, TEST = "alert", "recovery", "reminder", "test"
ATTEMPTS = 3
CLAIM_FOR = timedelta(minutes=10)

alert_state = sa.Table(
    "alert_state", metadata,
    sa.Column("param_id", sa.String(200), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # the last judged status (green/amber/red)
    sa.Column("notified_status", sa.String(20)),
    sa.Column("notified_on", sa.Date),
)

alert_outbox = sa.Table(
    "alert_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("param_id", sa.String(200), nullable=False),
    sa.Column("run_date", sa.Date, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("channel", "param_id", "run_date", "kind", name="uq_alert_outbox"),
)


class AlertFailure(Exception):
    """A channel could not deliver; the message is one line."""


@dataclass(frozen=True)
class Delivery:
    """One outbox message's fate in this run."""

    channel: str
    param_id: str
    kind: str
    message: str
    sent: bool
    attempts: int
    error: str | None = None


@dataclass
class AlertReport:
    """What alerting did in one run: queued, sent, still pending, and configuration problems."""

    queued: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.sent]

    def to_json(self) -> dict:
        return {"queued": self.queued, "problems": self.problems,
                "deliveries": [d.__dict__ for d in self.deliveries]}


def percent(x: float) -> str:
    """55% or 42.3%: one decimal, without a trailing .0."""
    text = f"{100 * x:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def alert_message(c: ParameterCheck, kind: str = ALERT) -> str:
    """`e.checkout.p.mean diverging: Expected 55%, Observed 42% (3.2σ), n=892` (or `... recovered: ...`)."""
    verb = "recovered" if kind == RECOVERY else "diverging"
    return (f"{c.reference} {verb}: Expected {percent(c.prior.mean)}, Observed {percent(c.observed.rate)} "
            f"({abs(c.z):.1f}σ), n={c.observed.n}")


def decide(c: ParameterCheck, before: dict | None, run_date: date, renotify_days: int | None,
           notify_recovery: bool) -> str | None:
    """The kind of message this check calls for, given the parameter's alert state, or None."""
    was = (before or {}).get("status")
    if c.status in (AMBER, RED):
        if was not in (AMBER, RED):
            return ALERT
        notified = (before or {}).get("notified_status")
        if notified not in (AMBER, RED) or SEVERITY[c.status] > SEVERITY[notified]:
            return ALERT
        on = (before or {}).get("notified_on")
        if renotify_days and on is not None and (run_date - _as_date(on)).days >= renotify_days:
            return REMINDER
        return None
    if c.status == GREEN and was in (AMBER, RED) and notify_recovery:
        return RECOVERY
    return None


def configured(config: dict) -> tuple[dict, list[str]]:
    """The channels of `alerts` in funnelcheck.yaml, and a line per unknown one."""
    section = (config or {}).get("alerts") or {}
    problems = [f"funnelcheck.yaml: alerts.{name}: unknown channel '{name}' (known: {', '.join(CHANNELS)}); ignored"
                for name in section if name not in CHANNELS + SETTINGS]
    return {k: v for k, v in section.items() if k in CHANNELS and isinstance(v, dict)}, problems


def enqueue(result: MonitorResult, store: Store, config: dict, now: datetime | None = None) -> int:
    """Decide every parameter's alert against its state and queue one message per channel (one transaction)."""
    ensure_tables(store, alert_state, alert_outbox)
    channels, _ = configured(config)
    section = (config or {}).get("alerts") or {}
    renotify, recovery = section.get("renotify_days"), bool(section.get("notify_recovery"))
    now = now or datetime.now(timezone.utc)
    queued = 0
    with store.engine.begin() as conn:
        state = {r.param_id: dict(r._mapping) for r in conn.execute(sa.select(alert_state))}
        rows = []
        for c in result.parameters:
            if c.status not in (GREEN, AMBER, RED):
                continue  # no judgement today: the state stays as it was
            before = state.get(c.id)
            kind = decide(c, before, result.as_of, renotify, recovery)
            row = {"param_id": c.id, "status": c.status,
                   "notified_status": (before or {}).get("notified_status"),
                   "notified_on": (before or {}).get("notified_on")}
            if kind is not None and channels:
                queued += _queue(conn, c, kind, result.as_of, now, channels)
                row.update(notified_status=c.status if kind != RECOVERY else None, notified_on=result.as_of)
            rows.append(row)
        if rows:
            Store._upsert(conn, alert_state, rows, ("param_id",))
    return queued


def _queue(conn, c: ParameterCheck, kind: str, run_date: date, now: datetime, channels: dict) -> int:
    message = alert_message(c, kind)
    payload = json.dumps({"kind": kind, "message": message, "run_date": run_date.isoformat(),
                          "parameter": c.to_json()})
    existing = {r.channel for r in conn.execute(sa.select(alert_outbox.c.channel).where(
        alert_outbox.c.param_id == c.id, alert_outbox.c.run_date == run_date, alert_outbox.c.kind == kind))}
    rows = [{"channel": ch, "param_id": c.id, "run_date": run_date, "kind": kind, "status": c.status,
             "message": message, "payload": payload, "created_at": now, "attempts": 0}
            for ch in channels if ch not in existing]
    if rows:
        conn.execute(alert_outbox.insert(), rows)
    return len(rows)


def deliver(store: Store, config: dict, env=None, timeout: float = 10.0, backoff: float = 1.0,
            now: datetime | None = None) -> list[Delivery]:
    """Send every pending outbox message (this run's and earlier runs' failures), marking each one sent
    only after its server accepted it."""
    ensure_tables(store, alert_state, alert_outbox)
    channels, _ = configured(config)
    env = os.environ if env is None else env
    out = []
    with store.engine.connect() as conn:
        pending = conn.execute(sa.select(alert_outbox).where(alert_outbox.c.sent_at.is_(None))
                               .order_by(alert_outbox.c.id)).all()
    for row in pending:
        if row.channel not in channels:
            out.append(Delivery(row.channel, row.param_id, row.kind, row.message, False, row.attempts,
                                f"channel {row.channel} is no longer configured; the message stays pending"))
            continue
        stamp = now or datetime.now(timezone.utc)
        if not _claim(store, row.id, stamp):
            continue  # another run is sending it
        error, tries = None, 0
        for tries in range(1, ATTEMPTS + 1):
            try:
                send(row.channel, channels[row.channel], row.message, json.loads(row.payload), env, timeout)
                error = None
                break
            except AlertFailure as exc:
                error = str(exc)
                if tries < ATTEMPTS:
                    time.sleep(backoff * 2 ** (tries - 1))
        _settle(store, row.id, row.attempts + tries, error, now or datetime.now(timezone.utc))
        out.append(Delivery(row.channel, row.param_id, row.kind, row.message, error is None, row.attempts + tries, error))
    return out


def _claim(store: Store, row_id: int, now: datetime) -> bool:
    stale = now - CLAIM_FOR
    with store.engine.begin() as conn:
        done = conn.execute(alert_outbox.update().where(
            alert_outbox.c.id == row_id, alert_outbox.c.sent_at.is_(None),
            sa.or_(alert_outbox.c.claimed_at.is_(None), alert_outbox.c.claimed_at < stale)).values(claimed_at=now))
        return done.rowcount == 1


def _settle(store: Store, row_id: int, attempts: int, error: str | None, now: datetime) -> None:
    values = {"attempts": attempts, "last_error": error, "claimed_at": None}
    if error is None:
        values["sent_at"] = now
    with store.engine.begin() as conn:
        conn.execute(alert_outbox.update().where(alert_outbox.c.id == row_id).values(**values))


def dispatch(result: MonitorResult, store: Store, config: dict, env=None, timeout: float = 10.0,
             backoff: float = 1.0) -> AlertReport:
    """The monitor's alert step: queue what this run calls for, then send everything pending.
    Never raises for a channel's failure: failures are in the report and stay in the outbox."""
    _, problems = configured(config)
    report = AlertReport(problems=problems)
    try:
        report.queued = enqueue(result, store, config)
        report.deliveries = deliver(store, config, env, timeout, backoff)
    except sa.exc.SQLAlchemyError as exc:
        from funnelcheck.pipeline.connections import one_line

        report.problems.append(f"alerts: the outbox in the persistence database failed: {one_line(exc)}")
    return report


def send_test(config: dict, env=None, timeout: float = 10.0) -> AlertReport:
    """`alerts test`: one message straight to every configured channel (no outbox, no state)."""
    channels, problems = configured(config)
    report = AlertReport(problems=problems)
    if not channels:
        report.problems.append("funnelcheck.yaml configures no alert channel (alerts: slack, webhook, email)")
    message = "funnelcheck test alert: this channel receives funnelcheck's alerts"
    for name, spec in channels.items():
        try:
            send(name, spec, message, {"kind": TEST, "message": message}, os.environ if env is None else env, timeout)
            report.deliveries.append(Delivery(name, "-", TEST, message, True, 1))
        except AlertFailure as exc:
            report.deliveries.append(Delivery(name, "-", TEST, message, False, 1, str(exc)))
    return report


def send(channel: str, spec: dict, message: str, payload: dict, env, timeout: float) -> None:
    """Deliver one message on one channel; AlertFailure with one line when the server did not accept it."""
    if channel == "slack":
        _post(_from_env(spec, "webhook_url_env", "slack", env), {"text": message}, timeout, "Slack")
    elif channel == "webhook":
        _post(_from_env(spec, "url_env", "webhook", env), payload, timeout, "webhook")
    elif channel == "email":
        _email(spec, message, payload, env, timeout)
    else:
        raise AlertFailure(f"unknown channel '{channel}'")


def _from_env(spec: dict, key: str, channel: str, env) -> str:
    name = spec.get(key)
    if not name and spec.get(key[:-4]):
        raise AlertFailure(f"alerts.{channel}.{key[:-4]} is written inline: secrets only through the environment; "
                           f"name the variable with {key}")
    if not name:
        raise AlertFailure(f"alerts.{channel}.{key} is not set (name the environment variable holding the URL)")
    value = env.get(name)
    if not value:
        raise AlertFailure(f"{channel}: environment variable {name} is not set")
    return value


def _post(url: str, body: dict, timeout: float, what: str) -> None:
    try:
        call("POST", url, json.dumps(body).encode(), {"Content-Type": "application/json"}, timeout)
    except HttpFailure as exc:
        raise AlertFailure(f"{what}: {exc}") from None


def _email(spec: dict, message: str, payload: dict, env, timeout: float) -> None:
    host, port = spec.get("smtp_host"), int(spec.get("smtp_port") or 25)
    to = spec.get("to") or []
    to = [to] if isinstance(to, str) else list(to)
    if not host or not spec.get("from") or not to:
        raise AlertFailure("email: alerts.email needs smtp_host, from and to")
    mail = EmailMessage()
    status = (payload.get("parameter") or {}).get("status")
    mail["Subject"] = f"[funnelcheck] {status.upper() + ' ' if status else ''}{message.split(':')[0]}"
    mail["From"], mail["To"] = spec["from"], ", ".join(to)
    mail.set_content(message + "\n")
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            if spec.get("starttls"):
                smtp.starttls(context=ssl.create_default_context())
            user = env.get(spec["username_env"]) if spec.get("username_env") else None
            if user:
                smtp.login(user, env.get(spec.get("password_env") or "", "") or "")
            smtp.send_message(mail)  # raises when every recipient is refused; some accepted counts as sent
    except smtplib.SMTPRecipientsRefused as exc:
        codes = "; ".join(f"{r} ({c} {m.decode(errors='replace') if isinstance(m, bytes) else m})"
                          for r, (c, m) in exc.recipients.items())
        raise AlertFailure(f"email: {host}:{port} refused every recipient: {codes}") from None
    except smtplib.SMTPException as exc:
        raise AlertFailure(f"email: {host}:{port}: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise AlertFailure(f"email: cannot reach {host}:{port}: {exc}") from None


def _as_date(value) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])
