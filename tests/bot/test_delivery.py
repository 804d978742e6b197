"""Sending queued replies: retries, rate limits, expired tokens, and never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.app import App
from bot.clock import FixedClock
from bot.crud import templates
from bot.delivery import deliver_due
from bot.errors import AuthError, PermanentError, RateLimited, TransientError
from bot.messages import InboundMessage
from bot.models import Case, OutboundMessage, OutboxStatus
from channels.base import Batch
from channels.fake import FakeChannel
from tests.conftest import NOW, message_line


@pytest.fixture
def queued(bot_app: App) -> App:
    """One urgent DM whose acknowledgement is queued for the (fake) twitter channel."""
    with bot_app.db.session() as session:
        for name in ("replies/acknowledgement.txt.j2", "replies/acknowledgement_public.txt.j2"):
            templates.approve(
                session, name=name, by="comms.lead", at=NOW, account=bot_app.settings.account
            )
    message = InboundMessage.model_validate(message_line("1", "fight outside the SU right now"))
    bot_app.pipeline.run(Batch(messages=[message]), source="replay")
    return bot_app


def _outbox(app: App) -> OutboundMessage:
    with app.db.session() as session:
        return session.exec(select(OutboundMessage)).one()


def test_sent_reply_is_recorded_and_acknowledges_the_case(queued: App, clock: FixedClock) -> None:
    fake = FakeChannel()
    report = deliver_due(queued.db, {"twitter": fake}, clock)
    again = deliver_due(queued.db, {"twitter": fake}, clock)
    row = _outbox(queued)
    assert (report.sent, again.sent) == (1, 0)
    assert len(fake.replies) == 1 and fake.replies[0].private is True
    assert fake.replies[0].in_reply_to_external_id == "1"
    assert row.status == OutboxStatus.SENT and row.external_id == "fake-1"
    with queued.db.session() as session:
        case = session.exec(select(Case)).one()
    assert case.status == "acknowledged" and case.acknowledged_at is not None
    assert case.first_human_reply_at is None  # an automatic reply does not stop the SLA clock


def test_rate_limit_reschedules_at_reset_time(queued: App, clock: FixedClock) -> None:
    fake = FakeChannel()
    reset = NOW + timedelta(minutes=15)
    fake.fail_next(RateLimited("429", retry_at=reset))
    report = deliver_due(queued.db, {"twitter": fake}, clock)
    row = _outbox(queued)
    assert report.retrying == 1 and row.status == OutboxStatus.QUEUED
    assert row.next_attempt_at == reset
    assert deliver_due(queued.db, {"twitter": fake}, clock).sent == 0  # not before the reset
    clock.advance(timedelta(minutes=16))
    assert deliver_due(queued.db, {"twitter": fake}, clock).sent == 1


def test_transient_errors_back_off_then_give_up(queued: App, clock: FixedClock) -> None:
    fake = FakeChannel()
    fake.fail_next(*[TransientError("503") for _ in range(20)])
    for _ in range(20):
        deliver_due(queued.db, {"twitter": fake}, clock)
        row = _outbox(queued)
        if row.status == OutboxStatus.FAILED:
            break
        assert row.next_attempt_at is not None and row.next_attempt_at > clock.now()
        clock.advance(timedelta(minutes=11))
    assert row.status == OutboxStatus.FAILED
    assert row.last_error is not None and "gave up" in row.last_error
    assert fake.replies == []


def test_expired_token_keeps_the_reply_queued(queued: App, clock: FixedClock) -> None:
    fake = FakeChannel()
    fake.fail_next(AuthError("401 Unauthorized"))
    report = deliver_due(queued.db, {"twitter": fake}, clock)
    row = _outbox(queued)
    assert report.skipped_channels == 1
    assert row.status == OutboxStatus.QUEUED and row.last_error == "401 Unauthorized"


def test_permanent_error_fails_with_the_reason(queued: App, clock: FixedClock) -> None:
    fake = FakeChannel()
    fake.fail_next(PermanentError("400 text too long"))
    deliver_due(queued.db, {"twitter": fake}, clock)
    row = _outbox(queued)
    assert row.status == OutboxStatus.FAILED and row.last_error == "400 text too long"


def test_reply_interrupted_mid_send_is_never_sent_again(queued: App, clock: FixedClock) -> None:
    with queued.db.session() as session:  # as if the process died after claiming the row
        row = session.exec(select(OutboundMessage)).one()
        row.status = OutboxStatus.SENDING
        row.next_attempt_at = clock.now()
        session.add(row)
    fake = FakeChannel()
    clock.advance(timedelta(minutes=30))
    deliver_due(queued.db, {"twitter": fake}, clock)
    row = _outbox(queued)
    assert fake.replies == []
    assert row.status == OutboxStatus.FAILED
    assert row.last_error is not None and "check the platform" in row.last_error


def test_channels_not_configured_leave_replies_queued(queued: App, clock: FixedClock) -> None:
    report = deliver_due(queued.db, {}, clock)
    assert report.sent == 0 and _outbox(queued).status == OutboxStatus.QUEUED
