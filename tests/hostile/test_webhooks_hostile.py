"""Hostile requests at the webhook routes: each gets a clear refusal, and nothing is lost.

Over HTTP, as a platform (or an attacker) would send them: oversized and deeply nested
bodies, forged signatures, replays, and text built to break SQL or templates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import col, select

from bot.app import App
from bot.config import FacebookSettings, TwitterSettings
from bot.models import DeadLetter, Message
from bot.web.server import create_app
from channels.facebook import FacebookChannel
from channels.twitter import TwitterChannel
from tests.conftest import FIXTURES

CONSUMER_SECRET = "hostile-consumer-secret"
APP_SECRET = "hostile-app-secret"


def _x_signature(body: bytes) -> str:
    digest = hmac.new(CONSUMER_SECRET.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def _fb_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def client(bot_app: App, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    twitter = TwitterChannel(
        TwitterSettings(
            enabled=True,
            user_id="1450000000000000001",
            bearer_token=SecretStr("b"),
            consumer_key=SecretStr("k"),
            consumer_secret=SecretStr(CONSUMER_SECRET),
            access_token=SecretStr("t"),
            access_token_secret=SecretStr("s"),
        )
    )
    facebook = FacebookChannel(
        FacebookSettings(
            enabled=True,
            page_id="104000000000001",
            page_access_token=SecretStr("p"),
            app_secret=SecretStr(APP_SECRET),
            verify_token=SecretStr("v"),
        )
    )
    monkeypatch.setattr(App, "channels", lambda self: {"twitter": twitter, "facebook": facebook})
    return TestClient(create_app(bot_app))


def _x(client: TestClient, body: bytes, signature: str | None = None) -> int:
    return client.post(
        "/webhooks/twitter",
        content=body,
        headers={"x-twitter-webhooks-signature": signature or _x_signature(body)},
    ).status_code


def _tweet(text: str, tweet_id: int = 2124110132034748545) -> bytes:
    body = json.loads((FIXTURES / "twitter" / "aaa_tweet_create_event.json").read_text())
    body["tweet_create_events"] = body["tweet_create_events"][:1]
    body["tweet_create_events"][0].update(id=tweet_id, id_str=str(tweet_id), text=text)
    return json.dumps(body).encode()


def _stored(app: App) -> tuple[list[Message], list[DeadLetter]]:
    with app.db.session() as session:
        return list(session.exec(select(Message))), list(session.exec(select(DeadLetter)))


def test_an_oversized_body_is_refused_before_it_is_read_whole(
    bot_app: App, client: TestClient
) -> None:
    body = b'{"tweet_create_events": ["' + b"x" * (3 * 1024 * 1024) + b'"]}'
    assert _x(client, body) == 413
    assert (
        client.post(
            "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": _fb_signature(body)}
        ).status_code
        == 413
    )
    assert _stored(bot_app) == ([], [])


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_kept_as_a_dead_letter_not_a_crash(
    bot_app: App, client: TestClient, depth: int
) -> None:
    body = b'{"tweet_create_events": ' + b"[" * depth + b"]" * depth + b"}"
    assert _x(client, body) == 200  # stored (as a dead letter): the platform must not resend
    assert (
        client.post(
            "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": _fb_signature(body)}
        ).status_code
        == 200
    )
    messages, letters = _stored(bot_app)
    assert messages == []
    assert len(letters) >= 2 and all(letter.reason for letter in letters)


def test_forged_and_missing_signatures_are_refused_and_nothing_stored(
    bot_app: App, client: TestClient
) -> None:
    body = _tweet("@UCLanCampusCops someone nicked my bike")
    assert _x(client, body, signature=_x_signature(body + b" ")) == 403
    assert _x(client, body, signature="sha256=") == 403
    assert client.post("/webhooks/twitter", content=body).status_code == 403
    assert (
        client.post(
            "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": "sha256=00"}
        ).status_code
        == 403
    )
    assert _stored(bot_app) == ([], [])


def test_a_replayed_delivery_is_absorbed_by_de_duplication(
    bot_app: App, client: TestClient
) -> None:
    """X's signature carries no timestamp, so a replay cannot be refused by age; it must be
    harmless instead: the same tweet id is one message however often it arrives."""
    body = _tweet("@UCLanCampusCops there's a fight outside the SU")
    assert [_x(client, body) for _ in range(5)] == [200] * 5
    messages, _ = _stored(bot_app)
    assert len(messages) == 1


@pytest.mark.parametrize(
    "text",
    [
        "@UCLanCampusCops '); DROP TABLE messages; -- bike nicked",
        "@UCLanCampusCops \" OR 1=1; UPDATE cases SET status='closed' --",
        "@UCLanCampusCops {{ 7*7 }} {% for x in range(9) %}{{ x }}{% endfor %} ${7*7}",
        "@UCLanCampusCops <script>alert(1)</script><img src=x onerror=alert(1)>",
        "@UCLanCampusCops \u202egnitseuqer\u202c من فضلك ساعدني 🚲\u0000",
    ],
)
def test_injection_text_is_stored_verbatim_and_breaks_nothing(
    bot_app: App, client: TestClient, text: str
) -> None:
    assert _x(client, _tweet(text)) == 200
    assert _x(client, _tweet("@UCLanCampusCops second message", 2124110132034748546)) == 200
    bot_app.pipeline.process_pending()
    messages, letters = _stored(bot_app)
    stored = {m.text for m in messages}
    # NUL cannot be stored in PostgreSQL text; the bot drops it on the way in, on both
    assert text.replace("\u0000", "") in stored
    assert letters == []
    assert "@UCLanCampusCops second message" in stored
    with bot_app.db.session() as session:
        assert session.exec(select(Message).where(col(Message.state) == "processed")).all()
