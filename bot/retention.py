"""Deleting personal data when its retention period ends (`retention` in config).

- raw platform payloads are emptied after ``raw_payloads_days`` (the message itself stays);
- dead letters (raw bytes) are deleted after ``dead_letters_days``;
- messages are deleted after ``messages_days``, with their attachments and tags, the replies
  to them, and any case left with no message; so are bookings of meetings that long past;
- survey free text is emptied after ``messages_days`` (its choices and scenario tags stay;
  answers taken from an In The Know reply go with the reply's message);
- expired console sessions and old sign-in attempts go too.
The audit log keeps only ids and states, never text, and stays whole so its hash chain can
still be verified. A dry run counts without deleting; every real purge is audited (counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, exists, func, null, select, update
from sqlmodel import Session

from bot.config import RetentionSettings, WebSettings
from bot.crud import audit
from bot.models import (
    Booking,
    Case,
    DeadLetter,
    MeetingSlot,
    Message,
    OutboundMessage,
    SignInAttempt,
    WebSession,
)
from bot.survey_store import clear_old_free_text

SIGN_IN_ATTEMPT_DAYS = 90


@dataclass
class PurgeReport:
    raw_payloads_emptied: int = 0
    dead_letters_deleted: int = 0
    messages_deleted: int = 0
    replies_deleted: int = 0
    cases_deleted: int = 0
    bookings_deleted: int = 0
    sessions_deleted: int = 0
    sign_in_attempts_deleted: int = 0
    survey_texts_cleared: int = 0


def _t(model: Any) -> Any:
    return model.__table__


def _count(session: Session, table: Any, *where: Any) -> int:
    return int(session.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def delete_messages(session: Session, which: ColumnElement[bool]) -> int:
    """Delete the messages ``which`` selects, with the replies to them; their attachment rows
    and scenario tags go by cascade. The daily purge and a person's erasure (bot/privacy.py)
    both delete messages here, so a copy added later is removed in one place for both."""
    messages, outbox = _t(Message), _t(OutboundMessage)
    chosen = select(messages.c.id).where(which)
    session.execute(delete(outbox).where(outbox.c.in_reply_to_message_id.in_(chosen)))
    result = session.execute(delete(messages).where(which))
    return int(cast(CursorResult[Any], result).rowcount)


def purge(
    session: Session,
    *,
    now: datetime,
    retention: RetentionSettings,
    web: WebSettings,
    dry_run: bool = False,
) -> PurgeReport:
    messages, outbox, cases = _t(Message), _t(OutboundMessage), _t(Case)
    bookings, slots = _t(Booking), _t(MeetingSlot)
    letters, sessions, attempts = _t(DeadLetter), _t(WebSession), _t(SignInAttempt)
    raw_cutoff = now - timedelta(days=retention.raw_payloads_days)
    letter_cutoff = now - timedelta(days=retention.dead_letters_days)
    message_cutoff = now - timedelta(days=retention.messages_days)
    old_messages = select(messages.c.id).where(messages.c.received_at < message_cutoff)
    no_messages_left = ~exists().where(messages.c.case_id == cases.c.id)
    past_bookings = bookings.c.slot_id.in_(
        select(slots.c.id).where(slots.c.ends_at < message_cutoff)
    )
    report = PurgeReport(
        raw_payloads_emptied=_count(
            session, messages, messages.c.received_at < raw_cutoff, messages.c.raw.is_not(None)
        ),
        dead_letters_deleted=_count(session, letters, letters.c.received_at < letter_cutoff),
        messages_deleted=_count(session, messages, messages.c.received_at < message_cutoff),
        replies_deleted=_count(session, outbox, outbox.c.in_reply_to_message_id.in_(old_messages)),
        bookings_deleted=_count(session, bookings, past_bookings),
        sessions_deleted=_count(
            session, sessions, sessions.c.last_seen_at < now - timedelta(minutes=web.idle_minutes)
        ),
        sign_in_attempts_deleted=_count(
            session, attempts, attempts.c.at < now - timedelta(days=SIGN_IN_ATTEMPT_DAYS)
        ),
    )
    # Survey free text: emptied with the messages' period; choices and scenario tags stay.
    report.survey_texts_cleared = clear_old_free_text(
        session, before=message_cutoff, dry_run=dry_run
    )
    if dry_run:
        return report
    session.execute(
        update(messages)
        .where(messages.c.received_at < raw_cutoff, messages.c.raw.is_not(None))
        .values(raw=null())
    )
    session.execute(delete(letters).where(letters.c.received_at < letter_cutoff))
    delete_messages(session, messages.c.received_at < message_cutoff)
    # cases opened before the cutoff that no longer hold any message
    stale = select(cases.c.id).where(cases.c.opened_at < message_cutoff, no_messages_left)
    stale_ids = [row[0] for row in session.execute(stale)]
    if stale_ids:
        session.execute(delete(outbox).where(outbox.c.case_id.in_(stale_ids)))
        session.execute(delete(cases).where(cases.c.id.in_(stale_ids)))
    report.cases_deleted = len(stale_ids)
    session.execute(delete(bookings).where(past_bookings))
    session.execute(
        delete(sessions).where(sessions.c.last_seen_at < now - timedelta(minutes=web.idle_minutes))
    )
    session.execute(
        delete(attempts).where(attempts.c.at < now - timedelta(days=SIGN_IN_ATTEMPT_DAYS))
    )
    audit.record(
        session,
        at=now,
        actor="retention",
        action="retention.purged",
        entity="system",
        entity_id="retention",
        detail=asdict(report),
    )
    return report
