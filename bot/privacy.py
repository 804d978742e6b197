"""Subject access export and erasure for one person (Data Protection Act 2018, ss. 45 and 47).

A person is named by one or more identities, ``channel:id``, the ids the platforms give
them (a Twitter user id, a Messenger page-scoped id, an In The Know member's email
address). Everything held about them is reached through those ids:

- their messages: text, times, classification, the raw platform payload, attachment rows;
- the replies queued or sent to them;
- the cases they opened, and the cases their messages sit in;
- their meeting bookings;
- the photos and videos they sent (bot/media), unless someone else sent the same bytes;
- dead letters (payloads that could not be parsed) whose bytes carry one of their ids;
- other people's raw payloads that name them (a reply to their tweet carries their id);
- the audit entries about those cases, bookings and replies.

Erasure removes every copy but one: a case keeps its reference, priority, scenarios and
times, losing the person's ids, so statistics still count it. The audit log holds ids and
states, never a person's details, and is hash-chained, so it keeps its entries; the
erasure adds one saying who erased how many rows under which request reference, never
whom. Messages go through ``bot.retention.delete_messages``, the deleter the daily purge
uses, so both reach the same copies; media files then go through the media store's sweep,
which deletes what no message refers to any more. Only an active admin may export or erase.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    Text,
    delete,
    exists,
    func,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlmodel import Session, col

from bot.crud import audit
from bot.errors import BotError
from bot.models import (
    AuditEntry,
    Booking,
    Case,
    CaseStatus,
    DeadLetter,
    MediaItem,
    MeetingSlot,
    Message,
    MessageAttachment,
    OutboundMessage,
    Role,
    User,
)
from bot.retention import delete_messages
from channels.registry import PLATFORM_CAPABILITIES

if TYPE_CHECKING:
    from bot.media import MediaStore

ERASED = "erased"  # what an erased case holds in place of the person's ids
EXPORT_FORMAT = "campusbot-subject-access/1"
EXPORT_FILE = "subject-access.json"
# An id shorter than this is only matched inside quotes in raw bytes: a bare "12" would
# also match every count and time that happens to contain it.
MIN_BARE_ID = 6
_SCAN_BATCH = 64
_REQUEST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")

MESSAGES = cast(Table, Message.__table__)  # type: ignore[attr-defined]
ATTACHMENTS = cast(Table, MessageAttachment.__table__)  # type: ignore[attr-defined]
OUTBOX = cast(Table, OutboundMessage.__table__)  # type: ignore[attr-defined]
CASES = cast(Table, Case.__table__)  # type: ignore[attr-defined]
BOOKINGS = cast(Table, Booking.__table__)  # type: ignore[attr-defined]
LETTERS = cast(Table, DeadLetter.__table__)  # type: ignore[attr-defined]
AUDIT = cast(Table, AuditEntry.__table__)  # type: ignore[attr-defined]
MEDIA = cast(Table, MediaItem.__table__)  # type: ignore[attr-defined]


class PrivacyError(BotError):
    """A subject access or erasure request that cannot go ahead as given."""


@dataclass(frozen=True, order=True)
class Identity:
    channel: str
    author_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.author_id}"


# -- naming the person ----------------------------------------------------------------------
def resolve(session: Session, specs: Sequence[str]) -> tuple[Identity, ...]:
    """Turn ``channel:id`` and ``@handle`` (or ``channel:@handle``) into identities.

    A handle is looked up among stored messages; one that matches several people is
    refused, listing them, because erasing the wrong person cannot be undone.
    """
    if not specs:
        raise PrivacyError("name the person with --author channel:id or --author @handle")
    found: set[Identity] = set()
    for spec in specs:
        found.update(_resolve_one(session, spec.strip()))
    return tuple(sorted(found))


def _resolve_one(session: Session, spec: str) -> list[Identity]:
    channel: str | None = None
    value = spec
    if ":" in spec:
        channel, value = spec.split(":", 1)
        if channel not in PLATFORM_CAPABILITIES:
            raise PrivacyError(
                f"unknown channel {channel!r} in {spec!r}; use one of "
                + ", ".join(sorted(PLATFORM_CAPABILITIES))
            )
        if not value.startswith("@"):
            if not value.strip():
                raise PrivacyError(f"{spec!r} has no id after the channel")
            # In The Know ids are email addresses, stored in lower case
            return [Identity(channel, value.lower() if channel == "in_the_know" else value)]
    handle = value.removeprefix("@").lower()
    if not handle:
        raise PrivacyError(f"{spec!r} is not a handle or channel:id")
    query = (
        select(MESSAGES.c.channel, MESSAGES.c.author_id)
        .where(func.lower(MESSAGES.c.author_handle).in_([handle, f"@{handle}"]))
        .distinct()
    )
    if channel is not None:
        query = query.where(MESSAGES.c.channel == channel)
    matches = sorted(Identity(c, a) for c, a in session.execute(query))
    if not matches:
        raise PrivacyError(f"no messages from @{handle}; name the person as channel:id instead")
    if len(matches) > 1:
        raise PrivacyError(
            f"@{handle} is used by {len(matches)} accounts ({', '.join(map(str, matches))}); "
            "repeat --author with each channel:id that is this person"
        )
    return matches


def request_reference(given: str | None, at: datetime) -> str:
    """The request's reference for the audit log: the caller's, or a new one.

    It links the audit entry to the force's own request record, which holds who asked;
    so it must not itself be personal data, and only plain reference characters pass.
    """
    if given is None:
        return f"PRIV-{at:%Y%m%d}-{secrets.token_hex(3)}"
    if not _REQUEST.fullmatch(given):
        raise PrivacyError(
            "a request reference is letters, digits and . _ / - (at most 64), e.g. DPA-2026-0042;"
            " never the person's name or address"
        )
    return given


def _authorise(session: Session, by: str) -> None:
    user = session.scalars(select(User).where(col(User.username) == by)).first()
    if user is None or user.disabled:
        raise PrivacyError(f"{by} is not an active user (see `campusbot users add`)")
    if Role.ADMIN.value not in user.roles:
        raise PrivacyError(f"subject access and erasure need the admin role; {by} does not have it")


# -- finding what is held -----------------------------------------------------------------
class _Scope:
    """Where-clauses and scans that find one person's rows, shared by export and erasure."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        if not identities:
            raise PrivacyError("no identity to look for")
        self.identities = tuple(identities)
        pairs = [(i.channel, i.author_id) for i in identities]
        self.messages: ColumnElement[bool] = tuple_(MESSAGES.c.channel, MESSAGES.c.author_id).in_(
            pairs
        )
        self.message_ids = select(MESSAGES.c.id).where(self.messages)
        self.own_cases: ColumnElement[bool] = tuple_(CASES.c.channel, CASES.c.author_id).in_(pairs)
        own_case_ids = select(CASES.c.id).where(self.own_cases)
        own_case_refs = select(CASES.c.reference).where(self.own_cases)
        self.cases_in: ColumnElement[bool] = or_(
            self.own_cases,
            CASES.c.id.in_(select(MESSAGES.c.case_id).where(self.messages)),
        )
        self.replies: ColumnElement[bool] = or_(
            tuple_(OUTBOX.c.channel, OUTBOX.c.recipient_id).in_(pairs),
            OUTBOX.c.in_reply_to_message_id.in_(self.message_ids),
            OUTBOX.c.case_id.in_(own_case_ids),
        )
        self.bookings: ColumnElement[bool] = or_(
            tuple_(BOOKINGS.c.channel, BOOKINGS.c.contact_id).in_(pairs),
            BOOKINGS.c.case_reference.in_(own_case_refs),
        )
        self.attachments: ColumnElement[bool] = ATTACHMENTS.c.message_id.in_(self.message_ids)
        self.media: ColumnElement[bool] = MEDIA.c.sha256.in_(
            select(ATTACHMENTS.c.sha256).where(self.attachments)
        )
        # the same bytes sent by someone else stay: they are that person's too
        self.own_media: ColumnElement[bool] = self.media & ~exists().where(
            ATTACHMENTS.c.sha256 == MEDIA.c.sha256, ~ATTACHMENTS.c.message_id.in_(self.message_ids)
        )
        alternatives = []
        for identity in self.identities:
            escaped = re.escape(identity.author_id)
            if len(identity.author_id) < MIN_BARE_ID:
                alternatives.append(f"[\"'<]{escaped}[\"'>]")
            else:
                alternatives.append(rf"(?<![\w.@+-]){escaped}(?![\w@+-]|\.\w)")
        pattern = "|".join(alternatives)
        self._text = re.compile(pattern, re.IGNORECASE)
        self._bytes = re.compile(pattern.encode(), re.IGNORECASE)

    def names_them(self, data: bytes | str | None) -> bool:
        if data is None:
            return False
        if isinstance(data, bytes):
            return self._bytes.search(data) is not None
        return self._text.search(data) is not None

    def dead_letter_ids(self, session: Session) -> list[int]:
        """Dead letters whose bytes or reason carry one of the ids (scanned a batch at a time)."""
        ids = [
            int(i) for i in session.execute(select(LETTERS.c.id).order_by(LETTERS.c.id)).scalars()
        ]
        hits: list[int] = []
        for start in range(0, len(ids), _SCAN_BATCH):
            chunk = ids[start : start + _SCAN_BATCH]
            rows = session.execute(
                select(LETTERS.c.id, LETTERS.c.raw, LETTERS.c.reason, LETTERS.c.origin).where(
                    LETTERS.c.id.in_(chunk)
                )
            )
            for letter_id, raw, reason, origin in rows:
                if self.names_them(raw) or self.names_them(reason) or self.names_them(origin):
                    hits.append(int(letter_id))
        return sorted(hits)

    def others_raw_ids(self, session: Session) -> list[int]:
        """Other people's messages whose raw payload names one of the ids."""
        as_text = func.lower(MESSAGES.c.raw.cast(Text))
        candidates = session.execute(
            select(MESSAGES.c.id, MESSAGES.c.raw).where(
                ~self.messages,
                MESSAGES.c.raw.is_not(None),
                or_(
                    *(
                        as_text.contains(i.author_id.lower(), autoescape=True)
                        for i in self.identities
                    )
                ),
            )
        )
        return sorted(
            int(message_id)
            for message_id, raw in candidates
            if self.names_them(json.dumps(raw, ensure_ascii=False))
        )


