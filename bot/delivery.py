"""Send queued replies through their channels, without ever sending one twice.

A row is marked ``sending`` and committed before the API call; only then is the call
made. If the process dies in between, the row stays ``sending`` and is later marked
failed for a person to check, rather than sent again: a duplicate safety message is
worse than a late one that an officer resends by hand.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, or_, select

from bot.clock import Clock
from bot.crud import audit
from bot.db import Database
from bot.errors import AuthError, NotSupported, PermanentError, RateLimited, TransientError
from bot.messages import OutboundReply
from bot.models import Case, CaseStatus, Message, OutboundMessage, OutboxStatus, ReplyKind
from bot.observability import metrics
from channels.base import Channel

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_FACTOR = 1.75
BACKOFF_CAP_SECONDS = 600.0
STALE_SENDING = timedelta(minutes=10)


def backoff(attempt: int) -> timedelta:
    """Exponential backoff with full jitter (errbot's x1.75, capped at ten minutes)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * BACKOFF_FACTOR ** max(attempt - 1, 0))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped_channels: int = 0


def deliver_due(
    db: Database, channels: Mapping[str, Channel], clock: Clock, *, limit: int = 100
) -> DeliveryReport:
    report = DeliveryReport()
    _fail_stale(db, clock)
    blocked: set[str] = set()
    with db.session() as session:
        now = clock.now()
        due = session.exec(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.status == OutboxStatus.QUEUED,
                col(OutboundMessage.channel).in_(list(channels)),
                or_(
                    col(OutboundMessage.next_attempt_at).is_(None),
                    col(OutboundMessage.next_attempt_at) <= now,
                ),
            )
            .order_by(col(OutboundMessage.id))
            .limit(limit)
        ).all()
    for outbound_id in (i for i in due if i is not None):
        claimed = _claim(db, outbound_id, clock)
        if claimed is None or claimed.channel in blocked:
            if claimed is not None:
                _release(db, outbound_id)
            continue
        channel = channels[claimed.channel]
        try:
            result = channel.reply(_outbound(db, claimed))
        except RateLimited as exc:
            metrics.record_api_error(claimed.channel, exc)
            _requeue(db, outbound_id, at=exc.retry_at, error=str(exc))
            blocked.add(claimed.channel)
            report.retrying += 1
        except AuthError as exc:
            metrics.record_api_error(claimed.channel, exc)
            _requeue(db, outbound_id, at=None, error=str(exc))
            blocked.add(claimed.channel)
            report.skipped_channels += 1
        except TransientError as exc:
            metrics.record_api_error(claimed.channel, exc)
            if claimed.attempts >= MAX_ATTEMPTS:
                _fail(
                    db,
                    outbound_id,
                    at=clock.now(),
                    error=f"gave up after {claimed.attempts} attempts: {exc}",
                )
                metrics.record_reply_failed(claimed.channel)
                report.failed += 1
            else:
                _requeue(
                    db, outbound_id, at=clock.now() + backoff(claimed.attempts), error=str(exc)
                )
                report.retrying += 1
        except (PermanentError, NotSupported) as exc:
            metrics.record_api_error(claimed.channel, exc)
            _fail(db, outbound_id, at=clock.now(), error=str(exc))
            metrics.record_reply_failed(claimed.channel)
            report.failed += 1
        else:
            _mark_sent(db, outbound_id, external_id=result.external_id, at=result.delivered_at)
            metrics.record_reply_sent(claimed.channel)
            report.sent += 1
    return report


def _outbound(db: Database, row: OutboundMessage) -> OutboundReply:
    with db.session() as session:
        last = session.exec(
            select(func.max(Message.received_at)).where(
                Message.channel == row.channel,
                Message.conversation_id == row.conversation_id,
                Message.author_id == row.recipient_id,
            )
        ).one()
    return OutboundReply(
        channel=row.channel,
        text=row.text,
        private=row.private,
        in_reply_to_external_id=row.in_reply_to_external_id,
        conversation_id=row.conversation_id,
        recipient_id=row.recipient_id,
        user_last_message_at=last,
        by_human=row.kind == ReplyKind.HUMAN,
    )


def _claim(db: Database, outbound_id: int, clock: Clock) -> OutboundMessage | None:
    """Queued -> sending, only if still queued: a conditional UPDATE, so two processes
    (on SQLite too) can never both claim the same reply."""
    with db.session() as session:
        claimed = session.execute(
            update(OutboundMessage)
            .where(
                col(OutboundMessage.id) == outbound_id,
                col(OutboundMessage.status) == OutboxStatus.QUEUED,
                or_(
                    col(OutboundMessage.next_attempt_at).is_(None),
                    col(OutboundMessage.next_attempt_at) <= clock.now(),
                ),
            )
            .values(
                status=OutboxStatus.SENDING,
                attempts=col(OutboundMessage.attempts) + 1,
                next_attempt_at=clock.now(),
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(OutboundMessage, outbound_id)


def _release(db: Database, outbound_id: int) -> None:
    with db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is not None and row.status == OutboxStatus.SENDING:
            row.status = OutboxStatus.QUEUED
            row.attempts -= 1
            session.add(row)


def _requeue(db: Database, outbound_id: int, *, at: datetime | None, error: str) -> None:
    with db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None:
            return
        row.status = OutboxStatus.QUEUED
        row.next_attempt_at = at
        row.last_error = error
        session.add(row)


def _fail(db: Database, outbound_id: int, *, at: datetime, error: str) -> None:
    with db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None:
            return
        row.status = OutboxStatus.FAILED
        row.last_error = error
        session.add(row)
        audit.record(
            session,
            at=at,
            actor="bot",
            action="outbox.failed",
            entity="outbox",
            entity_id=outbound_id,
            detail={"case_id": row.case_id},
        )


def _mark_sent(db: Database, outbound_id: int, *, external_id: str, at: datetime) -> None:
    with db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None:
            return
        row.status = OutboxStatus.SENT
        row.external_id = external_id
        row.sent_at = at
        row.last_error = None
        session.add(row)
        if row.case_id is not None:
            _note_on_case(session, row, at)
        audit.record(
            session,
            at=at,
            actor=row.created_by,
            action="outbox.sent",
            entity="outbox",
            entity_id=outbound_id,
            detail={"case_id": row.case_id, "kind": row.kind},
        )


def _note_on_case(session: Session, row: OutboundMessage, at: datetime) -> None:
    case = session.get(Case, row.case_id)
    if case is None:
        return
    if row.kind == ReplyKind.AUTO_ACK:
        case.acknowledged_at = case.acknowledged_at or at
        if case.status == CaseStatus.NEW:
            case.status = CaseStatus.ACKNOWLEDGED
    else:
        case.first_human_reply_at = case.first_human_reply_at or at
    case.updated_at = at
    session.add(case)


def _fail_stale(db: Database, clock: Clock) -> None:
    """Rows left ``sending`` by a crash: the outcome is unknown, so a person decides."""
    cutoff = clock.now() - STALE_SENDING
    with db.session() as session:
        stale = session.exec(
            select(OutboundMessage).where(
                OutboundMessage.status == OutboxStatus.SENDING,
                col(OutboundMessage.next_attempt_at) < cutoff,
            )
        ).all()
        for row in stale:
            row.status = OutboxStatus.FAILED
            row.last_error = (
                "interrupted while sending; check the platform before resending "
                "so the student does not get it twice"
            )
            session.add(row)
            metrics.record_reply_failed(row.channel)
            log.warning("outbox id=%s interrupted mid-send; marked failed", row.id)
