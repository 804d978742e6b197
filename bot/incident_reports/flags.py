"""Safeguarding and signposting flags a report's words raise, on the report and its case.

A report suggesting someone under 18 is flagged for safeguarding: the report records which
kind of phrase (never the words), and its case gets a visible ``safeguarding_under_18`` tag
and at least priority P2 with that priority's SLA, like any escalation, in the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlmodel import Session

from bot.config import SLASettings
from bot.crud import audit
from bot.incident_reports.signals import suggests_sexual_offence, under_18_signal
from bot.models import Case, IncidentReport, Priority
from bot.triage import higher

SAFEGUARDING_TAG = "safeguarding_under_18"


def lock_case_keys(session: Session, keys: set[tuple[str, str, str]]) -> None:
    """Take the pipeline's per-case advisory locks (PostgreSQL), in its fixed order.

    Triage reads a case, then writes its priority back; holding the same lock keeps a
    safeguarding escalation from being overwritten by a concurrent batch. On SQLite the
    caller's first write already serialises the whole transaction.
    """
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    names = sorted(
        f"case|{channel}|{conversation}|{author}" for channel, conversation, author in keys
    )
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtext(k)) FROM"
            " (SELECT k FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n)"
            " ORDER BY n) AS ordered"
        ),
        {"keys": names},
    )


def note_words(
    session: Session,
    report: IncidentReport,
    words: str,
    *,
    at: datetime,
    sla: SLASettings,
    received_at: datetime | None = None,
) -> None:
    """Raise the report's flags for these words, and flag its case for safeguarding."""
    if not report.sexual_offence and suggests_sexual_offence(words):
        report.sexual_offence = True
    if not report.safeguarding:
        signal = under_18_signal(words)
        if signal is not None:
            report.safeguarding = True
            report.safeguarding_signal = signal
    session.add(report)
    if report.safeguarding and report.case_id is not None:
        case = session.get(Case, report.case_id)
        if case is not None:
            flag_case(session, case, report, at=at, sla=sla, received_at=received_at or at)


def flag_case(
    session: Session,
    case: Case,
    report: IncidentReport,
    *,
    at: datetime,
    sla: SLASettings,
    received_at: datetime,
) -> bool:
    """Tag the case and raise it to at least P2; False if it was already flagged."""
    if SAFEGUARDING_TAG in case.scenarios:
        return False
    case.scenarios = sorted({*case.scenarios, SAFEGUARDING_TAG})
    before = case.priority
    raise_case(session, case, Priority.P2, at=at, sla=sla, received_at=received_at, why=None)
    audit.record(
        session,
        at=at,
        actor="bot",
        action="case.safeguarding_flagged",
        entity="case",
        entity_id=case.id or 0,
        detail={
            "report_id": report.id,
            "signal": report.safeguarding_signal,
            "priority_before": before,
            "priority": case.priority,
        },
    )
    return True


def raise_case(
    session: Session,
    case: Case,
    at_least: Priority,
    *,
    at: datetime,
    sla: SLASettings,
    received_at: datetime,
    why: str | None,
) -> bool:
    """Raise the case to ``at_least`` (never lower it), with that priority's SLA.

    ``why`` names the reason in a ``case.escalated`` audit entry; None when the caller
    writes its own entry.
    """
    before = case.priority
    raised = higher(case.priority, at_least)
    case.updated_at = at
    session.add(case)
    if raised.value == before:
        return False
    case.priority = raised.value
    if case.first_human_reply_at is None:
        case.sla_due_at = min(case.sla_due_at, received_at + sla.due_after(raised.value))
    if why is not None:
        audit.record(
            session,
            at=at,
            actor="bot",
            action="case.escalated",
            entity="case",
            entity_id=case.id or 0,
            detail={"from": before, "to": case.priority, "reason": why},
        )
    return True
