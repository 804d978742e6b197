"""In The Know (Lancashire's Neighbourhood Alert): alerts out by email, members' replies in.

Neighbourhood Alert has no public API: alerts reach members by email, SMS or voice, and
members answer by replying to the email. So this adapter
- reads the force's public alert feed (RSS) to know which alerts went out;
- reads members' replies from a mailbox over IMAP (IMAPS, STARTTLS, or plain to a mailbox
  on this machine), parsing each email: quoted text and signature stripped, attachments
  hashed, automatic replies skipped; a reply's conversation is the alert it answers;
- takes replies pushed by the Alert system or a relay at ``POST /webhooks/in-the-know``,
  signed with the shared contract key (docs/channels/in-the-know.md is the contract);
- answers members by email through the bot's mail server (``smtp``, bot/mailer.py), as a
  reply threaded under the email the member sent.

The IMAP cursor is ``<UIDVALIDITY>:<last UID read>``. Emails are only peeked at while
read; the pipeline saves the cursor after it has committed what a round returned, so at
the start of the next round everything at or below the cursor is stored and only then is
it flagged \\Seen (or moved to ``imap_processed_mailbox``). A crash in between means the
same emails are read again and de-duplication absorbs them. A new UIDVALIDITY (the folder
was recreated) restarts from the first UID, for the same reason safely.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import imaplib
import json
import logging
import re
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.errors import MessageError
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser
from typing import Any, ClassVar, Literal

import feedparser
from email_reply_parser import EmailReplyParser
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from bot.config import InTheKnowSettings, SmtpSettings
from bot.errors import AuthError, ChannelError, ConfigError, PermanentError, TransientError
from bot.mailer import AnswerLost, Mailer
from bot.messages import (
    Attachment,
    AttachmentKind,
    Author,
    Capabilities,
    DeliveryResult,
    InboundMessage,
    OutboundReply,
)
from channels.base import (
    BaseChannel,
    Batch,
    ChannelStatus,
    Health,
    Undeliverable,
    parser,
    read_capped,
)
from channels.registry import PLATFORM_CAPABILITIES

log = logging.getLogger(__name__)

MAX_EMAIL_BYTES = 25 * 1024 * 1024
IMAP_BATCH = 200
IMAP_TIMEOUT_SECONDS = 30
MAX_PUSH_BYTES = 256 * 1024
PUSH_WINDOW = timedelta(minutes=5)
TIMESTAMP_HEADER = "X-ITK-Timestamp"
SIGNATURE_HEADER = "X-ITK-Signature"
# Outlook quotes the original under a header block instead of "On ... wrote:".
_OUTLOOK_QUOTE = re.compile(
    r"^\s*(?:-{2,}\s*Original Message\s*-{2,}|_{10,}\s*$|From:\s.+\n\s*Sent:\s)",
    re.IGNORECASE | re.MULTILINE,
)
_TAGS = re.compile(r"<[^>]+>")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_TIMESTAMP = re.compile(r"\d{1,12}")


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


# -- emails (pure) -------------------------------------------------------------------------
class _HtmlReply(HTMLParser):
    """The visible text of an HTML-only reply, without the quoted original.

    Mail clients mark the quote in the markup rather than with ``>``: a ``<blockquote>``
    (Apple Mail, Thunderbird, Yahoo), a ``gmail_quote`` or ``yahoo_quoted`` block, or
    Outlook's ``divRplyFwdMsg`` header after which everything is the original.
    """

    BLOCKS = frozenset(
        "address article br dd div dl dt footer h1 h2 h3 h4 h5 h6 header hr li ol p pre "
        "section table td th tr ul".split()
    )
    HIDDEN = frozenset({"head", "script", "style", "title", "template"})
    QUOTE_CLASSES = frozenset({"gmail_quote", "yahoo_quoted", "moz-cite-prefix"})
    ORIGINAL_IDS = frozenset({"divRplyFwdMsg", "appendonsend"})
    EDGE = "\x00"  # where a block starts or ends (any NUL in the text itself is dropped)

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: str | None = None
        self._depth = 0
        self._stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stopped:
            return
        if self._skipping is not None:
            self._depth += tag == self._skipping
            return
        values = dict(attrs)
        if values.get("id") in self.ORIGINAL_IDS:
            self._stopped = True
            return
        classes = set((values.get("class") or "").split())
        if tag in self.HIDDEN or tag == "blockquote" or classes & self.QUOTE_CLASSES:
            self._skipping, self._depth = tag, 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self.BLOCKS:
            self.parts.append(self.EDGE)

    def handle_endtag(self, tag: str) -> None:
        if self._stopped:
            return
        if self._skipping is not None:
            if tag == self._skipping:
                self._depth -= 1
                if self._depth == 0:
                    self._skipping = None
            return
        if tag in self.BLOCKS:
            self.parts.append(self.EDGE)

    def handle_data(self, data: str) -> None:
        if not self._stopped and self._skipping is None:
            self.parts.append(re.sub(r"\s+", " ", data.replace(self.EDGE, "")))

    def text(self) -> str:
        # Adjacent block edges are one line break; <br> is always one more.
        joined = re.sub(f"{self.EDGE}+", "\n", "".join(self.parts))
        lines = [line.strip() for line in joined.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _HtmlReply()
    parser.feed(html)
    parser.close()
    return parser.text()


def _is_automatic(message: EmailMessage) -> bool:
    """Out-of-office replies and bounces (RFC 3834 and what Exchange sends instead)."""
    auto = str(message.get("Auto-Submitted") or "no").strip().lower()
    precedence = str(message.get("Precedence") or "").strip().lower()
    return (
        auto != "no"
        or precedence in {"auto_reply", "bulk", "junk"}
        or bool(message.get("X-Autoreply") or message.get("X-Autorespond"))
        or message.get_content_type() == "multipart/report"  # delivery status notifications
    )


def _text_of(part: EmailMessage) -> str:
    """A text part decoded by its declared charset; an unknown or lying charset still reads."""
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):
        data = part.get_payload(decode=True)
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else ""


def _reply_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if not isinstance(body, EmailMessage):
        return ""
    text = _text_of(body)
    if body.get_content_type() == "text/html":
        text = html_to_text(text)
    outlook = _OUTLOOK_QUOTE.search(text)
    if outlook:
        text = text[: outlook.start()]
    return str(EmailReplyParser.parse_reply(text)).strip()


def _kind(media_type: str) -> AttachmentKind:
    return {
        "image": AttachmentKind.IMAGE,
        "video": AttachmentKind.VIDEO,
        "audio": AttachmentKind.AUDIO,
    }.get(media_type.split("/")[0].lower(), AttachmentKind.FILE)


def _attachments(message: EmailMessage) -> Iterator[Attachment]:
    """Every file in the email, inline photos included; text parts are attachments only
    when named as such (iOS Mail splits a reply's own text around an attachment)."""
    body = message.get_body(preferencelist=("plain", "html"))
    for part in message.walk():
        if part is body or part.is_multipart():
            continue
        if part.get_content_maintype() == "text" and not (
            part.get_filename() or part.get_content_disposition() == "attachment"
        ):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        yield Attachment(
            kind=_kind(part.get_content_type()),
            media_type=part.get_content_type()[:128],
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )


def _sender(message: EmailMessage) -> tuple[str, str | None]:
    header = message.get("From")
    for address in getattr(header, "addresses", ()):
        if address.username and address.domain:
            return str(address.addr_spec).lower(), (str(address.display_name) or None)
    raise ValueError(f"no sender address in From: {str(header or '')[:200]!r}")


def _ids(value: object) -> list[str]:
    """Message-IDs in a header, bounded to what the database keeps."""
    found = _MESSAGE_ID.findall(str(value or ""))
    return [
        i if len(i) <= 256 else "sha256:" + hashlib.sha256(i.encode()).hexdigest() for i in found
    ]


def _sent_at(message: EmailMessage, now: datetime) -> datetime:
    sent = getattr(message.get("Date"), "datetime", None)
    if not isinstance(sent, datetime):
        return now
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    return min(sent, now)  # a sender's clock must not outlive retention


@parser("email")
def parse_email(raw: bytes, *, origin: str = "imap", now: datetime | None = None) -> Batch:
    """One member's reply as a message; automatic replies produce nothing.

    Only a usable sender is required: a missing Message-ID falls back to the hash of the
    bytes and a broken Date to now, so a reply is never lost over a sloppy header.
    """
    if len(raw) > MAX_EMAIL_BYTES:
        return Batch(failures=[Undeliverable(raw[:4096], "email larger than 25 MB", origin)])
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        if _is_automatic(message):
            return Batch()
        sender, sender_name = _sender(message)
        message_id = next(iter(_ids(message.get("Message-ID"))), None) or (
            "sha256:" + hashlib.sha256(raw).hexdigest()
        )
        in_reply_to = next(iter(_ids(message.get("In-Reply-To"))), None)
        references = _ids(message.get("References"))
        # The thread's root is the alert; In-Reply-To may be an officer's answer to it.
        thread = references[0] if references else in_reply_to or message_id
        return Batch(
            messages=[
                InboundMessage(
                    channel="in_the_know",
                    external_id=message_id,
                    conversation_id=thread,
                    author=Author(id=sender, name=sender_name),
                    text=_reply_text(message),
                    private=True,
                    addressed_to_account=True,
                    received_at=_sent_at(message, now or datetime.now(UTC)),
                    attachments=tuple(_attachments(message)),
                    in_reply_to=in_reply_to,
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


# -- the push contract (pure) --------------------------------------------------------------
class _Contract(BaseModel):
    """Version 1 of the push body. Unknown fields are ignored (and kept in ``raw``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class PushMember(_Contract):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PushAttachment(_Contract):
    url: str = Field(max_length=2048, pattern=r"^https://\S+$")
    media_type: str = Field(max_length=128, pattern=r"^[a-z]+/[A-Za-z0-9.+_-]+$")
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class PushReply(_Contract):
    version: Literal[1] = 1
    type: Literal["reply"]
    id: str = Field(min_length=1, max_length=128)
    sent_at: AwareDatetime
    alert_id: str | None = Field(default=None, min_length=1, max_length=64)
    member: PushMember
    text: str = Field(default="", max_length=20_000)
    attachments: list[PushAttachment] = Field(default_factory=list, max_length=10)
    email_message_id: str | None = Field(default=None, max_length=256, pattern=r"^<\S+@\S+>$")


def sign(key: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over ``<timestamp>.<raw body>``."""
    signed = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(key.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()[:5]
    )


@parser("push")
def parse_push(body: bytes, *, now: datetime) -> Batch:
    """One pushed reply; anything not understood becomes a dead letter with its bytes."""
    try:
        reply = PushReply.model_validate_json(body)
        if not reply.text.strip() and not reply.attachments:
            raise ValueError("a reply needs text or attachments")
        member = reply.member
        message = InboundMessage(
            channel="in_the_know",
            # An email reply the relay also pushes is one message: same id as from IMAP.
            external_id=reply.email_message_id or f"push:{reply.id}",
            conversation_id=f"alert:{reply.alert_id}" if reply.alert_id else f"member:{member.id}",
            author=Author(id=(member.email or f"member:{member.id}").lower(), name=member.name),
            text=reply.text,
            private=True,
            addressed_to_account=True,
            received_at=min(reply.sent_at, now),
            attachments=tuple(
                Attachment(
                    kind=_kind(a.media_type),
                    url=a.url,
                    media_type=a.media_type,
                    size=a.size,
                    sha256=a.sha256,
                )
                for a in reply.attachments
            ),
            raw=json.loads(body),
        )
    except ValidationError as exc:
        return Batch(
            failures=[Undeliverable(body, f"push not understood: {_problems(exc)}", "push")]
        )
    except ValueError as exc:
        return Batch(failures=[Undeliverable(body, f"push not understood: {exc}", "push")])
    return Batch(messages=[message])


# -- replies to members (pure) --------------------------------------------------------------
# The channel never reads the database, so the subject of the member's email is not at hand;
# In-Reply-To and References thread the reply under it in the member's mail client.
REPLY_SUBJECT = "Re: your reply to In The Know"
_ATOM = r"[^@\s<>()\[\],;:\"\\]+"
_ADDRESS = re.compile(f"{_ATOM}@{_ATOM}(?:\\.{_ATOM})+")


def thread_headers(reply: OutboundReply) -> dict[str, str]:
    """In-Reply-To and References for an answer to the stored message, when it has a Message-ID.

    A stored email's external id is its own Message-ID (``parse_email``), as is that of a
    pushed reply relayed from an email (``email_message_id``); an emailed reply's conversation
    is the first Message-ID of its References, the alert it answered. A hash standing in for a
    missing or overlong Message-ID (``sha256:``), or a push id, threads nothing: the answer
    still goes, as a new email.
    """
    parent = reply.in_reply_to_external_id
    if not _MESSAGE_ID.fullmatch(parent):
        return {}
    root = [reply.conversation_id] if _MESSAGE_ID.fullmatch(reply.conversation_id) else []
    return {"In-Reply-To": parent, "References": " ".join(dict.fromkeys([*root, parent]))}


def compose_reply(reply: OutboundReply, *, sender: str, at: datetime) -> EmailMessage:
    """The plain-text email that answers a member, or a ``PermanentError`` saying why none can.

    The author id of an In The Know message is the member's email address, or
    ``member:<id>`` when a pushed reply came without one: such a member can only be answered
    from Neighbourhood Alert's own console.
    """
    recipient = reply.recipient_id
    if recipient.startswith("member:"):
        raise PermanentError(
            "this member's reply was pushed without an email address, so campusbot cannot "
            "email them: send the reply through Neighbourhood Alert's own console",
            channel="in_the_know",
        )
    message = EmailMessage()
    try:
        if not _ADDRESS.fullmatch(recipient):
            raise ValueError("not an email address")
        message["To"] = recipient
    except (ValueError, TypeError, IndexError, MessageError) as exc:
        raise PermanentError(
            f"the member's id is not an address an email can go to ({exc})",
            channel="in_the_know",
        ) from exc
    message["From"] = sender
    message["Subject"] = REPLY_SUBJECT
    message["Date"] = format_datetime(at)
    domain = sender.rpartition("@")[2] or "campusbot.invalid"
    message["Message-ID"] = make_msgid(idstring="campusbot.itk-reply", domain=domain)
    for name, value in thread_headers(reply).items():
        message[name] = value
    if not reply.by_human:
        message["Auto-Submitted"] = "auto-replied"  # RFC 3834: no out-of-office replies back
    message.set_content(reply.text)
    return message


# -- the channel -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Opened:
    imap: imaplib.IMAP4
    validity: str
    exists: int


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(data: Any) -> str:
    """The server's own words from an imaplib response or error, for messages."""
    first = data[0] if isinstance(data, list) and data else data
    return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)


def _close(imap: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError):
        imap.shutdown()


def _parse_cursor(cursor: str | None) -> tuple[str, int]:
    validity, _, last = (cursor or "").partition(":")
    return (validity, int(last)) if last.isdigit() else ("", 0)


class InTheKnowChannel(BaseChannel):
    name: ClassVar[str] = "in_the_know"
    capabilities: ClassVar[Capabilities] = PLATFORM_CAPABILITIES["in_the_know"]

    def __init__(
        self,
        settings: InTheKnowSettings,
        *,
        smtp: SmtpSettings | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """``smtp``: the mail server replies go through. Without it (or while it is incomplete)
        the mailbox is still read, replies fail with the settings to fix, and ``check`` says so.
        """
        missing = settings.missing()
        if missing:
            raise ConfigError(f"in_the_know is missing {', '.join(missing)}")
        self.settings = settings
        self.smtp = smtp or SmtpSettings()
        self._now = now or (lambda: datetime.now(UTC))

    def parse(self, payload: bytes) -> Batch:
        """A pushed body, already signature-checked (the webhook's parser)."""
        return parse_push(payload, now=self._now())

    def parse_polled(self, payload: bytes) -> Batch:
        """One email as read from the mailbox (the poll's parser, for dead-letter retries)."""
        return parse_email(payload, origin="retry", now=self._now())

    # -- IMAP ------------------------------------------------------------------------------
    def _tls(self) -> ssl.SSLContext:
        ca = self.settings.imap_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> PermanentError:
        return PermanentError(
            f"the mail server's certificate was not accepted ({exc.verify_message}); if a "
            "private authority signed it, set in_the_know.imap_ca_file",
            channel=self.name,
        )

    def _connect(self) -> imaplib.IMAP4:
        s = self.settings
        host, port = s.imap_host or "", s.imap_port_number
        try:
            if s.imap_security == "tls":
                return imaplib.IMAP4_SSL(
                    host, port, ssl_context=self._tls(), timeout=IMAP_TIMEOUT_SECONDS
                )
            imap = imaplib.IMAP4(host, port, timeout=IMAP_TIMEOUT_SECONDS)
        except ssl.SSLCertVerificationError as exc:
            raise self._untrusted(exc) from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise TransientError(
                f"mailbox {host}:{port} unreachable: {exc}", channel=self.name
            ) from exc
        if s.imap_security == "starttls":
            try:
                imap.starttls(ssl_context=self._tls())
            except ssl.SSLCertVerificationError as exc:
                _close(imap)
                raise self._untrusted(exc) from exc
            except (imaplib.IMAP4.abort, OSError) as exc:
                _close(imap)
                raise TransientError(f"STARTTLS failed: {exc}", channel=self.name) from exc
            except imaplib.IMAP4.error as exc:
                _close(imap)
                raise PermanentError(
                    f"the mail server at {host}:{port} does not offer STARTTLS ({exc}); "
                    "use imap_security tls",
                    channel=self.name,
                ) from exc
        return imap

    @contextlib.contextmanager
    def _opened(self) -> Iterator[_Opened]:
        """Logged in with the folder selected; IMAP failures become the bot's typed errors."""
        s = self.settings
        imap = self._connect()
        try:
            try:
                imap.login(
                    s.imap_user or "", s.imap_password.get_secret_value() if s.imap_password else ""
                )
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                raise AuthError(
                    f"the mail server refused the login for {s.imap_user}: {exc}",
                    channel=self.name,
                ) from exc
            status, data = imap.select(_quoted(s.mailbox))
            if status != "OK":
                raise PermanentError(
                    f"mailbox folder {s.mailbox!r} cannot be opened: {_said(data)}",
                    channel=self.name,
                )
            validity = _said(imap.response("UIDVALIDITY")[1])
            exists = _said(data)
            yield _Opened(
                imap=imap, validity=validity, exists=int(exists) if exists.isdigit() else 0
            )
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise TransientError(f"mailbox connection lost: {exc}", channel=self.name) from exc
        except imaplib.IMAP4.error as exc:
            raise TransientError(f"the mail server answered: {exc}", channel=self.name) from exc
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def check(self) -> ChannelStatus:
        """Can we log in and open the folder, and could replies be emailed? Never raises for
        a refused password. The mail server itself is not called: a failed send says why."""
        try:
            with self._opened() as box:
                mailbox = f"{self.settings.mailbox}: {box.exists} emails"
        except AuthError as exc:
            return ChannelStatus(Health.NEEDS_AUTH, str(exc))
        except ChannelError as exc:
            return ChannelStatus(Health.DEGRADED, str(exc))
        gaps = self.smtp.missing()
        if gaps:
            return ChannelStatus(
                Health.DEGRADED,
                f"{mailbox}; replies cannot be emailed until you set " + ", ".join(gaps),
            )
        return ChannelStatus(Health.OK, mailbox)

    # -- replies ---------------------------------------------------------------------------
    def reply(self, reply: OutboundReply) -> DeliveryResult:
        """Email the member, threaded under what they sent; the Message-ID is the external id.

        An unreachable server or a 4xx reply is retried later. A refused address (5xx) is
        permanent, and so is a server that took the whole email and then went silent: it may
        have delivered it, so a person checks before resending, as with every channel's sends.
        """
        gaps = self.smtp.missing()
        if gaps:
            raise PermanentError(
                "replies to In The Know members are emailed through the mail server under "
                "smtp; set " + ", ".join(gaps),
                channel=self.name,
            )
        message = compose_reply(reply, sender=self.smtp.from_address or "", at=self._now())
        try:
            with Mailer(self.smtp) as mailer:
                mailer.send(message, reply.recipient_id)
        except AnswerLost as exc:
            raise PermanentError(
                f"{exc}: check the mail server's log before resending, so the member does not "
                "get it twice",
                channel=self.name,
            ) from exc
        except TransientError as exc:
            raise TransientError(f"reply not emailed yet: {exc}", channel=self.name) from exc
        except PermanentError as exc:
            raise PermanentError(f"reply not emailed: {exc}", channel=self.name) from exc
        return DeliveryResult(external_id=str(message["Message-ID"]), delivered_at=self._now())

    def fetch(self, cursor: str | None) -> Batch:
        """Emails with a UID above the cursor, oldest first, at most ``IMAP_BATCH`` a round."""
        validity, last = _parse_cursor(cursor)
        with self._opened() as box:
            same_folder = bool(validity) and validity == box.validity
            if same_folder and last:
                self._acknowledge(box.imap, last)
            start = last + 1 if same_folder else 1
            status, found = box.imap.uid("SEARCH", f"UID {start}:*")
            if status != "OK":
                raise TransientError(f"search refused: {_said(found)}", channel=self.name)
            # "n:*" always includes the newest email, even below n: keep only the new ones.
            uids = sorted(int(u) for u in (found[0] or b"").split() if int(u) >= start)
            batch = uids[:IMAP_BATCH]
            messages: list[InboundMessage] = []
            failures: list[Undeliverable] = []
            sizes = self._sizes(box.imap, batch)
            for uid in batch:
                read = self._read(box.imap, uid, sizes.get(uid, 0), box.validity)
                messages += read.messages
                failures += read.failures
            newest = batch[-1] if batch else (last if same_folder else 0)
            return Batch(
                messages=messages,
                failures=failures,
                cursor=f"{box.validity}:{newest}",
                exhausted=len(uids) <= IMAP_BATCH,
            )

    def _sizes(self, imap: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        if not uids:
            return {}
        status, data = imap.uid("FETCH", f"{uids[0]}:{uids[-1]}", "(RFC822.SIZE)")
        if status != "OK":
            raise TransientError(f"fetch refused: {_said(data)}", channel=self.name)
        sizes: dict[int, int] = {}
        for line in data:
            head = line[0] if isinstance(line, tuple) else line
            uid, size = (
                (_UID.search(head), _SIZE.search(head)) if isinstance(head, bytes) else (None, None)
            )
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    def _read(self, imap: imaplib.IMAP4, uid: int, size: int, validity: str) -> Batch:
        """One email, parsed; one too large to take in is a dead letter of its header."""
        origin = f"imap:{self.settings.mailbox}:{validity}:{uid}"
        part = "BODY.PEEK[HEADER]" if size > MAX_EMAIL_BYTES else "BODY.PEEK[]"
        status, data = imap.uid("FETCH", str(uid), f"({part})")
        if status != "OK":  # the whole round is tried again: nothing after it is marked
            raise TransientError(
                f"the mail server would not return UID {uid}: {_said(data)}", channel=self.name
            )
        raw = next((item[1] for item in data if isinstance(item, tuple)), None)
        if not isinstance(raw, bytes):
            log.info("in_the_know: UID %s left the folder while it was read", uid)
            return Batch()
        if size > MAX_EMAIL_BYTES:
            reason = (
                f"email of {size} bytes is over the {MAX_EMAIL_BYTES} byte limit: its header "
                "is kept here, the email itself stays on the mail server"
            )
            return Batch(failures=[Undeliverable(raw, reason, origin)])
        return parse_email(raw, origin=origin, now=self._now())

    def _acknowledge(self, imap: imaplib.IMAP4, last: int) -> None:
        """Flag or move what is stored (UIDs up to the saved cursor). Housekeeping only:
        a refusal is logged and never stops new replies being read."""
        uid_set = f"1:{last}"
        target = self.settings.imap_processed_mailbox
        try:
            if target and self._can_move(imap):
                status, data = imap.uid("MOVE", uid_set, _quoted(target))
                if status != "OK" and b"TRYCREATE" in (data[0] or b""):
                    imap.create(_quoted(target))
                    status, data = imap.uid("MOVE", uid_set, _quoted(target))
            else:
                if target:
                    log.warning(
                        "in_the_know: the mail server cannot MOVE; stored emails are flagged "
                        "\\Seen in %s instead of moved to %s",
                        self.settings.mailbox,
                        target,
                    )
                status, data = imap.uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Seen)")
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            status, data = "NO", [str(exc).encode()]
        if status != "OK":
            log.warning("in_the_know: stored emails could not be flagged or moved: %s", _said(data))

    @staticmethod
    def _can_move(imap: imaplib.IMAP4) -> bool:
        status, data = imap.capability()
        return status == "OK" and "MOVE" in _said(data).upper().split()

    # -- the push contract ----------------------------------------------------------------
    def refuse_push(
        self, timestamp: str | None, signature: str | None, body: bytes
    ) -> tuple[int, str] | None:
        """The status and reason to refuse a pushed body with, or None: signed and fresh."""
        key = self.settings.contract_key
        if key is None or not key.get_secret_value():
            return 404, "the push contract is not enabled"
        if not timestamp or not _TIMESTAMP.fullmatch(timestamp):
            return 400, f"{TIMESTAMP_HEADER} must be the Unix time in whole seconds"
        if not signature:
            return 400, f"{SIGNATURE_HEADER} is missing"
        expected = sign(key.get_secret_value(), timestamp, body)
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            return 403, "bad signature"
        skew = abs(self._now().timestamp() - int(timestamp))
        if skew > PUSH_WINDOW.total_seconds():
            return 403, (
                f"{TIMESTAMP_HEADER} is {int(skew)} s away from our clock, outside the "
                f"{int(PUSH_WINDOW.total_seconds())} s window: sign again with the current time"
            )
        return None

    def router(self, on_payload: Callable[[str, bytes], None]) -> APIRouter:
        """``on_payload(channel, body)`` must store the body before returning.

        Without a contract key there is no route at all: the push is optional.
        """
        routes = APIRouter(prefix="/webhooks/in-the-know")
        key = self.settings.contract_key
        if key is None or not key.get_secret_value():
            return routes

        def error(status: int, message: str) -> JSONResponse:
            return JSONResponse({"error": message}, status_code=status)

        @routes.post("")
        async def push(request: Request) -> Response:
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                return error(415, "send the body as application/json")
            body = await read_capped(request, MAX_PUSH_BYTES)
            if body is None:
                return error(413, f"the body is over {MAX_PUSH_BYTES} bytes")
            refusal = self.refuse_push(
                request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body
            )
            if refusal is not None:
                return error(*refusal)
            parsed = self.parse(body)
            # Signed and fresh: stored either way, a body not understood as a dead letter.
            await run_in_threadpool(on_payload, self.name, body)  # the database is blocking
            if parsed.failures:
                return error(422, parsed.failures[0].reason + " (kept for an operator)")
            return JSONResponse({"status": "stored", "id": parsed.messages[0].external_id})

        return routes
