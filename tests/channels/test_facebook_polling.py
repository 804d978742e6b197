"""Polling the page's recent posts for comments, against recorded Graph API pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from fastapi.testclient import TestClient
from pydantic import SecretStr
from responses import matchers
from sqlmodel import select

from bot.app import App
from bot.cli import main
from bot.clock import FixedClock
from bot.config import FacebookSettings, load_settings
from bot.db import Database
from bot.errors import AuthError, RateLimited
from bot.models import ChannelCursor, DeadLetter, Message, MessageAttachment
from bot.polling import load_cursor, poll_once, save_cursor
from bot.web.server import create_app
from channels.facebook import READ_LAG, FacebookChannel
from tests.channels.test_facebook import FB, GRAPH, PAGE, fixture

PHOTO_POST = f"{PAGE}_122188998877665544"
EMPTY_POST = f"{PAGE}_122188112233445566"
BIKE_POST = f"{PAGE}_122187654321098765"
ROUND_AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FLOOR = datetime(2026, 11, 15, tzinfo=UTC)  # before every recorded comment
SECRETS = {
    "page_access_token": "page-token",
    "app_secret": "test-app-secret",
    "verify_token": "test-verify-token",
}


def channel(clock: FixedClock | None = None, **overrides: Any) -> FacebookChannel:
    settings = FacebookSettings(
        enabled=True,
        page_id=PAGE,
        graph_version="v25.0",
        **{name: SecretStr(value) for name, value in SECRETS.items()},
        **overrides,
    )
    return FacebookChannel(settings, clock=clock or FixedClock(ROUND_AT))


def cursor_at(floor: datetime) -> str:
    return json.dumps({"floor": int(floor.timestamp()), "posts": {}})


def register_round(
    rsps: responses.RequestsMock, headers: dict[str, dict[str, str]] | None = None
) -> None:
    """One full round as Graph answers it: posts, then each post's comments, paged."""
    extra = headers or {}
    rsps.add(responses.GET, f"{GRAPH}/{PAGE}/posts", json=fixture("posts_recent.json"))
    rsps.add(
        responses.GET,
        f"{GRAPH}/{PHOTO_POST}/comments",
        json=fixture("comments_photo_post.json"),
        headers=extra.get("photo", {}),
    )
    rsps.add(
        responses.GET,
        f"{GRAPH}/{EMPTY_POST}/comments",
        json=fixture("comments_none.json"),
        headers=extra.get("empty", {}),
    )
    page1 = fixture("comments_bike_page1.json")
    rsps.add(
        responses.GET,
        f"{GRAPH}/{BIKE_POST}/comments",
        json=page1,
        match=[matchers.query_param_matcher({"filter": "stream"}, strict_match=False)],
    )
    rsps.add(
        responses.GET,
        f"{GRAPH}/{BIKE_POST}/comments",
        json=fixture("comments_bike_page2.json"),
        match=[
            matchers.query_param_matcher(
                {"after": page1["paging"]["cursors"]["after"], "order": "chronological"},
                strict_match=False,
            )
        ],
    )


def recorded_comments() -> list[dict[str, Any]]:
    names = [
        "comments_photo_post.json",
        "comments_none.json",
        "comments_bike_page1.json",
        "comments_bike_page2.json",
    ]
    return [c for name in names for c in fixture(name)["data"]]


def test_a_round_reads_every_post_and_page_and_skips_the_pages_own_comments() -> None:
    fb = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        register_round(rsps)
        batch = fb.fetch(cursor_at(FLOOR))
        bike_calls = [c for c in rsps.calls if f"{BIKE_POST}/comments" in str(c.request.url)]
    comments = recorded_comments()
    others = [c for c in comments if c.get("from", {}).get("id") != PAGE]
    assert len(others) < len(comments)  # the fixture does hold one of the page's own
    assert sorted(m.external_id for m in batch.messages) == sorted(c["id"] for c in others)
    assert batch.exhausted and not batch.failures
    # the second page was asked for with the cursor Graph gave, filtered as a stream
    assert len(bike_calls) == 2 and "after=" in str(bike_calls[1].request.url)
    assert all("filter=stream" in str(c.request.url) for c in bike_calls)
    by_id = {m.external_id: m for m in batch.messages}
    photo_reply = by_id["122187654321098765_1093847990011223"]
    assert photo_reply.in_reply_to == "122187654321098765_1093847561029384"
    assert [a.kind for a in photo_reply.attachments] == ["image"]
    assert str(photo_reply.attachments[0].url).startswith("https://scontent")
    anonymous = by_id["122187654321098765_1093841198765432"]  # Graph withheld its author
    assert anonymous.author.id.startswith("unknown:") and anonymous.author.name is None
    assert all(m.conversation_id.startswith(f"{PAGE}_") and not m.private for m in batch.messages)


