"""The signed push contract (POST /webhooks/in-the-know) as the other side meets it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import col, select

from bot.app import App, build
from bot.clock import FixedClock
from bot.config import InTheKnowSettings, Settings
from bot.db import Database
from bot.ingest import retry_dead_letters
from bot.models import DeadLetter, Message, MessageAttachment
from bot.paths import ROOT
from bot.web.server import create_app
from channels.in_the_know import MAX_PUSH_BYTES, parse_email, sign
from tests.conftest import FIXTURES, NOW

ITK = FIXTURES / "in_the_know"
DOC = ROOT / "docs" / "channels" / "in-the-know.md"
KEY = "4f9c2d7e1a8b3c6d5e0f7a2b9c4d1e8f"


def itk_settings(key: str | None = KEY) -> InTheKnowSettings:
    return InTheKnowSettings(
        enabled=True,
        feed_url="https://www.intheknow.example.com/rss/alerts",
        imap_host="imap.example.com",
        imap_user="alerts@intheknow.example.com",
        imap_password=SecretStr("mailbox-password-from-the-environment"),
        contract_key=SecretStr(key) if key else None,
    )


def app_with(db: Database, settings: Settings, clock: FixedClock, key: str | None = KEY) -> App:
    return build(settings.model_copy(update={"in_the_know": itk_settings(key)}), clock=clock, db=db)


@pytest.fixture
def app(db: Database, settings: Settings, clock: FixedClock) -> App:
    return app_with(db, settings, clock)


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(create_app(app))


def push(
    client: TestClient,
    body: bytes,
    *,
    at: datetime = NOW,
    key: str = KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    stamp = str(int(at.timestamp()))
    sent = {
        "Content-Type": "application/json",
        "X-ITK-Timestamp": stamp,
        "X-ITK-Signature": sign(key, stamp, body),
        **(headers or {}),
    }
    response = client.post("/webhooks/in-the-know", content=body, headers=sent)
    return response.status_code, response.json() if response.content else {}


def messages(app: App) -> list[Message]:
    with app.db.session() as session:
        return list(session.exec(select(Message)).all())


def letters(app: App) -> list[DeadLetter]:
    with app.db.session() as session:
        return list(session.exec(select(DeadLetter).order_by(col(DeadLetter.id))).all())


def test_a_signed_reply_lands_once_in_the_inbox_with_its_photo(
    app: App, client: TestClient
) -> None:
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    assert push(client, body) == (200, {"status": "stored", "id": "push:NA-R-7731840"})
    assert push(client, body) == (200, {"status": "stored", "id": "push:NA-R-7731840"})
    assert push(client, body, at=NOW + timedelta(seconds=40))[0] == 200  # a sender's retry
    assert app.pipeline.process_pending().processed == 1
    [message] = messages(app)
    assert (message.channel, message.external_id) == ("in_the_know", "push:NA-R-7731840")
    assert message.conversation_id == "alert:487213"
    assert message.author_id == "aleks.nowak@example.ac.uk" and message.private
    assert message.author_name == "Aleksander Nowak"
    assert message.received_at == datetime(2026, 11, 21, 11, 52, 7, tzinfo=UTC)
    assert message.case_id is not None and message.state == "processed"
    assert (message.raw or {})["area"] == "Preston City Centre"  # unknown fields are kept
    with app.db.session() as session:
        [photo] = session.exec(select(MessageAttachment)).all()
    sent = json.loads(body)["attachments"][0]
    assert (photo.kind, photo.url, photo.size, photo.sha256) == (
        "image",
        sent["url"],
        351,
        sent["sha256"],
    )
    assert letters(app) == []


def test_a_forged_or_tampered_request_is_refused_with_403_and_stores_nothing(
    app: App, client: TestClient
) -> None:
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    assert push(client, body, key="an-attacker-guessed-this-32-chars!") == (
        403,
        {"error": "bad signature"},
    )
    stamp = str(int(NOW.timestamp()))
    tampered = body.replace(b"Adelphi Street", b"Adelphi Square")
    assert push(client, tampered, headers={"X-ITK-Signature": sign(KEY, stamp, body)})[0] == 403
    other_time = sign(KEY, str(int(NOW.timestamp()) - 1), body)
    assert push(client, body, headers={"X-ITK-Signature": other_time})[0] == 403
    upper = sign(KEY, stamp, body).upper().replace("SHA256=", "sha256=")
    assert push(client, body, headers={"X-ITK-Signature": upper})[0] == 403
    assert messages(app) == [] and letters(app) == []


def test_missing_or_malformed_headers_are_400_and_say_which(client: TestClient) -> None:
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    status, answer = push(client, body, headers={"X-ITK-Timestamp": "2026-11-21T12:00:00Z"})
    assert (status, answer["error"]) == (
        400,
        "X-ITK-Timestamp must be the Unix time in whole seconds",
    )
    response = client.post(
        "/webhooks/in-the-know",
        content=body,
        headers={"Content-Type": "application/json", "X-ITK-Timestamp": "1795608000"},
    )
    assert (response.status_code, response.json()) == (
        400,
        {"error": "X-ITK-Signature is missing"},
    )


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_a_replay_outside_the_five_minute_window_is_refused(
    app: App, client: TestClient, offset: int
) -> None:
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    status, answer = push(client, body, at=NOW + timedelta(seconds=offset))
    assert status == 403
    assert f"is {abs(offset)} s away from our clock" in answer["error"]
    assert messages(app) == []


def test_the_edges_of_the_window_are_accepted(app: App, client: TestClient) -> None:
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    assert push(client, body, at=NOW - timedelta(seconds=300))[0] == 200
    assert push(client, body, at=NOW + timedelta(seconds=300))[0] == 200
    assert len(messages(app)) == 1


def test_a_signed_body_not_understood_is_kept_as_a_dead_letter_and_answered_422(
    app: App, client: TestClient
) -> None:
    missing = (ITK / "push_reply_missing_member.json").read_bytes()
    status, answer = push(client, missing)
    assert status == 422
    assert (
        answer["error"] == "push not understood: member.id: Field required (kept for an operator)"
    )
    broken = b'{"version": 1, "type": "reply", "id": "NA-R-1", "text": "cut off'
    status, answer = push(client, broken)
    assert status == 422 and answer["error"].startswith("push not understood: body: Invalid JSON")
    wrong_type = json.dumps({"type": "members", "count": 24}).encode()
    assert push(client, wrong_type)[0] == 422
    assert messages(app) == []
    kept = letters(app)
    assert [letter.raw for letter in kept] == [missing, broken, wrong_type]
    assert {letter.source for letter in kept} == {"in_the_know"}
    # the same bytes again only count: nothing piles up
    assert push(client, missing)[0] == 422
    assert [letter.times_seen for letter in letters(app)] == [2, 1, 1]
    assert retry_dead_letters(app).still_failing == 3  # retried through the push parser


def test_deeply_nested_or_oversized_bodies_are_refused_cleanly(
    app: App, client: TestClient
) -> None:
    nested = b'{"type": "reply", "member": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert push(client, nested)[0] == 422
    big = json.dumps({"type": "reply", "text": "x" * MAX_PUSH_BYTES}).encode()
    assert push(client, big) == (413, {"error": f"the body is over {MAX_PUSH_BYTES} bytes"})
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    form = push(client, body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form == (415, {"error": "send the body as application/json"})
    assert client.get("/webhooks/in-the-know").status_code == 405
    assert messages(app) == []


def test_a_reply_seen_in_the_mailbox_and_pushed_by_a_relay_is_one_message(
    app: App, client: TestClient
) -> None:
    emailed = parse_email((ITK / "reply_plain.eml").read_bytes())
    assert app.pipeline.ingest(emailed, source="in_the_know:poll").stored == 1
    body = (ITK / "push_reply_relayed_email.json").read_bytes()
    status, answer = push(client, body)
    assert (status, answer["id"]) == (200, emailed.messages[0].external_id)
    [message] = messages(app)
    assert message.author_id == "samwhitfield97@example.com"


def test_without_a_contract_key_there_is_no_push_route(
    db: Database, settings: Settings, clock: FixedClock
) -> None:
    client = TestClient(create_app(app_with(db, settings, clock, key=None)))
    body = (ITK / "push_reply_with_photo.json").read_bytes()
    assert push(client, body)[0] == 404


def _worked_example() -> tuple[str, str, str, bytes]:
    """Key, timestamp, signature header and body as docs/channels/in-the-know.md gives them."""
    text = DOC.read_text(encoding="utf-8")
    key = re.search(r"^Key: `([^`]+)`$", text, re.MULTILINE)
    request = re.search(r"```http\n(.*?)\n```", text, re.DOTALL)
    assert key is not None and request is not None
    head, body = request.group(1).split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    assert int(headers["Content-Length"]) == len(body.encode())
    return key.group(1), headers["X-ITK-Timestamp"], headers["X-ITK-Signature"], body.encode()


def test_the_documented_worked_example_is_right_and_accepted(
    db: Database, settings: Settings
) -> None:
    key, stamp, signature, body = _worked_example()
    assert sign(key, stamp, body) == signature
    openssl = shutil.which("openssl")
    if openssl is not None:  # the check the document tells the other side to run
        digest = subprocess.run(
            [openssl, "dgst", "-sha256", "-hmac", key],
            input=f"{stamp}.".encode() + body,
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert digest.strip().endswith("= " + signature.removeprefix("sha256="))
    then = FixedClock(datetime.fromtimestamp(int(stamp), UTC) + timedelta(seconds=20))
    app = app_with(db, settings, then, key=key)
    response = TestClient(create_app(app)).post(
        "/webhooks/in-the-know",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-ITK-Timestamp": stamp,
            "X-ITK-Signature": signature,
        },
    )
    assert response.json() == {"status": "stored", "id": "push:NA-R-7730215"}
    [message] = messages(app)
    assert message.conversation_id == "alert:487390" and "spiked" in message.text
