"""Reports over DMs: the guided conversation, adding later, flags, and fetched media.

Storage tests run on SQLite and PostgreSQL. The Must-show flow of issue 10 goes through
the real Messenger webhook (signed recorded payloads), the pipeline, the conversation, the
Send API (``responses``) and the console's case page.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from pydantic import SecretStr
from sqlmodel import col, select

from bot.acknowledge import AUTO_TEMPLATES
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings, TwitterSettings, load_settings
from bot.crud import templates
from bot.db import Database
from bot.delivery import deliver_due
from bot.incident_reports import REPORT_TEMPLATES, run_round
from bot.incident_reports.codes import code_for, report_key
from bot.incident_reports.downloads import fetch_due
from bot.incident_reports.flags import SAFEGUARDING_TAG
from bot.incident_reports.replies import FILED, render
from bot.incident_reports.signals import (
    references_in,
    suggests_sexual_offence,
    under_18_signal,
    yes_or_no,
)
from bot.messages import InboundMessage
from bot.models import (
    AttachmentFetch,
    AuditEntry,
    Case,
    FetchStatus,
    IncidentReport,
    MediaItem,
    Message,
    MessageAttachment,
    OutboundMessage,
    OutboxStatus,
    ReportEntry,
    ReportStatus,
)
from bot.retention import purge
from bot.web.server import create_app
from channels.base import Batch
from tests.conftest import FIXTURES, NOW, message_line
from tests.web.support import PASSWORD, add_people

FB = FIXTURES / "facebook"
PAGE_ID = "104000000000001"
APP_SECRET = "test-app-secret"
STUDENT = "25019384756102938"  # the sender of the recorded photo message
IMAGE_BODY = (FB / "webhook_message_image.json").read_bytes()
IMAGE_EVENT = json.loads(IMAGE_BODY)["entry"][0]["messaging"][0]
IMAGE_URL = IMAGE_EVENT["message"]["attachments"][0]["payload"]["url"]
IMAGE_AT = datetime.fromtimestamp(IMAGE_EVENT["timestamp"] / 1000, UTC)
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(50) + b"This program cannot be run"
MESSENGER_LIMIT = 2000


# -- helpers ----------------------------------------------------------------------------------


def jpeg_with_location() -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (53.0, 45.0, 47.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 42.0, 31.2)
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 40, 40)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


def approve_all(app: App) -> None:
    with app.db.session() as session:
        for name in (*AUTO_TEMPLATES, *REPORT_TEMPLATES):
            templates.approve(
                session, name=name, by="cara.comms", at=NOW, account=app.settings.account
            )


def dm(
    external_id: str,
    text: str,
    *,
    author: str = "student-1",
    channel: str = "twitter",
    at: datetime | None = None,
    **more: Any,
) -> InboundMessage:
    return InboundMessage.model_validate(
        message_line(
            external_id,
            text,
            channel=channel,
            author={"id": author},
            conversation_id=f"dm-{author}",
            received_at=(at or NOW).isoformat(),
            **more,
        )
    )


def say(app: App, *messages: InboundMessage) -> None:
    """The student's messages arrive, the pipeline processes them, the desk takes its turn."""
    app.pipeline.run(Batch(messages=list(messages)), source="replay")
    run_round(app, fetch=False)


def replies_to(app: App, author: str) -> list[OutboundMessage]:
    with app.db.session() as session:
        return list(
            session.exec(
                select(OutboundMessage)
                .where(
                    OutboundMessage.recipient_id == author,
                    col(OutboundMessage.template).in_(REPORT_TEMPLATES),
                )
                .order_by(col(OutboundMessage.id))
            )
        )


def last_reply(app: App, author: str = "student-1") -> OutboundMessage:
    sent = replies_to(app, author)
    assert sent, "no report reply was queued"
    return sent[-1]


def only_report(app: App) -> IncidentReport:
    with app.db.session() as session:
        reports = list(session.exec(select(IncidentReport)))
    assert len(reports) == 1, reports
    return reports[0]


