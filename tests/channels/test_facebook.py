"""The Facebook Page adapter against recorded Graph API and webhook payloads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
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
from channels.facebook import FacebookChannel
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
