"""Triage: turn a classified message into a case with a priority and an SLA.

A case is one open conversation with one person on one channel. A later message in it
joins the case and can only raise its priority, never lower it: a follow-up saying "it's
fine now" is for an officer to judge, not the bot.

``CaseBook`` works a batch at a time: it loads the open cases a batch touches in one query
and keeps new ones in memory until the pipeline flushes them together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from bot.config import SLASettings
from bot.models import Case, CaseStatus, Message, Priority
from classifiers.base import Classification, Intent

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


def case_key(message: Message) -> CaseKey:
    return (message.channel, message.conversation_id, message.author_id)


def reference_for(case: Case) -> str:
    return f"UCC-{case.opened_at.year}-{case.id:06d}"


@dataclass(frozen=True)
class TriageOutcome:
    case: Case
    opened: bool  # True when this message opened a new case
    escalated: bool  # True when it raised an existing case's priority


class CaseBook:
    def __init__(self, session: Session, messages: Iterable[Message], sla: SLASettings) -> None:
        self.sla = sla
        keys = {case_key(m) for m in messages}
        self._open: dict[CaseKey, Case] = {}
        self.new_cases: list[Case] = []
        if keys:
            for case in session.exec(
                select(Case)
                .where(
                    tuple_(Case.channel, Case.conversation_id, Case.author_id).in_(list(keys)),
                    col(Case.status) != CaseStatus.CLOSED,
                )
                .order_by(col(Case.id))
            ):
                self._open[(case.channel, case.conversation_id, case.author_id)] = case

    def apply(
        self, message: Message, classification: Classification, now: datetime
    ) -> TriageOutcome:
        priority = priority_for(classification)
        due = message.received_at + self.sla.due_after(priority)
        key = case_key(message)
        case = self._open.get(key)
        if case is None:
            case = Case(
                channel=message.channel,
                conversation_id=message.conversation_id,
                author_id=message.author_id,
                priority=priority,
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
        case.priority = raised
        case.scenarios = sorted(set(case.scenarios) | {s.value for s in classification.scenarios})
        case.urgent = case.urgent or classification.urgent
        case.risk = case.risk or classification.risk
        case.needs_human = case.needs_human or classification.needs_human
        if case.first_human_reply_at is None and due < case.sla_due_at:
            case.sla_due_at = due
        case.updated_at = now
        return TriageOutcome(case=case, opened=False, escalated=escalated)
