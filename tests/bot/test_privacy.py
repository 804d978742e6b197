"""Subject access export and erasure: one person's data, all of it, and nobody else's."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import MetaData, Table, inspect, select
from sqlmodel import col

from bot import meetings, privacy
from bot.app import App
from bot.crud import audit, users
from bot.db import Database
from bot.media import MediaStore
from bot.messages import InboundMessage
from bot.models import AuditEntry, Booking, Case, CaseStatus, MediaItem, Message, SlotKind
from bot.privacy import Identity, PrivacyError
from channels.base import Batch, Undeliverable
from tests.conftest import NOW, message_line

SAM_TWITTER = "1447799000123456789"
SAM_FACEBOOK = "7712345678901234"
SAM_EMAIL = "sam.taylor@uclan.ac.uk"
SAM_PHRASE = "zebra bell"
SAM_NAME = "Sam Taylor"
ALEX_TWITTER = "1337000111222333444"
ALEX_PHRASE = "purple scooter"
ALEX_NAME = "Alex Park"
SAM = (
    Identity("facebook", SAM_FACEBOOK),
    Identity("in_the_know", SAM_EMAIL),
    Identity("twitter", SAM_TWITTER),
)
SAM_NEEDLES = (SAM_TWITTER, SAM_FACEBOOK, SAM_EMAIL, SAM_PHRASE, SAM_NAME)
ALEX_NEEDLES = (ALEX_TWITTER, ALEX_PHRASE, ALEX_NAME)
ADMIN = "dpo.lewis"


@dataclass(frozen=True)
class Seeded:
    sam_cases: int
    alex_cases: int
    sam_photo: str  # sha256 of the photo only Sam sent
    shared_photo: str  # the same picture, sent by both
    alex_photo: str


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(out, format="JPEG")
    return out.getvalue()


def _message(external_id: str, text: str, **fields: Any) -> InboundMessage:
    return InboundMessage.model_validate(message_line(external_id, text, **fields))


def seed(app: App) -> Seeded:
    """Two students: Sam on three channels (with a photo, a booking, a broken payload and a
    broken email), and Alex on Twitter, whose reply to Sam's tweet carries Sam's id."""
    sam = [
        _message(
            "tw-1",
            f"someone nicked my bike from the Foster racks, blue raleigh with a {SAM_PHRASE}",
            author={"id": SAM_TWITTER, "handle": "sam_uclan", "name": SAM_NAME},
            conversation_id=f"dm-{SAM_TWITTER}",
            attachments=[{"kind": "image", "url": "https://pbs.twimg.com/media/bike.jpg"}],
            raw={"id": "tw-1", "sender_id": SAM_TWITTER, "text": f"a {SAM_PHRASE}"},
        ),
        _message(
            "m_fb-1",
            "there's a fight outside the SU right now",
            channel="facebook",
            author={"id": SAM_FACEBOOK},
            conversation_id=SAM_FACEBOOK,
            raw={"sender": {"id": SAM_FACEBOOK}, "message": {"mid": "m_fb-1"}},
        ),
        _message(
            "<a1@uclan.ac.uk>",
            "thanks for the alert about the car park",
            channel="in_the_know",
            author={"id": SAM_EMAIL, "name": SAM_NAME},
            conversation_id="<alert-7@itk>",
            raw={"from": SAM_EMAIL, "subject": "Re: alert"},
        ),
    ]
    alex = [
        _message(
            "tw-2",
            f"my {ALEX_PHRASE} was stolen from outside the library",
            author={"id": ALEX_TWITTER, "handle": "alex_p", "name": ALEX_NAME},
            conversation_id="thread-9",
            private=False,
            raw={"id": "tw-2", "author_id": ALEX_TWITTER, "in_reply_to_user_id": SAM_TWITTER},
        ),
        _message(
            "tw-3",
            "is the SU open late tonight",
            author={"id": ALEX_TWITTER, "handle": "alex_p", "name": ALEX_NAME},
            raw={"id": "tw-3", "author_id": ALEX_TWITTER},
        ),
    ]
    broken = [
        Undeliverable(
            f'{{"sender":{{"id":"{SAM_FACEBOOK}"}},"message":{{"text":"the {SAM_PHRASE}'.encode(),
            "malformed JSON",
            "webhook",
        ),
        Undeliverable(
            f"From: {SAM_NAME} <Sam.Taylor@UCLAN.ac.uk>\r\nSubject: Re: alert\r\n\r\n\xff".encode(
                "latin-1"
            ),
            "email not understood: no Message-ID or From",
            "imap",
        ),
        Undeliverable(
            f'{{"author_id":"{ALEX_TWITTER}","text":"{ALEX_PHRASE}'.encode(),
            "malformed JSON",
            "webhook",
        ),
    ]
    app.pipeline.run(Batch(messages=sam + alex, failures=broken), source="replay")
    start = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    store = MediaStore.from_settings(app.settings)
    received = NOW - timedelta(hours=2)
    with app.db.session() as session:
        photos = {
            colour: store.receive(session, [_jpeg(colour)], actor="student", at=received)
            for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200))
        }
        ids = {m.external_id: m.id or 0 for m in session.scalars(select(Message))}
        sam_photo, shared, alex_photo = photos.values()
        for item, external_id in (
            (sam_photo, "tw-1"),
            (shared, "tw-1"),
            (shared, "tw-2"),
            (alex_photo, "tw-2"),
        ):
            store.attach(session, item, message_id=ids[external_id], actor="worker", at=received)
    with app.db.session() as session:
        users.add(session, username=ADMIN, roles=["admin"], at=NOW, by="setup")
        users.add(session, username="pc.jones", roles=["officer"], at=NOW, by="setup")
        slots = [
            meetings.add_slot(
                session,
                officer="pc.jones",
                place="Foster Building, room 2",
                starts_at=start + timedelta(hours=hour),
                minutes=20,
                kind=SlotKind.ONE_TO_ONE,
                at=NOW,
            )
            for hour in (0, 1)
        ]
        meetings.book(
            session,
            slot_id=slots[0].id or 0,
            channel="twitter",
            contact_id=SAM_TWITTER,
            name=SAM_NAME,
            at=NOW,
        )
        meetings.book(
            session,
            slot_id=slots[1].id or 0,
            channel="twitter",
            contact_id=ALEX_TWITTER,
            name=ALEX_NAME,
            at=NOW,
        )
        cases = list(session.scalars(select(Case)))
    return Seeded(
        sam_cases=sum(c.author_id in {i.author_id for i in SAM} for c in cases),
        alex_cases=sum(c.author_id == ALEX_TWITTER for c in cases),
        sam_photo=sam_photo.sha256,
        shared_photo=shared.sha256,
        alex_photo=alex_photo.sha256,
    )


def media_on_disk(app: App) -> set[str]:
    return {key for key, _ in MediaStore.from_settings(app.settings).backend.stored()}


def tables(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the database itself (not only the models we know of)."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as connection:
        for name in sorted(inspect(connection).get_table_names()):
            table = Table(name, MetaData(), autoload_with=connection)
            found[name] = sorted(
                (tuple(row) for row in connection.execute(select(table))), key=repr
            )
    return found


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def traces(db: Database, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(table, needle) for every needle found in any column of any row, case-insensitive."""
    hits: set[tuple[str, str]] = set()
    for name, rows in tables(db).items():
        for row in rows:
            text = " ".join(_as_text(v) for v in row).lower()
            hits.update((name, n) for n in needles if n.lower() in text)
    return sorted(hits)