def _count(session: Session, table: Table, where: ColumnElement[bool]) -> int:
    return int(session.execute(select(func.count()).select_from(table).where(where)).scalar_one())


def _rows(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


# -- export -------------------------------------------------------------------------------
def export(
    session: Session,
    identities: Sequence[Identity],
    *,
    by: str,
    at: datetime,
    request: str | None = None,
) -> dict[str, Any]:
    """Everything held about the person, as one JSON-ready document; the export is audited.

    Nothing is redacted: this is the person's own data, for the disclosure officer to review
    (third parties named in their messages) before it is released to them.
    """
    _authorise(session, by)
    reference = request_reference(request, at)
    scope = _Scope(identities)
    messages = list(session.scalars(select(Message).where(scope.messages).order_by(MESSAGES.c.id)))
    attachments: dict[int, list[dict[str, Any]]] = {}
    for attachment in session.scalars(
        select(MessageAttachment).where(scope.attachments).order_by(ATTACHMENTS.c.id)
    ):
        attachments.setdefault(attachment.message_id, []).append(
            attachment.model_dump(mode="json", exclude={"message_id"})
        )
    cases = list(session.scalars(select(Case).where(scope.cases_in).order_by(CASES.c.id)))
    references = {case.id: case.reference for case in cases}
    mine = {(i.channel, i.author_id) for i in scope.identities}
    replies = list(
        session.scalars(select(OutboundMessage).where(scope.replies).order_by(OUTBOX.c.id))
    )
    bookings = [
        (booking, slot)
        for booking, slot in session.execute(
            select(Booking, MeetingSlot)
            .join(MeetingSlot, col(MeetingSlot.id) == BOOKINGS.c.slot_id)
            .where(scope.bookings)
            .order_by(BOOKINGS.c.id)
        )
    ]
    media = list(session.scalars(select(MediaItem).where(scope.media).order_by(MEDIA.c.id)))
    letters = [
        letter
        for letter in (
            session.get(DeadLetter, letter_id) for letter_id in scope.dead_letter_ids(session)
        )
        if letter is not None
    ]
    about = [
        ("case", [c.id for c in cases]),
        ("booking", [b.id for b, _ in bookings]),
        ("outbox", [r.id for r in replies]),
        ("message", [m.id for m in messages]),
    ]
    audit_entries = list(
        session.scalars(
            select(AuditEntry)
            .where(
                or_(
                    *(
                        (col(AuditEntry.entity) == entity)
                        & col(AuditEntry.entity_id).in_([str(i) for i in ids])
                        for entity, ids in about
                    )
                )
            )
            .order_by(col(AuditEntry.id))
        )
    )
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "request": reference,
        "generated_at": at.isoformat(),
        "generated_by": by,
        "subject": {
            "identities": [str(i) for i in scope.identities],
            "handles": sorted({m.author_handle for m in messages if m.author_handle}),
            "names": sorted({m.author_name for m in messages if m.author_name}),
        },
        "messages": [
            {
                **m.model_dump(mode="json"),
                "case_reference": references.get(m.case_id),
                "attachments": attachments.get(m.id or 0, []),
            }
            for m in messages
        ],
        "replies_to_them": [r.model_dump(mode="json") for r in replies],
        "cases": [
            {
                **c.model_dump(mode="json", exclude={"author_id", "conversation_id"}),
                "opened_by_them": (c.channel, c.author_id) in mine,
            }
            for c in cases
        ],
        "bookings": [
            {
                **b.model_dump(mode="json"),
                "slot": s.model_dump(
                    mode="json", include={"starts_at", "ends_at", "place", "kind", "officer"}
                ),
            }
            for b, s in bookings
        ],
        "media": [
            m.model_dump(mode="json", exclude={"id", "backend", "storage_key"}) for m in media
        ],
        "dead_letters": [_letter(letter) for letter in letters],
        "audit_entries": [
            e.model_dump(mode="json", exclude={"prev_hash", "hash"}) for e in audit_entries
        ],
    }
    counts = {
        kind: len(document[kind])
        for kind in (
            "messages",
            "replies_to_them",
            "cases",
            "bookings",
            "media",
            "dead_letters",
            "audit_entries",
        )
    }
    counts["attachments"] = sum(len(v) for v in attachments.values())
    document["counts"] = counts
    audit.record(
        session,
        at=at,
        actor=by,
        action="privacy.exported",
        entity="privacy_request",
        entity_id=reference,
        detail={"identities": len(scope.identities), **counts},
    )
    return document


