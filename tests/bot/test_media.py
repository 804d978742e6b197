"""The media store: photos and videos checked by their bytes, kept whole, stripped on the way out.

Sample photos are made here with Pillow (and pillow-heif); sample videos are assembled box
by box in the layouts phones write (Android's ``©xyz`` in user data, the iPhone's
QuickTime ``keys``/``ilst`` location item and XMP packet).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import struct
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from PIL import ExifTags, Image
from sqlmodel import Session, col, select

from bot.config import MediaSettings, Settings, load_settings
from bot.crud import audit
from bot.db import Database
from bot.errors import ConfigError
from bot.media import MediaError, MediaNotFound, MediaRefused, MediaStore, open_backend
from bot.media.bmff import check_video, location_patches
from bot.models import AuditEntry, Case, MediaItem, Message, MessageAttachment
from tests.conftest import NOW

pillow_heif.register_heif_opener()

MB = 1024 * 1024
GB = 1024 * MB
OFFICER = "pc.jones"
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(50) + b"This program cannot be run"
LATITUDE_TEXT = b"+53.7632-002.7087/"  # Preston, as phones write it (ISO 6709)


# -- samples -----------------------------------------------------------------------------


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Apple"
    exif[ExifTags.Base.Model] = "iPhone 15"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (53.0, 45.0, 47.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 42.0, 31.2)
    return exif


def photo(fmt: str = "JPEG", *, size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    image = Image.new("RGB", size, (180, 40, 40))
    image.putpixel((0, 0), (0, 0, 255))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def box(kind: bytes, *children: bytes, body: bytes = b"") -> bytes:
    payload = body + b"".join(children)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def hdlr(handler: bytes) -> bytes:
    return box(b"hdlr", body=bytes(8) + handler + bytes(12) + b"Core Media\0")


def trak(handler: bytes) -> bytes:
    return box(
        b"trak",
        box(b"tkhd", body=bytes(84)),
        box(b"mdia", box(b"mdhd", body=bytes(24)), hdlr(handler), box(b"minf")),
    )


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", body=major + b"\0\0\x02\0" + b"".join(compatible))


def mp4(*, udta: bytes = b"", handler: bytes = b"vide", brand: bytes = b"isom") -> bytes:
    """An Android-style MP4: ©xyz (if given) in moov/udta."""
    moov = box(b"moov", box(b"mvhd", body=bytes(100)), trak(handler), udta)
    return ftyp(brand, b"isom", b"mp42") + moov + box(b"mdat", body=bytes(range(256)) * 8)


def android_location() -> bytes:
    return box(b"udta", box(b"\xa9xyz", body=struct.pack(">HH", 18, 0x15C7) + LATITUDE_TEXT))


XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
XMP_PACKET = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
    b'exif:GPSLatitude="53,45.79N" exif:GPSLongitude="2,42.52W"/></rdf:RDF></x:xmpmeta>'
)


def iphone_mov() -> bytes:
    """An iPhone-style MOV: QuickTime metadata keys with a location item, and an XMP box."""
    keys = [b"com.apple.quicktime.make", b"com.apple.quicktime.location.ISO6709"]
    keys_body = bytes(4) + struct.pack(">I", len(keys))
    keys_body += b"".join(struct.pack(">I", 8 + len(k)) + b"mdta" + k for k in keys)

    def item(index: int, value: bytes) -> bytes:
        data = box(b"data", body=struct.pack(">II", 1, 0) + value)
        return box(struct.pack(">I", index), data)

    meta = box(  # QuickTime meta: no version/flags before its hdlr
        b"meta",
        hdlr(b"mdta"),
        box(b"keys", body=keys_body),
        box(b"ilst", item(1, b"Apple"), item(2, LATITUDE_TEXT)),
    )
    moov = box(b"moov", box(b"mvhd", body=bytes(100)), trak(b"soun"), trak(b"vide"), meta)
    xmp = box(b"uuid", body=XMP_UUID + XMP_PACKET)
    return ftyp(b"qt  ", b"qt  ") + box(b"wide") + moov + xmp + box(b"mdat", body=bytes(2048))


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def media_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings from a config.yaml with a media section, small limits to keep tests quick."""
    config = tmp_path / "media-config.yaml"
    config.write_text(
        f"var_dir: {tmp_path / 'var'}\n"
        "media:\n  backend: local\n  max_image_bytes: 2097152\n  max_video_bytes: 4194304\n"
        "  max_image_pixels: 4000000\n"
    )
    return load_settings(config)