@pytest.fixture
def seeded(bot_app: App) -> Seeded:
    return seed(bot_app)


def test_export_holds_all_of_the_person_and_nobody_else(
    bot_app: App, seeded: Seeded, tmp_path: Path
) -> None:
    with bot_app.db.session() as session:
        who = privacy.resolve(
            session,
            [
                f"twitter:{SAM_TWITTER}",
                f"facebook:{SAM_FACEBOOK}",
                f"in_the_know:{SAM_EMAIL.upper()}",
            ],
        )
        assert who == SAM
        document = privacy.export(session, who, by=ADMIN, at=NOW, request="DPA-2026-0042")
        written = privacy.write_export(document, tmp_path / "sar" / "sam.json")
    assert written.stat().st_mode & 0o777 == 0o600
    assert {m["sha256"] for m in document["media"]} == {seeded.sam_photo, seeded.shared_photo}
    assert document["media_files_note"]  # a single file lists media; a folder holds copies
    text = written.read_text(encoding="utf-8")
    assert json.loads(text) == document
    assert all(n.lower() not in text.lower() for n in ALEX_NEEDLES)
    texts = sorted(m["text"] for m in document["messages"])
    assert len(texts) == 3 and any(SAM_PHRASE in t for t in texts)
    tweet = next(m for m in document["messages"] if m["channel"] == "twitter")
    assert tweet["raw"]["sender_id"] == SAM_TWITTER
    assert tweet["scenarios"] == ["theft"] and tweet["case_reference"].startswith("UCC-")
    assert tweet["attachments"][0]["url"].endswith("bike.jpg")
    assert {a["sha256"] for a in tweet["attachments"][1:]} == {
        seeded.sam_photo,
        seeded.shared_photo,
    }
    assert document["subject"]["handles"] == ["sam_uclan"]
    assert document["subject"]["names"] == [SAM_NAME]
    assert len(document["cases"]) == seeded.sam_cases and all(
        c["opened_by_them"] for c in document["cases"]
    )
    assert {b["contact_id"] for b in document["bookings"]} == {SAM_TWITTER}
    assert document["bookings"][0]["slot"]["place"] == "Foster Building, room 2"
    assert document["replies_to_them"], "the urgent message and first contacts were acknowledged"
    letters = document["dead_letters"]
    assert len(letters) == 2  # the broken webhook body and the broken email, not Alex's
    assert SAM_PHRASE in letters[0]["raw_text"] and "raw_base64" in letters[1]
    actions = {(e["action"], e["entity"]) for e in document["audit_entries"]}
    assert ("case.opened", "case") in actions and ("meeting.booked", "booking") in actions
    assert document["counts"]["messages"] == 3 and document["counts"]["attachments"] == 3
    with bot_app.db.session() as session:
        entry = session.scalars(select(AuditEntry).order_by(col(AuditEntry.id).desc())).first()
        assert entry is not None and audit.verify(session).ok
    assert (entry.action, entry.actor, entry.entity_id) == (
        "privacy.exported",
        ADMIN,
        "DPA-2026-0042",
    )
    assert entry.detail["messages"] == 3
    assert all(n.lower() not in json.dumps(entry.detail).lower() for n in SAM_NEEDLES)


