"""ingest -> classify -> triage -> outbox.

Two steps with a commit between them, so nothing received is ever lost:
1. ``ingest`` stores what a channel delivered (idempotent on channel + external id) and
   dead-letters what it could not parse. A webhook answers 200 only after this.
2. ``process_pending`` classifies stored messages, opens or updates cases and queues
   acknowledgements. It can run behind, in another process, or again after a crash:
   a message stays ``received`` until its processing commits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, insert, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.acknowledge import AckPlanner
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.crud import audit, deadletters
from bot.db import Database
from bot.messages import InboundMessage
from bot.models import Message, MessageAttachment, MessageScenario, MessageState
from bot.triage import CaseBook, reference_for
from channels.base import Batch, Undeliverable
from classifiers.base import Classification, Classifier

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    new_ids: list[int] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.new_ids.extend(other.new_ids)


@dataclass
class ProcessReport:
    processed: int = 0
    cases_opened: int = 0
    acknowledgements: int = 0
    urgent: int = 0
    risk: int = 0
    needs_human: int = 0
    scenarios: Counter[str] = field(default_factory=Counter)

    def count(self, classification: Classification, *, opened: bool, acknowledged: bool) -> None:
        self.processed += 1
        self.cases_opened += int(opened)
        self.acknowledgements += int(acknowledged)
        self.urgent += int(classification.urgent)
        self.risk += int(classification.risk)
        self.needs_human += int(classification.needs_human)
        self.scenarios.update(s.value for s in classification.scenarios)
        if not classification.scenarios:
            self.scenarios["other"] += 1

    def add(self, other: ProcessReport) -> None:
        self.processed += other.processed
        self.cases_opened += other.cases_opened
        self.acknowledgements += other.acknowledgements
        self.urgent += other.urgent
        self.risk += other.risk
        self.needs_human += other.needs_human
        self.scenarios.update(other.scenarios)


MESSAGES = cast(Table, Message.__table__)  # type: ignore[attr-defined]


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(MESSAGES).on_conflict_do_nothing(
            index_elements=["channel", "external_id"]
        )
    if dialect == "sqlite":
        return sqlite.insert(MESSAGES).on_conflict_do_nothing(
            index_elements=["channel", "external_id"]
        )
    return insert(MESSAGES)


class Pipeline:
    def __init__(
        self, db: Database, classifier: Classifier, settings: Settings, clock: Clock | None = None
    ) -> None:
        self.db = db
        self.classifier = classifier
        self.settings = settings
        self.clock = clock or SystemClock()

    # -- step 1 -----------------------------------------------------------------
    def ingest(self, batch: Batch, *, source: str) -> IngestReport:
        """Store a batch in one transaction: new messages, and dead letters for failures."""
        report = IngestReport(received=len(batch.messages) + len(batch.failures))
        now = self.clock.now()
        with self.db.session() as session:
            for failure in batch.failures:
                self._dead_letter(session, source, failure)
                report.dead_lettered += 1
            if batch.messages:
                rows = [_row(message, now) for message in batch.messages]
                statement = _insert_ignoring_duplicates(self.db.dialect).returning(
                    MESSAGES.c.id, MESSAGES.c.external_id, MESSAGES.c.channel
                )
                inserted = {
                    (r.channel, r.external_id): r.id for r in session.execute(statement, rows)
                }
                self._store_attachments(session, batch.messages, inserted)
                report.stored = len(inserted)
                report.duplicates = len(batch.messages) - len(inserted)
                report.new_ids = sorted(inserted.values())
        log.info(
            "ingested source=%s stored=%d duplicates=%d dead_lettered=%d",
            source,
            report.stored,
            report.duplicates,
            report.dead_lettered,
        )
        return report

    def _dead_letter(self, session: Session, source: str, failure: Undeliverable) -> None:
        deadletters.add(
            session,
            source=source,
            origin=failure.origin,
            reason=failure.reason,
            raw=failure.raw,
            at=self.clock.now(),
        )
        log.warning(
            "dead-lettered source=%s origin=%s reason=%s",
            source,
            failure.origin,
            failure.reason.split(":")[0],
        )

    @staticmethod
    def _store_attachments(
        session: Session, messages: Iterable[InboundMessage], inserted: dict[tuple[str, str], int]
    ) -> None:
        done: set[tuple[str, str]] = set()
        for message in messages:
            key = (message.channel, message.external_id)
            if key not in inserted or key in done:  # a duplicate: its attachments are stored
                continue
            done.add(key)
            for attachment in message.attachments:
                session.add(
                    MessageAttachment(
                        message_id=inserted[key],
                        kind=attachment.kind,
                        url=attachment.url,
                        media_type=attachment.media_type,
                        size=attachment.size,
                        sha256=attachment.sha256,
                    )
                )

    # -- step 2 -----------------------------------------------------------------
    def process_pending(self, *, limit: int = 500) -> ProcessReport:
        """Classify, triage and acknowledge up to ``limit`` stored messages, oldest first."""
        total = ProcessReport()
        while True:
            report = self._process_batch(limit)
            total.add(report)
            if report.processed < limit:
                return total

    def _process_batch(self, limit: int) -> ProcessReport:
        report = ProcessReport()
        now = self.clock.now()
        with self.db.session() as session:
            messages = self._claim(session, limit)
            if not messages:
                return report
            classifications = self.classifier.classify([m.text for m in messages])
            book = CaseBook(session, messages, self.settings.sla)
            outcomes = [
                book.apply(m, c, now) for m, c in zip(messages, classifications, strict=True)
            ]
            session.add_all(book.new_cases)
            session.flush()  # one multi-row insert gives the new cases their ids
            for case in book.new_cases:
                case.reference = reference_for(case)
            planner = AckPlanner(session, messages, self.settings.account)
            events: list[audit.Event] = []
            for message, classification, outcome in zip(
                messages, classifications, outcomes, strict=True
            ):
                _tag(message, classification, case_id=outcome.case.id, now=now)
                ack = planner.plan(message, outcome.case.id, classification, now)
                if ack is not None:
                    session.add(ack)
                if outcome.opened or outcome.escalated:
                    events.append(
                        audit.Event(
                            at=now,
                            actor="bot",
                            action="case.opened" if outcome.opened else "case.escalated",
                            entity="case",
                            entity_id=outcome.case.id or 0,
                            detail={"message_id": message.id, "priority": outcome.case.priority},
                        )
                    )
                report.count(classification, opened=outcome.opened, acknowledged=ack is not None)
            tags = [{"message_id": m.id, "scenario": s} for m in messages for s in m.scenarios]
            if tags:
                session.execute(insert(MessageScenario), tags)
            audit.record_many(session, events)
        log.info(
            "processed=%d cases_opened=%d acknowledgements=%d",
            report.processed,
            report.cases_opened,
            report.acknowledgements,
        )
        return report

    def _claim(self, session: Session, limit: int) -> list[Message]:
        """Take the oldest stored messages for this transaction, so no other process can.

        The claim is an UPDATE, so on SQLite it takes the write lock at once and concurrent
        processors queue behind it; on PostgreSQL rows locked by another worker are skipped.
        The case each message belongs to is then locked by key (advisory locks, in a fixed
        order), so two workers never open the same case twice or lower its priority.
        """
        pending = (
            select(MESSAGES.c.id)
            .where(MESSAGES.c.state == MessageState.RECEIVED.value)
            .order_by(MESSAGES.c.id)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            pending = pending.with_for_update(skip_locked=True)
        ids = (
            session.execute(
                update(MESSAGES)
                .where(
                    MESSAGES.c.id.in_(pending.scalar_subquery()),
                    MESSAGES.c.state == MessageState.RECEIVED.value,
                )
                .values(state=MessageState.PROCESSING.value)
                .returning(MESSAGES.c.id)
            )
            .scalars()
            .all()
        )
        if not ids:
            return []
        messages = list(
            session.exec(select(Message).where(col(Message.id).in_(ids)).order_by(col(Message.id)))
        )
        if self.db.dialect == "postgresql":
            keys = sorted(
                {f"case|{m.channel}|{m.conversation_id}|{m.author_id}" for m in messages}
                | {f"conv|{m.channel}|{m.conversation_id}" for m in messages}
            )
            for key in keys:
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
        return messages

    def run(self, batch: Batch, *, source: str) -> tuple[IngestReport, ProcessReport]:
        ingested = self.ingest(batch, source=source)
        return ingested, self.process_pending()


def _tag(
    message: Message, classification: Classification, *, case_id: int | None, now: datetime
) -> None:
    message.scenarios = [s.value for s in classification.scenarios]
    message.urgent = classification.urgent
    message.risk = classification.risk
    message.intent = classification.intent.value
    message.scores = classification.scores
    message.language = classification.language
    message.classifier = classification.model
    message.case_id = case_id
    message.state = MessageState.PROCESSED
    message.processed_at = now


def _row(message: InboundMessage, now: datetime) -> dict[str, Any]:
    return {
        "channel": message.channel,
        "external_id": message.external_id,
        "conversation_id": message.conversation_id,
        "author_id": message.author.id,
        "author_handle": message.author.handle,
        "author_name": message.author.name,
        "text": message.text,
        "private": message.private,
        "addressed_to_account": message.addressed_to_account,
        "in_reply_to": message.in_reply_to,
        "received_at": message.received_at,
        "ingested_at": now,
        "raw": message.raw,
        "state": MessageState.RECEIVED.value,
        "scenarios": [],
        "scores": {},
    }