def case_of(app: App, report: IncidentReport) -> Case:
    with app.db.session() as session:
        case = session.get(Case, report.case_id)
    assert case is not None and case.reference is not None
    return case


def reference_of(app: App, report: IncidentReport) -> str:
    return str(case_of(app, report).reference)


def conversation(app: App, author: str = "student-1", *answers: str) -> None:
    """A whole report: opening, then one answer per question, a minute apart."""
    say(app, dm(f"{author}-0", "hi I want to report something", author=author))
    for n, answer in enumerate(answers, start=1):
        say(app, dm(f"{author}-{n}", answer, author=author, at=NOW + timedelta(minutes=n)))


@pytest.fixture
def app(bot_app: App) -> App:
    approve_all(bot_app)
    return bot_app


# -- the detectors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("I'm 16 and he keeps messaging me", "stated_age"),
        ("im 15 lol", "stated_age"),
        ("I am only fourteen.", "stated_age"),
        ("I was groped at the SU, I'm 17", "stated_age"),
        ("my 15 year old sister was there", "age_phrase"),
        ("a 16-year-old lad had a knife", "age_phrase"),
        ("I'm in year 11", "school_year"),
        ("he was selling to year 9s", "school_year"),
        ("it happened outside my school", "school"),
        ("I'm revising for my GCSEs", "school"),
        ("they sell vapes to under 18s", "under_18"),
        ("I'm a minor", "under_18"),
    ],
)
def test_phrases_suggesting_someone_under_18(text: str, signal: str) -> None:
    assert under_18_signal(text) == signal


@pytest.mark.parametrize(
    "text",
    [
        "I'm not 16",
        "I'm not under 18",
        "I'm not in year 11 any more",
        "I'm not at school, I'm at uni",
        "when I was at school this happened too",
        "back in year 11 someone did the same",
        "when I was younger and at school",
        "I'm 19",
        "I'm 18 now",
        "I'm 5 minutes from the SU",
        "my 3 year old laptop was nicked",
        "a minor injury, nothing serious",
        "outside the School of Medicine",
        "I'm a second year student in first year halls",
    ],
)
def test_phrases_that_do_not_suggest_someone_under_18(text: str) -> None:
    assert under_18_signal(text) is None


def test_sexual_offence_words_and_lookalikes() -> None:
    assert suggests_sexual_offence("a man groped me in the SU")
    assert suggests_sexual_offence("I think I was raped after my drink was spiked")
    assert suggests_sexual_offence("he flashed me outside the library")
    assert not suggests_sexual_offence("my bike lights were flashing")
    assert not suggests_sexual_offence("someone stole my grape juice")


def test_references_and_answers_are_read_leniently() -> None:
    assert references_in("re ucc 2026 000123 and UCC-2026-000124") == [
        "UCC-2026-000123",
        "UCC-2026-000124",
    ]
    assert [yes_or_no(t) for t in ("Yes please", "nah", "maybe")] == [True, False, None]


# -- the conversation -------------------------------------------------------------------------


def test_a_full_conversation_asks_one_question_at_a_time_and_files_with_the_reference(
    app: App,
) -> None:
    conversation(
        app,
        "student-1",
        "My laptop was taken from my bag while I was studying",
        "Library, second floor",
        "skip",
        "A tall man in a grey hoodie",
        "no",
        "yes",
    )
    texts = [r.text for r in replies_to(app, "student-1")]
    assert len(texts) == 7  # six questions and the filing
    assert texts[0].startswith("Thank you. I can take your report now")
    assert "What happened?" in texts[0]
    assert "Where was this?" in texts[1]
    assert "When did it happen" in texts[2]
    assert "Who was involved?" in texts[3]
    assert "photos or videos" in texts[4]
    assert "anonymous" in texts[5]
    report = only_report(app)
    case = case_of(app, report)
    assert report.status == ReportStatus.FILED
    assert (report.anonymous, report.skipped, report.filed_reason) == (True, ["when"], "complete")
    filed = texts[6]
    assert case.reference is not None
    assert case.reference in filed
    assert code_for(report_key(app.settings), report.public_id) in filed
    for must in ("not monitored 24/7", "999", "101", "0800 555 111"):
        assert must in filed
    assert app.settings.account.online_report_url in filed
    assert app.settings.account.sarc not in filed  # not a sexual offence
    with app.db.session() as session:
        fields = [e.field for e in session.exec(select(ReportEntry).order_by(col(ReportEntry.id)))]
        statuses = {r.status for r in session.exec(select(OutboundMessage))}
    assert fields == ["opening", "what", "where", "when", "who", "media", "anonymous"]
    assert statuses == {OutboxStatus.QUEUED}


