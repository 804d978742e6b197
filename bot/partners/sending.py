"""Emailing a report to a partner agency: previewed exactly, recorded first, audited, never lost.

A send writes its row (status ``sending``, the whole email kept) and commits before the
SMTP conversation starts. The mail server accepting it makes the row ``sent`` and drops the
kept email, leaving its SHA-256; any refusal or outage makes it ``failed`` with the error,
and `campusbot partners retry` sends the kept email again, byte for byte, with the same
Message-ID. Every step is audited with ids, codes and the hash, never the report's words.

Mail goes through the one SMTP client the bot has (bot.mailer) and the mail server under
``smtp``; reports come from ``partners.from_address`` when it is set, else
``smtp.from_address``.
Reports are HTML only: PDF would need a PDF renderer the project does not install, and the
HTML page prints to PDF from any browser.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.config import Settings, SmtpSettings
from bot.crud import audit
from bot.db import Database
from bot.errors import ConfigError, PermanentError, TransientError
from bot.mailer import Mailer, reply_code
from bot.models import PartnerSending, SendingStatus
from bot.partners.access import PartnerError, find_case, require_officer
from bot.partners.report import (
    PartnerReport,
    agency_named,
    prepare,
    render_cover,
    render_html,
    subject_of,
)

FORMATS = ("html",)
STALE_SENDING = timedelta(minutes=10)
WIDTH = 72
NO_ADDRESS = "(no address configured yet)"


@dataclass(frozen=True)
class Outgoing:
    """One email as it will leave, and the report it carries."""

    report: PartnerReport
    recipient: str | None
    message: EmailMessage

    @property
    def raw(self) -> str:
        return self.message.as_string()

    def preview(self) -> str:
        """Headers, covering text and the attachment's source: all that will leave."""
        lines = [f"{name}: {value}" for name, value in self.message.items()]
        for part in self.message.walk():
            if part.is_multipart():
                continue
            name = part.get_filename()
            lines += ["", f"----- {name or 'covering email'} ({part.get_content_type()}) -----"]
            lines.append(str(part.get_content()).rstrip())
        return "\n".join(lines) + "\n"


def check_format(format_: str) -> str:
    if format_ == "pdf":
        raise PartnerError(
            "PDF is not available: the project installs no PDF renderer. Send --format html; "
            "the report prints to PDF from any browser"
        )
    if format_ not in FORMATS:
        raise PartnerError(f"format is one of {', '.join(FORMATS)}")
    return format_


def sender_of(settings: Settings) -> str | None:
    """Reports come from the partners' own address where one is set."""
    return settings.partners.from_address or settings.smtp.from_address


def mail_server(settings: Settings) -> tuple[SmtpSettings, str]:
    """The mail server and the sender, once both are complete enough to send a report."""
    sender = sender_of(settings)
    gaps = [gap for gap in settings.smtp.missing() if gap != "smtp.from_address"]
    if sender is None:
        gaps.append("partners.from_address (or smtp.from_address)")
    if gaps or sender is None:
        raise ConfigError(
            "partner reports are emailed through the mail server under smtp; set " + ", ".join(gaps)
        )
    return settings.smtp, sender


def compose(
    session: Session,
    settings: Settings,
    *,
    reference: str,
    agency: str,
    by: str,
    at: datetime,
    format_: str = "html",
    note: str | None = None,
) -> Outgoing:
    """Build the email without sending or recording anything (what --dry-run shows)."""
    check_format(format_)
    case = find_case(session, reference)
    report = prepare(session, case, agency, settings, by=by, at=at, note=note)
    recipient = report.agency.email
    sender = sender_of(settings)
    attachment = f"{report.reference}-{report.agency_key}.html"
    message = EmailMessage()
    message["From"] = sender or "(no sender configured yet)"
    message["To"] = recipient or NO_ADDRESS
    message["Subject"] = subject_of(report, settings)
    message["Date"] = format_datetime(at)
    domain = (sender or "").rpartition("@")[2] or "campusbot.invalid"
    message["Message-ID"] = make_msgid(idstring="campusbot.partner-report", domain=domain)
    message.set_content(_wrapped(render_cover(report, settings, attachment=attachment)))
    message.add_attachment(
        render_html(report, settings), subtype="html", filename=attachment, cte="base64"
    )
    return Outgoing(report=report, recipient=recipient, message=message)


