"""Alerts: P1/P2 and overdue cases reach officers by email (a real local SMTP server) and the
console, routed by office hours, retried when the mail server fails, and never emailed with
anything the student wrote or who they are."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import update
from sqlmodel import col, select

from bot.alerts import (
    alerts_for,
    failed_notifications,
    mark_read,
    raising,
    retry_notification,
    run_alerts,
    unread_count,
)
from bot.alerts.routing import in_office_hours, next_opening
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import OfficeHoursSettings, Settings, load_settings
from bot.crud import audit, users
from bot.db import Database
from bot.errors import ConfigError
from bot.messages import InboundMessage
from bot.models import (
    Alert,
    AlertNotification,
    AuditEntry,
    Case,
    NotificationStatus,
)
from channels.base import Batch
from tests.channels.dovecot import require
from tests.conftest import message_line

OFFICERS = ["pc.ashworth@lancashire.police.uk", "pc.begum@lancashire.police.uk"]
CONTROL_ROOM = "control.room@lancashire.police.uk"
SENDER = "campusbot@lancashire.police.uk"
CONSOLE = "https://campusbot.lancashire.police.uk"
LONDON = "Europe/London"
TUESDAY_10AM = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # GMT in November: 10:00 in London
TUESDAY_10PM = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# What the student wrote and who they are: none of it may appear in any email.
RISK_TEXT = "Jess was threatened with a knife and her phone stolen outside Foster Court"
URGENT_TEXT = "there is a fight happening outside the SU help"
STUDENT_DETAILS = ("Jess", "knife", "Foster Court", "fight", "@student", "A Student", "user-")


@dataclass
class Received:
    recipients: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts; it can refuse on cue."""

    temporary_refusals: int = 0  # answer DATA with 451 this many times first
    unknown: frozenset[str] = frozenset()  # recipients refused with 550
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    silent_seconds: float = 0  # take the email, then wait this long before answering

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.unknown:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.silent_seconds:
            await asyncio.sleep(self.silent_seconds)
        if self.temporary_refusals:
            self.temporary_refusals -= 1
            self.refused += 1
            return "451 4.3.0 Mail server busy, try again later"
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Accepted"

    def raw(self) -> str:
        return "\n".join(r.message.as_string() for r in self.received)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server(inbox: Inbox, port: int, **options: Any) -> Iterator[Controller]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int) -> Any:
    """Settings loaded the way an operator writes them: config.yaml plus the environment."""
    import os

    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def make(smtp: dict[str, Any] | None = None, **alerts: Any) -> Settings:
        config = {
            "timezone": LONDON,
            "public_base_url": CONSOLE,
            "classifier": {"kind": "keywords"},
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "plain",
                "timeout_seconds": 5,
                "from_address": SENDER,
                **(smtp or {}),
            },
            "alerts": {
                "email": True,
                "on_duty": OFFICERS,
                "control_room": CONTROL_ROOM,
                "office_hours": {"days": ["mon", "tue", "wed", "thu", "fri"]},
                **alerts,
            },
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return load_settings(path)

    return make


def _app(db: Database, settings: Settings, at: datetime) -> App:
    return build(settings, clock=FixedClock(at), db=db)


def _clock(app: App) -> FixedClock:
    assert isinstance(app.clock, FixedClock)
    return app.clock


def _message(app: App, external_id: str, text: str, *, minutes_ago: int = 1) -> Case:
    """Run one message through the real pipeline; return the case it opened or joined."""
    received = app.clock.now() - timedelta(minutes=minutes_ago)
    line = message_line(external_id, text, received_at=received.isoformat())
    app.pipeline.run(Batch(messages=[InboundMessage.model_validate(line)]), source="replay")
    with app.db.session() as session:
        return session.exec(select(Case).where(Case.conversation_id == f"conv-{external_id}")).one()


def _notifications(app: App) -> list[AlertNotification]:
    with app.db.session() as session:
        return list(session.exec(select(AlertNotification).order_by(col(AlertNotification.id))))


def _actions(app: App, prefix: str = "alert.") -> list[str]:
    with app.db.session() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    return [e.action for e in entries if e.action.startswith(prefix)]