def test_the_cursor_moves_per_post_and_old_comments_are_not_read_again() -> None:
    fb = channel()
    with responses.RequestsMock() as rsps:
        register_round(rsps)
        first = fb.fetch(cursor_at(FLOOR))
    state = json.loads(str(first.cursor))
    watermark = int((ROUND_AT - READ_LAG).timestamp())
    assert state["floor"] == watermark
    assert set(state["posts"]) == {p.rsplit("_", 1)[1] for p in (PHOTO_POST, EMPTY_POST, BIKE_POST)}
    assert set(state["posts"].values()) == {watermark}
    assert len(str(first.cursor)) < 1024  # fits the cursor column
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps)  # Graph ignoring ``since`` would send them all again
        second = fb.fetch(first.cursor)
        sent_since = {str(c.request.url).split("since=")[1].split("&")[0] for c in rsps.calls[1:]}
    assert second.messages == []
    assert sent_since == {str(watermark)}


def test_the_first_round_reads_only_the_lookback() -> None:
    fb = channel(FixedClock(datetime(2026, 11, 21, 20, 0, tzinfo=UTC)), poll_lookback_hours=2)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps)
        batch = fb.fetch(None)
    since = "2026-11-21T18:00:00+0000"  # two hours back; Graph's times sort as text
    expected = {c["id"] for c in recorded_comments() if c["created_time"] >= since}
    assert len(expected) == 3 and {m.external_id for m in batch.messages} == expected


def test_usage_near_the_limit_stops_the_round_and_the_next_round_resumes() -> None:
    near = fixture("rate_limit_headers.json")["near_limit"]
    fb = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps, headers={"photo": near})
        cut = fb.fetch(cursor_at(FLOOR))
        asked = [str(c.request.url) for c in rsps.calls]
    assert not cut.exhausted
    assert {m.external_id for m in cut.messages} == {
        c["id"] for c in fixture("comments_photo_post.json")["data"]
    }
    assert not any(EMPTY_POST in url or BIKE_POST in url for url in asked)
    state = json.loads(str(cut.cursor))
    assert state["floor"] == int(FLOOR.timestamp())  # the round was not complete
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps)
        rest = fb.fetch(cut.cursor)
    assert rest.exhausted
    assert {m.external_id for m in rest.messages} == {
        c["id"] for c in recorded_comments() if c.get("from", {}).get("id") != PAGE
    } - {m.external_id for m in cut.messages}


def test_613_with_usage_headers_waits_as_meta_says_and_keeps_what_was_read() -> None:
    throttled = fixture("rate_limit_headers.json")["throttled"]
    fb = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{GRAPH}/{PAGE}/posts", json=fixture("posts_recent.json"))
        rsps.add(
            responses.GET,
            f"{GRAPH}/{PHOTO_POST}/comments",
            json=fixture("error_613.json"),
            status=400,
            headers=throttled,
        )
        with pytest.raises(RateLimited) as caught:
            fb.fetch(cursor_at(FLOOR))
    assert caught.value.retry_at == ROUND_AT + timedelta(minutes=12)
    # throttled later in the round: what was read comes back, the rest waits
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{GRAPH}/{PAGE}/posts", json=fixture("posts_recent.json"))
        rsps.add(
            responses.GET,
            f"{GRAPH}/{PHOTO_POST}/comments",
            json=fixture("comments_photo_post.json"),
        )
        rsps.add(
            responses.GET,
            f"{GRAPH}/{EMPTY_POST}/comments",
            json=fixture("error_613.json"),
            status=400,
            headers=throttled,
        )
        partial = fb.fetch(cursor_at(FLOOR))
    assert len(partial.messages) == 3 and not partial.exhausted
    posts = json.loads(str(partial.cursor))["posts"]
    assert posts["122187654321098765"] == int(FLOOR.timestamp())  # not reached: unchanged


