"""Reports from the /report web form, and additions through its "add to a report" page.

A submitted form becomes an ``InboundMessage`` on the ``web`` channel and goes through the
pipeline like any message (stored, classified, triaged into a case in the inbox), then a
report is recorded on that case. The form's nonce is the message's external id, so the
same form sent twice is one report, and the second answer shows the same reference and
code. The student's reference is the case's; the code derives from the report's
``public_id`` (here the nonce), so it can be shown again and is stored nowhere.

Adding needs the reference and the code; a wrong pair, an unknown reference and a locked
one all get the same answer, so guessing teaches nothing, and the answer never shows what
the report says. An addition joins the report's case while it is open (a case opened just
for it is closed as merged into the report's); on a closed case it stays a new case in the
inbox, linked to the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlmodel import Session, select

from bot.app import App
from bot.crud import audit
from bot.delivery import deliver_due
from bot.errors import BotError
from bot.incident_reports.codes import code_for, code_matches, report_key
from bot.incident_reports.flags import lock_case_keys, note_words, raise_case
from bot.messages import (
    Attachment,
    AttachmentKind,
    Author,
    Capabilities,
    DeliveryResult,
    InboundMessage,
    OutboundReply,
)
from bot.models import (
    Case,
    CaseStatus,
    IncidentReport,
    MediaItem,
    Message,
    MessageState,
    Priority,
    ReportEntry,
    ReportKind,
    ReportStatus,
    ReportStep,
)
from bot.triage import higher
from channels.base import BaseChannel, Batch

log = logging.getLogger(__name__)

CHANNEL = "web"
PROCESS_WAIT_SECONDS = 10.0
MAX_CODE_FAILURES = 5
CODE_LOCK = timedelta(hours=1)


class AddRefused(BotError):
    """The reference and code do not match (or the reference is locked): one answer for all."""

    def __init__(self) -> None:
        super().__init__(
            "That reference and code do not match a report we can add to. Check both and try "
            "again; after several wrong tries a reference is locked for an hour."
        )


@dataclass(frozen=True)
class WebReport:
    kind: ReportKind
    what: str
    where: str
    when: str
    who: str
    anonymous: bool
    contact: str  # how to reach them; dropped when anonymous


@dataclass(frozen=True)
class Filed:
    reference: str | None  # None only if the case could not be ready in time
    code: str
    sexual_offence: bool
    under_18: bool
    duplicate: bool


class WebPage(BaseChannel):
    """Automatic replies to the web form are shown on the page that answers it."""

    name: ClassVar[str] = CHANNEL
    capabilities: ClassVar[Capabilities] = Capabilities(private_reply=True)

    def __init__(self, at: datetime) -> None:
        self.at = at

    def reply(self, reply: OutboundReply) -> DeliveryResult:
        return DeliveryResult(
            external_id=f"web-page:{reply.in_reply_to_external_id}", delivered_at=self.at
        )


def author_for(public_id: str) -> str:
    """The web 'person' of a report: everything sent for it joins the same case key."""
    return f"web-{public_id}"


def compose(report: WebReport) -> str:
    """The message officers read: every answer under its question, as the student wrote it."""
    lines = [
        "Intelligence from the web form"
        if report.kind == ReportKind.INTELLIGENCE
        else "Report from the web form",
        f"What happened: {report.what.strip()}",
        f"Where: {report.where.strip() or '(not given)'}",
        f"When: {report.when.strip() or '(not given)'}",
        f"Who: {report.who.strip() or '(not given)'}",
        "Anonymous: yes" if report.anonymous else "Anonymous: no",
    ]
    if not report.anonymous and report.contact.strip():
        lines.append(f"Contact: {report.contact.strip()}")
    return "\n".join(lines)


def _attachments(media: Sequence[MediaItem]) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(
            kind=AttachmentKind(item.kind),
            media_type=item.media_type,
            size=item.size,
            sha256=item.sha256,
        )
        for item in media
    )


def _ingest_and_process(app: App, message: InboundMessage) -> tuple[bool, Message | None]:
    """Store and process one web message; (was it new, its row once processed)."""
    ingested = app.pipeline.ingest(Batch(messages=[message]), source=CHANNEL)
    deadline = time.monotonic() + PROCESS_WAIT_SECONDS
    while True:
        app.pipeline.process_pending()
        with app.db.session() as session:
            row = session.exec(
                select(Message).where(
                    Message.channel == CHANNEL, Message.external_id == message.external_id
                )
            ).first()
        if row is not None and row.state == MessageState.PROCESSED:
            return ingested.stored == 1, row
        if time.monotonic() > deadline:
            # Another worker claimed it and has not committed yet; it is safe in the inbox.
            log.warning("web report %s not processed in time", message.external_id)
            return ingested.stored == 1, None
        time.sleep(0.2)


def _deliver_page_replies(app: App) -> None:
    deliver_due(app.db, {CHANNEL: WebPage(app.clock.now())}, app.clock)


def file_web_report(app: App, *, nonce: str, form: WebReport, media: Sequence[MediaItem]) -> Filed:
    now = app.clock.now()
    author = author_for(nonce)
    message = InboundMessage(
        channel=CHANNEL,
        external_id=f"report-{nonce}",
        conversation_id=author,
        author=Author(id=author),
        text=compose(form),
        private=True,
        received_at=now,
        attachments=_attachments(media),
    )
    new, row = _ingest_and_process(app, message)
    key = report_key(app.settings)
    with app.db.session() as session:
        stored = (
            row
            or session.exec(
                select(Message).where(
                    Message.channel == CHANNEL, Message.external_id == message.external_id
                )
            ).one()
        )
        report = session.exec(
            select(IncidentReport).where(IncidentReport.public_id == nonce)
        ).first()
        duplicate = report is not None or not new
        if report is None:
            lock_case_keys(session, {(CHANNEL, author, author)})
            report = IncidentReport(
                case_id=stored.case_id,
                opening_message_id=stored.id,
                public_id=nonce,
                channel=CHANNEL,
                kind=form.kind,
                status=ReportStatus.FILED,
                step=ReportStep.DONE,
                anonymous=form.anonymous,
                skipped=[
                    s
                    for s, v in (("where", form.where), ("when", form.when), ("who", form.who))
                    if not v.strip()
                ],
                filed_reason="web",
                created_at=now,
                last_activity_at=now,
                filed_at=now,
            )
            session.add(report)
            session.flush()
            if stored.id is not None:
                session.add(
                    ReportEntry(
                        report_id=report.id or 0, message_id=stored.id, field="web", added_at=now
                    )
                )
            opened = session.get(Case, stored.case_id) if stored.case_id else None
            if opened is not None:  # whatever the classifier thought, this is a report
                raise_case(
                    session,
                    opened,
                    Priority.P3,
                    at=now,
                    sla=app.settings.sla,
                    received_at=stored.received_at,
                    why="report",
                )
            note_words(session, report, stored.text, at=now, sla=app.settings.sla)
            audit.record(
                session,
                at=now,
                actor="web-form",
                action="report.filed",
                entity="case",
                entity_id=stored.case_id or 0,
                detail={"report_id": report.id, "reason": "web", "media": len(media)},
            )
        case = session.get(Case, report.case_id) if report.case_id else None
        filed = Filed(
            reference=case.reference if case else None,
            code=code_for(key, report.public_id),
            sexual_offence=report.sexual_offence,
            under_18=report.safeguarding,
            duplicate=duplicate,
        )
    _deliver_page_replies(app)
    return filed


def link_waiting(session: Session, *, at: datetime, app: App) -> int:
    """Give web reports whose message was processed late their case (the worker's round)."""
    waiting = session.exec(
        select(IncidentReport, Message)
        .join(Message, Message.id == IncidentReport.opening_message_id)  # type: ignore[arg-type]
        .where(IncidentReport.case_id == None)  # noqa: E711
    ).all()
    linked = 0
    for report, message in waiting:
        if message.case_id is None:
            continue
        report.case_id = message.case_id
        session.add(report)
        note_words(session, report, message.text, at=at, sla=app.settings.sla)
        linked += 1
    return linked


@dataclass(frozen=True)
class Added:
    reference: str
    sexual_offence: bool


def _verify(session: Session, app: App, reference: str, code: str) -> IncidentReport:
    """The report the pair opens, or AddRefused (counting the failure against it)."""
    now = app.clock.now()
    found = session.exec(
        select(IncidentReport)
        .join(Case, Case.id == IncidentReport.case_id)  # type: ignore[arg-type]
        .where(Case.reference == reference.strip().upper())
    ).first()
    if found is None:
        code_matches(report_key(app.settings), "no-such-report", code)  # same work either way
        raise AddRefused
    if found.code_failures_since is None or now - found.code_failures_since > CODE_LOCK:
        found.code_failures, found.code_failures_since = 0, now
    locked = found.code_failures >= MAX_CODE_FAILURES
    if locked or not code_matches(report_key(app.settings), found.public_id, code):
        found.code_failures += 1
        session.add(found)
        audit.record(
            session,
            at=now,
            actor="web-form",
            action="report.code_refused",
            entity="case",
            entity_id=found.case_id or 0,
            detail={"report_id": found.id, "failures": found.code_failures, "locked": locked},
        )
        raise AddRefused
    return found


def add_to_report(
    app: App,
    *,
    reference: str,
    code: str,
    nonce: str,
    text: str,
    media: Sequence[MediaItem],
) -> Added:
    with app.db.session() as session:
        try:
            report = _verify(session, app, reference, code)
        except AddRefused:
            session.commit()  # the failure counts even though the request is refused
            raise
        public_id, report_id, report_case_id = report.public_id, report.id, report.case_id
    now = app.clock.now()
    author = author_for(public_id)
    message = InboundMessage(
        channel=CHANNEL,
        external_id=f"add-{nonce}",
        conversation_id=author,
        author=Author(id=author),
        text=f"Added to {reference.strip().upper()} from the web form:\n{text.strip()}",
        private=True,
        received_at=now,
        attachments=_attachments(media),
    )
    _, row = _ingest_and_process(app, message)
    with app.db.session() as session:
        current = session.get(IncidentReport, report_id)
        stored = session.exec(
            select(Message).where(
                Message.channel == CHANNEL, Message.external_id == message.external_id
            )
        ).one()
        if current is None:
            raise AddRefused
        report = current
        keys = {(CHANNEL, author, author)}
        report_case = session.get(Case, report_case_id) if report_case_id else None
        if report_case is not None:
            keys.add((report_case.channel, report_case.conversation_id, report_case.author_id))
        lock_case_keys(session, keys)
        already = session.exec(
            select(ReportEntry.id).where(ReportEntry.message_id == stored.id)
        ).first()
        if already is None and row is not None and stored.id is not None:
            if report_case is not None and stored.case_id not in (None, report_case.id):
                _merge(session, stored, report_case, at=now)
            session.add(
                ReportEntry(
                    report_id=report.id or 0,
                    message_id=stored.id,
                    field="addition",
                    added_at=now,
                )
            )
            report.last_activity_at = now
            note_words(session, report, stored.text, at=now, sla=app.settings.sla)
            audit.record(
                session,
                at=now,
                actor="web-form",
                action="report.added_to",
                entity="case",
                entity_id=report.case_id or 0,
                detail={"report_id": report.id, "message_id": stored.id, "media": len(media)},
            )
        added = Added(
            reference=report_case.reference if report_case and report_case.reference else reference,
            sexual_offence=report.sexual_offence,
        )
    _deliver_page_replies(app)
    return added


def _merge(session: Session, message: Message, into: Case, *, at: datetime) -> None:
    """Move an addition into the report's open case; close the case opened just for it."""
    if into.status == CaseStatus.CLOSED:
        return  # new information on a closed case stays a case of its own, in the inbox
    opened = session.get(Case, message.case_id) if message.case_id else None
    message.case_id = into.id
    session.add(message)
    if opened is not None:
        raised = higher(into.priority, opened.priority)
        if raised.value != into.priority:
            into.priority = raised.value
            if into.first_human_reply_at is None:
                into.sla_due_at = min(into.sla_due_at, opened.sla_due_at)
        into.scenarios = sorted({*into.scenarios, *opened.scenarios})
        into.urgent = into.urgent or opened.urgent
        into.risk = into.risk or opened.risk
        into.updated_at = at
        session.add(into)
        session.flush()
        others = session.exec(select(Message.id).where(Message.case_id == opened.id)).first()
        if others is None:
            opened.status = CaseStatus.CLOSED
            opened.closed_at = at
            opened.updated_at = at
            session.add(opened)
        audit.record(
            session,
            at=at,
            actor="bot",
            action="case.merged",
            entity="case",
            entity_id=opened.id or 0,
            detail={"into": into.id, "message_id": message.id},
        )