def _prose(email: EmailMessage) -> str:
    """The body with its line wrapping undone."""
    return " ".join(email.get_content().split())


def _assert_no_student_details(inbox: Inbox) -> None:
    raw = inbox.raw()
    for detail in STUDENT_DETAILS:
        assert detail not in raw, f"{detail!r} leaked into an alert email"


# -- new P1/P2 cases ---------------------------------------------------------------


def test_p1_case_emails_each_on_duty_officer_once_in_office_hours(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(), TUESDAY_10AM)
    case = _message(app, "1", RISK_TEXT)
    assert case.priority == "P1"
    inbox = Inbox()
    with smtp_server(inbox, port):
        report = run_alerts(app)
        again = run_alerts(app)
    assert (report.priority_alerts, report.emails_queued, report.sent) == (1, 2, 2)
    assert (again.priority_alerts, again.emails_queued, again.sent) == (0, 0, 0)
    assert sorted(r.recipients[0] for r in inbox.received) == sorted(OFFICERS)
    assert all(len(r.recipients) == 1 for r in inbox.received)
    email = inbox.received[0].message
    assert email["From"] == SENDER
    assert email["Subject"].strip() == f"[P1] Risk to life: {case.reference} on X (Twitter)"
    assert email["Auto-Submitted"] == "auto-generated" and email["Importance"] == "high"
    body = email.get_content()
    assert f"{CONSOLE}/cases/{case.id}" in body
    assert "Priority:   P1 (risk to life)" in body
    assert "Scenarios:  theft, violent crime" in body
    assert "Channel:    X (Twitter)" in body
    assert "Opened:     Tue 24 Nov 2026, 09:59 GMT" in body
    assert "SLA due:    Tue 24 Nov 2026, 10:14 GMT" in body
    assert "holds no message text and nothing that identifies the person" in _prose(email)
    assert max(len(line) for line in body.splitlines()) <= 72
    assert email["Content-Transfer-Encoding"] == "7bit"
    _assert_no_student_details(inbox)
    assert _actions(app) == ["alert.raised", "alert.email_sent", "alert.email_sent"]
    with app.db.session() as session:
        assert audit.verify(session).ok
        raised = session.exec(select(AuditEntry).where(AuditEntry.action == "alert.raised")).one()
    assert raised.detail["route"] == "on_duty" and raised.detail["reason"] == "priority_p1"


def test_out_of_hours_a_p2_case_goes_to_the_control_room_only(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(), TUESDAY_10PM)
    case = _message(app, "1", URGENT_TEXT)
    assert case.priority == "P2"
    inbox = Inbox()
    with smtp_server(inbox, port):
        report = run_alerts(app)
    assert report.sent == 1
    assert [r.recipients for r in inbox.received] == [[CONTROL_ROOM]]
    email = inbox.received[0].message
    assert email["Subject"].strip() == f"[P2] Urgent: {case.reference} on X (Twitter)"
    assert "outside the campus team's office hours" in _prose(email)
    _assert_no_student_details(inbox)


def test_a_p2_case_raised_to_p1_alerts_again_but_only_once(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(on_duty=OFFICERS[:1]), TUESDAY_10AM)
    _message(app, "1", URGENT_TEXT)
    inbox = Inbox()
    with smtp_server(inbox, port):
        run_alerts(app)
        line = message_line("2", RISK_TEXT, conversation_id="conv-1", author={"id": "user-1"})
        line["received_at"] = app.clock.now().isoformat()
        app.pipeline.run(Batch(messages=[InboundMessage.model_validate(line)]), source="replay")
        run_alerts(app)
        run_alerts(app)
    subjects = [r.message["Subject"].strip()[:4] for r in inbox.received]
    assert subjects == ["[P2]", "[P1]"]


def test_no_alert_for_p3_cases_or_once_someone_has_replied(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(), TUESDAY_10AM)
    _message(app, "1", "i want to report that someone stole my laptop")  # P3
    replied = _message(app, "2", URGENT_TEXT)
    with app.db.session() as session:
        session.execute(
            update(Case).where(col(Case.id) == replied.id).values(first_human_reply_at=TUESDAY_10AM)
        )
    inbox = Inbox()
    with smtp_server(inbox, port):
        report = run_alerts(app)
    assert (report.priority_alerts, report.sent, inbox.received) == (0, 0, [])