def test_erase_leaves_no_trace_and_keeps_everyone_else(bot_app: App, seeded: Seeded) -> None:
    db = bot_app.db
    assert {table for table, _ in traces(db, SAM_NEEDLES)} >= {
        "messages",
        "cases",
        "bookings",
        "dead_letters",
        "outbox",
    }
    alex_before = traces(db, ALEX_NEEDLES)
    cases_before = len(tables(db)["cases"])
    store = MediaStore.from_settings(bot_app.settings)
    with db.session() as session:
        report = privacy.erase(session, SAM, by=ADMIN, at=NOW, request="DPA-2026-0043", media=store)
    assert (report.messages, report.attachments, report.bookings, report.dead_letters) == (
        3,
        3,
        1,
        2,
    )
    # their own photo is gone, file and row; the picture Alex sent too stays for Alex
    assert (report.media_files, report.media_files_waiting) == (1, 0)
    assert media_on_disk(bot_app) == {seeded.shared_photo, seeded.alex_photo}
    assert report.replies >= 1 and report.others_raw_payloads_emptied == 1
    assert report.cases_anonymised == seeded.sam_cases == report.cases_closed
    assert traces(db, SAM_NEEDLES) == []  # in no table, audit log included
    assert traces(db, ALEX_NEEDLES) == alex_before
    with db.session() as session:
        assert len(list(session.scalars(select(Case)))) == cases_before
        erased = list(session.scalars(select(Case).where(col(Case.author_id) == privacy.ERASED)))
        assert len(erased) == seeded.sam_cases
        assert all(c.status == CaseStatus.CLOSED and c.reference for c in erased)
        assert {c.priority for c in erased} >= {"P2"}  # the fight: statistics still count it
        alex_reply = session.scalars(
            select(Message).where(col(Message.external_id) == "tw-2")
        ).one()
        assert alex_reply.raw is None and ALEX_PHRASE in alex_reply.text
        assert session.scalars(select(Message).where(col(Message.external_id) == "tw-3")).one().raw
        assert set(session.scalars(select(col(MediaItem.sha256)))) == {
            seeded.shared_photo,
            seeded.alex_photo,
        }
        entry = session.scalars(select(AuditEntry).order_by(col(AuditEntry.id).desc())).first()
        assert audit.verify(session).ok
    assert entry is not None and (entry.action, entry.actor) == ("privacy.erased", ADMIN)
    assert entry.entity_id == "DPA-2026-0043" and entry.detail["messages"] == 3