def test_an_opening_that_says_what_happened_starts_at_where(app: App) -> None:
    say(app, dm("o1", "my phone got nicked from the library this morning"))
    first = last_reply(app)
    assert "What happened?" not in first.text
    assert "Where was this?" in first.text


def test_the_state_survives_a_worker_restart(
    db: Database, settings: Settings, clock: FixedClock
) -> None:
    first = build(settings, clock=clock, db=db)
    approve_all(first)
    say(first, dm("r0", "I need to report something"), dm("r1", "someone keyed my car", at=NOW))
    # A new process: nothing is carried over but the database.
    second = build(settings, clock=clock, db=db)
    say(second, dm("r2", "car park B", at=NOW + timedelta(minutes=2)))
    assert "When did it happen" in last_reply(second).text
    # The same messages handled again (a crash before the cursor moved) ask nothing twice.
    before = len(replies_to(second, "student-1"))
    run_round(second, fetch=False)
    assert len(replies_to(second, "student-1")) == before


def test_stop_files_what_the_student_has_said(app: App) -> None:
    conversation(app, "student-1", "my bike was stolen", "stop")
    report = only_report(app)
    assert (report.status, report.filed_reason) == (ReportStatus.FILED, "stopped")
    assert reference_of(app, report) in last_reply(app).text


def test_an_unclear_anonymity_answer_is_asked_once_more(app: App) -> None:
    conversation(app, "student-1", "x", "y", "z", "w", "no", "hmm what do you mean")
    assert last_reply(app).text.startswith("Sorry, I didn't catch that.")
    say(app, dm("student-1-9", "maybe?", at=NOW + timedelta(minutes=9)))
    report = only_report(app)
    assert (report.status, report.anonymous) == (ReportStatus.FILED, None)


def test_an_idle_conversation_is_filed_with_what_it_has(app: App, clock: FixedClock) -> None:
    conversation(app, "student-1", "someone smashed my window")
    clock.advance(timedelta(hours=app.settings.reports.idle_hours - 0.5))
    run_round(app, fetch=False)
    assert only_report(app).status == ReportStatus.COLLECTING
    clock.advance(timedelta(hours=1))
    run_round(app, fetch=False)
    report = only_report(app)
    assert (report.status, report.filed_reason) == (ReportStatus.FILED, "idle")
    filed = last_reply(app)
    assert filed.text.startswith("We have not heard from you for a while")
    assert reference_of(app, report) in filed.text
    assert filed.in_reply_to_external_id == "student-1-1"  # answers their last message


def test_urgent_messages_never_start_a_questionnaire(app: App) -> None:
    say(app, dm("u1", "I want to report a fight outside the SU right now"))
    with app.db.session() as session:
        assert session.exec(select(IncidentReport)).first() is None
    assert replies_to(app, "student-1") == []


def test_an_urgent_answer_files_the_report_at_once(app: App) -> None:
    conversation(app, "student-1", "he is still outside my flat right now")
    report = only_report(app)
    assert report.filed_reason == "urgent"
    assert "call 999 now" in last_reply(app).text


