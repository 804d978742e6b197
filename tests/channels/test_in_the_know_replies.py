"""Answering In The Know members by email, through a real local SMTP server (aiosmtpd).

Members' replies come in through the real parsers and pipeline; the acknowledgement they are
owed goes out through bot/delivery.py's ``deliver_due`` and the channel the app builds, and
arrives threaded under the member's own email.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr
from sqlmodel import select

from bot.app import App, build
from bot.clock import FixedClock
from bot.config import InTheKnowSettings, Settings, SmtpSettings, load_settings
from bot.crud import templates
from bot.db import Database
from bot.delivery import DeliveryReport, deliver_due
from bot.errors import PermanentError
from bot.messages import OutboundReply
from bot.models import Case, Message, OutboundMessage, OutboxStatus
from channels.in_the_know import (
    REPLY_SUBJECT,
    InTheKnowChannel,
    compose_reply,
    parse_email,
    parse_push,
)
from tests.conftest import FIXTURES, NOW

ITK = FIXTURES / "in_the_know"
SENDER = "campus.police@lancashire.police.uk"
MEMBER = "samwhitfield97@example.com"  # the From of reply_plain.eml
REPLY_ID = "<CAF9xk2Tq7wPZ1mN4vR8sJd0hYbE3uLcG5aQeXo6tWfK+p2Vn_g@mail.example.com>"
ALERT_ID = "<ITK.487213.20261116091500@intheknow.example.com>"  # what the member answered


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it accepts, or goes silent after the DATA."""

    silent_seconds: float = 0  # wait this long before answering the end of the email
    unknown: frozenset[str] = frozenset()  # recipients refused with 550
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    handed_over: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.unknown:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.handed_over += 1
        if self.silent_seconds:
            await asyncio.sleep(self.silent_seconds)
        assert isinstance(envelope.content, bytes)
        # As stored in a mailbox: line ends are the reader's, not SMTP's CRLF.
        parsed = message_from_bytes(envelope.content.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Accepted"


@contextmanager
def smtp_server(inbox: Inbox, port: int) -> Iterator[None]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


@pytest.fixture
def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free: int = probe.getsockname()[1]
        return free


def _config(tmp_path: Path, port: int, **smtp: Any) -> Path:
    """The operator's config.yaml: In The Know on, and the one mail server."""
    config = {
        "timezone": "Europe/London",
        "classifier": {"kind": "keywords"},
        "in_the_know": {
            "enabled": True,
            "feed_url": "https://www.intheknow.example.com/rss/alerts",
            "imap_host": "imap.example.com",
            "imap_user": "alerts@intheknow.example.com",
        },
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "timeout_seconds": 5,
            "from_address": SENDER,
            **smtp,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int) -> Path:
    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMPUSBOT_IN_THE_KNOW__IMAP_PASSWORD", "mailbox-password-from-env")
    return _config(tmp_path, port)


def _app(db: Database, settings: Settings) -> App:
    app = build(settings, clock=FixedClock(NOW), db=db)
    with app.db.session() as session:
        for name in ("replies/acknowledgement.txt.j2", "replies/acknowledgement_public.txt.j2"):
            templates.approve(session, name=name, by="comms.lead", at=NOW, account=settings.account)
    return app


@pytest.fixture
def app(db: Database, config: Path) -> App:
    return _app(db, load_settings(config))


def _deliver(app: App) -> DeliveryReport:
    return deliver_due(app.db, app.channels(), app.clock)


def _outbox(app: App) -> OutboundMessage:
    with app.db.session() as session:
        return session.exec(select(OutboundMessage)).one()


def _emailed_reply(app: App) -> None:
    """Sam's emailed reply to an alert, read as the mailbox poll reads it; first contact, so
    an acknowledgement is queued."""
    batch = parse_email((ITK / "reply_plain.eml").read_bytes(), now=app.clock.now())
    app.pipeline.run(batch, source="in_the_know")
    queued = _outbox(app)
    assert (queued.channel, queued.status, queued.private) == ("in_the_know", "queued", True)


def _clock(app: App) -> FixedClock:
    assert isinstance(app.clock, FixedClock)
    return app.clock


# -- delivered once, threaded -----------------------------------------------------------------
def test_an_acknowledgement_is_emailed_once_threaded_under_the_members_email(
    app: App, port: int
) -> None:
    _emailed_reply(app)
    inbox = Inbox()
    with smtp_server(inbox, port):
        first = _deliver(app)
        again = _deliver(app)
    assert (first.sent, first.failed, again.sent) == (1, 0, 0)
    ((recipients, email),) = inbox.received
    assert recipients == [MEMBER]
    assert (email["From"], email["To"]) == (SENDER, MEMBER)
    assert email["Subject"] == REPLY_SUBJECT
    assert email["In-Reply-To"].strip() == REPLY_ID
    assert email["References"].split() == [ALERT_ID, REPLY_ID]
    assert email["Auto-Submitted"] == "auto-replied"  # no out-of-office reply comes back
    assert email.get_content_type() == "text/plain" and not email.is_multipart()
    row = _outbox(app)
    assert email.get_content().strip() == row.text.strip()
    assert row.status == OutboxStatus.SENT and row.attempts == 1
    assert row.external_id == email["Message-ID"]
    assert str(row.external_id).endswith("@lancashire.police.uk>")
    with app.db.session() as session:
        case = session.exec(select(Case)).one()
    assert case.status == "acknowledged" and case.acknowledged_at == NOW


def test_an_officers_reply_is_threaded_too_and_not_marked_automatic(app: App, port: int) -> None:
    _emailed_reply(app)
    with app.db.session() as session:
        ack = session.exec(select(OutboundMessage)).one()
        ack.kind, ack.text = "human", "Thanks Sam, PC Ashworth here. Could you ring 101?"
        session.add(ack)
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert _deliver(app).sent == 1
    ((_, email),) = inbox.received
    assert email["In-Reply-To"].strip() == REPLY_ID and "Auto-Submitted" not in email
    assert email.get_content().strip() == "Thanks Sam, PC Ashworth here. Could you ring 101?"


# -- failures: retried, or refused clearly; nothing lost ------------------------------------
def test_mail_server_down_the_reply_waits_and_goes_later_once(app: App, port: int) -> None:
    _emailed_reply(app)
    down = _deliver(app)  # nothing listens on the port
    assert (down.sent, down.retrying, down.failed) == (0, 1, 0)
    waiting = _outbox(app)
    assert waiting.status == OutboxStatus.QUEUED and waiting.attempts == 1
    assert "reply not emailed yet: cannot use the mail server at 127.0.0.1" in (
        waiting.last_error or ""
    )
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > NOW
    assert _deliver(app).retrying == 0  # not due yet: no hammering a dead server
    inbox = Inbox()
    with smtp_server(inbox, port):
        _clock(app).advance(timedelta(minutes=11))
        back = _deliver(app)
        assert _deliver(app).sent == 0
    assert back.sent == 1 and [r for r, _ in inbox.received] == [[MEMBER]]
    sent = _outbox(app)
    assert sent.status == OutboxStatus.SENT and sent.attempts == 2 and sent.last_error is None


def test_a_member_known_only_by_their_alert_id_is_refused_with_where_to_reply(
    app: App, port: int
) -> None:
    body = json.loads((ITK / "push_reply_with_photo.json").read_text())
    del body["member"]["email"]
    app.pipeline.run(parse_push(json.dumps(body).encode(), now=NOW), source="in_the_know")
    inbox = Inbox()
    with smtp_server(inbox, port):
        report = _deliver(app)
    assert (report.sent, report.failed, inbox.handed_over) == (0, 1, 0)
    refused = _outbox(app)
    assert refused.recipient_id == "member:m-2110458"
    assert refused.status == OutboxStatus.FAILED
    assert "send the reply through Neighbourhood Alert's own console" in (refused.last_error or "")


def test_a_server_silent_after_taking_the_email_is_never_resent_blindly(
    db: Database, tmp_path: Path, config: Path, port: int
) -> None:
    app = _app(db, load_settings(_config(tmp_path, port, timeout_seconds=1)))
    _emailed_reply(app)
    inbox = Inbox(silent_seconds=3)
    with smtp_server(inbox, port):
        report = _deliver(app)
        _clock(app).advance(timedelta(hours=1))
        later = _deliver(app)
    assert (report.sent, report.retrying, report.failed, later.sent) == (0, 0, 1, 0)
    assert inbox.handed_over == 1
    failed = _outbox(app)
    assert failed.status == OutboxStatus.FAILED and failed.attempts == 1
    assert "may have been delivered" in (failed.last_error or "")
    assert "before resending" in (failed.last_error or "")


def test_an_address_the_mail_server_refuses_fails_at_once(app: App, port: int) -> None:
    _emailed_reply(app)
    inbox = Inbox(unknown=frozenset({MEMBER}))
    with smtp_server(inbox, port):
        report = _deliver(app)
    assert (report.sent, report.retrying, report.failed) == (0, 0, 1)
    assert "reply not emailed: recipient refused: 550" in (_outbox(app).last_error or "")


# -- the mail server's settings ---------------------------------------------------------------
def _itk() -> InTheKnowSettings:
    return InTheKnowSettings(
        enabled=True,
        feed_url="https://www.intheknow.example.com/rss/alerts",
        imap_host="imap.example.com",
        imap_user="alerts@intheknow.example.com",
        imap_password=SecretStr("mailbox-password-from-the-environment"),
    )


def _reply(**overrides: Any) -> OutboundReply:
    values: dict[str, Any] = {
        "channel": "in_the_know",
        "text": "Thank you, we have your message.",
        "private": True,
        "in_reply_to_external_id": REPLY_ID,
        "conversation_id": ALERT_ID,
        "recipient_id": MEMBER,
    }
    return OutboundReply(**{**values, **overrides})


def test_without_a_complete_mail_server_replies_are_refused_naming_the_settings() -> None:
    channel = InTheKnowChannel(_itk(), now=lambda: NOW)
    with pytest.raises(PermanentError, match=r"set smtp\.host, smtp\.from_address$"):
        channel.reply(_reply())
    half = SmtpSettings(host="127.0.0.1", user="campusbot", from_address=SENDER)
    with pytest.raises(PermanentError, match="CAMPUSBOT_SMTP__PASSWORD"):
        InTheKnowChannel(_itk(), smtp=half, now=lambda: NOW).reply(_reply())


def test_the_app_builds_the_channel_with_the_mail_server(app: App) -> None:
    channel = app.channels()["in_the_know"]
    assert isinstance(channel, InTheKnowChannel)
    assert channel.smtp == app.settings.smtp
    assert channel.capabilities.private_reply and not channel.capabilities.public_reply


def test_threading_follows_what_the_stored_message_carries() -> None:
    relayed = compose_reply(
        _reply(in_reply_to_external_id=REPLY_ID, conversation_id="alert:487213"),
        sender=SENDER,
        at=NOW,
    )
    assert relayed["In-Reply-To"] == REPLY_ID and relayed["References"] == REPLY_ID
    for unthreadable in ("push:NA-R-7731840", "sha256:" + "0" * 64):
        fresh = compose_reply(_reply(in_reply_to_external_id=unthreadable), sender=SENDER, at=NOW)
        assert "In-Reply-To" not in fresh and "References" not in fresh
        assert fresh["To"] == MEMBER
    with pytest.raises(PermanentError, match="not an address an email can go to"):
        compose_reply(_reply(recipient_id="sam\r\nBcc: x@example.com"), sender=SENDER, at=NOW)


def test_stored_messages_keep_the_message_id_the_reply_threads_under(app: App) -> None:
    _emailed_reply(app)
    with app.db.session() as session:
        stored = session.exec(select(Message)).one()
    assert stored.raw is not None and stored.raw["message_id"] == REPLY_ID
    assert stored.external_id == REPLY_ID
    assert stored.conversation_id == ALERT_ID and stored.author_id == MEMBER
