"""Triage: turn a classified message into a case with a priority and an SLA.

A case is one open conversation with one person on one channel. A later message in it
joins the case and can only raise its priority, never lower it: a follow-up saying "it's
fine now" is for an officer to judge, not the bot.

``CaseBook`` works a batch at a time, in plain rows rather than ORM objects (building
thousands of SQLModel instances cost more than everything else in processing): it loads
the open cases a batch touches in one query, keeps new and changed ones in memory, and
``save`` writes them with one multi-row insert and one batched update.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlmodel import Session

from bot import bulk
from bot.config import SLASettings
from bot.messages import StoredMessage
from bot.models import Case, CaseStatus, Priority
from classifiers.base import Classification, Intent

CASES = cast(Table, Case.__table__)  # type: ignore[attr-defined]
_RANK = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 3, Priority.P4: 4}
REPORTING_INTENTS = frozenset({Intent.REPORT_INCIDENT, Intent.INTELLIGENCE})
CaseKey = tuple[str, str, str]


def priority_for(classification: Classification) -> Priority:
    if classification.risk:
        return Priority.P1
    if classification.urgent:
        return Priority.P2
    if classification.intent in REPORTING_INTENTS:
        return Priority.P3
    return Priority.P4


def higher(a: str, b: str) -> Priority:
    pa, pb = Priority(a), Priority(b)
    return pa if _RANK[pa] <= _RANK[pb] else pb


def case_key(message: StoredMessage | OpenCase) -> CaseKey:
    return (message.channel, message.conversation_id, message.author_id)


def reference_for(case_id: int, opened_at: datetime) -> str:
    return f"UCC-{opened_at.year}-{case_id:06d}"


@dataclass(slots=True)
class OpenCase:
    """The triage-relevant state of one open case, new or loaded."""

    channel: str
    conversation_id: str
    author_id: str
    priority: str
    scenarios: list[str]
    urgent: bool
    risk: bool
    needs_human: bool
    opened_at: datetime
    updated_at: datetime
    sla_due_at: datetime
    first_human_reply_at: datetime | None = None
    id: int | None = None
    changed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class TriageOutcome:
    case: OpenCase
    opened: bool  # True when this message opened a new case
    escalated: bool  # True when it raised an existing case's priority


class CaseBook:
    def __init__(
        self, session: Session, messages: Iterable[StoredMessage], sla: SLASettings
    ) -> None:
        self.sla = sla
        keys = {case_key(m) for m in messages}
        self._open: dict[CaseKey, OpenCase] = {}
        self.new_cases: list[OpenCase] = []
        if keys:
            # Filter on the indexed author alone and match whole keys here: a row-value IN
            # list of hundreds of tuples costs PostgreSQL more to plan than to run.
            c = CASES.c
            rows = session.execute(
                select(
                    c.id, c.channel, c.conversation_id, c.author_id, c.priority, c.scenarios,
                    c.urgent, c.risk, c.needs_human, c.opened_at, c.updated_at, c.sla_due_at,
                    c.first_human_reply_at,
                )
                .where(
                    c.author_id.in_({author_id for _, _, author_id in keys}),
                    c.status != CaseStatus.CLOSED.value,
                )
                .order_by(c.id)
            )  # fmt: skip
            for row in rows:
                case = OpenCase(**row._asdict())
                if case_key(case) in keys:
                    self._open[case_key(case)] = case

    def apply(
        self, message: StoredMessage, classification: Classification, now: datetime
    ) -> TriageOutcome:
        priority = priority_for(classification)
        due = message.received_at + self.sla.due_after(priority)
        key = case_key(message)
        case = self._open.get(key)
        if case is None:
            case = OpenCase(
                channel=message.channel,
                conversation_id=message.conversation_id,
                author_id=message.author_id,
                priority=priority.value,
                scenarios=sorted(s.value for s in classification.scenarios),
                urgent=classification.urgent,
                risk=classification.risk,
                needs_human=classification.needs_human,
                opened_at=message.received_at,
                updated_at=now,
                sla_due_at=due,
            )
            self._open[key] = case
            self.new_cases.append(case)
            return TriageOutcome(case=case, opened=True, escalated=False)

        raised = higher(case.priority, priority)
        escalated = raised != case.priority
        case.priority = raised.value
        case.scenarios = sorted(set(case.scenarios) | {s.value for s in classification.scenarios})
        case.urgent = case.urgent or classification.urgent
        case.risk = case.risk or classification.risk
        case.needs_human = case.needs_human or classification.needs_human
        if case.first_human_reply_at is None and due < case.sla_due_at:
            case.sla_due_at = due
        case.updated_at = now
        case.changed = True
        return TriageOutcome(case=case, opened=False, escalated=escalated)

    def save(self, session: Session) -> None:
        """Insert the new cases (giving them ids and references) and update the changed ones."""
        changed = [c for c in self._open.values() if c.changed and c.id is not None]
        if self.new_cases:
            # Each new case has its own key in this batch, so the returned keys map ids back
            # without asking the database to keep parameter order (which SQLite can only do
            # one row at a time).
            by_key = {case_key(c): c for c in self.new_cases}
            inserted = bulk.insert_rows(
                session,
                CASES,
                [_insert_row(case) for case in self.new_cases],
                returning=("id", "channel", "conversation_id", "author_id"),
            )
            for row in inserted:
                by_key[(row.channel, row.conversation_id, row.author_id)].id = row.id
            bulk.update_rows(
                session,
                CASES,
                [
                    {"id": c.id, "reference": reference_for(cast(int, c.id), c.opened_at)}
                    for c in self.new_cases
                ],
            )
        bulk.update_rows(
            session,
            CASES,
            [
                {
                    "id": c.id,
                    "priority": c.priority,
                    "scenarios": c.scenarios,
                    "urgent": c.urgent,
                    "risk": c.risk,
                    "needs_human": c.needs_human,
                    "sla_due_at": c.sla_due_at,
                    "updated_at": c.updated_at,
                }
                for c in changed
            ],
        )


def _insert_row(case: OpenCase) -> dict[str, Any]:
    return {
        "channel": case.channel,
        "conversation_id": case.conversation_id,
        "author_id": case.author_id,
        "status": CaseStatus.NEW.value,
        "priority": case.priority,
        "scenarios": case.scenarios,
        "urgent": case.urgent,
        "risk": case.risk,
        "needs_human": case.needs_human,
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
        "sla_due_at": case.sla_due_at,
    }
