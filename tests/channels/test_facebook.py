"""The Facebook Page adapter against recorded Graph API and webhook payloads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from bot.app import App
from bot.config import FacebookSettings
from bot.errors import AuthError, PermanentError, RateLimited, TransientError
from bot.messages import OutboundPost, OutboundReply
from bot.models import Message, MessageAttachment
from bot.web.server import create_app
from channels.facebook import FacebookChannel, Usage, usage_from
from tests.conftest import FIXTURES

FB = FIXTURES / "facebook"
PAGE = "104000000000001"
GRAPH = "https://graph.facebook.com/v25.0"


def fixture(name: str) -> Any:
    return json.loads((FB / name).read_text())


def channel() -> FacebookChannel:
    return FacebookChannel(
        FacebookSettings(
            enabled=True,
            page_id=PAGE,
            graph_version="v25.0",
            page_access_token=SecretStr("page-token"),
            app_secret=SecretStr("test-app-secret"),
            verify_token=SecretStr("test-verify-token"),
        )
    )


@pytest.fixture
def client(bot_app: App, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    fb = channel()
    monkeypatch.setattr(App, "channels", lambda self: {"facebook": fb})
    return TestClient(create_app(bot_app))


def _post(client: TestClient, name: str, signature: str | None = None) -> int:
    body = (FB / name).read_bytes()
    sig = signature or fixture("signatures.json")["files"][name]["X-Hub-Signature-256"]
    return client.post(
        "/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": sig}
    ).status_code


def test_verification_echoes_the_challenge_only_for_our_token(client: TestClient) -> None:
    recorded = fixture("webhook_verify_request.json")
    good = client.get("/webhooks/facebook", params=recorded["query"])
    bad = client.get("/webhooks/facebook", params=recorded["wrong_token_query"])
    assert (good.status_code, good.text) == (200, recorded["expected_body"])
    assert bad.status_code == 403


def test_photo_message_comment_and_postback_land_once(bot_app: App, client: TestClient) -> None:
    for name in (
        "webhook_message_image.json",
        "webhook_feed_comment.json",
        "webhook_postback.json",
        "webhook_message_image.json",
    ):  # one delivered twice
        assert _post(client, name) == 200
    with bot_app.db.session() as session:
        stored = session.exec(select(Message)).all()
        attachments = session.exec(select(MessageAttachment)).all()
    assert len(stored) == 3
    by_kind = {m.private: m for m in stored if m.text != "Book a meeting"}
    comment = by_kind[False]
    assert comment.conversation_id.startswith(PAGE + "_")
    assert "bike stolen" in comment.text
    assert [a.kind for a in attachments] == ["image"]
    assert attachments[0].url is not None and attachments[0].url.startswith("https://scontent")


def test_batched_delivery_skips_echoes_and_receipts(bot_app: App, client: TestClient) -> None:
    assert _post(client, "webhook_batched.json") == 200
    body = fixture("webhook_batched.json")
    expected = sum(
        1
        for entry in body["entry"]
        for e in entry.get("messaging", [])
        if "message" in e and not e["message"].get("is_echo")
    )
    with bot_app.db.session() as session:
        stored = session.exec(select(Message)).all()
    assert len(stored) == expected
    assert all(m.author_id != PAGE for m in stored)


def test_forged_or_missing_signature_is_refused_and_nothing_stored(
    bot_app: App, client: TestClient
) -> None:
    assert _post(client, "webhook_message_text.json", signature="sha256=" + "0" * 64) == 403
    assert client.post("/webhooks/facebook", content=b"{}").status_code == 403
    tampered = (FB / "webhook_message_text.json").read_bytes().replace(b"m_", b"x_", 1)
    sig = fixture("signatures.json")["files"]["webhook_message_text.json"]["X-Hub-Signature-256"]
    assert (
        client.post(
            "/webhooks/facebook", content=tampered, headers={"X-Hub-Signature-256": sig}
        ).status_code
        == 403
    )
    with bot_app.db.session() as session:
        assert session.exec(select(Message)).all() == []


def _reply(**overrides: Any) -> OutboundReply:
    base: dict[str, Any] = {
        "channel": "facebook",
        "text": "If you are in danger call 999.",
        "private": True,
        "in_reply_to_external_id": "m_abc",
        "conversation_id": "7834501926457713",
        "recipient_id": "7834501926457713",
        "user_last_message_at": datetime.now(UTC) - timedelta(hours=1),
    }
    return OutboundReply(**{**base, **overrides})


def test_messenger_reply_inside_the_window_is_a_response() -> None:
    fb = channel()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{GRAPH}/{PAGE}/messages", json=fixture("send_response.json"))
        result = fb.reply(_reply())
        sent = dict(p.split("=", 1) for p in str(rsps.calls[0].request.body).split("&"))
    assert result.external_id == fixture("send_response.json")["message_id"]
    assert sent["messaging_type"] == "RESPONSE"


def test_outside_the_window_only_a_person_may_reply_with_the_human_agent_tag() -> None:
    fb = channel()
    late = datetime.now(UTC) - timedelta(days=2)
    with pytest.raises(PermanentError, match="24 hours"):
        fb.reply(_reply(user_last_message_at=late))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{GRAPH}/{PAGE}/messages", json=fixture("send_response.json"))
        fb.reply(_reply(user_last_message_at=late, by_human=True))
        assert "HUMAN_AGENT" in str(rsps.calls[0].request.body)
    with pytest.raises(PermanentError):
        fb.reply(_reply(user_last_message_at=datetime.now(UTC) - timedelta(days=8), by_human=True))


def test_comment_reply_public_or_private() -> None:
    fb = channel()
    comment = {
        "conversation_id": f"{PAGE}_122187654321098765",
        "in_reply_to_external_id": "122187654321098765_1093847561029384",
        "recipient_id": "8765432109876543",
    }
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{GRAPH}/122187654321098765_1093847561029384/comments",
            json=fixture("comment_reply_response.json"),
        )
        rsps.add(
            responses.POST, f"{GRAPH}/{PAGE}/messages", json=fixture("private_reply_response.json")
        )
        public = fb.reply(_reply(private=False, **comment))
        private = fb.reply(_reply(private=True, **comment))
        assert "comment_id" in str(rsps.calls[1].request.body)
    assert public.external_id == fixture("comment_reply_response.json")["id"]
    assert private.external_id


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("error_190_expired.json", AuthError),
        ("error_4_app_limit.json", RateLimited),
        ("error_17_user_limit.json", RateLimited),
        ("error_32_page_limit.json", RateLimited),
        ("error_613.json", RateLimited),
        ("error_80001_page_limit.json", RateLimited),
        ("error_100_invalid_param.json", PermanentError),
    ],
)
def test_graph_errors_are_classified(name: str, error: type[Exception]) -> None:
    fb = channel()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{GRAPH}/{PAGE}/feed", json=fixture(name), status=400)
        with pytest.raises(error):
            fb.publish(OutboundPost(channel="facebook", text="Lock your bike"))


def test_rate_limit_waits_as_long_as_meta_says() -> None:
    fb = channel()
    throttled = fixture("rate_limit_headers.json")["throttled"]
    minutes = max(
        item["estimated_time_to_regain_access"]
        for items in json.loads(throttled["X-Business-Use-Case-Usage"]).values()
        for item in items
    )
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{GRAPH}/{PAGE}/feed",
            json=fixture("error_32_page_limit.json"),
            status=400,
            headers=throttled,
        )
        with pytest.raises(RateLimited) as caught:
            fb.publish(OutboundPost(channel="facebook", text="Lock your bike"))
    wait = caught.value.retry_at - datetime.now(UTC)
    assert timedelta(minutes=minutes - 1) < wait <= timedelta(minutes=minutes)


def test_outage_and_html_error_pages_are_transient() -> None:
    fb = channel()
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{GRAPH}/{PAGE}/feed",
            body="<html>502 Bad Gateway</html>",
            status=502,
            content_type="text/html",
        )
        with pytest.raises(TransientError):
            fb.publish(OutboundPost(channel="facebook", text="x"))
    with responses.RequestsMock() as rsps:
        import requests

        rsps.add(responses.POST, re.compile(f"{GRAPH}/.*"), body=requests.ConnectTimeout("down"))
        with pytest.raises(TransientError, match="unreachable"):
            fb.publish(OutboundPost(channel="facebook", text="x"))


def test_a_send_that_times_out_is_not_retried_blindly() -> None:
    import requests

    fb = channel()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{GRAPH}/{PAGE}/messages", body=requests.ReadTimeout("slow"))
        with pytest.raises(PermanentError, match="check the page before resending"):
            fb.reply(_reply())


def test_an_oversized_webhook_is_refused_before_it_is_read(
    bot_app: App, client: TestClient
) -> None:
    response = client.post(
        "/webhooks/facebook",
        content=b"x" * (3 * 1024 * 1024),
        headers={"X-Hub-Signature-256": "sha256=00"},
    )
    assert response.status_code == 413


def test_a_photo_post_goes_to_photos_with_its_link_in_the_text(tmp_path: Path) -> None:
    photo = tmp_path / "bike-marking.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    fb = channel()
    post = OutboundPost(
        channel="facebook",
        text="Free bike marking at Foster on Thursday",
        link="https://www.uclan.ac.uk/bike",
        media_paths=(str(photo),),
    )
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{GRAPH}/{PAGE}/photos", json=fixture("photo_post_response.json"))
        result = fb.publish(post)
        body = rsps.calls[0].request.body
    assert isinstance(body, bytes)
    assert result.external_id == fixture("photo_post_response.json")["post_id"]  # for insights
    assert b'name="source"; filename="bike-marking.jpg"' in body
    assert b"https://www.uclan.ac.uk/bike" in body
    with pytest.raises(PermanentError, match="one photo"):
        fb.publish(post.model_copy(update={"media_paths": (str(photo), str(photo))}))
    with pytest.raises(PermanentError, match="could not be read"):
        fb.publish(post.model_copy(update={"media_paths": (str(tmp_path / "gone.jpg"),)}))


def test_a_private_reply_after_seven_days_or_too_long_is_refused_before_sending() -> None:
    fb = channel()
    comment = {
        "private": True,
        "conversation_id": f"{PAGE}_122187654321098765",
        "in_reply_to_external_id": "122187654321098765_1093847561029384",
        "recipient_id": "8765432109876543",
        "by_human": True,
    }
    with responses.RequestsMock():  # any call would fail the test: nothing is sent
        with pytest.raises(PermanentError, match="within 7 days"):
            fb.reply(_reply(user_last_message_at=datetime.now(UTC) - timedelta(days=8), **comment))
        with pytest.raises(PermanentError, match="2000 characters"):
            fb.reply(_reply(text="x" * 2001, **comment))


@pytest.mark.parametrize(
    ("situation", "percent", "minutes"),
    [("normal", 12, 0), ("near_limit", 96, 0), ("throttled", 104, 12)],
)
def test_usage_headers_are_read_as_meta_writes_them(
    situation: str, percent: int, minutes: int
) -> None:
    headers = fixture("rate_limit_headers.json")[situation]
    assert usage_from(headers) == Usage(percent=percent, regain_minutes=minutes)
    app_only = {"X-App-Usage": headers["X-App-Usage"]}
    app_percent = max(json.loads(headers["X-App-Usage"]).values())
    assert usage_from(app_only) == Usage(percent=app_percent, regain_minutes=0)
    assert usage_from({"X-App-Usage": "not json"}) == Usage()


@responses.activate
def test_recent_posts_lists_the_pages_own_posts_for_reconciling() -> None:
    responses.get(
        f"{GRAPH}/{PAGE}/posts",
        json=fixture("posts_with_messages.json"),
        match=[
            responses.matchers.query_param_matcher(
                {"fields": "id,message,created_time", "since": "1795424700", "limit": "100"},
                strict_match=False,
            )
        ],
    )
    since = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
    posts = channel().recent_posts(since)
    # the photo post without a message has empty text; the unreadable one is skipped
    assert [p.external_id for p in posts] == [
        "104000000000001_122190001112223334",
        "104000000000001_122189998887776665",
    ]
    assert posts[0].text.startswith("Bikes are the most stolen item on campus")
    assert posts[0].published_at == datetime(2026, 11, 23, 12, 30, 4, tzinfo=UTC)
    assert posts[1].text == ""


@responses.activate
def test_recent_posts_with_an_expired_token_is_an_auth_error() -> None:
    responses.get(f"{GRAPH}/{PAGE}/posts", json=fixture("error_190_expired.json"), status=400)
    with pytest.raises(AuthError):
        channel().recent_posts(datetime(2026, 11, 23, tzinfo=UTC))
