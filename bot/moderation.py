"""Suggesting that an officer hide a public comment and answer its author privately.

A public comment that discloses a sexual offence or a risk to life, or names a victim or a
suspect, harms the people in it for as long as it stays up, and can prejudice a case. The
bot only *suggests*: hiding is an officer's decision, as tagging is the classifier's only
power. Facebook keeps a hidden comment visible to its author and their friends, so the
author is not told they were silenced; a Private Reply (one per comment, within 7 days of
it) then invites them to talk in private.

Names are found without a language model: words that look like a name after a cue such as
"it was", "called", "attacked by", or before "groped me"; and people the commenter tagged
(Graph's ``message_tags``). Personal details such as phone numbers and vehicle
registrations are found with the redaction patterns (``classifiers.redact``). Recall comes
first: a suggestion an officer dismisses costs a click, a missed one can cost much more.

The console calls, for a public Facebook comment:
- ``suggest_moderation(message)`` when showing it (inbox and case views);
- ``hide_comment(...)`` for its "Hide" (and "Show again") button;
- ``private_reply_block(...)`` to enable "Reply privately" or say why not, and
  ``queue_private_reply(...)`` to send one through the outbox like any officer's reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.crud import audit
from bot.errors import BotError
from bot.models import Message, OutboundMessage, OutboxStatus, ReplyKind
from classifiers.base import Classification, Intent
from classifiers.redact import redact

HIDEABLE_CHANNELS = frozenset({"facebook"})
PRIVATE_REPLY_WINDOW = timedelta(days=7)
PRIVATE_REPLY_MAX_CHARS = 2000  # Messenger's limit for a text message
_REPLACEABLE = (OutboxStatus.NEEDS_APPROVAL, OutboxStatus.QUEUED)
REPLACED = "withdrawn: an officer answered this comment with their own Private Reply"
CRIME_INTENTS = frozenset({Intent.REPORT_INCIDENT.value, Intent.INTELLIGENCE.value})


class Reason(StrEnum):
    SEXUAL_OFFENCE = "sexual_offence"
    RISK_TO_LIFE = "risk_to_life"
    NAMES_PERSON = "names_person"
    PERSONAL_DATA = "personal_data"


@dataclass(frozen=True)
class Finding:
    reason: Reason
    detail: str  # what was seen, in words for the officer


@dataclass(frozen=True)
class ModerationSuggestion:
    """Hide this comment and reply privately, and why. Never acted on without an officer."""

    message_id: int | None
    comment_id: str
    findings: tuple[Finding, ...]
    names: tuple[str, ...]  # for highlighting in the console; never written to logs
    private_reply_until: datetime

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(f.reason for f in self.findings)

    def summary(self) -> str:
        return "Consider hiding this comment and replying privately: " + "; ".join(
            f.detail for f in self.findings
        )


class ModerationError(BotError):
    """An officer's moderation request that cannot be done; the message says why."""


class CommentModerator(Protocol):
    def hide_comment(self, comment_id: str, *, hidden: bool = True) -> None: ...


# -- what a comment discloses -----------------------------------------------------------------
_SEXUAL_OFFENCE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\brap(?:e|ed|es|ing|ist|ists)\b(?!\s+alarms?)",
        r"\bsexual(?:ly)?\s+(?:assault\w*|abus\w*|harass\w*|offen[cs]e\w*|touch\w*|attack\w*)",
        r"\bgrop(?:e|ed|es|ing)\b",
        r"\bmolest\w*",
        r"\bindecent(?:ly)?\s+(?:exposure|exposed|assault\w*|images?|photos?)",
        r"\bexpos(?:ed|ing)\s+(?:him|them|her)sel(?:f|ves)\b",
        r"\bflash(?:ed|ing)\s+(?:me|us|her|them|at)\b",
        r"\bupskirt\w*",
        r"\brevenge\s+porn\b",
        r"\b(?:shared|leaked|posted|sent|spread)\s+(?:round\s+)?(?:my|her|his|their)\s+nudes\b",
        r"\bnudes\s+(?:got\s+|were\s+|have\s+been\s+)?(?:leaked|shared|posted|sent\s+round)",
        r"\bstealth(?:ed|ing)\b",
        r"\bsextort\w*",
        r"\bnon[-\s]?consensual\b",
        r"\bwithout\s+(?:my|her|his|their)\s+consent\b",
        r"\b(?:didn'?t|did\s+not|never)\s+consent",
        r"\btouched\s+(?:me|her|him|them)\s+(?:up|inappropriately)\b",
        r"\bhands?\s+(?:up|down|inside)\s+(?:my|her|his)\s+(?:skirt|dress|top|shirt|pants|knickers)",
        r"\bforced\s+(?:me|her|him|them)\s+(?:to\s+have\s+sex|into\s+sex|to\s+do\s+stuff)",
    )
]