def test_an_unreadable_comment_is_dead_lettered_and_the_rest_stored(bot_app: App) -> None:
    broken = fixture("comments_photo_post.json")
    del broken["data"][1]["created_time"]
    fb = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps)
        rsps.replace(responses.GET, f"{GRAPH}/{PHOTO_POST}/comments", json=broken)
        batch = fb.fetch(cursor_at(FLOOR))
    report = bot_app.pipeline.ingest(batch, source="facebook:poll")
    assert (report.stored, report.dead_lettered) == (6, 1)
    with bot_app.db.session() as session:
        letter = session.exec(select(DeadLetter)).one()
    assert letter.source == "facebook:poll" and letter.origin == "poll"
    # fixed by hand, it is retried through the same parser
    fixed = {**json.loads(letter.raw), "created_time": "2026-11-20T09:14:37+0000"}
    again = fb.parse_polled(json.dumps(fixed).encode())
    assert [m.external_id for m in again.messages] == [broken["data"][1]["id"]]


def test_a_comment_seen_by_webhook_and_by_poll_is_one_message(
    bot_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    fb = channel()
    monkeypatch.setattr(App, "channels", lambda self: {"facebook": fb})
    client = TestClient(create_app(bot_app))
    body = (FB / "webhook_feed_comment.json").read_bytes()
    signature = fixture("signatures.json")["files"]["webhook_feed_comment.json"]
    response = client.post(
        "/webhooks/facebook",
        content=body,
        headers={"X-Hub-Signature-256": signature["X-Hub-Signature-256"]},
    )
    assert response.status_code == 200
    with bot_app.db.session() as session:
        save_cursor(session, "facebook", cursor_at(FLOOR), at=ROUND_AT)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps)
        report = poll_once(bot_app, "facebook", fb)
    assert report.ingested.duplicates == 1
    with bot_app.db.session() as session:
        jordan = session.exec(
            select(Message).where(Message.external_id == "122187654321098765_1093847561029384")
        ).all()
        attachments = session.exec(select(MessageAttachment)).all()
        total = len(session.exec(select(Message)).all())
    assert len(jordan) == 1 and total == 7
    assert [a.kind for a in attachments] == ["image"]


@pytest.fixture
def settings_env(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"CAMPUSBOT_FACEBOOK__{name.upper()}", value)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"classifier:\n  kind: keywords\nfacebook:\n  enabled: true\n  page_id: '{PAGE}'\n"
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    database = Database.from_url(load_settings(config).database_url)
    with database.session() as session:  # as if an earlier round had run on 15 November
        save_cursor(session, "facebook", cursor_at(FLOOR), at=FLOOR)
    database.dispose()
    return config


def test_poll_command_stores_comments_once(
    settings_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            register_round(rsps)
            assert main(["--config", str(settings_env), "poll", "facebook", "--once"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("facebook: stored 7,") and "stored 0," in printed[-1]
    assert main(["--config", str(settings_env), "inbox", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(rows) == len({r["external_id"] for r in rows}) == 7


def test_an_expired_token_stops_polling_with_a_clear_message_and_keeps_the_cursor(
    settings_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            f"{GRAPH}/{PAGE}/posts",
            json=fixture("error_190_expired.json"),
            status=400,
        )
        assert main(["--config", str(settings_env), "poll", "facebook", "--once"]) == 1
    assert "reconnect the Facebook page" in capsys.readouterr().err
    database = Database.from_url(load_settings(settings_env).database_url)
    with database.session() as session:
        assert load_cursor(session, "facebook") == cursor_at(FLOOR)
        assert session.exec(select(Message)).all() == []
        assert len(session.exec(select(ChannelCursor)).all()) == 1
    database.dispose()


def test_a_190_while_polling_is_an_auth_error() -> None:
    fb = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{GRAPH}/{PAGE}/posts", json=fixture("posts_recent.json"))
        rsps.add(
            responses.GET,
            f"{GRAPH}/{PHOTO_POST}/comments",
            json=fixture("error_190_expired.json"),
            status=400,
        )
        with pytest.raises(AuthError, match="reconnect"):
            fb.fetch(cursor_at(FLOOR))


def test_a_post_deleted_since_it_was_listed_does_not_stop_the_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = {
        "error": {
            "message": f"Unsupported get request. Object with ID '{EMPTY_POST}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation.",
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
            "fbtrace_id": "AoB1x7Zk2Qm9rT4vN8cW3pL",
        }
    }
    fb = channel()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        register_round(rsps)
        rsps.replace(responses.GET, f"{GRAPH}/{EMPTY_POST}/comments", json=gone, status=400)
        batch = fb.fetch(cursor_at(FLOOR))
    assert batch.exhausted and len(batch.messages) == 7
    assert EMPTY_POST in caplog.text
    posts = json.loads(str(batch.cursor))["posts"]
    assert posts["122188112233445566"] == int(FLOOR.timestamp())  # kept: tried again next round