@pytest.fixture
def store(media_settings: Settings) -> MediaStore:
    return MediaStore.from_settings(media_settings)


def stored_files(media_settings: Settings) -> list[Path]:
    root = media_settings.var_dir / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def receive(db: Database, store: MediaStore, data: bytes | Any) -> MediaItem:
    source = [data] if isinstance(data, bytes) else data
    with db.session() as session:
        return store.receive(session, source, actor="student", at=NOW)


def media_audit(db: Database) -> list[tuple[str, str, dict[str, Any]]]:
    with db.session() as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.entity == "media").order_by(col(AuditEntry.id))
        ).all()
        return [(e.action, e.actor, e.detail) for e in entries]


def add_message(session: Session, external_id: str = "m1", *, with_case: bool = True) -> Message:
    case_id = None
    if with_case:
        case = Case(
            reference="UCC-2026-000123",
            channel="facebook",
            conversation_id="conv-1",
            author_id="psid-1",
            opened_at=NOW,
            updated_at=NOW,
            sla_due_at=NOW + timedelta(hours=8),
        )
        session.add(case)
        session.flush()
        case_id = case.id
    message = Message(
        channel="facebook",
        external_id=external_id,
        conversation_id="conv-1",
        author_id="psid-1",
        text="someone smashed the bike shed window, photo attached",
        private=True,
        received_at=NOW,
        ingested_at=NOW,
        case_id=case_id,
    )
    session.add(message)
    session.flush()
    return message


# -- accepted media ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "media_type", "kind", "has_location"),
    [
        (lambda: photo("JPEG", exif=gps_exif()), "image/jpeg", "image", True),
        (lambda: photo("JPEG"), "image/jpeg", "image", False),
        (lambda: photo("PNG", exif=gps_exif()), "image/png", "image", True),
        (lambda: photo("HEIF", exif=gps_exif()), "image/heic", "image", True),
        (lambda: mp4(udta=android_location()), "video/mp4", "video", True),
        (lambda: mp4(), "video/mp4", "video", False),
        (iphone_mov, "video/quicktime", "video", True),
    ],
    ids=["jpeg-gps", "jpeg", "png-gps", "heic-gps", "mp4-gps", "mp4", "mov-gps"],
)
def test_accepted_media_is_kept_whole_under_its_sha256(
    db: Database,
    store: MediaStore,
    media_settings: Settings,
    make: Any,
    media_type: str,
    kind: str,
    has_location: bool,
) -> None:
    data: bytes = make()
    item = receive(db, store, data)
    digest = hashlib.sha256(data).hexdigest()
    assert (item.sha256, item.media_type, item.kind, item.size) == (
        digest,
        media_type,
        kind,
        len(data),
    )
    assert item.has_location is has_location
    [kept] = stored_files(media_settings)
    assert kept.name == digest and kept.read_bytes() == data
    assert kept.parent.parent.parent == media_settings.var_dir / "media" / "objects"
    with db.session() as session:
        with store.open_original(session, digest, actor=OFFICER, at=NOW) as original:
            assert original.read() == data  # location and all, for officers
    assert [(a, who) for a, who, _ in media_audit(db)] == [
        ("media.received", "student"),
        ("media.viewed", OFFICER),
    ]


def test_a_program_renamed_photo_jpg_is_refused_by_its_bytes(
    db: Database, store: MediaStore, media_settings: Settings, tmp_path: Path
) -> None:
    renamed = tmp_path / "photo.jpg"
    renamed.write_bytes(WINDOWS_EXE + bytes(4096))
    with renamed.open("rb") as upload, pytest.raises(MediaRefused) as refused:
        receive(db, store, upload)
    assert str(refused.value).startswith("not a photo or video (it looks like a Windows program)")
    assert stored_files(media_settings) == []


