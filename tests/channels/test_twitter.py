"""The X adapter against recorded API v2 and Account Activity payloads (tests/fixtures/twitter)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from bot.app import App
from bot.cli import main
from bot.config import TwitterSettings
from bot.errors import AuthError, PermanentError, RateLimited, TransientError
from bot.messages import OutboundPost, OutboundReply
from bot.models import ChannelCursor, Message, MessageAttachment
from bot.polling import poll_once
from bot.web.server import create_app
from channels.twitter import TwitterChannel
from tests.conftest import FIXTURES

TW = FIXTURES / "twitter"
API = "https://api.twitter.com/2"
BOT_ID = "1450000000000000001"
MENTIONS = re.compile(rf"{API}/users/{BOT_ID}/mentions.*")
DMS = re.compile(rf"{API}/dm_events.*")
SECRETS = {
    "bearer_token": "AAAA-test",
    "consumer_key": "ck",
    "consumer_secret": "test-consumer-secret",
    "access_token": "at",
    "access_token_secret": "ats",
}


def fixture(name: str) -> Any:
    return json.loads((TW / name).read_text())


def settings() -> TwitterSettings:
    return TwitterSettings(
        enabled=True, user_id=BOT_ID, **{k: SecretStr(v) for k, v in SECRETS.items()}
    )


@pytest.fixture
def twitter() -> TwitterChannel:
    return TwitterChannel(settings())


def _recorded(rsps: responses.RequestsMock, mentions_pages: list[str], dms: str) -> None:
    for page in mentions_pages:
        rsps.add(responses.GET, MENTIONS, json=fixture(page))
    rsps.add(responses.GET, DMS, json=fixture(dms))


def test_poll_stores_mentions_and_dms_with_attachments_once(
    bot_app: App, twitter: TwitterChannel
) -> None:
    with responses.RequestsMock() as rsps:
        _recorded(rsps, ["mentions_page1.json", "mentions_page2.json"], "dm_events.json")
        first = poll_once(bot_app, "twitter", twitter)
        first_calls = [str(c.request.url) for c in rsps.calls]
    with responses.RequestsMock() as rsps:
        _recorded(rsps, ["mentions_empty.json"], "dm_events.json")
        again = poll_once(bot_app, "twitter", twitter)
        second_mentions_url = str(rsps.calls[0].request.url)
    own_tweets = [
        t
        for p in ("mentions_page1.json", "mentions_page2.json")
        for t in fixture(p)["data"]
        if t["author_id"] == BOT_ID
    ]
    mentions = sum(len(fixture(p)["data"]) for p in ("mentions_page1.json", "mentions_page2.json"))
    dms = [
        e
        for e in fixture("dm_events.json")["data"]
        if e["event_type"] == "MessageCreate" and e["sender_id"] != BOT_ID
    ]
    assert first.ingested.stored == mentions - len(own_tweets) + len(dms)
    assert again.ingested.stored == 0
    assert "pagination_token=" in first_calls[1]
    assert f"since_id={fixture('mentions_page1.json')['meta']['newest_id']}" in second_mentions_url
    with bot_app.db.session() as session:
        stored = session.exec(select(Message)).all()
        kinds = sorted(a.kind for a in session.exec(select(MessageAttachment)))
        cursor = session.exec(select(ChannelCursor)).one()
    assert all(m.author_id != BOT_ID for m in stored)
    assert {m.private for m in stored} == {True, False}
    assert "image" in kinds and "video" in kinds
    assert json.loads(cursor.cursor)["dm"] == max(
        (e["id"] for e in fixture("dm_events.json")["data"]), key=int
    )


def test_rate_limit_names_the_reset_time_and_keeps_the_cursor(
    bot_app: App, twitter: TwitterChannel
) -> None:
    headers = fixture("error_429_headers.json")
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            MENTIONS,
            json=fixture("error_429.json"),
            status=429,
            headers={k: v for k, v in headers.items() if k.startswith("x-")},
        )
        with pytest.raises(RateLimited) as caught:
            poll_once(bot_app, "twitter", twitter)
    assert caught.value.retry_at == datetime(2026, 11, 21, 12, 15, tzinfo=UTC)
    with bot_app.db.session() as session:
        assert session.exec(select(ChannelCursor)).all() == []


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, "error_503.json", TransientError),
        (401, "error_401.json", AuthError),
    ],
)
def test_outages_and_expired_tokens_are_typed(
    twitter: TwitterChannel, status: int, body: str, error: type[Exception]
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, MENTIONS, json=fixture(body), status=status)
        with pytest.raises(error):
            twitter.fetch(None)


def test_malformed_body_and_timeouts_are_transient(twitter: TwitterChannel) -> None:
    import requests

    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            MENTIONS,
            body=(TW / "malformed_body.txt").read_bytes(),
            content_type="application/json",
        )
        with pytest.raises(TransientError, match="unreadable"):
            twitter.fetch(None)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, MENTIONS, body=requests.ReadTimeout("slow"))
        with pytest.raises(TransientError, match="did not answer"):  # a read: safe to retry
            twitter.fetch(None)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/tweets", body=requests.ReadTimeout("slow"))
        with pytest.raises(PermanentError, match="check before resending"):  # a send: not
            twitter.publish(OutboundPost(channel="twitter", text="Lock your bike"))


def test_replies_go_by_dm_or_in_thread(twitter: TwitterChannel) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{API}/dm_conversations/with/1733810427297415168/messages",
            json=fixture("dm_send_response.json"),
            status=201,
        )
        rsps.add(
            responses.POST, f"{API}/tweets", json=fixture("tweet_create_response.json"), status=201
        )
        private = twitter.reply(
            OutboundReply(
                channel="twitter",
                text="Call 999 now.",
                private=True,
                in_reply_to_external_id="1",
                conversation_id="c",
                recipient_id="1733810427297415168",
            )
        )
        public = twitter.reply(
            OutboundReply(
                channel="twitter",
                text="Please DM us.",
                private=False,
                in_reply_to_external_id="2123563772908656026",
                conversation_id="c",
                recipient_id="x",
            )
        )
        body = json.loads(rsps.calls[1].request.body or b"{}")
    assert private.external_id == fixture("dm_send_response.json")["data"]["dm_event_id"]
    assert public.external_id == fixture("tweet_create_response.json")["data"]["id"]
    assert body["reply"]["in_reply_to_tweet_id"] == "2123563772908656026"


def test_dm_to_someone_who_does_not_accept_dms_is_permanent(twitter: TwitterChannel) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            re.compile(rf"{API}/dm_conversations/with/.*"),
            json=fixture("error_403_dm_not_allowed.json"),
            status=403,
        )
        with pytest.raises(PermanentError, match="403"):
            twitter.reply(
                OutboundReply(
                    channel="twitter",
                    text="hi",
                    private=True,
                    in_reply_to_external_id="1",
                    conversation_id="c",
                    recipient_id="99",
                )
            )


@pytest.fixture
def webhook_app(bot_app: App, monkeypatch: pytest.MonkeyPatch) -> tuple[App, TestClient]:
    channel = TwitterChannel(settings())
    monkeypatch.setattr(App, "channels", lambda self: {"twitter": channel})
    return bot_app, TestClient(create_app(bot_app))


def test_webhook_crc_answers_with_the_signed_token(webhook_app: tuple[App, TestClient]) -> None:
    _, client = webhook_app
    crc = fixture("aaa_crc.json")
    response = client.get("/webhooks/twitter", params={"crc_token": crc["crc_token"]})
    assert response.status_code == 200
    assert response.json() == crc["expected_response"]["body"]


def test_signed_webhook_is_stored_once_and_forged_one_refused(
    webhook_app: tuple[App, TestClient],
) -> None:
    app, client = webhook_app
    signatures = fixture("aaa_signatures.json")["files"]
    for name in ("aaa_tweet_create_event.json", "aaa_dm_event.json"):
        body = (TW / name).read_bytes()
        signature = signatures[name]["x-twitter-webhooks-signature"]
        for _ in range(2):  # a retried delivery is absorbed by de-duplication
            response = client.post(
                "/webhooks/twitter",
                content=body,
                headers={"x-twitter-webhooks-signature": signature},
            )
            assert response.status_code == 200
    forged = client.post(
        "/webhooks/twitter",
        content=(TW / "aaa_dm_event.json").read_bytes().replace(b"stuck", b"fine!"),
        headers={
            "x-twitter-webhooks-signature": signatures["aaa_dm_event.json"][
                "x-twitter-webhooks-signature"
            ]
        },
    )
    unsigned = client.post("/webhooks/twitter", content=b"{}")
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    with app.db.session() as session:
        stored = session.exec(select(Message)).all()
    expected = len(fixture("aaa_tweet_create_event.json")["tweet_create_events"]) + len(
        [
            e
            for e in fixture("aaa_dm_event.json")["direct_message_events"]
            if e["type"] == "message_create" and e["message_create"]["sender_id"] != BOT_ID
        ]
    )
    assert len(stored) == expected
    assert all("fine!" not in m.text for m in stored)


def test_poll_command_is_idempotent(settings_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        with responses.RequestsMock() as rsps:
            _recorded(rsps, ["mentions_page1.json", "mentions_page2.json"], "dm_events.json")
            assert main(["--config", str(settings_env), "poll", "twitter", "--once"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("twitter: stored ") and "stored 0," in printed[-1]
    capsys.readouterr()
    assert main(["--config", str(settings_env), "inbox", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len({r["external_id"] for r in rows}) == len(rows) > 0


@pytest.fixture
def settings_env(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"CAMPUSBOT_TWITTER__{name.upper()}", value)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"classifier:\n  kind: keywords\ntwitter:\n  enabled: true\n  user_id: '{BOT_ID}'\n"
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    return config


def test_channels_status_reports_health_without_secrets(
    settings_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/users/me", json=fixture("user_me.json"))
        assert main(["--config", str(settings_env), "channels", "status"]) == 0
    printed = capsys.readouterr().out
    assert "twitter: ok @" in printed and "facebook: disabled" in printed
    assert "AAAA-test" not in printed
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/users/me", json=fixture("error_401.json"), status=401)
        assert main(["--config", str(settings_env), "channels", "status"]) == 1
    assert "twitter: needs_auth" in capsys.readouterr().out


def test_recent_posts_reads_the_accounts_own_tweets_since_a_time(twitter: TwitterChannel) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            re.compile(rf"{API}/users/{BOT_ID}/tweets.*"),
            json=fixture("users_tweets_own.json"),
        )
        posts = twitter.recent_posts(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
        url = str(rsps.calls[0].request.url)
    assert "start_time=2026-11-23T09%3A00%3A00Z" in url
    assert [p.external_id for p in posts] == ["2125001234567890123", "2124990011223344556"]
    assert posts[0].published_at == datetime(2026, 11, 23, 12, 30, 2, tzinfo=UTC)
    assert "https://t.co/" in posts[0].text


def test_recent_posts_when_rate_limited_raises_rate_limited(twitter: TwitterChannel) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            re.compile(rf"{API}/users/{BOT_ID}/tweets.*"),
            json=fixture("error_429.json"),
            status=429,
            headers=fixture("error_429_headers.json"),
        )
        with pytest.raises(RateLimited):
            twitter.recent_posts(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
