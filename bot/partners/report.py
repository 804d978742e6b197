"""What a partner agency receives about a case: the agreement's fields, redacted, and nothing else.

The rules, in the order they are checked:

1. the agency is configured and its agreement covers one of the case's scenarios (only the
   covered scenarios are named: a licensing team does not learn of a mental-health tag);
2. intelligence is graded (3x5x2) and its handling code is one the agency may receive;
   with code C the conditions are printed on the report and in the covering email;
3. only the fields the agreement lists are filled in. The student's name, handle, account
   id and conversation never are: no field holds them. Their words (``summary``) and the
   officer's note pass through the redactor, after the names and handles the case's
   messages came from are struck out wherever they appear.

The report is one self-contained HTML page (no scripts, no remote resources, readable
printed); every value is escaped, so script in a report's text arrives inert.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.config import PartnerAgency, Settings
from bot.models import Case, Message, MessageAttachment
from bot.partners.access import PartnerError, reference_of, require_officer
from bot.partners.grading import Grade, holds_intelligence, latest_grading
from bot.templating import html_environment, text_environment
from classifiers.redact import redact

FIELD_LABELS = {
    "scenarios": "Kind of case",
    "reported_at": "Reported to the police",
    "priority": "Police priority",
    "status": "Case status",
    "channel": "Reported through",
    "summary": "What was reported (personal data removed)",
    "attachments": "Photos and videos held by the police",
}
PRIORITY_LABELS = {"P1": "risk to life", "P2": "urgent", "P3": "report or intelligence"}
CHANNEL_NAMES = {"twitter": "X (Twitter)", "facebook": "Facebook", "in_the_know": "In The Know"}
NAME = "[name]"
MAX_NOTE = 2000


@dataclass(frozen=True)
class Statement:
    """One message of the case as it leaves: when, and the redacted words."""

    at: str
    text: str


@dataclass(frozen=True)
class PartnerReport:
    case_id: int
    reference: str
    agency_key: str
    agency: PartnerAgency
    values: dict[str, str | list[Statement]]  # field -> value, in the agreement's order
    grade: Grade | None  # None: not intelligence, facts only
    grading_id: int | None
    note: str | None
    prepared_by: str
    prepared_at: str

    @property
    def fields(self) -> list[str]:
        return list(self.values)


def agency_named(settings: Settings, key: str) -> PartnerAgency:
    agency = settings.partners.agencies.get(key)
    if agency is None:
        known = ", ".join(settings.partners.agencies) or "none configured (partners.agencies)"
        raise PartnerError(f"no partner agency {key!r}; known: {known}")
    return agency


def prepare(
    session: Session,
    case: Case,
    agency_key: str,
    settings: Settings,
    *,
    by: str,
    at: datetime,
    note: str | None = None,
) -> PartnerReport:
    """Check the sharing rules and gather what may leave; raises ``PartnerError`` if refused."""
    require_officer(session, by)
    agency = agency_named(settings, agency_key)
    reference = reference_of(case)
    covered = [s for s in case.scenarios if s in agency.scenarios]
    if not covered:
        raise PartnerError(
            f"the agreement with {agency.name} covers {_words(agency.scenarios)}; {reference} "
            f"is {_words(case.scenarios) or 'not tagged with any scenario'}, so it is not shared"
        )
    grade, grading_id = None, None
    if holds_intelligence(session, case.id or 0):
        row = latest_grading(session, case.id or 0)
        if row is None:
            raise PartnerError(
                f"{reference} holds intelligence that is not graded; grade it first with "
                f"`campusbot partners grade {reference} --source 1-3 --intelligence A-E "
                "--handling P|C`"
            )
        grade, grading_id = Grade.of(row), row.id
        if grade.handling not in agency.handling:
            allowed = " or ".join(agency.handling) or "none (facts only, never intelligence)"
            raise PartnerError(
                f"{reference} is graded {grade.code}; the agreement with {agency.name} allows "
                f"handling codes {allowed}, so this intelligence may not go to it"
            )
    messages = _messages(session, case.id or 0)
    scrub = redactor_for(messages)
    tz = settings.tz
    values: dict[str, str | list[Statement]] = {}
    for field in agency.fields:
        if field == "scenarios":
            values[field] = _words(covered)
        elif field == "reported_at":
            values[field] = _local(case.opened_at, settings)
        elif field == "priority":
            values[field] = f"{case.priority} ({PRIORITY_LABELS.get(case.priority, 'general')})"
        elif field == "status":
            values[field] = case.status.replace("_", " ")
        elif field == "channel":
            values[field] = CHANNEL_NAMES.get(case.channel, case.channel)
        elif field == "summary":
            values[field] = [
                Statement(
                    at=m.received_at.astimezone(tz).strftime("%d %b %Y %H:%M"),
                    text=scrub(m.text) if m.text.strip() else "(no text)",
                )
                for m in messages
            ]
        elif field == "attachments":
            values[field] = _attachments(session, [m.id for m in messages if m.id is not None])
    written = (note or "").strip() or None
    if written is not None and len(written) > MAX_NOTE:
        raise PartnerError(f"a note is at most {MAX_NOTE} characters")
    return PartnerReport(
        case_id=case.id or 0,
        reference=reference,
        agency_key=agency_key,
        agency=agency,
        values=values,
        grade=grade,
        grading_id=grading_id,
        note=scrub(written) if written else None,
        prepared_by=by,
        prepared_at=_local(at, settings),
    )


def redactor_for(messages: Sequence[Message]) -> Callable[[str], str]:
    """The project's redactor, after striking out the names and handles of the people the
    case's messages came from, wherever their words mention them."""
    known: set[str] = set()
    for message in messages:
        for value in (message.author_name, message.author_handle):
            if value:
                known.add(value.strip().lstrip("@"))
                known.update(part for part in value.lstrip("@").split() if len(part) >= 2)
    names = sorted((n for n in known if n), key=len, reverse=True)
    pattern = (
        re.compile(
            r"(?<![\w@])@?(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)",
            re.IGNORECASE,
        )
        if names
        else None
    )

    def scrub(text: str) -> str:
        if pattern is not None:
            text = pattern.sub(NAME, text)
        return redact(text)

    return scrub


