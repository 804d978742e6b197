"""Request ids, JSON logs and Prometheus metrics, seen as an operator and a scraper see them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlmodel import select

from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings, load_settings
from bot.crud import deadletters
from bot.db import Database
from bot.errors import ConfigError, RateLimited, TransientError
from bot.models import DeadLetter
from bot.observability import metrics
from bot.observability.logs import CampusbotHandler, configure_logging
from bot.observability.metrics import Metrics
from bot.web.server import create_app
from channels.twitter import TwitterChannel
from tests.channels.test_twitter import SECRETS, TW
from tests.channels.test_twitter import settings as twitter_settings

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.9", 50000)
HEX_ID = re.compile(r"[0-9a-f]{32}")


def signed(body: bytes) -> dict[str, str]:
    """The header X signs each webhook delivery with (HMAC-SHA256 of the body)."""
    digest = hmac.new(SECRETS["consumer_secret"].encode(), body, hashlib.sha256).digest()
    return {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode()}


def sample(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from /metrics text, 0 when the series does not exist yet."""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


@pytest.fixture
def fresh() -> Metrics:
    return Metrics()


@pytest.fixture
def web(bot_app: App, fresh: Metrics, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The console with X enabled, its own metrics, reached from this machine."""
    channel = TwitterChannel(twitter_settings())
    monkeypatch.setattr(App, "channels", lambda self: {"twitter": channel})
    return TestClient(create_app(bot_app, metrics=fresh), client=LOOPBACK)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = configure_logging("INFO", "json", stream=buffer, force=True)
    assert handler is not None
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


# -- request ids ------------------------------------------------------------------------------
def test_request_id_from_the_client_comes_back(web: TestClient) -> None:
    for given in (
        "3f1c0a9e-5b7d-4c2e-9a61-0d8e7f6b5a43",
        "Root=1-67891233-abcdef012345678912345678",
    ):
        response = web.get("/healthz", headers={"X-Request-ID": given})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        "abc\r\nSet-Cookie: session=stolen",
        "abc\ndef",
        "x" * 10_000,
        "<script>alert(1)</script>",
        "two words",
        "",
    ],
)
def test_absent_or_hostile_request_id_is_replaced(web: TestClient, hostile: str | None) -> None:
    headers = {} if hostile is None else {"X-Request-ID": hostile}
    first = web.get("/healthz", headers=headers)
    second = web.get("/healthz", headers=headers)
    assert first.status_code == 200
    assert HEX_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert "set-cookie" not in first.headers


def test_refused_host_still_gets_an_id(web: TestClient) -> None:
    response = web.get("/healthz", headers={"host": "evil.example.com", "X-Request-ID": "r-1"})
    assert (response.status_code, response.headers["x-request-id"]) == (400, "r-1")


# -- logs -------------------------------------------------------------------------------------
def test_json_log_lines_carry_the_request_id_and_no_message_text(
    web: TestClient, json_logs: io.StringIO
) -> None:
    body = (TW / "aaa_dm_event.json").read_bytes()
    response = web.post(
        "/webhooks/twitter", content=body, headers={**signed(body), "X-Request-ID": "trace-42"}
    )
    assert response.status_code == 200
    logging.getLogger("campusbot.test").warning("after the request", extra={"channel": "twitter"})

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    in_request = [line for line in lines if line.get("request_id") == "trace-42"]
    assert in_request, lines
    for line in in_request:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
    after = lines[-1]
    assert after["message"] == "after the request"
    assert (after["level"], after["logger"], after["channel"]) == (
        "WARNING",
        "campusbot.test",
        "twitter",
    )
    assert "request_id" not in after
    assert "stuck between floors" not in json_logs.getvalue()


def test_json_logs_keep_one_object_per_line_for_multiline_messages(
    json_logs: io.StringIO,
) -> None:
    log = logging.getLogger("campusbot.test")
    log.error("first line\nsecond line")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = json_logs.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "first line\nsecond line"
    assert "ValueError: boom" in second["exc_info"]


def test_text_is_the_default_and_json_is_chosen_by_config_or_environment(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.log_format == "text"
    config = tmp_path / "service.yaml"
    config.write_text("log_format: json\n")
    assert load_settings(config).log_format == "json"
    monkeypatch.setenv("CAMPUSBOT_LOG_FORMAT", "json")
    assert load_settings(tmp_path / "config.yaml").log_format == "json"
    monkeypatch.setenv("CAMPUSBOT_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(tmp_path / "config.yaml")


def test_text_format_is_plain_text() -> None:
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = configure_logging("INFO", "text", stream=buffer, force=True)
    assert handler is not None
    try:
        logging.getLogger("campusbot.test").info("hello")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert re.fullmatch(r"\S+ \S+ INFO campusbot\.test hello\n", buffer.getvalue())


def test_logging_is_left_alone_when_the_host_program_configured_it() -> None:
    root = logging.getLogger()
    level = root.level
    theirs = logging.NullHandler()
    root.addHandler(theirs)
    forced: list[CampusbotHandler | None] = []
    try:
        assert configure_logging("DEBUG", "json") is None
        assert root.level == level
        forced += [configure_logging("INFO", "json", force=True) for _ in range(2)]
        ours = [h for h in root.handlers if isinstance(h, CampusbotHandler)]
        assert ours == [forced[-1]] and theirs in root.handlers  # replaced, not stacked
    finally:
        for handler in [theirs, *forced]:
            if handler is not None:
                root.removeHandler(handler)
        root.setLevel(level)


# -- metrics ----------------------------------------------------------------------------------
def test_metrics_count_a_webhook_request_and_a_dead_letter(web: TestClient, bot_app: App) -> None:
    good = (TW / "aaa_tweet_create_event.json").read_bytes()
    broken = b'{"tweet_create_events": [{"id_str": '
    assert web.post("/webhooks/twitter", content=good, headers=signed(good)).status_code == 200
    assert web.post("/webhooks/twitter", content=broken, headers=signed(broken)).status_code == 200
    assert web.post("/webhooks/twitter", content=b"{}").status_code == 403  # unsigned

    scraped = web.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    webhook = {"method": "POST", "route": "/webhooks/twitter"}
    assert sample(text, "campusbot_http_requests_total", **webhook, status="200") == 2
    assert sample(text, "campusbot_http_requests_total", **webhook, status="403") == 1
    assert sample(text, "campusbot_http_request_duration_seconds_count", **webhook) == 3
    assert sample(text, "campusbot_dead_letters_total", source="twitter") == 1
    with bot_app.db.session() as session:
        assert len(session.exec(select(DeadLetter)).all()) == 1


def test_a_server_error_is_counted_as_500_on_its_route(
    bot_app: App, fresh: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = TwitterChannel(twitter_settings())
    monkeypatch.setattr(App, "channels", lambda self: {"twitter": channel})

    def database_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database unavailable")

    client = TestClient(
        create_app(bot_app, metrics=fresh), client=LOOPBACK, raise_server_exceptions=False
    )
    monkeypatch.setattr(bot_app.pipeline, "ingest", database_down)
    body = (TW / "aaa_dm_event.json").read_bytes()
    assert client.post("/webhooks/twitter", content=body, headers=signed(body)).status_code == 500
    text = client.get("/metrics").text
    labels = {"method": "POST", "route": "/webhooks/twitter", "status": "500"}
    assert sample(text, "campusbot_http_requests_total", **labels) == 1


def test_metrics_hold_no_message_text_ids_or_paths(web: TestClient, bot_app: App) -> None:
    from bot.models import SurveyLink

    with bot_app.db.session() as session:
        session.add(
            SurveyLink(
                code="abc123",
                campaign="bikes",
                channel="twitter",
                target_url="https://forms.example.org/bikes",
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
    dm = (TW / "aaa_dm_event.json").read_bytes()
    tweet = (TW / "aaa_tweet_create_event.json").read_bytes()
    for body in (dm, tweet):
        assert web.post("/webhooks/twitter", content=body, headers=signed(body)).status_code == 200
    web.get("/s/abc123", follow_redirects=False)
    web.get("/s/zz9999")
    web.get("/students/jesswhitt_/secret-path")
    web.request("PROPFIND", "/healthz")
    web.get("/webhooks/twitter", params={"crc_token": "crc-token-value"})
    text = web.get("/metrics").text

    dm_event = json.loads(dm)["direct_message_events"][0]["message_create"]
    tweet_event = json.loads(tweet)["tweet_create_events"][0]
    personal = [
        dm_event["message_data"]["text"][:20],
        dm_event["sender_id"],
        "jesswhitt_",
        tweet_event["text"][:20],
        tweet_event["user"]["id_str"],
        "abc123",
        "zz9999",
        "secret-path",
        "crc-token-value",
        "PROPFIND",
    ]
    assert [p for p in personal if p in text] == []
    assert (
        sample(text, "campusbot_http_requests_total", method="GET", route="/s/{code}", status="302")
        == 1
    )
    assert (
        sample(text, "campusbot_http_requests_total", method="GET", route="/s/{code}", status="404")
        == 1
    )
    assert (
        sample(text, "campusbot_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        sample(
            text, "campusbot_http_requests_total", method="other", route="/healthz", status="405"
        )
        == 1
    )


def test_what_the_services_record_is_served_by_channel(web: TestClient, fresh: Metrics) -> None:
    token = metrics.use(fresh)
    try:
        metrics.record_ingest("twitter:poll", received=5, stored=3, duplicates=1)
        metrics.record_classified("twitter", 3)
        metrics.record_published("facebook")
        metrics.record_publish_failed("facebook")
        metrics.record_reply_sent("twitter")
        metrics.record_reply_failed("twitter")
        retry_at = datetime(2026, 11, 21, 12, 15, tzinfo=UTC)
        metrics.record_api_error("twitter", RateLimited("429", retry_at=retry_at))
        metrics.record_api_error("twitter", TransientError("503 from api.twitter.com/2/..."))
        metrics.record_classified("Callum Brennan <callum@example.org>", 1)
    finally:
        metrics.restore(token)
    text = web.get("/metrics").text
    expected = {
        ("campusbot_messages_received_total", ("source", "twitter:poll")): 5,
        ("campusbot_messages_stored_total", ("source", "twitter:poll")): 3,
        ("campusbot_messages_duplicate_total", ("source", "twitter:poll")): 1,
        ("campusbot_messages_classified_total", ("channel", "twitter")): 3,
        ("campusbot_messages_classified_total", ("channel", "other")): 1,
        ("campusbot_posts_published_total", ("channel", "facebook")): 1,
        ("campusbot_posts_failed_total", ("channel", "facebook")): 1,
        ("campusbot_replies_sent_total", ("channel", "twitter")): 1,
        ("campusbot_replies_failed_total", ("channel", "twitter")): 1,
    }
    for (name, (key, value)), count in expected.items():
        assert sample(text, name, **{key: value}) == count, name
    for kind in ("rate_limited", "transient"):
        assert sample(text, "campusbot_api_errors_total", channel="twitter", kind=kind) == 1
    assert "Callum" not in text and "api.twitter.com" not in text


def test_a_rolled_back_dead_letter_is_not_counted(db: Database, fresh: Metrics) -> None:
    at = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def dead_letter(*payloads: bytes, then_fail: bool = False) -> None:
        with db.session() as session:
            for raw in payloads:
                deadletters.add(
                    session, source="facebook", origin="webhook", reason="x", raw=raw, at=at
                )
            if then_fail:
                raise RuntimeError("the batch failed after its dead letters were added")

    token = metrics.use(fresh)
    try:
        with pytest.raises(RuntimeError):
            dead_letter(b"1", then_fail=True)
        dead_letter(b"2", b"3")
        dead_letter(b"2")  # the same bytes again: one letter seen twice, counted again
    finally:
        metrics.restore(token)
    counted = fresh.registry.get_sample_value(
        "campusbot_dead_letters_total", {"source": "facebook"}
    )
    assert counted == 3
    with db.session() as session:
        letters = session.exec(select(DeadLetter)).all()
    assert sorted(letter.times_seen for letter in letters) == [1, 2]


def test_metrics_are_for_this_machine_or_the_bearer_token(
    db: Database, settings: Settings, clock: FixedClock, fresh: Metrics
) -> None:
    plain = build(settings, clock=clock, db=db)
    assert (
        TestClient(create_app(plain, metrics=fresh), client=REMOTE).get("/metrics").status_code
        == 403
    )
    assert TestClient(create_app(plain, metrics=fresh)).get("/metrics").status_code == 403
    assert (
        TestClient(create_app(plain, metrics=fresh), client=("::1", 1)).get("/metrics").status_code
        == 200
    )

    secret = "s3cr3t-scrape-token-0123456789abcdef"
    tokened = build(
        settings.model_copy(update={"metrics_token": SecretStr(secret)}), clock=clock, db=db
    )
    remote = TestClient(create_app(tokened, metrics=fresh), client=REMOTE)
    assert remote.get("/metrics", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert remote.get("/metrics", headers={"Authorization": f"Bearer {secret}x"}).status_code == 403
    assert remote.get("/metrics", headers={"Authorization": secret}).status_code == 403
    assert remote.get("/metrics").status_code == 403


def test_metrics_token_is_refused_in_config_yaml(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("metrics_token: s3cr3t-scrape-token-0123456789abcdef\n")
    with pytest.raises(ConfigError, match="CAMPUSBOT_METRICS_TOKEN"):
        load_settings(config)


def test_two_apps_in_one_process_keep_their_own_counts(bot_app: App) -> None:
    first, second = Metrics(), Metrics()
    a = TestClient(create_app(bot_app, metrics=first), client=LOOPBACK)
    b = TestClient(create_app(bot_app, metrics=second), client=LOOPBACK)
    for _ in range(3):
        a.get("/healthz")
    b.get("/healthz")
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert sample(a.get("/metrics").text, "campusbot_http_requests_total", **labels) == 3
    assert sample(b.get("/metrics").text, "campusbot_http_requests_total", **labels) == 1


def test_a_worker_serves_its_own_counts_on_loopback() -> None:
    server = metrics.serve_metrics(0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        before = sample(
            httpx.get(url).text, "campusbot_messages_classified_total", channel="facebook"
        )
        metrics.record_classified("facebook", 4)
        after = sample(
            httpx.get(url).text, "campusbot_messages_classified_total", channel="facebook"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert after - before == 4
