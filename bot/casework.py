"""Casework: what an officer does with a case (assign, reply, escalate, close, correct).

The console's case page calls these, and an API can call the same functions later: every
rule lives here, not in a route. Each function takes the acting user's name, refuses
anyone who is not an active officer or admin (the caller's own role check is the first
line, this the second), changes the case in the caller's transaction and writes the audit
log. Audit entries hold ids and states, never the words of a reply or a message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from jinja2 import TemplateError
from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.config import AccountSettings, SLASettings
from bot.crud import audit
from bot.errors import BotError
from bot.models import (
    Case,
    CaseStatus,
    Correction,
    Message,
    OutboundMessage,
    OutboxStatus,
    Priority,
    ReplyKind,
    Role,
    User,
)
from bot.templating import TEMPLATES_DIR, render_text
from bot.triage import higher, priority_for
from channels.limits import fits, length_for
from channels.registry import capabilities_for
from classifiers.base import INTENTS, SCENARIOS, Classification, Intent, Scenario
from classifiers.dataset import Example, parse_example
from classifiers.redact import redact

CASEWORK_ROLES = frozenset({Role.OFFICER.value, Role.ADMIN.value})
CANNED_DIR = "replies/canned"
# The tightest private-reply limit of the channels (Messenger's Send API), so a reply that
# passes here is never refused for its length after it was queued.
MAX_PRIVATE_REPLY_CHARS = 2000
_TITLE_PREFIX = "{# title:"


class CaseworkError(BotError):
    """An action the rules refuse; the message says which rule, for the officer to read."""


# -- looking ----------------------------------------------------------------------------------
def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise CaseworkError(f"no case {case_id}")
    return case


def messages_of(session: Session, case_id: int) -> list[Message]:
    """The whole conversation, oldest first."""
    return list(
        session.exec(
            select(Message)
            .where(Message.case_id == case_id)
            .order_by(col(Message.received_at), col(Message.id))
        )
    )


def replies_of(session: Session, case_id: int) -> list[OutboundMessage]:
    return list(
        session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.case_id == case_id)
            .order_by(col(OutboundMessage.created_at), col(OutboundMessage.id))
        )
    )


def latest_corrections(session: Session, message_ids: Iterable[int]) -> dict[int, Correction]:
    """The correction in force for each message that has one (the latest wins)."""
    ids = list(message_ids)
    if not ids:
        return {}
    latest = (
        select(func.max(Correction.id))
        .where(col(Correction.message_id).in_(ids))
        .group_by(col(Correction.message_id))
    )
    rows = session.exec(select(Correction).where(col(Correction.id).in_(latest)))
    return {c.message_id: c for c in rows}


def caseworkers(session: Session) -> list[User]:
    """Active people a case can be assigned to."""
    users = session.exec(
        select(User).where(col(User.disabled).is_(False)).order_by(col(User.username))
    )
    return [u for u in users if CASEWORK_ROLES & set(u.roles)]


def _caseworker(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.disabled:
        raise CaseworkError(f"{username} is not an active user")
    if not CASEWORK_ROLES & set(user.roles):
        raise CaseworkError(f"{username} is not an officer; casework needs the officer role")
    return user


def _open_case(session: Session, case_id: int) -> Case:
    case = get_case(session, case_id)
    if case.status == CaseStatus.CLOSED:
        raise CaseworkError(f"case {case.reference or case_id} is closed")
    return case


def _audit(
    session: Session, case: Case, action: str, by: str, at: datetime, **detail: object
) -> None:
    audit.record(
        session,
        at=at,
        actor=by,
        action=action,
        entity="case",
        entity_id=case.id or 0,
        detail=dict(detail),
    )


# -- acting -----------------------------------------------------------------------------------
def assign(session: Session, case_id: int, *, to: str, by: str, at: datetime) -> Case:
    """Give the case to an officer (``to`` may be ``by``: taking it yourself)."""
    _caseworker(session, by)
    case = _open_case(session, case_id)
    target = _caseworker(session, to)
    before = case.assignee
    case.assignee = target.username
    if case.status in (CaseStatus.NEW, CaseStatus.ACKNOWLEDGED):
        case.status = CaseStatus.ASSIGNED
    case.updated_at = at
    session.add(case)
    _audit(session, case, "case.assigned", by, at, assignee=target.username, was=before)
    return case


def escalate(
    session: Session,
    case_id: int,
    *,
    to: Priority | str | None = None,
    by: str,
    at: datetime,
    sla: SLASettings,
) -> Case:
    """Raise the priority (one step by default); a priority is never lowered here.

    Until someone replies, the reply is due within the new priority's SLA from now, or
    sooner if it already was.
    """
    _caseworker(session, by)
    case = _open_case(session, case_id)
    before = Priority(case.priority)
    if to is None:
        order = list(Priority)
        if before == Priority.P1:
            raise CaseworkError("the case is already P1, the highest priority")
        target = order[order.index(before) - 1]
    else:
        try:
            target = Priority(to)
        except ValueError:
            raise CaseworkError(f"no priority {to}; choose from P1, P2, P3, P4") from None
    if higher(target, before) != target or target == before:
        raise CaseworkError(f"escalating raises the priority; the case is already {before}")
    case.priority = target
    if case.first_human_reply_at is None:
        case.sla_due_at = min(case.sla_due_at, at + sla.due_after(target))
    case.updated_at = at
    session.add(case)
    _audit(session, case, "case.escalated", by, at, priority=target.value, was=before.value)
    return case


def close(session: Session, case_id: int, *, by: str, at: datetime) -> Case:
    _caseworker(session, by)
    case = _open_case(session, case_id)
    before = case.status
    case.status = CaseStatus.CLOSED
    case.closed_at = at
    case.updated_at = at
    session.add(case)
    _audit(session, case, "case.closed", by, at, was=before)
    return case


# -- replying ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CannedResponse:
    name: str  # the file name without .txt.j2
    title: str

    @property
    def template(self) -> str:
        return f"{CANNED_DIR}/{self.name}.txt.j2"


def canned_responses(root: Path = TEMPLATES_DIR) -> list[CannedResponse]:
    """The canned responses, by title; each file's first line is ``{# title: ... #}``."""
    found: list[CannedResponse] = []
    for path in sorted((root / CANNED_DIR).glob("*.txt.j2")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        line = first[0].strip() if first else ""
        name = path.name.removesuffix(".txt.j2")
        title = (
            line[len(_TITLE_PREFIX) :].removesuffix("#}").strip()
            if line.startswith(_TITLE_PREFIX)
            else name.replace("_", " ")
        )
        found.append(CannedResponse(name=name, title=title))
    return sorted(found, key=lambda c: c.title.lower())


def canned(name: str, root: Path = TEMPLATES_DIR) -> CannedResponse:
    for response in canned_responses(root):
        if response.name == name:
            return response
    raise CaseworkError(f"no canned response {name!r}")


def render_canned(
    name: str,
    *,
    case: Case,
    officer: str,
    account: AccountSettings,
    root: Path = TEMPLATES_DIR,
) -> str:
    """The canned response's wording for this case, ready for the officer to check or edit."""
    response = canned(name, root)
    try:
        return render_text(
            response.template,
            root=root,
            team_name=account.team_name,
            force_name=account.force_name,
            support_line=account.support_line,
            online_report_url=account.online_report_url,
            reference=case.reference or f"case {case.id}",
            officer=officer,
        )
    except TemplateError as exc:
        raise CaseworkError(f"the canned response {name!r} cannot be rendered: {exc}") from exc


def reply(
    session: Session,
    case_id: int,
    *,
    text: str,
    by: str,
    at: datetime,
    template: str | None = None,
) -> OutboundMessage:
    """Queue an officer's reply to the latest message of the case.

    It goes out as a human reply (``kind`` human, ``created_by`` the officer): channels with
    reply windows allow a person more time than the bot (Messenger's HUMAN_AGENT tag), and
    `delivery` sends it. Privately wherever the channel can, as acknowledgements do.
    """
    officer = _caseworker(session, by)
    case = _open_case(session, case_id)
    body = text.strip()
    if not body:
        raise CaseworkError("the reply is empty")
    # a name that came from a form must be one of ours
    response = canned(template) if template is not None else None
    last = session.exec(
        select(Message)
        .where(Message.case_id == case_id)
        .order_by(col(Message.received_at).desc(), col(Message.id).desc())
        .limit(1)
    ).first()
    if last is None or last.id is None:
        raise CaseworkError("the case has no message to reply to")
    capabilities = capabilities_for(case.channel)
    private = last.private or capabilities.private_reply
    if not private and not capabilities.public_reply:
        raise CaseworkError(f"{case.channel} cannot take a reply to this message")
    if private and len(body) > MAX_PRIVATE_REPLY_CHARS:
        raise CaseworkError(
            f"{len(body)} characters; a private reply is kept within {MAX_PRIVATE_REPLY_CHARS}"
        )
    if not private and not fits(case.channel, body):
        raise CaseworkError(
            f"{length_for(case.channel, body)} characters as {case.channel} counts them; "
            f"a public reply there must fit {capabilities.max_text_chars}"
        )
    outbound = OutboundMessage(
        case_id=case_id,
        in_reply_to_message_id=last.id,
        channel=case.channel,
        conversation_id=case.conversation_id,
        recipient_id=case.author_id,
        in_reply_to_external_id=last.external_id,
        private=private,
        kind=ReplyKind.HUMAN,
        template=response.template if response else None,
        text=body,
        status=OutboxStatus.QUEUED,
        created_by=officer.username,
        created_at=at,
    )
    session.add(outbound)
    session.flush()
    case.assignee = case.assignee or officer.username
    case.status = CaseStatus.AWAITING_REPLY
    case.updated_at = at
    session.add(case)
    _audit(
        session,
        case,
        "case.replied",
        by,
        at,
        outbox_id=outbound.id,
        template=template,
        private=private,
    )
    return outbound


# -- correcting the classification -------------------------------------------------------------
def correct(
    session: Session,
    message_id: int,
    *,
    scenarios: Sequence[str],
    urgent: bool,
    risk: bool,
    intent: str,
    by: str,
    at: datetime,
    sla: SLASettings,
) -> Correction:
    """Store the right labels for a message, and bring its case's tags into line.

    The case's scenarios and flags become those of its messages as corrected; its priority
    rises if the corrected labels call for more, and is never lowered (an officer who
    judges a case less pressing says so by how they handle it, not by a tag).
    """
    _caseworker(session, by)
    message = session.get(Message, message_id)
    if message is None or message.id is None:
        raise CaseworkError(f"no message {message_id}")
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise CaseworkError(f"unknown scenario {', '.join(unknown)}")
    if intent not in INTENTS:
        raise CaseworkError(f"unknown intent {intent!r}; choose from {', '.join(INTENTS)}")
    correction = Correction(
        message_id=message.id,
        scenarios=sorted(set(scenarios)),
        urgent=urgent,
        risk=risk,
        intent=intent,
        classifier=message.classifier,
        corrected_by=by,
        corrected_at=at,
    )
    session.add(correction)
    session.flush()
    case = session.get(Case, message.case_id) if message.case_id is not None else None
    detail: dict[str, object] = {
        "message_id": message.id,
        "scenarios": correction.scenarios,
        "urgent": urgent,
        "risk": risk,
        "intent": intent,
        "was": {
            "scenarios": list(message.scenarios),
            "urgent": message.urgent,
            "risk": message.risk,
            "intent": message.intent,
        },
    }
    if case is None:
        audit.record(
            session,
            at=at,
            actor=by,
            action="message.corrected",
            entity="message",
            entity_id=message.id,
            detail=detail,
        )
        return correction
    _retag(session, case, at, sla)
    _audit(session, case, "case.corrected", by, at, **detail, priority=case.priority)
    return correction


def _retag(session: Session, case: Case, at: datetime, sla: SLASettings) -> None:
    messages = messages_of(session, case.id or 0)
    corrections = latest_corrections(session, (m.id for m in messages if m.id is not None))
    labels = [effective_labels(m, corrections.get(m.id or 0)) for m in messages]
    case.scenarios = sorted({s.value for label in labels for s in label.scenarios})
    case.urgent = any(label.urgent for label in labels)
    case.risk = any(label.risk for label in labels)
    raised = case.priority
    for label in labels:
        raised = higher(raised, priority_for(label))
    if raised != case.priority:
        case.priority = raised
        if case.first_human_reply_at is None:
            case.sla_due_at = min(case.sla_due_at, at + sla.due_after(raised))
    case.updated_at = at
    session.add(case)


def effective_labels(message: Message, correction: Correction | None) -> Classification:
    """The labels that count for a message: an officer's correction, else the model's."""
    if correction is not None:
        return Classification(
            scenarios=tuple(Scenario(s) for s in correction.scenarios),
            urgent=correction.urgent,
            risk=correction.risk,
            intent=Intent(correction.intent),
        )
    return Classification(
        scenarios=tuple(Scenario(s) for s in message.scenarios if s in SCENARIOS),
        urgent=bool(message.urgent),
        risk=bool(message.risk),
        intent=Intent(message.intent) if message.intent in INTENTS else Intent.OTHER,
    )


def export_corrections(
    session: Session, out: TextIO, *, since: datetime | None = None, by: str, at: datetime
) -> int:
    """Write the corrections in force as training examples, one JSON object a line.

    The lines are the classifier's own format (`classifiers/data/*.jsonl`, checked by
    `classifiers.dataset.parse_example`), with personal details redacted from the text:
    an export leaves the operational database. Returns how many lines were written.
    """
    query = select(func.max(Correction.id)).group_by(col(Correction.message_id))
    if since is not None:
        query = query.where(col(Correction.corrected_at) >= since)
    rows = session.exec(
        select(Correction, Message)
        .join(Message, col(Message.id) == col(Correction.message_id))
        .where(col(Correction.id).in_(query))
        .order_by(col(Correction.id))
    )
    written = 0
    for correction, message in rows:
        text = redact(message.text).strip()
        if not text:
            continue  # nothing left to learn from (a photo with no words)
        example: Example = parse_example(
            {
                "text": text,
                "scenarios": correction.scenarios,
                "urgent": correction.urgent,
                "risk": correction.risk,
                "intent": correction.intent,
            },
            f"correction {correction.id}",
        )
        out.write(json.dumps(example.as_json(), ensure_ascii=False) + "\n")
        written += 1
    audit.record(
        session,
        at=at,
        actor=by,
        action="corrections.exported",
        entity="correction",
        entity_id="jsonl",
        detail={"examples": written, "since": since.isoformat() if since else None},
    )
    return written