# -- failures: retried, never lost -------------------------------------------------


def test_mail_server_down_is_retried_later_and_nothing_is_lost(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(on_duty=OFFICERS[:1]), TUESDAY_10AM)
    case = _message(app, "1", RISK_TEXT)
    down = run_alerts(app)  # nothing listens on the port
    assert (down.sent, down.retrying, down.failed) == (0, 1, 0)
    [waiting] = _notifications(app)
    assert waiting.status == NotificationStatus.QUEUED and waiting.attempts == 1
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > TUESDAY_10AM
    assert "cannot use the mail server at 127.0.0.1" in (waiting.last_error or "")
    assert run_alerts(app).retrying == 0  # not due yet: no hammering a dead server
    inbox = Inbox()
    with smtp_server(inbox, port):
        _clock(app).advance(timedelta(minutes=1))
        back = run_alerts(app)
    assert back.sent == 1 and [r.recipients for r in inbox.received] == [OFFICERS[:1]]
    assert case.reference is not None and case.reference in inbox.received[0].message["Subject"]
    [sent] = _notifications(app)
    assert sent.status == NotificationStatus.SENT and sent.attempts == 2
    assert _actions(app) == ["alert.raised", "alert.email_retrying", "alert.email_sent"]
    with app.db.session() as session:
        retry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "alert.email_retrying")
        ).one()
    assert retry.detail["error"] == "ConnectionLost" and retry.detail["case_id"] == case.id


def test_a_451_reply_is_retried_and_the_email_then_delivered_once(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(on_duty=OFFICERS[:1]), TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    inbox = Inbox(temporary_refusals=1)
    with smtp_server(inbox, port):
        first = run_alerts(app)
        assert (first.sent, first.retrying, inbox.refused, inbox.received) == (0, 1, 1, [])
        [waiting] = _notifications(app)
        assert (waiting.last_error or "").startswith("message refused: 451")
        _clock(app).advance(timedelta(minutes=1))
        second = run_alerts(app)
        third = run_alerts(app)
    assert (second.sent, third.sent, len(inbox.received)) == (1, 0, 1)
    with app.db.session() as session:
        retry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "alert.email_retrying")
        ).one()
    assert retry.detail["error"] == "451"


def test_after_max_attempts_an_email_is_failed_kept_shown_and_can_be_resent(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(on_duty=OFFICERS[:1], max_attempts=2), TUESDAY_10AM)
    case = _message(app, "1", RISK_TEXT)
    run_alerts(app)
    _clock(app).advance(timedelta(minutes=1))
    given_up = run_alerts(app)
    assert (given_up.retrying, given_up.failed) == (0, 1)
    [failed] = _notifications(app)
    assert failed.status == NotificationStatus.FAILED and failed.attempts == 2
    assert (failed.last_error or "").startswith("gave up after 2 attempts")
    _clock(app).advance(timedelta(hours=1))
    assert run_alerts(app).sent == 0  # failed stays failed until a person acts
    with app.db.session() as session:
        shown = failed_notifications(session)
        assert [(f.id, f.case_reference, f.recipient) for f in shown] == [
            (failed.id, case.reference, OFFICERS[0])
        ]
        assert retry_notification(session, shown[0].id, by="sgt.hughes", at=app.clock.now())
        assert not retry_notification(session, shown[0].id, by="sgt.hughes", at=app.clock.now())
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert run_alerts(app).sent == 1
    assert len(inbox.received) == 1
    assert "alert.email_requeued" in _actions(app)


def test_a_server_silent_after_taking_the_email_gets_the_alert_again_later(
    db: Database, make_settings: Any, port: int
) -> None:
    """It may have delivered it; a second copy of an alert costs less than a lost one."""
    settings = make_settings(on_duty=OFFICERS[:1], smtp={"timeout_seconds": 1})
    app = _app(db, settings, TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    with smtp_server(Inbox(silent_seconds=3), port):
        report = run_alerts(app)
    assert (report.sent, report.retrying, report.failed) == (0, 1, 0)
    [waiting] = _notifications(app)
    assert waiting.status == NotificationStatus.QUEUED
    assert "may have been delivered" in (waiting.last_error or "")
    with app.db.session() as session:
        retry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "alert.email_retrying")
        ).one()
    assert retry.detail["error"] == "AnswerLost"