def test_public_mentions_and_other_channels_do_not_start_a_conversation(app: App) -> None:
    say(
        app,
        dm("p1", "@UCLanCampusCops I want to report a theft", private=False),
        dm("p2", "I want to report a theft", channel="in_the_know", author="member-1"),
    )
    with app.db.session() as session:
        assert session.exec(select(IncidentReport)).first() is None


def test_old_messages_from_a_backlog_start_nothing(app: App) -> None:
    old = NOW - timedelta(days=3)
    say(app, dm("old-1", "I want to report something", at=old))
    say(app, dm("old-2", "UCC-2026-000001 more info", at=old, author="student-2"))
    with app.db.session() as session:
        assert session.exec(select(IncidentReport)).first() is None
    assert replies_to(app, "student-1") == replies_to(app, "student-2") == []


def test_replies_wait_for_an_approved_wording(bot_app: App) -> None:
    say(bot_app, dm("a1", "I want to report something"))
    question = last_reply(bot_app)
    assert question.status == OutboxStatus.NEEDS_APPROVAL


# -- adding later -----------------------------------------------------------------------------


def filed_reference(app: App, author: str = "student-1") -> str:
    conversation(app, author, "my bike was stolen", "stop")
    with app.db.session() as session:
        report = session.exec(select(IncidentReport)).one()
        case = session.get(Case, report.case_id)
        assert case is not None and case.reference is not None
        return case.reference


def test_the_same_person_adds_to_their_report_with_its_reference(app: App) -> None:
    reference = filed_reference(app)
    say(
        app,
        dm("add-1", f"{reference} I found the receipt", at=NOW + timedelta(days=2)),
    )
    reply = last_reply(app)
    assert reply.template == "replies/report_added.txt.j2"
    assert reference in reply.text
    with app.db.session() as session:
        added = session.exec(
            select(Message).join(ReportEntry, col(ReportEntry.message_id) == col(Message.id))
        ).all()
    assert "I found the receipt" in added[-1].text


def test_another_person_cannot_add_or_learn_anything(app: App) -> None:
    reference = filed_reference(app)
    say(
        app,
        dm("x-1", f"{reference} what did they report?", author="stranger"),
        dm("x-2", "UCC-2026-999999 add this", author="stranger2"),
    )
    refused, unknown = last_reply(app, "stranger"), last_reply(app, "stranger2")
    assert refused.template == unknown.template == "replies/report_add_refused.txt.j2"
    assert refused.text == unknown.text  # an existing reference looks like an unknown one
    assert "bike" not in refused.text
    with app.db.session() as session:
        joined = session.exec(select(ReportEntry.message_id)).all()
        strangers = session.exec(
            select(Message.id).where(col(Message.author_id).in_(["stranger", "stranger2"]))
        ).all()
    assert not set(joined) & set(strangers)


def test_later_messages_on_the_reports_case_join_it_quietly(app: App) -> None:
    filed_reference(app)
    say(app, dm("later", "also they took my helmet", at=NOW + timedelta(minutes=30)))
    with app.db.session() as session:
        entry = session.exec(select(ReportEntry).order_by(col(ReportEntry.id).desc())).first()
    assert entry is not None and entry.field == "addition"
    assert last_reply(app).template == FILED  # nothing new was said to the student


# -- flags and signposting --------------------------------------------------------------------


def test_a_report_suggesting_someone_under_18_is_flagged_on_its_case(app: App) -> None:
    conversation(app, "student-1", "someone keeps following me home from my school", "stop")
    report = only_report(app)
    case = case_of(app, report)
    assert (report.safeguarding, report.safeguarding_signal) == (True, "school")
    assert SAFEGUARDING_TAG in case.scenarios
    assert case.priority == "P2"
    assert case.sla_due_at <= NOW + timedelta(minutes=1) + timedelta(minutes=60)
    assert app.settings.account.young_person_support in last_reply(app).text
    with app.db.session() as session:
        flagged = session.exec(
            select(AuditEntry).where(AuditEntry.action == "case.safeguarding_flagged")
        ).all()
    assert [(e.entity_id, e.detail["priority"]) for e in flagged] == [(str(case.id), "P2")]