_PART = r"[A-Z][a-z]+(?:['-][A-Z][a-z]+)?"
_NAME = rf"(?P<name>{_PART}(?:\s+{_PART})?)"
_VERBS = (
    r"(?:raped|assaulted|attacked|groped|stabbed|spiked|mugged|robbed|punched|hit|beat|"
    r"battered|threatened|followed|harassed|touched|abused|molested|flashed)"
)
_KIN = r"(?:friend|mate|flatmate|housemate|roommate|girlfriend|boyfriend|sister|brother|cousin)"
# (pattern, needs the comment to be about a crime already?)
_NAME_CUES: list[tuple[re.Pattern[str], bool]] = [
    (re.compile(rf"(?i:\b{_VERBS}\s+(?:\w+\s+)?by)\s+{_NAME}"), False),
    (re.compile(rf"{_NAME}\s+(?i:{_VERBS})\s+(?i:me|her|him|them|us|my|someone)\b"), False),
    (re.compile(rf"{_NAME}\s+(?i:(?:was|got|has\s+been)\s+{_VERBS})"), False),
    (re.compile(rf"(?i:\b{_VERBS}\s+(?:my\s+{_KIN}\s+)?){_NAME}"), False),
    (
        re.compile(
            rf"(?i:\b(?:the\s+)?(?:suspect|attacker|offender|victim|perpetrator)\s+"
            rf"(?:is|was|'s))\s+{_NAME}"
        ),
        False,
    ),
    (re.compile(rf"(?i:\bit\s+was(?:\s+definitely)?)\s+{_NAME}"), True),
    (
        re.compile(
            rf"(?i:\b(?:guy|lad|man|bloke|boy|girl|woman|person|someone)\s+(?:called|named))"
            rf"\s+{_NAME}"
        ),
        True,
    ),
    (re.compile(rf"(?i:\b(?:his|her|their)\s+name(?:'s|\s+is|\s+was))\s+{_NAME}"), True),
    (re.compile(rf"(?i:\bmy\s+{_KIN})\s+{_NAME}"), True),
]
# Capitalised words that follow the cues but are not people: pronouns, days, and places
# students name around the Preston campus.
_NOT_NAMES = frozenset(
    w.lower()
    for w in """
    I I'm He She They We You It This That The A An My His Her Their Our Me Him Them Us
    Someone Somebody Anyone Nobody Everyone Police Security Campus Uni University UCLan SU
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday Today Tonight Yesterday
    January February March April May June July August September October November December
    Preston Lancashire Foster Friargate Maudland Source Library Halls Adelphi Harrington
    Greenbank Darwin Livesey Leighton Victoria Roper Fylde Corporation Moor Lane Tesco Aldi
    Lidl Spar Greggs Sainsbury's Freshers Welcome Week Christmas God Jesus Facebook Insta
    Snapchat Whatsapp Uber Lad Guy Man Bloke Boy Girl Woman Person Bouncer Staff Driver Taxi
    """.split()
)
_REDACTION_LABELS = {
    "[phone]": "a phone number",
    "[email]": "an email address",
    "[vehicle]": "a vehicle registration",
    "[postcode]": "a postcode",
    "[student-number]": "a student number",
}


