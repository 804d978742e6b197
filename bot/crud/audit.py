"""Append to and verify the hash-chained audit log.

Each entry's hash covers its own fields and the previous entry's hash, so editing or
deleting any past entry breaks every hash after it. On PostgreSQL a transaction-scoped
advisory lock serialises appends, so concurrent writers cannot fork the chain; SQLite
already allows one writer at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, text
from sqlmodel import Session, col, select

from bot import bulk
from bot.models import AuditEntry

GENESIS = "0" * 64
AUDIT = cast(Table, AuditEntry.__table__)  # type: ignore[attr-defined]
_AUDIT_LOCK_KEY = 7_401_337  # arbitrary, fixed: the advisory lock id for audit appends


def _digest(
    prev_hash: str,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    detail: Mapping[str, Any],
) -> str:
    body = json.dumps(
        {
            "prev": prev_hash,
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Event:
    """One thing to audit. ``detail`` holds ids and states only, never message text."""

    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | int
    detail: Mapping[str, Any] | None = None


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; the entry returned carries its fields and hashes but no id."""
    return AuditEntry(**_append(session, [Event(at, actor, action, entity, entity_id, detail)])[0])


def record_many(session: Session, events: Sequence[Event]) -> None:
    """Append several entries in order, with one lock, one look at the chain's end and one insert.

    The rows go in through a Core multi-row insert: the pipeline audits thousands of case
    openings per batch, and ORM instances for each cost more than the hashing.
    """
    if events:
        _append(session, events)


def _append(session: Session, events: Sequence[Event]) -> list[dict[str, Any]]:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK_KEY})
    session.flush()  # entries added through the ORM earlier in this transaction come first
    prev_hash = (
        session.execute(
            select(AUDIT.c.hash).order_by(AUDIT.c.id.desc()).limit(1)
        ).scalar_one_or_none()
        or GENESIS
    )
    rows: list[dict[str, Any]] = []
    for event in events:
        detail = dict(event.detail or {})
        entity_id = str(event.entity_id)
        digest = _digest(
            prev_hash,
            at=event.at,
            actor=event.actor,
            action=event.action,
            entity=event.entity,
            entity_id=entity_id,
            detail=detail,
        )
        rows.append(
            {
                "at": event.at,
                "actor": event.actor,
                "action": event.action,
                "entity": event.entity,
                "entity_id": entity_id,
                "detail": detail,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    bulk.insert_rows(session, AUDIT, rows)
    return rows


@dataclass(frozen=True)
class ChainCheck:
    entries: int
    first_bad_id: int | None

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


def verify(session: Session) -> ChainCheck:
    """Walk the chain in order; report the first entry whose hash or link does not match."""
    prev_hash = GENESIS
    count = 0
    for entry in session.exec(select(AuditEntry).order_by(col(AuditEntry.id))):
        count += 1
        expected = _digest(
            prev_hash,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            entity=entry.entity,
            entity_id=entry.entity_id,
            detail=entry.detail,
        )
        if entry.prev_hash != prev_hash or entry.hash != expected:
            return ChainCheck(entries=count, first_bad_id=entry.id)
        prev_hash = entry.hash
    return ChainCheck(entries=count, first_bad_id=None)
