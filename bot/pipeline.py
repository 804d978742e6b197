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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, text, update
from sqlmodel import Session

from bot import bulk
from bot.acknowledge import AckPlanner
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.crud import audit, deadletters
from bot.db import Database
from bot.messages import InboundMessage, StoredMessage
from bot.models import (
    Message,
    MessageAttachment,
    MessageScenario,
    MessageState,
    OutboundMessage,
)
from bot.observability import metrics
from bot.triage import CaseBook
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
OUTBOX = cast(Table, OutboundMessage.__table__)  # type: ignore[attr-defined]
SCENARIOS = cast(Table, MessageScenario.__table__)  # type: ignore[attr-defined]


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
                inserted = {
                    (r.channel, r.external_id): r.id
                    for r in bulk.insert_rows(
                        session,
                        MESSAGES,
                        [_row(message, now) for message in batch.messages],
                        returning=("id", "external_id", "channel"),
                        skip_conflicts_on=("channel", "external_id"),
                    )
                }
                self._store_attachments(session, batch.messages, inserted)
                report.stored = len(inserted)
                report.duplicates = len(batch.messages) - len(inserted)
                report.new_ids = sorted(inserted.values())
        metrics.record_ingest(
            source, received=report.received, stored=report.stored, duplicates=report.duplicates
        )
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
        classified_ahead = self._classify_ahead(limit)
        with self.db.session() as session:
            messages = self._claim(session, limit, among=classified_ahead)
            if not messages:
                return report
            if classified_ahead is None:
                classifications = self.classifier.classify([m.text for m in messages])
            else:
                classifications = [classified_ahead[m.id] for m in messages]
            book = CaseBook(session, messages, self.settings.sla)
            outcomes = [
                book.apply(m, c, now) for m, c in zip(messages, classifications, strict=True)
            ]
            book.save(session)
            planner = AckPlanner(session, messages, self.settings.account)
            tags: list[dict[str, Any]] = []
            scenario_rows: list[dict[str, Any]] = []
            acks: list[dict[str, Any]] = []
            events: list[audit.Event] = []
            for message, classification, outcome in zip(
                messages, classifications, outcomes, strict=True
            ):
                case_id = outcome.case.id
                tags.append(_tags(message.id, classification, case_id=case_id, now=now))
                scenario_rows.extend(
                    {"message_id": message.id, "scenario": s.value}
                    for s in classification.scenarios
                )
                ack = planner.plan(message, case_id, classification, now)
                if ack is not None:
                    acks.append(ack)
                if outcome.opened or outcome.escalated:
                    events.append(
                        audit.Event(
                            at=now,
                            actor="bot",
                            action="case.opened" if outcome.opened else "case.escalated",
                            entity="case",
                            entity_id=case_id or 0,
                            detail={"message_id": message.id, "priority": outcome.case.priority},
                        )
                    )
                report.count(classification, opened=outcome.opened, acknowledged=ack is not None)
            bulk.update_rows(session, MESSAGES, tags)
            bulk.insert_rows(session, SCENARIOS, scenario_rows)
            bulk.insert_rows(session, OUTBOX, acks)
            audit.record_many(session, events)
        for channel, count in Counter(m.channel for m in messages).items():
            metrics.record_classified(channel, count)
        log.info(
            "processed=%d cases_opened=%d acknowledgements=%d",
            report.processed,
            report.cases_opened,
            report.acknowledgements,
        )
        return report

    def _classify_ahead(self, limit: int) -> dict[int, Classification] | None:
        """On SQLite, classify the next messages before taking the database's write lock.

        SQLite has one write lock for the whole file: classifying inside the transaction
        would stall every webhook's ingest for as long as the model runs. Whatever another
        processor claims meanwhile is simply not claimed here. PostgreSQL locks rows, not
        the database, so there the claim comes first and other workers skip those rows.
        """
        if self.db.dialect != "sqlite":
            return None
        with self.db.session() as session:
            rows = session.execute(
                select(MESSAGES.c.id, MESSAGES.c.text)
                .where(MESSAGES.c.state == MessageState.RECEIVED.value)
                .order_by(MESSAGES.c.id)
                .limit(limit)
            ).all()
        classifications = self.classifier.classify([row.text for row in rows])
        return {row.id: c for row, c in zip(rows, classifications, strict=True)}

    def _claim(
        self, session: Session, limit: int, *, among: Mapping[int, object] | None = None
    ) -> list[StoredMessage]:
        """Take the oldest stored messages (of ``among``, if given) for this transaction.

        The claim is an UPDATE, so on SQLite it takes the write lock at once and concurrent
        processors queue behind it; on PostgreSQL rows locked by another worker are skipped.
        The case each message belongs to is then locked by key (advisory locks, in a fixed
        order), so two workers never open the same case twice or lower its priority.
        """
        if among is not None and not among:
            return []
        pending = (
            select(MESSAGES.c.id)
            .where(MESSAGES.c.state == MessageState.RECEIVED.value)
            .order_by(MESSAGES.c.id)
            .limit(limit)
        )
        if among is not None:
            pending = pending.where(MESSAGES.c.id.in_(list(among)))
        if self.db.dialect == "postgresql":
            pending = pending.with_for_update(skip_locked=True)
        # Materialised, so the pick runs once: as an IN (subquery), PostgreSQL may re-run
        # a SKIP LOCKED subquery per row and claim far more than ``limit``.
        picked = pending.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
        c = MESSAGES.c
        rows = session.execute(
            update(MESSAGES)
            .where(c.id == picked.c.id, c.state == MessageState.RECEIVED.value)
            .values(state=MessageState.PROCESSING.value)
            .returning(
                c.id, c.channel, c.external_id, c.conversation_id, c.author_id, c.text,
                c.private, c.addressed_to_account, c.received_at,
            )
        )  # fmt: skip
        messages = sorted((StoredMessage(**row._asdict()) for row in rows), key=lambda m: m.id)
        if messages and self.db.dialect == "postgresql":
            keys = sorted(
                {f"case|{m.channel}|{m.conversation_id}|{m.author_id}" for m in messages}
                | {f"conv|{m.channel}|{m.conversation_id}" for m in messages}
            )
            session.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtext(k)) FROM"
                    " (SELECT k FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n)"
                    " ORDER BY n) AS ordered"
                ),
                {"keys": keys},
            )
        return messages

    def run(self, batch: Batch, *, source: str) -> tuple[IngestReport, ProcessReport]:
        ingested = self.ingest(batch, source=source)
        return ingested, self.process_pending()


def _tags(
    message_id: int, classification: Classification, *, case_id: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "id": message_id,
        "scenarios": [s.value for s in classification.scenarios],
        "urgent": classification.urgent,
        "risk": classification.risk,
        "intent": classification.intent.value,
        "scores": classification.scores,
        "language": classification.language,
        "classifier": classification.model,
        "case_id": case_id,
        "state": MessageState.PROCESSED.value,
        "processed_at": now,
    }


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