def test_a_refused_address_fails_at_once_and_the_control_room_gets_the_alert(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(on_duty=OFFICERS[:1]), TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    inbox = Inbox(unknown=frozenset(OFFICERS[:1]))
    with smtp_server(inbox, port):
        report = run_alerts(app)
        rerouted = run_alerts(app)
    assert (report.failed, report.rerouted) == (1, 1)
    assert rerouted.sent == 1 and [r.recipients for r in inbox.received] == [[CONTROL_ROOM]]
    statuses = {n.recipient: (n.status, n.attempts) for n in _notifications(app)}
    assert statuses == {OFFICERS[0]: ("failed", 1), CONTROL_ROOM: ("sent", 1)}


def test_an_email_left_sending_by_a_crash_is_sent_again(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(on_duty=OFFICERS[:1]), TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    run_alerts(app)  # server down: queued for a retry
    with app.db.session() as session:  # as if a worker died between claiming and sending
        session.execute(
            update(AlertNotification).values(
                status=NotificationStatus.SENDING, next_attempt_at=TUESDAY_10AM
            )
        )
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert run_alerts(app).sent == 0  # it may still be in flight
        _clock(app).advance(timedelta(minutes=11))
        report = run_alerts(app)
    assert (report.requeued_after_crash, report.sent, len(inbox.received)) == (1, 1, 1)


# -- SLA escalation ----------------------------------------------------------------


def test_a_case_past_its_sla_without_a_reply_escalates_once(
    db: Database, make_settings: Any, port: int
) -> None:
    app = _app(db, make_settings(), TUESDAY_10AM)
    case = _message(app, "1", URGENT_TEXT)  # P2: an hour to reply
    closed = _message(app, "2", "someone is following me near the library right now")
    inbox = Inbox()
    with smtp_server(inbox, port):
        run_alerts(app)
        with app.db.session() as session:
            session.execute(update(Case).where(col(Case.id) == closed.id).values(status="closed"))
        _clock(app).advance(timedelta(minutes=30))
        assert run_alerts(app).sla_escalations == 0
        _clock(app).advance(timedelta(minutes=31))
        overdue = run_alerts(app)
        _clock(app).advance(timedelta(hours=2))
        later = run_alerts(app)
    assert (overdue.sla_escalations, overdue.sent) == (1, 2)
    assert (later.sla_escalations, later.sent) == (0, 0)
    escalations = [r for r in inbox.received if "Overdue" in r.message["Subject"]]
    assert sorted(r.recipients[0] for r in escalations) == sorted(OFFICERS)
    subject = escalations[0].message["Subject"].strip()
    assert subject == f"[Overdue P2] {case.reference}: no reply, 2 min past SLA"
    assert "ESCALATION" in escalations[0].message.get_content()
    _assert_no_student_details(inbox)
    with app.db.session() as session:
        reloaded = session.get(Case, case.id)
        alerts = session.exec(select(Alert).where(Alert.case_id == case.id)).all()
    assert reloaded is not None and reloaded.priority == "P2"  # priority is the harm, not lateness
    assert sorted(a.reason for a in alerts) == ["priority_p2", "sla_breach"]


def test_an_overdue_p3_case_found_out_of_hours_waits_for_the_next_shift(
    db: Database, make_settings: Any, port: int
) -> None:
    saturday_night = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)
    app = _app(db, make_settings(), saturday_night)
    _message(app, "1", "i want to report that someone stole my laptop", minutes_ago=9 * 60)
    inbox = Inbox()
    with smtp_server(inbox, port):
        report = run_alerts(app)
        assert (report.sla_escalations, report.sent) == (1, 0)
        monday_opening = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        assert {n.next_attempt_at for n in _notifications(app)} == {monday_opening}
        _clock(app).advance(monday_opening - saturday_night - timedelta(minutes=1))
        assert run_alerts(app).sent == 0
        _clock(app).advance(timedelta(minutes=1))
        assert run_alerts(app).sent == 2
    assert sorted(r.recipients[0] for r in inbox.received) == sorted(OFFICERS)
    assert "held for the start of the shift" in _prose(inbox.received[0].message)


def test_a_stale_list_of_due_alerts_raises_nothing_twice(
    db: Database, make_settings: Any, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers that both saw a case as due: the unique constraint lets one raise it."""
    app = _app(db, make_settings(), TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    with app.db.session() as session:
        seen_by_both = raising._due(session, app.clock.now(), 500)
    assert len(seen_by_both) == 1
    first = run_alerts(app)
    monkeypatch.setattr(raising, "_due", lambda *_args: seen_by_both)
    second = run_alerts(app)
    assert (first.priority_alerts, first.emails_queued) == (1, 2)
    assert (second.priority_alerts, second.emails_queued) == (0, 0)
    assert len(_notifications(app)) == 2


# -- the console -------------------------------------------------------------------


def test_console_lists_unread_alerts_for_officers_and_none_for_analysts(
    db: Database, make_settings: Any
) -> None:
    app = _app(db, make_settings(email=False), TUESDAY_10AM)
    case = _message(app, "1", RISK_TEXT)
    report = run_alerts(app)
    assert (report.priority_alerts, report.emails_queued) == (1, 0)  # console only
    now = app.clock.now()
    with app.db.session() as session:
        officer = users.add(session, username="pc.ashworth", roles=["officer"], at=now, by="admin")
        analyst = users.add(session, username="analyst", roles=["analyst"], at=now, by="admin")
        [alert] = alerts_for(session, officer, now=now)
        assert (alert.case_id, alert.case_reference, alert.priority) == (
            case.id,
            case.reference,
            "P1",
        )
        assert alert.unread and alert.path == f"/cases/{case.id}" and alert.route == "on_duty"
        assert (alert.emails_sent, alert.emails_waiting, alert.emails_failed) == (0, 0, 0)
        assert unread_count(session, officer, now=now) == 1
        assert alerts_for(session, analyst, now=now) == []
        assert unread_count(session, analyst, now=now) == 0
        mark_read(session, officer, up_to=alert.id, at=now)
        mark_read(session, officer, up_to=0, at=now)  # never moves back
    later = now + timedelta(days=2)
    with app.db.session() as session:
        assert unread_count(session, officer, now=now) == 0
        [seen] = alerts_for(session, officer, now=now)
        assert not seen.unread
        assert alerts_for(session, officer, now=later) == []  # read, and no longer recent


# -- office hours, settings and TLS ------------------------------------------------


def test_office_hours_follow_london_time_weekdays_and_bank_holidays() -> None:
    from zoneinfo import ZoneInfo

    hours = OfficeHoursSettings.model_validate({"bank_holidays": ["2026-12-25"]})
    london = ZoneInfo(LONDON)
    summer_0730_utc = datetime(2026, 6, 2, 7, 30, tzinfo=UTC)  # 08:30 BST
    assert in_office_hours(summer_0730_utc, london, hours)
    assert not in_office_hours(datetime(2026, 12, 2, 7, 30, tzinfo=UTC), london, hours)
    assert not in_office_hours(datetime(2026, 12, 25, 10, 0, tzinfo=UTC), london, hours)
    assert not in_office_hours(datetime(2026, 11, 24, 18, 0, tzinfo=UTC), london, hours)
    christmas_eve_evening = datetime(2026, 12, 24, 19, 0, tzinfo=UTC)
    assert next_opening(christmas_eve_evening, london, hours) == datetime(
        2026, 12, 28, 8, 0, tzinfo=UTC
    )


def test_alert_settings_refuse_a_password_in_config_and_incomplete_email(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"must not hold secrets.*CAMPUSBOT_SMTP__PASSWORD"):
        make_settings(smtp={"user": "campusbot", "password": "hunter2-but-longer"})
    with pytest.raises(ConfigError, match="email alerts need control_room, on_duty"):
        make_settings(control_room=None, on_duty=[])
    with pytest.raises(ConfigError, match=r"email alerts need smtp\.host, smtp\.from_address"):
        make_settings(smtp={"host": None, "from_address": None})
    assert make_settings(email=False, smtp={"host": None}).smtp.missing() == ["smtp.host"]
    with pytest.raises(ConfigError, match="not email addresses"):
        make_settings(on_duty=["pc.ashworth"])
    with pytest.raises(
        ConfigError, match=r"smtp\.password \(environment: CAMPUSBOT_SMTP__PASSWORD"
    ):
        make_settings(smtp={"security": "starttls", "user": "campusbot"})
    monkeypatch.setenv("CAMPUSBOT_SMTP__PASSWORD", "from-the-environment")
    with pytest.raises(ConfigError, match="would send the password unencrypted"):
        make_settings(smtp={"host": "smtp.lancashire.police.uk", "user": "campusbot"})
    assert make_settings(smtp={"security": "tls", "port": None}).smtp.port_number == 465


def test_the_old_mail_server_settings_under_alerts_name_their_new_place(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_settings(smtp_host="smtp.lancashire.police.uk", from_address=SENDER)
    assert "alerts.smtp_host is now smtp.host" in str(refused.value)
    assert "alerts.from_address is now smtp.from_address" in str(refused.value)
    monkeypatch.setenv("CAMPUSBOT_ALERTS__SMTP_PASSWORD", "kept-from-an-old-env-file")
    with pytest.raises(ConfigError) as renamed:
        make_settings()
    message = str(renamed.value)
    assert "rename CAMPUSBOT_ALERTS__SMTP_PASSWORD to CAMPUSBOT_SMTP__PASSWORD" in message
    assert "kept-from-an-old-env-file" not in message


def _certificate(directory: Path) -> tuple[Path, Path]:
    openssl = require("openssl", "openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_starttls_and_login_with_the_password_from_the_environment(
    db: Database, make_settings: Any, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"relay-password-from-env")

    monkeypatch.setenv("CAMPUSBOT_SMTP__PASSWORD", "relay-password-from-env")
    settings = make_settings(
        smtp={"security": "starttls", "user": "campusbot", "ca_file": str(cert)}
    )
    app = _app(db, settings, TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    inbox = Inbox()
    with smtp_server(
        inbox,
        port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    ):
        report = run_alerts(app)
    assert report.sent == 2 and len(inbox.received) == 2
    assert logins == [(b"campusbot", b"relay-password-from-env")]


def test_an_untrusted_certificate_is_retried_with_a_clear_error(
    db: Database, make_settings: Any, port: int, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    settings = make_settings(smtp={"security": "starttls"}, on_duty=OFFICERS[:1])
    app = _app(db, settings, TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    inbox = Inbox()
    with smtp_server(inbox, port, tls_context=server_tls, require_starttls=True):
        report = run_alerts(app)
    assert (report.sent, report.retrying, inbox.received) == (0, 1, [])
    [waiting] = _notifications(app)
    assert "set smtp.ca_file" in (waiting.last_error or "")


def test_retention_removes_alerts_with_their_case(db: Database, make_settings: Any) -> None:
    from bot.retention import purge

    app = _app(db, make_settings(), TUESDAY_10AM)
    _message(app, "1", RISK_TEXT)
    assert run_alerts(app).emails_queued == 2  # server down: both wait for a retry
    a_year_on = TUESDAY_10AM + timedelta(days=app.settings.retention.messages_days + 1)
    with app.db.session() as session:
        report = purge(
            session, now=a_year_on, retention=app.settings.retention, web=app.settings.web
        )
    assert report.cases_deleted == 1
    with app.db.session() as session:
        assert session.exec(select(Alert)).all() == []
    assert _notifications(app) == []


def test_p1_emails_go_first_when_there_is_a_backlog(db: Database, make_settings: Any) -> None:
    app = _app(db, make_settings(), TUESDAY_10AM)
    _message(app, "1", "i want to report that someone stole my laptop", minutes_ago=9 * 60)
    risk = _message(app, "2", RISK_TEXT)
    report = run_alerts(app)  # server down: one try, then the round stops
    assert (report.sla_escalations, report.priority_alerts, report.retrying) == (1, 1, 1)
    with app.db.session() as session:
        tried = session.exec(
            select(Alert)
            .join(AlertNotification, col(AlertNotification.alert_id) == col(Alert.id))
            .where(AlertNotification.attempts == 1)
        ).all()
    assert [(a.case_id, a.priority) for a in tried] == [(risk.id, "P1")]