def test_dry_run_changes_nothing_and_erasing_again_finds_nothing(
    bot_app: App, seeded: Seeded
) -> None:
    db, store = bot_app.db, MediaStore.from_settings(bot_app.settings)
    before, files = tables(db), media_on_disk(bot_app)
    with db.session() as session:
        dry = privacy.erase(session, SAM, by=ADMIN, at=NOW, dry_run=True, media=store)
    assert tables(db) == before and media_on_disk(bot_app) == files
    with db.session() as session:
        real = privacy.erase(session, SAM, by=ADMIN, at=NOW, media=store)
    assert dry.counts() == real.counts() and (real.messages, real.media_files) == (3, 1)
    after = tables(db)
    with db.session() as session:
        again = privacy.erase(session, SAM, by=ADMIN, at=NOW + timedelta(minutes=5), media=store)
    assert set(again.counts().values()) == {0}
    final = tables(db)
    assert {k: v for k, v in final.items() if k != "audit_log"} == {
        k: v for k, v in after.items() if k != "audit_log"
    }
    assert len(final["audit_log"]) == len(after["audit_log"]) + 1  # the second request, audited


def test_a_handle_resolves_to_its_account_and_an_ambiguous_one_is_refused(
    bot_app: App, seeded: Seeded
) -> None:
    jo = [
        _message("x-1", "hello", author={"id": "5550001112223", "handle": "@jo"}),
        _message("x-2", "hi", channel="facebook", author={"id": "9990001112223", "handle": "jo"}),
    ]
    bot_app.pipeline.ingest(Batch(messages=jo), source="replay")
    with bot_app.db.session() as session:
        assert privacy.resolve(session, ["@SAM_uclan"]) == (Identity("twitter", SAM_TWITTER),)
        assert privacy.resolve(session, ["facebook:@jo"]) == (
            Identity("facebook", "9990001112223"),
        )
        with pytest.raises(PrivacyError, match="used by 2 accounts"):
            privacy.resolve(session, ["@jo"])
        with pytest.raises(PrivacyError, match="no messages from @nobody"):
            privacy.resolve(session, ["nobody"])
        with pytest.raises(PrivacyError, match="unknown channel 'myspace'"):
            privacy.resolve(session, ["myspace:123"])


def test_only_an_active_admin_may_export_or_erase(bot_app: App, seeded: Seeded) -> None:
    before = tables(bot_app.db)
    for by, why in (("pc.jones", "need the admin role"), ("nobody", "not an active user")):
        with pytest.raises(PrivacyError, match=why), bot_app.db.session() as session:
            privacy.erase(session, SAM, by=by, at=NOW)
        with pytest.raises(PrivacyError, match=why), bot_app.db.session() as session:
            privacy.export(session, SAM, by=by, at=NOW)
    with pytest.raises(PrivacyError, match="never the person's name"), bot_app.db.session() as s:
        privacy.erase(s, SAM, by=ADMIN, at=NOW, request="sam.taylor@uclan.ac.uk")
    assert tables(bot_app.db) == before


