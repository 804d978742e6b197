"""The media store: receiving photos and videos, and every way their bytes leave it.

An upload streams through a staging file under the media folder: the first bytes decide
the format (``sniff``), the format decides the size limit, and reading stops at the first
chunk past it, so a 2 GB stream costs one chunk of memory and a limit's worth of disk
before it is refused. A verified file is renamed into the backend under its sha256.

Originals keep everything, GPS included, for officers. What leaves (an outbound copy for a
partner or a reply) is stripped of location; an evidence export carries the untouched
original with its hash. Receiving, viewing, copying, exporting and deleting are each
written to the audit log with who did it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from sqlalchemy import exists
from sqlmodel import Session, col, select

from bot.config import MediaSettings, Settings
from bot.crud import audit
from bot.media import bmff, images
from bot.media.errors import MediaError, MediaNotFound, MediaRefused
from bot.media.evidence import write_package
from bot.media.sniff import FORMATS, SNIFF_BYTES, MediaFormat, sniff
from bot.media.storage import KEY, MediaBackend, open_backend
from bot.messages import AttachmentKind
from bot.models import Case, MediaItem, Message, MessageAttachment

CHUNK_BYTES = 1 << 20
SWEEP_GRACE = timedelta(hours=1)


@runtime_checkable
class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Source = Iterable[bytes] | Readable


@dataclass(frozen=True)
class Staged:
    path: Path
    sha256: str
    size: int
    format: MediaFormat


@dataclass(frozen=True)
class OutboundCopy:
    """A copy fit to leave the system: no location, no other metadata for photos."""

    data: bytes
    media_type: str
    filename: str


@dataclass(frozen=True)
class SweepReport:
    items_deleted: int
    orphan_files_deleted: int
    staging_files_deleted: int


class MediaStore:
    def __init__(
        self, settings: MediaSettings, media_dir: Path, backend: MediaBackend | None = None
    ) -> None:
        self.settings = settings
        self.staging = media_dir / "staging"  # beside the local store, so a rename is atomic
        self.backend = backend or open_backend(settings, media_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaStore:
        return cls(settings.media, settings.var_dir / "media")

    # -- receiving -------------------------------------------------------------------

    def receive(self, session: Session, source: Source, *, actor: str, at: datetime) -> MediaItem:
        """Stream, check and keep one upload; the same bytes sent again are stored once.

        ``source`` is an iterable of byte chunks or a binary file object. MediaRefused says
        why an upload is not accepted; MediaError covers the store's own failures (a full
        disk). Either way no file is left behind.
        """
        staged = self._stage(source)
        try:
            has_location = self._check(staged)
            item = session.exec(select(MediaItem).where(MediaItem.sha256 == staged.sha256)).first()
            duplicate = item is not None
            if item is None:
                with _disk_errors("storing the upload", self.staging):
                    self.backend.put(staged.sha256, staged.path)
                item = MediaItem(
                    sha256=staged.sha256,
                    kind=staged.format.kind,
                    media_type=staged.format.media_type,
                    size=staged.size,
                    backend=self.backend.name,
                    storage_key=staged.sha256,
                    has_location=has_location,
                    received_at=at,
                )
                session.add(item)
                session.flush()
        finally:
            staged.path.unlink(missing_ok=True)
        self._audit(session, item, "media.received", actor, at, duplicate=duplicate)
        return item

    def _stage(self, source: Source) -> Staged:
        with _disk_errors("receiving the upload", self.staging):
            self.staging.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.staging, prefix="incoming-")
        path = Path(name)
        chunks = _chunks(source)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size, head = hashlib.sha256(), 0, b""
                held: list[bytes] = []  # chunks read before the format is known
                fmt: MediaFormat | None = None
                for chunk in chunks:
                    if fmt is None:
                        head += chunk[: SNIFF_BYTES - len(head)]
                        held.append(chunk)
                        if len(head) < SNIFF_BYTES:
                            continue
                        fmt = sniff(head)
                    pending, held = held or [chunk], []
                    for piece in pending:
                        size = self._write(out, digest, piece, size, fmt)
                if fmt is None:  # a short file: every byte was held
                    fmt = sniff(head)
                    for piece in held:
                        size = self._write(out, digest, piece, size, fmt)
                with _disk_errors("receiving the upload", self.staging):
                    out.flush()
                    os.fsync(out.fileno())
            return Staged(path, digest.hexdigest(), size, fmt)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()  # stop the sender's generator; it is not read again

    def _write(self, out: BinaryIO, digest: Any, piece: bytes, size: int, fmt: MediaFormat) -> int:
        size += len(piece)
        limit = self.limit(fmt)
        if size > limit:
            raise MediaRefused(
                f"the {fmt.label} is larger than the {_megabytes(limit)} allowed; "
                f"refused after {_megabytes(size)} without reading the rest"
            )
        digest.update(piece)
        with _disk_errors("receiving the upload", self.staging):
            out.write(piece)
        return size

    def limit(self, fmt: MediaFormat) -> int:
        if fmt.kind == AttachmentKind.IMAGE:
            return self.settings.max_image_bytes
        return self.settings.max_video_bytes

    def _check(self, staged: Staged) -> bool:
        """Verify the staged bytes as their format; whether they carry location."""
        fmt = staged.format
        if fmt.kind == AttachmentKind.IMAGE:
            facts = images.check_image(staged.path, fmt, max_pixels=self.settings.max_image_pixels)
            return facts.has_location
        with staged.path.open("rb") as f:
            return bmff.check_video(f, staged.size, fmt.label).has_location

    # -- finding ---------------------------------------------------------------------

    def get(self, session: Session, sha256: str) -> MediaItem:
        if not KEY.match(sha256):
            raise MediaNotFound(f"not a sha256: {sha256[:80]!r}")
        item = session.exec(select(MediaItem).where(MediaItem.sha256 == sha256)).first()
        if item is None:
            raise MediaNotFound(f"no stored media with sha256 {sha256}")
        return item

    def for_message(self, session: Session, message_id: int) -> list[MediaItem]:
        """The stored media attached to one message, in attachment order."""
        rows = session.exec(
            select(MediaItem)
            .join(MessageAttachment, col(MessageAttachment.sha256) == col(MediaItem.sha256))
            .where(MessageAttachment.message_id == message_id)
            .order_by(col(MessageAttachment.id))
        ).all()
        return list(rows)

    def attach(
        self,
        session: Session,
        item: MediaItem,
        *,
        message_id: int,
        actor: str,
        at: datetime,
        attachment_id: int | None = None,
    ) -> MessageAttachment:
        """Link stored media to a message: a new attachment, or the one it was fetched for.

        An existing attachment (a platform URL the bytes were downloaded from) gets the
        kind, type and size the bytes proved; if the platform had given a sha256, the
        downloaded bytes must match it.
        """
        if session.get(Message, message_id) is None:
            raise MediaError(f"no message {message_id}")
        if attachment_id is None:
            attachment = MessageAttachment(message_id=message_id, kind=item.kind)
        else:
            found = session.get(MessageAttachment, attachment_id)
            if found is None or found.message_id != message_id:
                raise MediaError(f"message {message_id} has no attachment {attachment_id}")
            if found.sha256 not in (None, item.sha256):
                raise MediaError(
                    f"attachment {attachment_id} was sent with sha256 {found.sha256}, "
                    f"but the stored bytes hash to {item.sha256}"
                )
            attachment = found
        attachment.kind = item.kind
        attachment.media_type = item.media_type
        attachment.size = item.size
        attachment.sha256 = item.sha256
        session.add(attachment)
        session.flush()
        self._audit(session, item, "media.attached", actor, at, message_id=message_id)
        return attachment

    # -- what leaves -----------------------------------------------------------------

    def open_original(self, session: Session, sha256: str, *, actor: str, at: datetime) -> BinaryIO:
        """The original bytes, location and all, for an officer to view (caller closes)."""
        item = self.get(session, sha256)
        stream = self.backend.open(item.storage_key)
        self._audit(session, item, "media.viewed", actor, at)
        return stream

    def outbound_copy(
        self, session: Session, sha256: str, *, actor: str, at: datetime, purpose: str
    ) -> OutboundCopy:
        """A copy with location removed, for anything that leaves the system.

        Photos are re-encoded upright with no EXIF or XMP at all; videos are copied byte for
        byte except their location boxes, which become zeroed ``free`` boxes. ``purpose``
        (e.g. ``partner:victim_support``) is recorded in the audit log.
        """
        item = self.get(session, sha256)
        fmt = FORMATS[item.media_type]
        with self.backend.open(item.storage_key) as original:
            if fmt.kind == AttachmentKind.IMAGE:
                data = images.clean_copy(original, fmt)
                removed = item.has_location
            else:
                patches = bmff.location_patches(original, item.size)
                buffer = BytesIO()
                bmff.copy_patched(original, buffer, patches)
                data, removed = buffer.getvalue(), bool(patches)
        self._audit(
            session, item, "media.outbound_copy", actor, at, purpose=purpose, location=removed
        )
        return OutboundCopy(data, item.media_type, f"{item.sha256[:16]}.{fmt.extension}")

    def export_evidence(
        self, session: Session, sha256: str, *, actor: str, at: datetime, dest_dir: Path
    ) -> Path:
        """Write ``evidence-<sha256 prefix>-<time>.zip`` into ``dest_dir``: the original and
        a manifest (hash, size, type, when received, where attached, who exported, when)."""
        item = self.get(session, sha256)
        fmt = FORMATS[item.media_type]
        dest = dest_dir / f"evidence-{item.sha256[:16]}-{at:%Y%m%dT%H%M%SZ}.zip"
        manifest = {
            "sha256": item.sha256,
            "size": item.size,
            "media_type": item.media_type,
            "kind": item.kind,
            "has_location": item.has_location,
            "received_at": item.received_at.isoformat(),
            "exported_by": actor,
            "exported_at": at.isoformat(),
            "attached_to": self._attached_to(session, item),
        }
        with self.backend.open(item.storage_key) as original:
            write_package(
                dest,
                original=original,
                inner_name=f"original/{item.sha256}.{fmt.extension}",
                sha256=item.sha256,
                manifest=manifest,
            )
        self._audit(session, item, "media.exported", actor, at, package=dest.name)
        return dest

    def _attached_to(self, session: Session, item: MediaItem) -> list[dict[str, Any]]:
        rows = session.exec(
            select(Message.id, Message.channel, Message.received_at, Case.reference)
            .join(MessageAttachment, col(MessageAttachment.message_id) == col(Message.id))
            .outerjoin(Case, col(Case.id) == col(Message.case_id))
            .where(MessageAttachment.sha256 == item.sha256)
            .order_by(col(Message.id))
        ).all()
        return [
            {
                "message_id": message_id,
                "channel": channel,
                "message_received_at": received_at.isoformat(),
                "case_reference": reference,
            }
            for message_id, channel, received_at, reference in rows
        ]

    # -- deleting --------------------------------------------------------------------

    def sweep(
        self, session: Session, *, actor: str, at: datetime, grace: timedelta = SWEEP_GRACE
    ) -> SweepReport:
        """Delete media no message refers to any more (after retention or erasure deleted
        the messages), files with no row, and abandoned staging files.

        ``grace`` spares what is younger: an upload received but not yet attached, or a
        file renamed into place whose row is still uncommitted.
        """
        cutoff = at - grace
        attached = exists().where(col(MessageAttachment.sha256) == col(MediaItem.sha256))
        unreferenced = list(
            session.exec(
                select(MediaItem).where(col(MediaItem.received_at) < cutoff, ~attached)
            ).all()
        )
        known = set(session.exec(select(MediaItem.storage_key)).all())
        for item in unreferenced:
            session.delete(item)
        session.flush()
        orphans = [
            key
            for key, stored_at in self.backend.stored()
            if key not in known and stored_at < cutoff.timestamp()
        ]
        for key in [item.storage_key for item in unreferenced] + orphans:
            self.backend.delete(key)
        stale = [
            path
            for path in (self.staging.glob("incoming-*") if self.staging.is_dir() else [])
            if path.stat().st_mtime < cutoff.timestamp()
        ]
        for path in stale:
            path.unlink(missing_ok=True)
        report = SweepReport(len(unreferenced), len(orphans), len(stale))
        audit.record(
            session,
            at=at,
            actor=actor,
            action="media.swept",
            entity="media",
            entity_id="all",
            detail={
                "items_deleted": report.items_deleted,
                "orphan_files_deleted": report.orphan_files_deleted,
                "staging_files_deleted": report.staging_files_deleted,
                "sha256": sorted(item.sha256 for item in unreferenced),
            },
        )
        return report

    def _audit(
        self, session: Session, item: MediaItem, action: str, actor: str, at: datetime, **extra: Any
    ) -> None:
        audit.record(
            session,
            at=at,
            actor=actor,
            action=action,
            entity="media",
            entity_id=item.id or 0,
            detail={"sha256": item.sha256, "media_type": item.media_type, **extra},
        )


def _chunks(source: Source) -> Iterator[bytes]:
    if isinstance(source, Readable):  # a file: read in chunks, never line by line
        return iter(partial(source.read, CHUNK_BYTES), b"")
    return iter(source)


@contextmanager
def _disk_errors(doing: str, where: Path) -> Iterator[None]:
    """Turn the operating system's write failures into a MediaError saying what happened."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise MediaError(
                f"no space left on the media disk ({where}) while {doing}; nothing was kept"
            ) from exc
        raise MediaError(f"could not write media to {where} while {doing}: {exc}") from exc


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB"