def render_html(report: PartnerReport, settings: Settings) -> str:
    return (
        html_environment()
        .get_template("partners/report.html.j2")
        .render(**_context(report, settings))
    )


def render_cover(report: PartnerReport, settings: Settings, *, attachment: str) -> str:
    """The covering email's text: reference, agreement, grading and conditions only."""
    body = (
        text_environment()
        .get_template("partners/email.txt.j2")
        .render(attachment=attachment, **_context(report, settings))
    )
    return body.strip() + "\n"


def subject_of(report: PartnerReport, settings: Settings) -> str:
    return (
        f"[{settings.partners.marking}] {settings.account.team_name}: report "
        f"{report.reference} for {report.agency.name}"
    )


def _context(report: PartnerReport, settings: Settings) -> dict[str, object]:
    return {
        "marking": settings.partners.marking,
        "force_name": settings.account.force_name,
        "team_name": settings.account.team_name,
        "report": report,
        "labels": FIELD_LABELS,
        "grade": report.grade,
    }


def _messages(session: Session, case_id: int) -> list[Message]:
    return list(
        session.exec(
            select(Message)
            .where(Message.case_id == case_id)
            .order_by(col(Message.received_at), col(Message.id))
        )
    )


def _attachments(session: Session, message_ids: list[int]) -> str:
    if not message_ids:
        return "none"
    kinds = Counter(
        session.exec(
            select(MessageAttachment.kind).where(col(MessageAttachment.message_id).in_(message_ids))
        )
    )
    if not kinds:
        return "none"
    held = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(kinds.items()))
    return f"{held} (not attached; ask quoting the reference)"


def _words(scenarios: Sequence[str]) -> str:
    return ", ".join(s.replace("_", " ") for s in scenarios)


def _local(at: datetime, settings: Settings) -> str:
    return at.astimezone(settings.tz).strftime("%a %d %b %Y, %H:%M %Z")