def test_a_file_object_streams_in_like_chunks(db: Database, store: MediaStore) -> None:
    data = photo("PNG")
    item = receive(db, store, io.BytesIO(data))
    assert item.sha256 == hashlib.sha256(data).hexdigest()


def test_the_same_bytes_twice_are_stored_once(
    db: Database, store: MediaStore, media_settings: Settings
) -> None:
    data = photo("JPEG")
    first = receive(db, store, data)
    second = receive(db, store, [data[:5], data[5:100], data[100:]])  # chunking is irrelevant
    assert first.id == second.id
    assert len(stored_files(media_settings)) == 1
    assert [d["duplicate"] for _, _, d in media_audit(db)] == [False, True]


# -- hostile input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (WINDOWS_EXE, "looks like a Windows program"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "looks like a Linux program"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "looks like a PDF document"),
        (b"<!DOCTYPE html><script>alert(1)</script>", "looks like a web page"),
        (b"GIF89a\x01\x00\x01\x00" + bytes(20), "GIF image, which is not accepted"),
        (b"", "the file is empty (0 bytes)"),
        (photo("JPEG")[:300], "JPEG photo is damaged or incomplete"),
        (photo("PNG", size=(300, 300))[:-40], "PNG image is damaged or incomplete"),
        (b"\xff\xd8\xff\xe0" + os.urandom(4000), "JPEG photo is damaged or incomplete"),
        (mp4()[:-100], "MP4 video is damaged or incomplete"),
        (mp4() + b"trailing junk", "MP4 video is damaged or incomplete"),
        (mp4(handler=b"soun"), "has no video track"),
        (mp4(brand=b"M4A "), "audio recordings are not accepted"),
        (ftyp(b"avif", b"mif1", b"avif") + bytes(64), "AVIF images are not accepted"),
        (ftyp(b"qt  ") + box(b"mdat", body=bytes(64)), "0 movie headers"),
    ],
    ids=[
        "renamed-exe",
        "elf",
        "pdf",
        "html",
        "gif",
        "zero-bytes",
        "truncated-jpeg",
        "truncated-png",
        "jpeg-header-then-noise",
        "truncated-mp4",
        "padded-mp4",
        "audio-only-mp4",
        "m4a",
        "avif",
        "mov-without-movie",
    ],
)
def test_anything_else_is_refused_with_a_reason_and_nothing_is_kept(
    db: Database, store: MediaStore, media_settings: Settings, data: bytes, reason: str
) -> None:
    with pytest.raises(MediaRefused, match=re.escape(reason)):
        receive(db, store, data)
    assert stored_files(media_settings) == []
    with db.session() as session:
        assert session.exec(select(MediaItem)).all() == []


def test_a_decompression_bomb_is_refused_before_decoding(db: Database, store: MediaStore) -> None:
    bomb = photo("PNG", size=(3000, 3000))  # 9 MP of one colour: a few kB on the wire
    assert len(bomb) < 100_000
    with pytest.raises(MediaRefused, match=r"3000x3000 pixels, more than the 4,000,000 allowed"):
        receive(db, store, bomb)


class LazyUpload:
    """A 2 GB upload, made as it is read: a real header, then zeros."""

    def __init__(self, header: bytes, total: int = 2 * GB, chunk: int = MB) -> None:
        self.header, self.total, self.chunk, self.sent = header, total, chunk, 0

    def chunks(self) -> Iterator[bytes]:
        while self.sent < self.total:
            piece = (
                self.header if self.sent == 0 else bytes(min(self.chunk, self.total - self.sent))
            )
            self.sent += len(piece)
            yield piece

    def read(self, size: int = -1) -> bytes:  # the file-object face of the same upload
        if self.sent >= self.total:
            return b""
        piece = self.header if self.sent == 0 else bytes(min(size, self.total - self.sent))
        self.sent += len(piece)
        return piece