def send_report(
    db: Database,
    settings: Settings,
    clock: Clock,
    *,
    reference: str,
    agency: str,
    by: str,
    format_: str = "html",
    note: str | None = None,
) -> PartnerSending:
    """Record, then send. A failed send comes back as a ``failed`` row, kept for a retry."""
    smtp, sender = mail_server(settings)
    now = clock.now()
    try:
        with db.session() as session:
            outgoing = compose(
                session,
                settings,
                reference=reference,
                agency=agency,
                by=by,
                at=now,
                format_=format_,
                note=note,
            )
    except PartnerError as refused:
        with db.session() as session:  # a refused disclosure is on the record too
            audit.record(
                session,
                at=now,
                actor=by,
                action="partner.report_refused",
                entity="case",
                entity_id=reference.strip()[:32],
                detail={"agency": agency, "reason": str(refused)},
            )
        raise
    report, recipient = outgoing.report, outgoing.recipient
    if recipient is None:
        raise PartnerError(
            f"no email address for {report.agency.name}: set partners.agencies."
            f"{report.agency_key}.email to the mailbox the agreement names"
        )
    raw = outgoing.raw
    with db.session() as session:
        row = PartnerSending(
            case_id=report.case_id,
            case_reference=report.reference,
            agency=report.agency_key,
            recipient=recipient,
            format=format_,
            fields=report.fields,
            grading_id=report.grading_id,
            status=SendingStatus.SENDING,
            attempts=1,
            sent_by=by,
            created_at=now,
            attempted_at=now,
            message_id=str(outgoing.message["Message-ID"]),
            subject=str(outgoing.message["Subject"]),
            body_sha256=hashlib.sha256(raw.encode()).hexdigest(),
            body=raw,
        )
        session.add(row)
        session.flush()
        _audit(
            session,
            row,
            now,
            by,
            "partner.report_sending",
            grade=report.grade.code if report.grade else None,
        )
        sending_id = row.id or 0
    return _attempt(db, smtp, sender, clock, sending_id, outgoing.message, recipient, by)


def retry(
    db: Database, settings: Settings, clock: Clock, *, sending_id: int, by: str
) -> PartnerSending:
    """Send a failed report again, exactly as it was first composed."""
    smtp, sender = mail_server(settings)
    now = clock.now()
    with db.session() as session:
        require_officer(session, by)
        row = session.get(PartnerSending, sending_id)
        if row is None:
            raise PartnerError(f"no partner sending {sending_id}")
        stale = row.status == SendingStatus.SENDING and row.attempted_at < now - STALE_SENDING
        if row.status != SendingStatus.FAILED and not stale:
            raise PartnerError(
                f"sending {sending_id} is {row.status}; only a failed one is sent again"
            )
        agency_named(settings, row.agency)  # an agreement withdrawn since stops the retry
        if row.body is None:
            raise PartnerError(f"sending {sending_id} no longer holds its report; send it anew")
        row.status = SendingStatus.SENDING
        row.attempts += 1
        row.attempted_at = now
        session.add(row)
        _audit(session, row, now, by, "partner.report_sending", retry=True)
        parsed = message_from_string(row.body, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        recipient = row.recipient
    return _attempt(db, smtp, sender, clock, sending_id, parsed, recipient, by)


def _attempt(
    db: Database,
    smtp: SmtpSettings,
    sender: str,
    clock: Clock,
    sending_id: int,
    message: EmailMessage,
    recipient: str,
    by: str,
) -> PartnerSending:
    error: TransientError | PermanentError | None = None
    try:
        with Mailer(smtp, sender=sender) as mailer:
            mailer.send(message, recipient)
    except (TransientError, PermanentError) as exc:
        error = exc
    now = clock.now()
    with db.session() as session:
        row = session.get(PartnerSending, sending_id)
        assert row is not None
        if error is None:
            row.status = SendingStatus.SENT
            row.sent_at = now
            row.body = None  # the hash stays as proof of what left; no second copy of the case
            row.last_error = None
            _audit(session, row, now, by, "partner.report_sent")
        else:
            row.status = SendingStatus.FAILED
            row.last_error = str(error)
            _audit(session, row, now, by, "partner.report_failed", error=reply_code(error))
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def sendings(session: Session, *, limit: int = 100) -> list[PartnerSending]:
    return list(
        session.exec(select(PartnerSending).order_by(col(PartnerSending.id).desc()).limit(limit))
    )


def _audit(
    session: Session, row: PartnerSending, at: datetime, by: str, action: str, **detail: object
) -> None:
    audit.record(
        session,
        at=at,
        actor=by,
        action=action,
        entity="partner_sending",
        entity_id=row.id or 0,
        detail={
            "case_id": row.case_id,
            "reference": row.case_reference,
            "agency": row.agency,
            "recipient": row.recipient,
            "fields": list(row.fields),
            "grading_id": row.grading_id,
            "format": row.format,
            "sha256": row.body_sha256,
            "attempt": row.attempts,
            **detail,
        },
    )


def _wrapped(body: str) -> str:
    """Lines of at most 72 characters; templates write each paragraph on one line."""
    return (
        "\n".join(
            textwrap.fill(line, WIDTH, break_long_words=False, break_on_hyphens=False) or line
            for line in body.strip().splitlines()
        )
        + "\n"
    )