def _names_in(text: str) -> tuple[list[str], list[str]]:
    """(names found by a crime cue, names found by a weaker cue)."""
    strong: list[str] = []
    weak: list[str] = []
    for pattern, needs_context in _NAME_CUES:
        for match in pattern.finditer(text):
            name = _clean(match.group("name"))
            if name:
                (weak if needs_context else strong).append(name)
    return strong, weak


def _clean(candidate: str) -> str | None:
    """ "Callum Pryce" stays whole, "Callum Friday" is "Callum", "Friday" or "Lad" is none."""
    words = candidate.split()
    if words[0].lower() in _NOT_NAMES:
        return None
    return " ".join(w for w in words if w.lower() not in _NOT_NAMES)


def _tagged_people(raw: dict[str, Any] | None) -> list[str]:
    """People the commenter tagged: on a polled comment, or inside a webhook's ``value``."""
    if not isinstance(raw, dict):
        return []
    value = raw.get("value")
    tags = raw.get("message_tags") or (
        value.get("message_tags") if isinstance(value, dict) else None
    )
    if not isinstance(tags, list):
        return []
    return [
        str(tag["name"])
        for tag in tags
        if isinstance(tag, dict) and tag.get("type", "user") == "user" and tag.get("name")
    ]


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return tuple(seen.values())


def suggest_moderation(
    message: Message, classification: Classification | None = None
) -> ModerationSuggestion | None:
    """A suggestion for a public comment that should not stay up as it is, else None.

    ``classification`` is the classifier's view; without it the tags stored on the message
    are used (they are the same once the message is processed).
    """
    if message.channel not in HIDEABLE_CHANNELS or message.private:
        return None
    text = message.text or ""
    scenarios: Sequence[str]
    intent: str | None
    if classification is not None:
        scenarios = [s.value for s in classification.scenarios]
        risk, intent = classification.risk, classification.intent.value
    else:
        scenarios, risk, intent = message.scenarios or [], bool(message.risk), message.intent
    findings: list[Finding] = []
    sexual = next((m.group(0) for p in _SEXUAL_OFFENCE if (m := p.search(text))), None)
    if sexual is not None:
        findings.append(Finding(Reason.SEXUAL_OFFENCE, f'discloses a sexual offence ("{sexual}")'))
    if risk:
        findings.append(
            Finding(Reason.RISK_TO_LIFE, "the classifier sees a risk to someone's life")
        )
    about_crime = bool(scenarios) or intent in CRIME_INTENTS or bool(findings)
    strong, weak = _names_in(text)
    names = _unique([*strong, *((weak + _tagged_people(message.raw)) if about_crime else [])])
    if names:
        findings.append(
            Finding(Reason.NAMES_PERSON, f"names someone involved ({', '.join(names)})")
        )
    if about_crime or names:
        redacted = redact(text)
        shown = [
            words
            for label, words in _REDACTION_LABELS.items()
            if label in redacted and label not in text
        ]
        if shown:
            findings.append(Finding(Reason.PERSONAL_DATA, "shows " + ", ".join(shown)))
    if not findings:
        return None
    return ModerationSuggestion(
        message_id=message.id,
        comment_id=message.external_id,
        findings=tuple(findings),
        names=names,
        private_reply_until=message.received_at + PRIVATE_REPLY_WINDOW,
    )


# -- what an officer does about it -----------------------------------------------------------
def _require_comment(message: Message) -> None:
    if message.channel not in HIDEABLE_CHANNELS or message.private:
        raise ModerationError(
            f"message {message.id} is not a public Facebook comment; only those can be hidden "
            "or get a Private Reply"
        )