def _letter(letter: DeadLetter) -> dict[str, Any]:
    row = letter.model_dump(mode="json", exclude={"raw"})
    try:
        row["raw_text"] = letter.raw.decode("utf-8")
    except UnicodeDecodeError:
        row["raw_base64"] = base64.b64encode(letter.raw).decode("ascii")
    return row


@dataclass(frozen=True)
class MediaCopies:
    """Copies of the person's photos and videos for a folder export. Location is removed, as
    from every copy that leaves the system; the media store audits each copy it makes."""

    session: Session
    store: MediaStore
    by: str
    at: datetime

    def __call__(self, document: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
        purpose = f"subject_access:{document['request']}"
        for item in document["media"]:
            copy = self.store.outbound_copy(
                self.session, item["sha256"], actor=self.by, at=self.at, purpose=purpose
            )
            yield copy.filename, copy.data


def is_folder(output: Path) -> bool:
    return output.suffix.lower() != ".json"


def write_export(document: dict[str, Any], output: Path, copies: MediaCopies | None = None) -> Path:
    """Write the document to ``output``: a new .json file, or a new or empty folder, which
    also receives copies of the person's media under ``media/``.

    Never overwrites; files are readable by their owner only, because they are personal
    data. A failure part way removes what this call wrote.
    """
    written: list[Path] = []
    try:
        if is_folder(output):
            if output.exists() and (not output.is_dir() or any(output.iterdir())):
                raise PrivacyError(f"{output} must be a new .json file or a new or empty folder")
            output.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = output / EXPORT_FILE
            document["media_files"] = []
            if copies is not None and document.get("media"):
                (output / "media").mkdir(mode=0o700)
                for name, data in copies(document):
                    written.append(_write_new(output / "media" / name, data))
                    document["media_files"].append(f"media/{name}")
        else:
            target = output
            target.parent.mkdir(parents=True, exist_ok=True)
            if document.get("media"):
                document["media_files_note"] = "copies of media are written to folder exports"
        data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
        written.append(_write_new(target, data))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return target


def _write_new(path: Path, data: bytes) -> Path:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise PrivacyError(f"{path} already exists; choose a new name") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# -- erasure ------------------------------------------------------------------------------
@dataclass
class ErasureReport:
    request: str
    dry_run: bool
    messages: int = 0
    attachments: int = 0
    replies: int = 0
    bookings: int = 0
    dead_letters: int = 0
    others_raw_payloads_emptied: int = 0
    cases_closed: int = 0
    cases_anonymised: int = 0
    media_files: int = 0
    # Not counted above, because they are kept:
    # - media younger than the store's sweep grace (an upload may still be on its way to a
    #   message), or all of their media when no store was given; the next sweep takes them;
    media_files_waiting: int = 0
    # - audit entries naming them: the log is hash-chained. Only an actor recorded as the
    #   person's own id (which callers must not do) puts them here.
    audit_entries_naming_them: int = 0

    def counts(self) -> dict[str, int]:
        kept = {"dry_run", "media_files_waiting", "audit_entries_naming_them"}
        return {k: v for k, v in asdict(self).items() if isinstance(v, int) and k not in kept}


def erase(
    session: Session,
    identities: Sequence[Identity],
    *,
    by: str,
    at: datetime,
    request: str | None = None,
    dry_run: bool = False,
    media: MediaStore | None = None,
) -> ErasureReport:
    """Remove or anonymise every copy of the person's data; a dry run only counts.

    Running it again finds nothing more (a message they send afterwards is new data).
    ``media`` is the store whose files are deleted once no message refers to them.
    """
    _authorise(session, by)
    report = ErasureReport(request=request_reference(request, at), dry_run=dry_run)
    scope = _Scope(identities)
    if session.get_bind().dialect.name == "postgresql":
        # wait for any worker processing their messages, so nothing is half-triaged here
        session.execute(select(MESSAGES.c.id).where(scope.messages).with_for_update())
    letters = scope.dead_letter_ids(session)
    others = scope.others_raw_ids(session)
    report.attachments = _count(session, ATTACHMENTS, scope.attachments)
    report.dead_letters = len(letters)
    report.others_raw_payloads_emptied = len(others)
    own_media = list(session.execute(select(MEDIA.c.sha256).where(scope.own_media)).scalars())
    open_own = scope.own_cases & (CASES.c.status != CaseStatus.CLOSED.value)
    ids = [i.author_id for i in scope.identities]
    report.audit_entries_naming_them = _count(
        session, AUDIT, AUDIT.c.actor.in_(ids) | AUDIT.c.entity_id.in_(ids)
    )
    if dry_run:
        report.replies = _count(session, OUTBOX, scope.replies)
        report.messages = _count(session, MESSAGES, scope.messages)
        report.bookings = _count(session, BOOKINGS, scope.bookings)
        report.cases_closed = _count(session, CASES, open_own)
        report.cases_anonymised = _count(session, CASES, scope.own_cases)
        report.media_files = len(own_media)
        return report
    # replies and bookings first: their clauses find rows through the cases' ids
    report.replies = _rows(session.execute(delete(OUTBOX).where(scope.replies)))
    report.bookings = _rows(session.execute(delete(BOOKINGS).where(scope.bookings)))
    report.messages = delete_messages(session, scope.messages)
    if own_media and media is not None:
        media.sweep(session, actor=by, at=at)
    report.media_files_waiting = _count(session, MEDIA, MEDIA.c.sha256.in_(own_media))
    report.media_files = len(own_media) - report.media_files_waiting
    if letters:
        session.execute(delete(LETTERS).where(LETTERS.c.id.in_(letters)))
    if others:
        session.execute(update(MESSAGES).where(MESSAGES.c.id.in_(others)).values(raw=null()))
    report.cases_closed = _rows(
        session.execute(
            update(CASES)
            .where(open_own)
            .values(status=CaseStatus.CLOSED.value, closed_at=at, updated_at=at)
        )
    )
    report.cases_anonymised = _rows(
        session.execute(
            update(CASES).where(scope.own_cases).values(author_id=ERASED, conversation_id=ERASED)
        )
    )
    audit.record(
        session,
        at=at,
        actor=by,
        action="privacy.erased",
        entity="privacy_request",
        entity_id=report.request,
        detail={"identities": len(scope.identities), **report.counts()},
    )
    return report
