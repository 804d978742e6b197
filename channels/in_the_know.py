"""In The Know (Lancashire's Neighbourhood Alert): alerts out by email, members' replies in.

Neighbourhood Alert has no public API: alerts reach members by email, SMS or voice, and
members answer by replying to the email. So this adapter
- reads the force's public alert feed (RSS) to know which alerts went out;
- reads members' replies from a mailbox over IMAP, newest UID after the saved cursor,
  parsing each email (quoted text and signature stripped, photos kept as attachments,
  automatic replies skipped) - a reply's conversation is the alert it answers;
- answers members by email (SMTP) - that arrives with the web console issue.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import imaplib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from typing import ClassVar

import feedparser
from email_reply_parser import EmailReplyParser
from pydantic import ValidationError

from bot.config import InTheKnowSettings
from bot.errors import AuthError, ConfigError, TransientError
from bot.messages import Attachment, AttachmentKind, Author, Capabilities, InboundMessage
from channels.base import BaseChannel, Batch, Undeliverable
from channels.registry import PLATFORM_CAPABILITIES

MAX_EMAIL_BYTES = 25 * 1024 * 1024
IMAP_BATCH = 200
# Outlook quotes the original under a header block instead of "On ... wrote:".
_OUTLOOK_QUOTE = re.compile(
    r"^\s*(?:-{2,}\s*Original Message\s*-{2,}|From:\s.+\n\s*Sent:\s)", re.IGNORECASE | re.MULTILINE
)
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Alert:
    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime | None


def parse_feed(document: bytes) -> tuple[list[Alert], str | None]:
    """Alerts in the feed, and a warning when the feed was malformed (what parsed is kept)."""
    parsed = feedparser.parse(document)
    alerts = []
    for entry in parsed.entries:
        published = entry.get("published_parsed")
        alerts.append(
            Alert(
                guid=str(entry.get("id") or entry.get("link") or entry.get("title", "")),
                title=str(entry.get("title", "")).strip(),
                summary=" ".join(_TAGS.sub(" ", str(entry.get("summary", ""))).split()),
                link=entry.get("link"),
                published=datetime(*published[:6]).replace(tzinfo=UTC) if published else None,
            )
        )
    warning = str(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    return alerts, warning


def _is_automatic(message: EmailMessage) -> bool:
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    precedence = (message.get("Precedence") or "").strip().lower()
    return (
        auto != "no"
        or precedence in {"auto_reply", "bulk", "junk"}
        or bool(message.get("X-Autoreply") or message.get("X-Autorespond"))
    )


def _reply_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = body.get_content()
    if body.get_content_type() == "text/html":
        text = _TAGS.sub(" ", text)
    outlook = _OUTLOOK_QUOTE.search(text)
    if outlook:
        text = text[: outlook.start()]
    return str(EmailReplyParser.parse_reply(text)).strip()


def _attachments(message: EmailMessage) -> Iterator[Attachment]:
    for part in message.iter_attachments():
        maintype = part.get_content_maintype()
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        kind = {
            "image": AttachmentKind.IMAGE,
            "video": AttachmentKind.VIDEO,
            "audio": AttachmentKind.AUDIO,
        }.get(maintype, AttachmentKind.FILE)
        yield Attachment(
            kind=kind,
            media_type=part.get_content_type()[:128],
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )


def parse_email(raw: bytes, *, origin: str = "imap") -> Batch:
    """One member's reply as a message; automatic replies produce nothing."""
    if len(raw) > MAX_EMAIL_BYTES:
        return Batch(failures=[Undeliverable(raw[:4096], "email larger than 25 MB", origin)])
    try:
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        if _is_automatic(message):
            return Batch()
        message_id = (message.get("Message-ID") or "").strip()
        sender_name, sender = parseaddr(message.get("From", ""))
        if not message_id or not sender:
            raise ValueError("no Message-ID or From")
        thread = (message.get("In-Reply-To") or "").strip() or (
            (message.get("References") or "").split() or [message_id]
        )[0]
        date = message.get("Date")
        received = parsedate_to_datetime(date) if date else datetime.now(UTC)
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
        received = min(received, datetime.now(UTC))  # a sender's clock must not outlive retention
        return Batch(
            messages=[
                InboundMessage(
                    channel="in_the_know",
                    external_id=message_id,
                    conversation_id=thread,
                    author=Author(id=sender.lower(), name=sender_name or None),
                    text=_reply_text(message),
                    private=True,
                    addressed_to_account=True,
                    received_at=received,
                    attachments=tuple(_attachments(message)),
                    in_reply_to=(message.get("In-Reply-To") or "").strip() or None,
                    raw={
                        "message_id": message_id,
                        "subject": str(message.get("Subject", "")),
                        "from": sender,
                        "in_reply_to": thread,
                    },
                )
            ]
        )
    except (ValueError, TypeError, LookupError, AssertionError, ValidationError) as exc:
        return Batch(failures=[Undeliverable(raw, f"email not understood: {exc}", origin)])


class InTheKnowChannel(BaseChannel):
    name: ClassVar[str] = "in_the_know"
    capabilities: ClassVar[Capabilities] = PLATFORM_CAPABILITIES["in_the_know"]

    def __init__(self, settings: InTheKnowSettings) -> None:
        missing = settings.missing()
        if missing:
            raise ConfigError(f"in_the_know is missing {', '.join(missing)}")
        self.settings = settings

    def parse(self, payload: bytes) -> Batch:
        return parse_email(payload)

    def fetch(self, cursor: str | None) -> Batch:
        """Replies with a UID above the cursor (the mailbox's UIDVALIDITY guards renumbering)."""
        validity, _, last = (cursor or "").partition(":")
        s = self.settings
        try:
            imap = imaplib.IMAP4_SSL(s.imap_host or "", s.imap_port, timeout=30)
        except OSError as exc:
            raise TransientError(f"mailbox unreachable: {exc}", channel=self.name) from exc
        try:
            try:
                imap.login(
                    s.imap_user or "", s.imap_password.get_secret_value() if s.imap_password else ""
                )
            except imaplib.IMAP4.error as exc:
                raise AuthError("the mailbox refused the login", channel=self.name) from exc
            imap.select(s.mailbox, readonly=True)
            status = imap.response("UIDVALIDITY")[1]
            current = status[0].decode() if status and status[0] else ""
            start = int(last) + 1 if last and validity == current else 1
            _, found = imap.uid("SEARCH", f"UID {start}:*")
            uids = [int(u) for u in (found[0] or b"").split() if int(u) >= start][:IMAP_BATCH]
            messages, failures = [], []
            for uid in uids:
                _, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
                raw = next((part[1] for part in data if isinstance(part, tuple)), b"")
                batch = parse_email(raw, origin=f"{s.mailbox}:{uid}")
                messages += batch.messages
                failures += batch.failures
            newest = max(uids, default=int(last) if last and validity == current else 0)
            return Batch(
                messages=messages,
                failures=failures,
                cursor=f"{current}:{newest}",
                exhausted=len(uids) < IMAP_BATCH,
            )
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise TransientError(f"mailbox connection lost: {exc}", channel=self.name) from exc
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()
