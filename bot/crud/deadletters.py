"""The dead-letter table: what could not be taken in, with why, kept for a retry."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.models import DeadLetter, DeadLetterStatus
from bot.observability import metrics


def add(
    session: Session, *, source: str, origin: str, reason: str, raw: bytes, at: datetime
) -> DeadLetter:
    """Keep a payload that could not be taken in; the same bytes twice are one letter."""
    digest = hashlib.sha256(raw).hexdigest()
    metrics.record_dead_letter(session, source)  # counted when the transaction commits
    existing = session.exec(
        select(DeadLetter).where(
            DeadLetter.source == source,
            DeadLetter.sha256 == digest,
            DeadLetter.status == DeadLetterStatus.PENDING,
        )
    ).first()
    if existing is not None:
        existing.times_seen += 1
        session.add(existing)
        return existing
    letter = DeadLetter(
        source=source, origin=origin or None, reason=reason, raw=raw, sha256=digest, received_at=at
    )
    session.add(letter)
    session.flush()
    return letter


def list_letters(
    session: Session,
    *,
    status: DeadLetterStatus | None = DeadLetterStatus.PENDING,
    limit: int = 100,
) -> Sequence[DeadLetter]:
    query = select(DeadLetter).order_by(col(DeadLetter.id)).limit(limit)
    if status is not None:
        query = query.where(DeadLetter.status == status)
    return session.exec(query).all()


def count_pending(session: Session) -> int:
    return session.exec(
        select(func.count())
        .select_from(DeadLetter)
        .where(DeadLetter.status == DeadLetterStatus.PENDING)
    ).one()


def mark_resolved(session: Session, letter: DeadLetter, *, at: datetime) -> None:
    letter.status = DeadLetterStatus.RESOLVED
    letter.resolved_at = at
    letter.attempts += 1
    session.add(letter)


def mark_failed_again(session: Session, letter: DeadLetter, *, reason: str) -> None:
    letter.attempts += 1
    letter.reason = reason
    session.add(letter)