def test_a_negated_age_is_not_flagged(app: App) -> None:
    conversation(app, "student-1", "I'm not 16, I'm 20, and my bike was stolen", "stop")
    report = only_report(app)
    assert report.safeguarding is False
    assert SAFEGUARDING_TAG not in case_of(app, report).scenarios


def test_a_sexual_offence_report_is_signposted_to_the_sarc(app: App) -> None:
    conversation(app, "student-1", "a man groped me in the club on Friargate", "stop")
    filed = last_reply(app).text
    assert only_report(app).sexual_offence
    assert "Lancashire SAFE Centre" in filed
    assert "01772 523344" in filed
    assert app.settings.account.sexual_violence_support in filed


def test_every_filed_message_fits_in_one_messenger_message(settings: Settings) -> None:
    longest = render(
        settings,
        FILED,
        reason="idle",
        kind="incident",
        reference="UCC-2026-000123",
        code="ABCD-EFGH",
        sexual_offence=True,
        under_18=True,
    )
    assert len(longest) <= MESSENGER_LIMIT
    for template in REPORT_TEMPLATES:
        assert (Path("templates") / template).name.startswith("report_")


# -- media from the platforms -----------------------------------------------------------------


def photo_message(app: App, *, url: str = IMAGE_URL, channel: str = "facebook") -> int:
    message = dm(
        "photo-1",
        "",
        channel=channel,
        attachments=[{"kind": "image", "url": url}],
    )
    app.pipeline.run(Batch(messages=[message]), source="replay")
    run_round(app, fetch=False)
    with app.db.session() as session:
        fetch = session.exec(select(AttachmentFetch)).one()
        assert fetch.id is not None
        return fetch.id


def fetch_row(app: App, fetch_id: int) -> AttachmentFetch:
    with app.db.session() as session:
        row = session.get(AttachmentFetch, fetch_id)
    assert row is not None
    return row


@responses.activate
def test_a_failed_download_is_retried_then_stored_and_linked_by_sha256(
    app: App, clock: FixedClock
) -> None:
    fetch_id = photo_message(app)
    jpeg = jpeg_with_location()
    responses.add(responses.GET, IMAGE_URL, body=requests.ConnectionError("reset"))
    responses.add(responses.GET, IMAGE_URL, status=503)
    responses.add(responses.GET, IMAGE_URL, body=jpeg, content_type="image/jpeg")
    assert fetch_due(app).retrying == 1
    row = fetch_row(app, fetch_id)
    assert (row.status, row.attempts) == (FetchStatus.PENDING, 1)
    assert row.last_error == "could not connect to the media host"
    assert fetch_due(app).retrying == 0  # not due yet: backing off
    clock.advance(timedelta(minutes=11))
    assert fetch_due(app).retrying == 1
    assert "HTTP 503" in (fetch_row(app, fetch_id).last_error or "")
    clock.advance(timedelta(minutes=11))
    assert fetch_due(app).stored == 1
    assert fetch_row(app, fetch_id).status == FetchStatus.DONE
    sha = hashlib.sha256(jpeg).hexdigest()
    with app.db.session() as session:
        attachment = session.exec(select(MessageAttachment)).one()
        item = session.exec(select(MediaItem).where(MediaItem.sha256 == sha)).one()
    assert (attachment.sha256, attachment.media_type) == (sha, "image/jpeg")
    assert item.has_location  # kept for officers; stripped from every copy that leaves


@responses.activate
def test_a_renamed_program_is_refused_and_kept_with_the_reason(app: App) -> None:
    fetch_id = photo_message(app)
    responses.add(responses.GET, IMAGE_URL, body=WINDOWS_EXE, content_type="image/jpeg")
    assert fetch_due(app).refused == 1
    row = fetch_row(app, fetch_id)
    assert row.status == FetchStatus.REFUSED
    assert "a Windows program" in (row.last_error or "")
    with app.db.session() as session:
        assert session.exec(select(MediaItem)).first() is None