def hide_comment(
    session: Session,
    channel: CommentModerator,
    message: Message,
    *,
    officer: str,
    at: datetime,
    hidden: bool = True,
) -> None:
    """Hide (or show again) the comment on Facebook, and audit who did it.

    The channel's typed errors (RateLimited, AuthError...) reach the caller unchanged, so the
    console can say when to try again; nothing is recorded unless Facebook confirmed.
    """
    _require_comment(message)
    channel.hide_comment(message.external_id, hidden=hidden)
    audit.record(
        session,
        at=at,
        actor=officer,
        action="comment.hidden" if hidden else "comment.shown",
        entity="message",
        entity_id=message.id or 0,
        detail={"channel": message.channel, "case_id": message.case_id},
    )


def private_reply_block(session: Session, message: Message, *, now: datetime) -> str | None:
    """Why this comment cannot get a Private Reply now, or None if it can.

    An automatic acknowledgement that has not gone out yet does not count: the officer's
    reply replaces it (``queue_private_reply``)."""
    if message.channel not in HIDEABLE_CHANNELS or message.private:
        return "only a public Facebook comment can get a Private Reply"
    if now - message.received_at > PRIVATE_REPLY_WINDOW:
        return (
            "Facebook allows a Private Reply only within 7 days of the comment; "
            "reply publicly instead"
        )
    earlier = session.exec(
        select(OutboundMessage.status, OutboundMessage.kind).where(
            OutboundMessage.in_reply_to_message_id == message.id,
            col(OutboundMessage.private).is_(True),
            OutboundMessage.status != OutboxStatus.FAILED,
        )
    ).all()
    used = [s for s, kind in earlier if not (kind == ReplyKind.AUTO_ACK and s in _REPLACEABLE)]
    if used:
        return f"this comment already has a Private Reply ({used[0]}); Facebook allows one"
    return None


def queue_private_reply(
    session: Session, message: Message, text: str, *, officer: str, at: datetime
) -> OutboundMessage:
    """Queue an officer's Private Reply; the delivery job sends it, with its retries.

    Facebook allows one Private Reply per comment, so an automatic acknowledgement still
    waiting (for approval, or its turn) is withdrawn in its favour; one already being sent
    is not, and then the officer is told."""
    if message.id is None:
        raise ModerationError("the message is not stored yet")
    body = text.strip()
    if not body:
        raise ModerationError("the Private Reply is empty")
    if len(body) > PRIVATE_REPLY_MAX_CHARS:
        raise ModerationError(
            f"a Private Reply is at most {PRIVATE_REPLY_MAX_CHARS} characters ({len(body)} given)"
        )
    # Lock the message row (PostgreSQL), so two officers cannot both queue the one reply.
    session.exec(select(Message.id).where(Message.id == message.id).with_for_update()).first()
    block = private_reply_block(session, message, now=at)
    if block is not None:
        raise ModerationError(block)
    # A conditional UPDATE: an acknowledgement the delivery job claimed meanwhile is kept.
    session.execute(
        update(OutboundMessage)
        .where(
            col(OutboundMessage.in_reply_to_message_id) == message.id,
            col(OutboundMessage.private).is_(True),
            col(OutboundMessage.kind) == ReplyKind.AUTO_ACK,
            col(OutboundMessage.status).in_(list(_REPLACEABLE)),
        )
        .values(status=OutboxStatus.FAILED, last_error=REPLACED)
        .execution_options(synchronize_session=False)
    )
    block = private_reply_block(session, message, now=at)
    if block is not None:
        raise ModerationError(block)
    row = OutboundMessage(
        case_id=message.case_id,
        in_reply_to_message_id=message.id,
        channel=message.channel,
        conversation_id=message.conversation_id,
        recipient_id=message.author_id,
        in_reply_to_external_id=message.external_id,
        private=True,
        kind=ReplyKind.HUMAN,
        text=body,
        status=OutboxStatus.QUEUED,
        created_by=officer,
        created_at=at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=officer,
        action="comment.private_reply_queued",
        entity="outbox",
        entity_id=row.id or 0,
        detail={"message_id": message.id, "case_id": message.case_id},
    )
    return row
