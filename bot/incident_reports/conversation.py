"""The guided report conversation over DMs: one question at a time, state in the database.

Each processed private message from a student is handled once, in order:

1. a report of theirs still collecting answers takes it as the answer to its question;
2. otherwise a reference in it ("UCC-2026-000123 ...") adds it to that report, but only
   from the person and channel that made the report; anyone else is told, without learning
   anything about the report, to use the web page with the report's code;
3. otherwise, on a case that already has a report, it is added to that report quietly;
4. otherwise, if it says the student wants to report something (the classifier's intent
   or the word "report"), a report starts and the first question is asked.

Urgent or risk-to-life messages never start a questionnaire (the acknowledgement tells them
to call 999 and an officer takes over); in the middle of one they file the report at once.
An officer's own reply ends the questions, since a person is now talking to the student.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.config import Settings
from bot.crud import audit
from bot.incident_reports import replies
from bot.incident_reports.codes import code_for, new_public_id
from bot.incident_reports.flags import note_words, raise_case
from bot.incident_reports.signals import (
    is_done,
    is_skip,
    is_stop,
    mentions_reporting,
    references_in,
    yes_or_no,
)
from bot.models import (
    Case,
    IncidentReport,
    Message,
    MessageAttachment,
    Priority,
    ReportEntry,
    ReportKind,
    ReportStatus,
    ReportStep,
)
from classifiers.base import Intent

# The private channels a conversation runs on (the web form asks everything at once).
CONVERSATION_CHANNELS = frozenset({"twitter", "facebook"})
STEPS = (
    ReportStep.WHAT,
    ReportStep.WHERE,
    ReportStep.WHEN,
    ReportStep.WHO,
    ReportStep.MEDIA,
    ReportStep.ANONYMOUS,
)
REPORTING_INTENTS = frozenset({Intent.REPORT_INCIDENT.value, Intent.INTELLIGENCE.value})
STALE = timedelta(hours=24)  # Messenger's window for automatic replies
MIN_OPENING_WORDS = 6  # an opening this long that names a crime already says what happened


class Outcome:
    IGNORED = "ignored"
    STARTED = "started"
    ANSWERED = "answered"
    FILED = "filed"
    ADDED = "added"
    REFUSED = "refused"


@dataclass
class Turns:
    """What one round needs to handle messages: the session, settings, key and replies."""

    session: Session
    settings: Settings
    key: bytes
    at: datetime
    replies: replies.ReplyQueue = field(init=False)

    def __post_init__(self) -> None:
        self.replies = replies.ReplyQueue(self.session, self.settings)

    @property
    def idle(self) -> timedelta:
        return timedelta(hours=self.settings.reports.idle_hours)

    # -- one message ---------------------------------------------------------------------
    def handle(self, message: Message) -> str:
        if message.channel not in CONVERSATION_CHANNELS or not message.private:
            return Outcome.IGNORED
        if message.received_at < self.at - STALE:
            return Outcome.IGNORED  # a backlog (or a first run over history): nothing to say now
        active = self._collecting(message)
        if active is not None:
            return self._answer(active, message)
        references = references_in(message.text)
        if references:
            return self._add_by_reference(message, references[0])
        existing = self._report_of_case(message.case_id)
        if existing is not None:
            self._enter(existing, message, "addition")
            existing.last_activity_at = max(existing.last_activity_at, message.received_at)
            return Outcome.ADDED
        if self._starts_report(message):
            return self._start(message)
        return Outcome.IGNORED

    def _collecting(self, message: Message) -> IncidentReport | None:
        return self.session.exec(
            select(IncidentReport)
            .join(Case, col(Case.id) == col(IncidentReport.case_id))
            .where(
                IncidentReport.status == ReportStatus.COLLECTING,
                IncidentReport.channel == message.channel,
                Case.channel == message.channel,
                Case.author_id == message.author_id,
            )
            .order_by(col(IncidentReport.id).desc())
        ).first()

    def _report_of_case(self, case_id: int | None) -> IncidentReport | None:
        if case_id is None:
            return None
        return self.session.exec(
            select(IncidentReport).where(IncidentReport.case_id == case_id)
        ).first()

    def _starts_report(self, message: Message) -> bool:
        if message.case_id is None or message.urgent or message.risk:
            return False
        if message.received_at < self.at - self.idle:
            return False  # too old to start asking questions about now
        return message.intent in REPORTING_INTENTS or mentions_reporting(message.text)

    # -- starting ------------------------------------------------------------------------
    def _start(self, message: Message) -> str:
        kind = (
            ReportKind.INTELLIGENCE
            if message.intent == Intent.INTELLIGENCE.value
            else ReportKind.INCIDENT
        )
        report = IncidentReport(
            case_id=message.case_id,
            opening_message_id=message.id,
            public_id=new_public_id(),
            channel=message.channel,
            kind=kind,
            status=ReportStatus.COLLECTING,
            step=ReportStep.WHAT,
            created_at=self.at,
            last_activity_at=message.received_at,
        )
        self.session.add(report)
        self.session.flush()
        # "my phone was nicked from the library" already answers the first question.
        says_what = bool(message.scenarios) and len(message.text.split()) >= MIN_OPENING_WORDS
        self._enter(report, message, ReportStep.WHAT if says_what else "opening")
        audit.record(
            self.session,
            at=self.at,
            actor="bot",
            action="report.started",
            entity="case",
            entity_id=message.case_id or 0,
            detail={"report_id": report.id, "channel": message.channel, "kind": kind.value},
        )
        case = self.session.get(Case, message.case_id)
        if case is not None:  # whatever the classifier thought, this is a report
            raise_case(
                self.session,
                case,
                Priority.P3,
                at=self.at,
                sla=self.settings.sla,
                received_at=message.received_at,
                why="report",
            )
        if says_what:
            report.step = ReportStep.WHERE
        self._ask(report, message, first=True)
        return Outcome.STARTED

    # -- answers -------------------------------------------------------------------------
    def _answer(self, report: IncidentReport, message: Message) -> str:
        step = ReportStep(report.step)
        self._enter(report, message, step.value)
        report.last_activity_at = max(report.last_activity_at, message.received_at)
        if message.urgent or message.risk:
            return self._file(report, message, reason="urgent")
        case = self.session.get(Case, report.case_id) if report.case_id else None
        if case is not None and case.first_human_reply_at is not None:
            return self._file(report, message, reason="officer", reply=False)
        if is_stop(message.text):
            return self._file(report, message, reason="stopped")
        if step == ReportStep.MEDIA:
            if self._has_attachments(message) and not is_done(message.text):
                self.replies.queue(
                    replies.MEDIA_RECEIVED, to=message, case_id=report.case_id, at=self.at
                )
                return Outcome.ANSWERED
            return self._next(report, message)  # done, no, skip, or words instead
        if step == ReportStep.ANONYMOUS:
            if is_skip(message.text):
                report.skipped = [*report.skipped, step.value]
                return self._next(report, message)
            answer = yes_or_no(message.text)
            if answer is None and not report.reasked:
                report.reasked = True
                self._ask(report, message, again=True)
                return Outcome.ANSWERED
            report.anonymous = answer
            return self._next(report, message)
        if is_skip(message.text):
            report.skipped = [*report.skipped, step.value]
        return self._next(report, message)

    def _next(self, report: IncidentReport, message: Message) -> str:
        following = STEPS.index(ReportStep(report.step)) + 1
        report.reasked = False
        if following >= len(STEPS):
            return self._file(report, message, reason="complete")
        report.step = STEPS[following]
        self._ask(report, message)
        return Outcome.ANSWERED

    def _ask(
        self, report: IncidentReport, to: Message, *, first: bool = False, again: bool = False
    ) -> None:
        self.session.add(report)
        self.replies.queue(
            replies.QUESTION,
            to=to,
            case_id=report.case_id,
            at=self.at,
            step=report.step,
            kind=report.kind,
            first=first,
            again=again,
        )

    # -- filing --------------------------------------------------------------------------
    def _file(
        self, report: IncidentReport, to: Message | None, *, reason: str, reply: bool = True
    ) -> str:
        report.status = ReportStatus.FILED
        report.step = ReportStep.DONE
        report.filed_reason = reason
        report.filed_at = self.at
        self.session.add(report)
        case = self.session.get(Case, report.case_id) if report.case_id else None
        audit.record(
            self.session,
            at=self.at,
            actor="bot",
            action="report.filed",
            entity="case",
            entity_id=report.case_id or 0,
            detail={"report_id": report.id, "reason": reason},
        )
        if reply and to is not None and case is not None and case.reference:
            self.replies.queue(
                replies.FILED,
                to=to,
                case_id=report.case_id,
                at=self.at,
                reason=reason,
                kind=report.kind,
                reference=case.reference,
                code=code_for(self.key, report.public_id),
                sexual_offence=report.sexual_offence,
                under_18=report.safeguarding,
            )
        return Outcome.FILED

    def file_idle(self) -> int:
        """File every conversation the student has left for ``reports.idle_hours``."""
        idle = self.session.exec(
            select(IncidentReport).where(
                IncidentReport.status == ReportStatus.COLLECTING,
                col(IncidentReport.last_activity_at) < self.at - self.idle,
            )
        ).all()
        for report in idle:
            self._file(report, self._last_message(report), reason="idle")
        return len(idle)

    def _last_message(self, report: IncidentReport) -> Message | None:
        return self.session.exec(
            select(Message)
            .join(ReportEntry, col(ReportEntry.message_id) == col(Message.id))
            .where(ReportEntry.report_id == report.id)
            .order_by(col(Message.id).desc())
        ).first()

    # -- adding later --------------------------------------------------------------------
    def _add_by_reference(self, message: Message, reference: str) -> str:
        found = self.session.exec(
            select(IncidentReport, Case)
            .join(Case, col(Case.id) == col(IncidentReport.case_id))
            .where(Case.reference == reference)
        ).first()
        if found is None or (found[1].channel, found[1].author_id) != (
            message.channel,
            message.author_id,
        ):
            # The same words whether the reference exists or not: a guess learns nothing.
            self.replies.queue(replies.ADD_REFUSED, to=message, case_id=message.case_id, at=self.at)
            audit.record(
                self.session,
                at=self.at,
                actor="bot",
                action="report.add_refused",
                entity="message",
                entity_id=message.id or 0,
                detail={"channel": message.channel},
            )
            return Outcome.REFUSED
        report, case = found
        self._enter(report, message, "addition")
        report.last_activity_at = max(report.last_activity_at, message.received_at)
        audit.record(
            self.session,
            at=self.at,
            actor="bot",
            action="report.added_to",
            entity="case",
            entity_id=case.id or 0,
            detail={"report_id": report.id, "message_id": message.id},
        )
        self.replies.queue(
            replies.ADDED,
            to=message,
            case_id=message.case_id,
            at=self.at,
            reference=reference,
            sexual_offence=report.sexual_offence,
        )
        return Outcome.ADDED

    # -- shared --------------------------------------------------------------------------
    def _enter(self, report: IncidentReport, message: Message, what: str) -> None:
        """Record the message as part of the report, and what its words flag."""
        already = self.session.exec(
            select(ReportEntry.id).where(ReportEntry.message_id == message.id)
        ).first()
        if already is None and report.id is not None and message.id is not None:
            self.session.add(
                ReportEntry(
                    report_id=report.id, message_id=message.id, field=what, added_at=self.at
                )
            )
        note_words(
            self.session,
            report,
            message.text,
            at=self.at,
            sla=self.settings.sla,
            received_at=message.received_at,
        )

    def _has_attachments(self, message: Message) -> bool:
        return (
            self.session.exec(
                select(MessageAttachment.id).where(MessageAttachment.message_id == message.id)
            ).first()
            is not None
        )