def test_an_export_never_overwrites(tmp_path: Path) -> None:
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    with pytest.raises(PrivacyError, match="already exists"):
        privacy.write_export({"format": privacy.EXPORT_FORMAT}, taken)
    assert taken.read_text() == "{}"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("x")
    with pytest.raises(PrivacyError, match="new or empty folder"):
        privacy.write_export({"format": privacy.EXPORT_FORMAT}, busy)
    written = privacy.write_export({"format": privacy.EXPORT_FORMAT}, tmp_path / "fresh")
    assert written == tmp_path / "fresh" / privacy.EXPORT_FILE


def test_a_short_id_only_matches_where_it_stands_as_an_id(bot_app: App) -> None:
    """Old Twitter accounts have ids like 12; a bare 12 in a count must not condemn a letter."""
    broken = [
        Undeliverable(b'{"author_id":"12","text":"broken', "malformed JSON"),
        Undeliverable(b'{"author_id":"99","retweets":12,"text":"broken', "malformed JSON"),
    ]
    bot_app.pipeline.ingest(Batch(failures=broken), source="replay")
    with bot_app.db.session() as session:
        users.add(session, username=ADMIN, roles=["admin"], at=NOW, by="setup")
        report = privacy.erase(session, [Identity("twitter", "12")], by=ADMIN, at=NOW)
    assert report.dead_letters == 1
    assert [row[0] for row in tables(bot_app.db)["dead_letters"]] == [2]


def test_an_audit_entry_naming_the_person_is_reported_and_kept(
    bot_app: App, seeded: Seeded
) -> None:
    """The chain cannot be rewritten, so an actor recorded as a student's id is only flagged.

    The bot itself records a student acting as "student" (a cancelled booking below); an
    entry naming one can only come from elsewhere, e.g. an import from an older system.
    """
    with bot_app.db.session() as session:
        booking = session.scalars(select(Booking).where(col(Booking.contact_id) == SAM_TWITTER))
        meetings.cancel(session, booking_id=booking.one().id or 0, by=SAM_TWITTER, at=NOW)
        audit.record(
            session,
            at=NOW,
            actor=SAM_TWITTER,
            action="legacy.import",
            entity="booking",
            entity_id=1,
        )
    with bot_app.db.session() as session:
        report = privacy.erase(session, SAM, by=ADMIN, at=NOW)
        assert audit.verify(session).ok
    assert report.audit_entries_naming_them == 1
    assert traces(bot_app.db, SAM_NEEDLES) == [("audit_log", SAM_TWITTER)]


def test_a_folder_export_holds_copies_of_their_media_without_location(
    bot_app: App, seeded: Seeded, tmp_path: Path
) -> None:
    store = MediaStore.from_settings(bot_app.settings)
    with bot_app.db.session() as session:
        document = privacy.export(session, SAM, by=ADMIN, at=NOW)
        copies = privacy.MediaCopies(session=session, store=store, by=ADMIN, at=NOW)
        written = privacy.write_export(document, tmp_path / "sar", copies)
        copied = list(
            session.scalars(
                select(AuditEntry).where(col(AuditEntry.action) == "media.outbound_copy")
            )
        )
    assert written == tmp_path / "sar" / privacy.EXPORT_FILE
    files = sorted((tmp_path / "sar" / "media").iterdir())
    assert [f"media/{f.name}" for f in files] == sorted(document["media_files"])
    assert len(files) == 2 and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(Image.open(f).format == "JPEG" for f in files)
    assert {e.detail["purpose"] for e in copied} == {f"subject_access:{document['request']}"}
    assert {e.actor for e in copied} == {ADMIN}


def test_media_that_is_still_arriving_waits_for_the_next_sweep(
    bot_app: App, seeded: Seeded
) -> None:
    """Within the store's grace an upload may be on its way to a message: it is kept, and said."""
    store = MediaStore.from_settings(bot_app.settings)
    with bot_app.db.session() as session:
        report = privacy.erase(session, SAM, by=ADMIN, at=NOW - timedelta(hours=1), media=store)
    assert (report.media_files, report.media_files_waiting) == (0, 1)
    assert seeded.sam_photo in media_on_disk(bot_app)
    with bot_app.db.session() as session:
        store.sweep(session, actor="retention", at=NOW)
    assert seeded.sam_photo not in media_on_disk(bot_app)