@pytest.mark.parametrize(
    ("header", "shape", "limit_text"),
    [
        (photo("JPEG"), "generator", "larger than the 2.0 MB allowed"),
        (mp4()[:64], "generator", "larger than the 4.0 MB allowed"),
        (photo("JPEG"), "file", "larger than the 2.0 MB allowed"),
    ],
    ids=["photo-generator", "video-generator", "photo-file-object"],
)
def test_a_2gb_upload_is_refused_mid_stream_in_little_memory(
    db: Database,
    store: MediaStore,
    media_settings: Settings,
    header: bytes,
    shape: str,
    limit_text: str,
) -> None:
    upload = LazyUpload(header)
    source = upload.chunks() if shape == "generator" else upload
    tracemalloc.start()
    try:
        with pytest.raises(MediaRefused, match=limit_text):
            receive(db, store, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = max(media_settings.media.max_image_bytes, media_settings.media.max_video_bytes)
    assert upload.sent <= limit + MB  # stopped at the first chunk past the limit
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"
    assert stored_files(media_settings) == []  # the staged part was removed


class FillsUp:
    """A file on a disk that runs out of room after ``room`` bytes, as a full disk does."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.real.write(data[: self.room])
            self.real.flush()
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> FillsUp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


def test_a_full_disk_gives_a_clear_error_and_leaves_no_partial_file(
    db: Database, store: MediaStore, media_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FillsUp(real_fdopen(fd, *a, **k), 500))
    data = mp4(udta=android_location())
    with pytest.raises(MediaError, match="no space left on the media disk"):
        receive(db, store, [data[:400], data[400:]])
    monkeypatch.undo()
    assert stored_files(media_settings) == []
    with db.session() as session:
        assert session.exec(select(MediaItem)).all() == []


# -- copies that leave the system --------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "HEIF"])
def test_an_outbound_photo_has_no_location_or_other_metadata(
    db: Database, store: MediaStore, fmt: str
) -> None:
    extra = {} if fmt == "PNG" else {"xmp": XMP_PACKET}
    original = photo(fmt, size=(64, 48), exif=gps_exif(orientation=6), **extra)
    item = receive(db, store, original)
    assert item.has_location
    with db.session() as session:
        copy = store.outbound_copy(
            session, item.sha256, actor=OFFICER, at=NOW, purpose="partner:victim_support"
        )
    assert copy.media_type == item.media_type
    assert copy.filename.endswith({"JPEG": ".jpg", "PNG": ".png", "HEIF": ".heic"}[fmt])
    with Image.open(io.BytesIO(copy.data)) as clean:
        assert clean.format == fmt
        assert dict(clean.getexif()) == {}
        assert not clean.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "xmp" not in clean.info
        if fmt != "HEIF":  # libheif applies HEIF rotation itself; EXIF orientation is not used
            assert clean.size == (48, 64)  # turned upright before the orientation tag went
    assert b"GPSLatitude" not in copy.data and b"Apple" not in copy.data
    with db.session() as session:  # the stored original still has it, for officers
        with store.open_original(session, item.sha256, actor=OFFICER, at=NOW) as f:
            assert f.read() == original
    actions = media_audit(db)
    assert actions[1][:2] == ("media.outbound_copy", OFFICER)
    assert actions[1][2]["purpose"] == "partner:victim_support"


@pytest.mark.parametrize("make", [lambda: mp4(udta=android_location()), iphone_mov])
def test_an_outbound_video_loses_its_location_boxes_and_nothing_else(
    db: Database, store: MediaStore, make: Any
) -> None:
    original: bytes = make()
    assert LATITUDE_TEXT in original
    item = receive(db, store, original)
    with db.session() as session:
        copy = store.outbound_copy(session, item.sha256, actor=OFFICER, at=NOW, purpose="reply")
    data = copy.data
    assert len(data) == len(original)  # no re-encoding: same size, same layout
    assert LATITUDE_TEXT not in data and b"\xa9xyz" not in data and b"GPSLatitude" not in data
    assert XMP_UUID not in data
    changed = [i for i in range(len(data)) if data[i] != original[i]]
    assert changed, "nothing was removed"
    assert original[changed[0] : changed[0] + 4] in (b"\xa9xyz", b"uuid", struct.pack(">I", 2))
    assert original[-2048:] == data[-2048:]  # the media data itself is untouched
    # still a well-formed movie, with nothing left to strip
    check_video(io.BytesIO(data), len(data), "copy")
    assert location_patches(io.BytesIO(data), len(data)) == ()


def test_a_video_without_location_leaves_byte_for_byte(db: Database, store: MediaStore) -> None:
    original = mp4()
    item = receive(db, store, original)
    with db.session() as session:
        copy = store.outbound_copy(session, item.sha256, actor=OFFICER, at=NOW, purpose="reply")
    assert copy.data == original


# -- evidence, attachments, audit --------------------------------------------------------


def test_evidence_export_holds_the_original_and_a_manifest(
    db: Database, store: MediaStore, tmp_path: Path
) -> None:
    original = photo("JPEG", exif=gps_exif())
    item = receive(db, store, original)
    with db.session() as session:
        message = add_message(session)
        store.attach(session, item, message_id=message.id or 0, actor="student", at=NOW)
        later = NOW + timedelta(days=2)
        package = store.export_evidence(
            session, item.sha256, actor="ds.patel", at=later, dest_dir=tmp_path / "exports"
        )
        verify = audit.verify(session)
    assert verify.ok
    assert list((tmp_path / "exports").iterdir()) == [package]
    with zipfile.ZipFile(package) as z:
        names = sorted(z.namelist())
        assert names == ["manifest.json", f"original/{item.sha256}.jpg"]
        assert z.read(f"original/{item.sha256}.jpg") == original  # GPS and all
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["sha256"] == hashlib.sha256(original).hexdigest()
    assert manifest["size"] == len(original)
    assert manifest["media_type"] == "image/jpeg"
    assert manifest["received_at"] == NOW.isoformat()
    assert manifest["exported_by"] == "ds.patel"
    assert manifest["exported_at"] == later.isoformat()
    assert manifest["sha256_verified"] is True
    assert manifest["has_location"] is True
    assert manifest["attached_to"] == [
        {
            "message_id": message.id,
            "channel": "facebook",
            "message_received_at": NOW.isoformat(),
            "case_reference": "UCC-2026-000123",
        }
    ]
    assert [(a, who) for a, who, _ in media_audit(db)] == [
        ("media.received", "student"),
        ("media.attached", "student"),
        ("media.exported", "ds.patel"),
    ]


def test_a_tampered_original_is_not_exported(
    db: Database, store: MediaStore, media_settings: Settings, tmp_path: Path
) -> None:
    item = receive(db, store, photo("PNG"))
    [kept] = stored_files(media_settings)
    kept.chmod(0o600)
    kept.write_bytes(kept.read_bytes() + b"edited")
    with pytest.raises(MediaError, match="no longer matches its sha256"), db.session() as session:
        store.export_evidence(
            session, item.sha256, actor=OFFICER, at=NOW, dest_dir=tmp_path / "exports"
        )
    assert list((tmp_path / "exports").iterdir()) == []


def test_media_is_linked_to_messages_through_the_attachment_sha256(
    db: Database, store: MediaStore
) -> None:
    photo_item = receive(db, store, photo("JPEG"))
    video_item = receive(db, store, mp4())
    with db.session() as session:
        message = add_message(session)
        message_id = message.id or 0
        # a platform attachment (a URL) whose bytes were fetched and stored
        fetched = MessageAttachment(
            message_id=message_id, kind="file", url="https://cdn.example/v.mp4"
        )
        session.add(fetched)
        session.flush()
        store.attach(session, photo_item, message_id=message_id, actor="student", at=NOW)
        store.attach(
            session,
            video_item,
            message_id=message_id,
            actor="worker",
            at=NOW,
            attachment_id=fetched.id,
        )
        found = store.for_message(session, message_id)
        rows = session.exec(
            select(MessageAttachment).where(MessageAttachment.message_id == message_id)
        ).all()
    assert [m.sha256 for m in found] == [video_item.sha256, photo_item.sha256]
    by_sha = {a.sha256: a for a in rows}
    assert by_sha[video_item.sha256].url == "https://cdn.example/v.mp4"
    assert (by_sha[video_item.sha256].kind, by_sha[video_item.sha256].size) == (
        "video",
        video_item.size,
    )
    assert by_sha[photo_item.sha256].media_type == "image/jpeg"


def test_fetched_bytes_must_match_the_sha256_the_platform_gave(
    db: Database, store: MediaStore
) -> None:
    item = receive(db, store, photo("JPEG"))
    with db.session() as session:
        message = add_message(session, with_case=False)
        declared = MessageAttachment(message_id=message.id or 0, kind="image", sha256="a" * 64)
        session.add(declared)
        session.flush()
        with pytest.raises(MediaError, match="stored bytes hash to"):
            store.attach(
                session,
                item,
                message_id=message.id or 0,
                actor="worker",
                at=NOW,
                attachment_id=declared.id,
            )
        assert declared.sha256 == "a" * 64  # the platform's hash is left as it was


def test_unknown_media_is_a_clear_not_found(db: Database, store: MediaStore) -> None:
    with db.session() as session:
        with pytest.raises(MediaNotFound, match="no stored media"):
            store.open_original(session, "0" * 64, actor=OFFICER, at=NOW)
        with pytest.raises(MediaNotFound, match="not a sha256"):
            store.outbound_copy(session, "../../etc/passwd", actor=OFFICER, at=NOW, purpose="x")
    assert media_audit(db) == []


def test_sweep_deletes_media_no_message_refers_to(
    db: Database, store: MediaStore, media_settings: Settings
) -> None:
    kept = receive(db, store, photo("JPEG"))
    dropped = receive(db, store, photo("PNG"))
    with db.session() as session:
        message = add_message(session, with_case=False)
        store.attach(session, kept, message_id=message.id or 0, actor="student", at=NOW)
    staging = media_settings.var_dir / "media" / "staging"
    (staging / "incoming-crashed").write_bytes(b"half an upload")
    orphan = media_settings.var_dir / "media" / "objects" / "ab" / "cd" / ("abcd" + "0" * 60)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"renamed in, row rolled back")
    with db.session() as session:
        # within the grace period nothing goes: it may still be on its way to a message
        early = store.sweep(session, actor="retention", at=NOW + timedelta(minutes=5))
    assert (early.items_deleted, early.orphan_files_deleted) == (0, 0)
    with db.session() as session:
        # real files' times are "now", so sweep as of a moment well after them
        report = store.sweep(session, actor="retention", at=NOW + timedelta(days=3650))
        left = [m.sha256 for m in session.exec(select(MediaItem))]
    assert (report.items_deleted, report.orphan_files_deleted, report.staging_files_deleted) == (
        1,
        1,
        1,
    )
    assert left == [kept.sha256]
    assert [p.name for p in stored_files(media_settings)] == [kept.sha256]
    swept = media_audit(db)[-1]
    assert swept[0] == "media.swept" and swept[2]["sha256"] == [dropped.sha256]


# -- configuration -----------------------------------------------------------------------


def test_a_backend_that_does_not_exist_is_refused_in_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("media:\n  backend: s3\n")
    with pytest.raises(ConfigError, match=r"media.backend: .*'s3' is not implemented"):
        load_settings(config)
    with pytest.raises(ConfigError, match="not implemented"):
        open_backend(MediaSettings.model_construct(backend="s3"), tmp_path)


def test_limits_come_from_config(db: Database, store: MediaStore) -> None:
    assert store.settings.max_image_bytes == 2 * MB
    big_but_fine = photo("PNG", size=(1000, 1000))  # well under 2 MB compressed
    assert receive(db, store, big_but_fine).size == len(big_but_fine)
    noisy = Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    assert len(out.getvalue()) > 2 * MB
    with pytest.raises(
        MediaRefused, match=re.escape("PNG image is larger than the 2.0 MB allowed")
    ):
        receive(db, store, out.getvalue())