@responses.activate
def test_an_oversized_download_is_refused_from_its_declared_length(app: App) -> None:
    fetch_id = photo_message(app)
    responses.add(
        responses.GET,
        IMAGE_URL,
        body=b"\xff\xd8\xff" + bytes(1024),
        headers={"Content-Length": str(2 * 1024**3)},
        auto_calculate_content_length=False,
    )
    assert fetch_due(app).refused == 1
    assert "over every media size limit" in (fetch_row(app, fetch_id).last_error or "")


@responses.activate
def test_a_download_that_keeps_failing_is_kept_as_failed(app: App, clock: FixedClock) -> None:
    fetch_id = photo_message(app)
    responses.add(responses.GET, IMAGE_URL, status=404)
    for _ in range(app.settings.reports.download_attempts):
        fetch_due(app)
        clock.advance(timedelta(minutes=20))
    row = fetch_row(app, fetch_id)
    assert row.status == FetchStatus.FAILED
    assert row.attempts == app.settings.reports.download_attempts
    assert "the link may have expired" in (row.last_error or "")


@responses.activate
def test_only_the_platforms_media_hosts_are_fetched(app: App) -> None:
    fetch_id = photo_message(app, url="https://attacker.example/x.jpg")
    assert fetch_due(app).refused == 1
    assert len(responses.calls) == 0
    assert "media hosts" in (fetch_row(app, fetch_id).last_error or "")


# -- the Must-show flow: Messenger -> conversation -> reference -> officer --------------------


@pytest.fixture
def messenger_app(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMPUSBOT_FACEBOOK__PAGE_ACCESS_TOKEN", "page-token-for-tests")
    monkeypatch.setenv("CAMPUSBOT_FACEBOOK__APP_SECRET", APP_SECRET)
    monkeypatch.setenv("CAMPUSBOT_FACEBOOK__VERIFY_TOKEN", "test-verify-token")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"classifier:\n  kind: keywords\nfacebook:\n  enabled: true\n  page_id: '{PAGE_ID}'\n"
    )
    app = build(load_settings(config), clock=FixedClock(IMAGE_AT - timedelta(minutes=5)), db=db)
    approve_all(app)
    add_people(app)
    return app


def messenger_text(mid: str, text: str, at: datetime) -> bytes:
    """A Messenger text event shaped exactly like the recorded webhook_message_text.json."""
    millis = int(at.timestamp() * 1000)
    event = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": millis + 300,
                "messaging": [
                    {
                        "sender": {"id": STUDENT},
                        "recipient": {"id": PAGE_ID},
                        "timestamp": millis,
                        "message": {"mid": mid, "text": text},
                    }
                ],
            }
        ],
    }
    return json.dumps(event, separators=(",", ":")).encode()


def post_webhook(client: TestClient, body: bytes) -> None:
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhooks/facebook",
        content=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


@responses.activate
def test_must_show_a_student_reports_with_a_photo_over_messenger_and_an_officer_sees_it(
    messenger_app: App,
) -> None:
    app = messenger_app
    clock = app.clock
    assert isinstance(clock, FixedClock)
    web = TestClient(create_app(app), headers={"accept": "text/html"})
    jpeg = jpeg_with_location()
    responses.add(responses.GET, IMAGE_URL, body=jpeg, content_type="image/jpeg")
    sent: list[str] = []

    def graph_send(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        form = parse_qs(str(request.body))
        sent.append(json.loads(form["message"][0])["text"])
        body = (FB / "send_response.json").read_text()
        return 200, {"Content-Type": "application/json; charset=UTF-8"}, body

    responses.add_callback(
        responses.POST, f"https://graph.facebook.com/v25.0/{PAGE_ID}/messages", graph_send
    )

    def student(body: bytes) -> None:
        post_webhook(web, body)
        app.pipeline.process_pending()
        run_round(app)
        deliver_due(app.db, app.channels(), clock)
        clock.advance(timedelta(seconds=30))

    t = IMAGE_AT - timedelta(minutes=4)
    student(messenger_text("m_1", "Hi, I want to report something that happened", t))
    student(messenger_text("m_2", "Someone took my purse from my bag in the library", t))
    student(messenger_text("m_3", "Library, 2nd floor quiet zone", t + timedelta(minutes=1)))
    student(messenger_text("m_4", "around 3pm today", t + timedelta(minutes=2)))
    student(messenger_text("m_5", "a man in a grey hoodie with a black rucksack", t))
    clock.advance(timedelta(minutes=3))
    student(IMAGE_BODY)  # the recorded photo message, exactly as Meta signed it
    student(messenger_text("m_7", "done", IMAGE_AT + timedelta(seconds=40)))
    student(messenger_text("m_8", "no", IMAGE_AT + timedelta(minutes=1)))

    # The student got one question at a time, then the reference, over the Send API.
    assert "What happened?" in sent[1]  # sent[0] is the first-contact acknowledgement
    assert len(sent) == 9  # each reply once
    assert "Thank you, we have received it." in sent[-3]
    filed = sent[-1]
    with app.db.session() as session:
        report = session.exec(select(IncidentReport)).one()
        case = session.get(Case, report.case_id)
        assert case is not None and case.reference is not None
        attachment = session.exec(select(MessageAttachment)).one()
    assert report.status == ReportStatus.FILED
    assert case.reference in filed
    assert code_for(report_key(app.settings), report.public_id) in filed
    assert "not monitored 24/7" in filed and "0800 555 111" in filed
    # The photo was fetched from Messenger's CDN and linked to its message by sha256.
    assert attachment.sha256 == hashlib.sha256(jpeg).hexdigest()

    # An officer sees it as a case: the conversation, the tags, the photo.
    login = web.post(
        "/login", data={"username": "pc.jones", "password": PASSWORD}, follow_redirects=False
    )
    assert login.status_code == 303
    inbox = web.get("/")
    assert case.reference in inbox.text
    page = web.get(f"/cases/{case.id}")
    assert page.status_code == 200
    assert "Someone took my purse from my bag in the library" in page.text
    assert "theft" in page.text
    assert f"/cases/{case.id}/media/{attachment.sha256}" in page.text
    photo = web.get(f"/cases/{case.id}/media/{attachment.sha256}")
    assert (photo.status_code, photo.headers["content-type"]) == (200, "image/jpeg")


@responses.activate
def test_x_dm_media_is_fetched_with_the_accounts_oauth_credentials(app: App) -> None:
    url = "https://ton.twitter.com/1.1/ton/data/dm/1/2/abc.jpg"
    fetch_id = photo_message(app, url=url, channel="twitter")
    assert fetch_due(app).retrying == 1  # no credentials configured: kept, not dropped
    assert "needs the account's credentials" in (fetch_row(app, fetch_id).last_error or "")
    keys = {
        name: SecretStr(f"{name}-for-tests")
        for name in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    }
    twitter = TwitterSettings(user_id="1", bearer_token=SecretStr("bearer-for-tests"), **keys)
    app.settings = app.settings.model_copy(update={"twitter": twitter})
    responses.add(responses.GET, url, body=jpeg_with_location(), content_type="image/jpeg")
    app.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    assert fetch_due(app).stored == 1
    assert str(responses.calls[0].request.headers["Authorization"]).startswith("OAuth ")


def test_retention_removes_reports_with_their_messages_and_cases(app: App) -> None:
    conversation(app, "student-1", "my bike was stolen", "stop")
    later = NOW + timedelta(days=app.settings.retention.messages_days + 1)
    with app.db.session() as session:
        purge(session, now=later, retention=app.settings.retention, web=app.settings.web)
    with app.db.session() as session:
        assert session.exec(select(IncidentReport)).first() is None
        assert session.exec(select(ReportEntry)).first() is None
