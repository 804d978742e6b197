"""Facebook Insights into daily snapshots: idempotent, renamed metrics skipped, faults typed."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from pydantic import SecretStr
from sqlmodel import select

from bot.app import App
from bot.cli import main
from bot.clock import FixedClock
from bot.config import FacebookSettings
from bot.errors import AuthError, ConfigError, RateLimited
from bot.insights import collect_facebook_insights
from bot.models import ChannelDailyMetric, Post, PostDailyMetric, PostStatus
from bot.reports import ReportQuery, build_report
from channels.facebook import FacebookChannel
from tests.channels.test_facebook import GRAPH, PAGE, fixture

BIKE_POST = f"{PAGE}_122187654321098765"
PHOTO_POST = f"{PAGE}_122188998877665544"
PAGE_INSIGHTS = f"{GRAPH}/{PAGE}/insights"
LONDON = ZoneInfo("Europe/London")


def _graph_insights(recorded: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """Answer as Graph does: the metrics asked for, or error 100 if any name is unknown."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        asked = parse_qs(urlsplit(str(request.url)).query)["metric"][0].split(",")
        known = {item["name"]: item for item in recorded["data"]}
        if any(name not in known for name in asked):
            return 400, {}, json.dumps(fixture("error_100_invalid_param.json"))
        body = {**recorded, "data": [known[name] for name in asked]}
        return 200, headers or {}, json.dumps(body)

    return answer


def _answer(rsps: responses.RequestsMock, url: str, callback: Any) -> None:
    rsps.add_callback(responses.GET, url, callback=callback, content_type="application/json")


@pytest.fixture
def facebook(bot_app: App, monkeypatch: pytest.MonkeyPatch) -> FacebookChannel:
    bot_app.settings.facebook = FacebookSettings(
        enabled=True,
        page_id=PAGE,
        page_access_token=SecretStr("page-token"),
        app_secret=SecretStr("test-app-secret"),
        verify_token=SecretStr("test-verify-token"),
    )
    fb = FacebookChannel(bot_app.settings.facebook, clock=bot_app.clock)
    monkeypatch.setattr(App, "channels", lambda self: {"facebook": fb})
    return fb


def _published(app: App, external_id: str, campaign: str = "bike-marking") -> int:
    at = app.clock.now() - timedelta(days=5)
    with app.db.session() as session:
        post = Post(
            channel="facebook",
            campaign=campaign,
            text="Get your bike marked at Foster on Thursday",
            status=PostStatus.PUBLISHED,
            scheduled_for=at,
            created_by="pc.ahmed",
            created_at=at,
            updated_at=at,
            external_id=external_id,
            published_at=at,
        )
        session.add(post)
        session.flush()
        assert post.id is not None
        return post.id


def _register(rsps: responses.RequestsMock, posts: dict[str, dict[str, Any]]) -> None:
    _answer(
        rsps,
        PAGE_INSIGHTS,
        _graph_insights(fixture("insights_page_daily.json")),
    )
    for post_id, recorded in posts.items():
        _answer(
            rsps,
            f"{GRAPH}/{post_id}/insights",
            _graph_insights(recorded),
        )


def _daily(app: App) -> dict[tuple[date, str], float]:
    with app.db.session() as session:
        rows = session.exec(select(ChannelDailyMetric)).all()
    return {(r.day, r.metric): r.value for r in rows}


def test_page_metrics_land_as_daily_rows_under_report_names(
    bot_app: App, facebook: FacebookChannel
) -> None:
    with responses.RequestsMock() as rsps:
        _register(rsps, {})
        report = collect_facebook_insights(bot_app)
        asked = str(rsps.calls[0].request.url)
    assert "period=day" in asked and "since=" in asked and "until=" in asked
    recorded = {m["name"]: m["values"] for m in fixture("insights_page_daily.json")["data"]}
    stored = _daily(bot_app)
    names = bot_app.settings.facebook.page_metrics
    for graph_name, values in recorded.items():
        for value in values:
            # end_time 2026-11-17T08:00Z (midnight Pacific) closes the day of 16 November
            day = date.fromisoformat(value["end_time"][:10]) - timedelta(days=1)
            assert stored[(day, names[graph_name])] == value["value"]
    follows = [v["value"] for v in recorded["page_follows"]]
    gained = sorted((d, v) for (d, m), v in stored.items() if m == "followers_gained")
    assert [v for _, v in gained] == [b - a for a, b in pairwise(follows)]
    assert report.page_rows == len(stored) and report.skipped_metrics == []


def test_a_rerun_updates_the_same_rows_and_never_duplicates(
    bot_app: App, facebook: FacebookChannel
) -> None:
    with responses.RequestsMock() as rsps:
        _register(rsps, {})
        collect_facebook_insights(bot_app)
    before = _daily(bot_app)
    revised = fixture("insights_page_daily.json")
    revised["data"][1]["values"][-1]["value"] = 950  # Meta revises the latest day
    with responses.RequestsMock() as rsps:
        _answer(rsps, PAGE_INSIGHTS, _graph_insights(revised))
        collect_facebook_insights(bot_app)
    after = _daily(bot_app)
    assert after.keys() == before.keys()
    with bot_app.db.session() as session:
        assert len(session.exec(select(ChannelDailyMetric)).all()) == len(before)
    changed = {k for k in after if after[k] != before[k]}
    assert (
        changed == {(date(2026, 11, 22), "reach")} and after[(date(2026, 11, 22), "reach")] == 950
    )


def test_a_retired_metric_is_skipped_with_a_warning_and_the_rest_stored(
    bot_app: App, facebook: FacebookChannel, caplog: pytest.LogCaptureFixture
) -> None:
    bot_app.settings.facebook.page_metrics = {
        "page_impressions": "impressions",  # retired by Meta on 15 November 2025
        **bot_app.settings.facebook.page_metrics,
    }
    with responses.RequestsMock() as rsps, caplog.at_level(logging.WARNING):
        _register(rsps, {})
        report = collect_facebook_insights(bot_app)
        calls = len(rsps.calls)
    assert report.skipped_metrics == ["page_impressions"]
    assert "page_impressions" in caplog.text and "page_metrics" in caplog.text
    stored = {metric for _, metric in _daily(bot_app)}
    assert stored == {"views", "reach", "engagements", "followers", "followers_gained"}
    assert calls == 1 + 5  # all together, refused; then each alone


def test_post_lifetime_totals_become_daily_gains_that_add_up(
    bot_app: App, facebook: FacebookChannel
) -> None:
    post_id = _published(bot_app, BIKE_POST)
    recorded = fixture("insights_post.json")
    with responses.RequestsMock() as rsps:
        _register(rsps, {BIKE_POST: recorded})
        report = collect_facebook_insights(bot_app)
    assert report.posts_read == 1 and report.post_rows == 3
    next_day = fixture("insights_post.json")
    next_day["data"][0]["values"][0]["value"] = 5400  # post_media_view, lifetime
    assert isinstance(bot_app.clock, FixedClock)
    bot_app.clock.advance(timedelta(days=1))
    for _ in range(2):  # twice on the same day: the day's row is rewritten, not added
        with responses.RequestsMock() as rsps:
            _register(rsps, {BIKE_POST: next_day})
            collect_facebook_insights(bot_app)
    with bot_app.db.session() as session:
        rows = session.exec(select(PostDailyMetric).where(PostDailyMetric.post_id == post_id)).all()
    views = sorted((r.day, r.value) for r in rows if r.metric == "views")
    assert views == [(date(2026, 11, 21), 5126.0), (date(2026, 11, 22), 274.0)]
    reactions = [r.value for r in rows if r.metric == "reactions"]
    assert reactions == [117.0, 0.0]  # like 87 + love 9 + wow 4 + sorry 11 + anger 6
    assert {r.metric for r in rows} == {"views", "reactions", "clicks"}


def test_reports_pick_up_the_snapshots(bot_app: App, facebook: FacebookChannel) -> None:
    _published(bot_app, BIKE_POST)
    with responses.RequestsMock() as rsps:
        _register(rsps, {BIKE_POST: fixture("insights_post.json")})
        collect_facebook_insights(bot_app)
    with bot_app.db.session() as session:
        built = build_report(
            session,
            ReportQuery(start=date(2026, 11, 16), end=date(2026, 11, 22), tz=LONDON),
            [],
        )
    reach = next(
        m for m in fixture("insights_page_daily.json")["data"] if m["name"].endswith("_unique")
    )
    summary = built.tables["summary"].as_dicts()
    assert summary == [
        {
            "channel": "facebook",
            "days": 7,
            "total_reach": sum(v["value"] for v in reach["values"]),
            "mean_daily_reach": pytest.approx(
                sum(v["value"] for v in reach["values"]) / 7, abs=0.05
            ),
        }
    ]
    engagement = built.tables["engagement"].as_dicts()
    assert engagement[0]["views"] == 5126 and engagement[0]["reactions"] == 117
    audience = {r["metric"]: r["total"] for r in built.tables["audience"].as_dicts()}
    assert audience == {"followers_gained": 4163 - 4127}


def test_613_with_usage_headers_waits_as_meta_says_and_stores_nothing(
    bot_app: App, facebook: FacebookChannel
) -> None:
    throttled = fixture("rate_limit_headers.json")["throttled"]
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            PAGE_INSIGHTS,
            json=fixture("error_613.json"),
            status=400,
            headers=throttled,
        )
        with pytest.raises(RateLimited) as caught:
            collect_facebook_insights(bot_app)
    assert caught.value.retry_at == bot_app.clock.now() + timedelta(minutes=12)
    assert _daily(bot_app) == {}


def test_usage_near_the_limit_pauses_between_posts_keeping_what_was_stored(
    bot_app: App, facebook: FacebookChannel
) -> None:
    first = _published(bot_app, BIKE_POST)
    _published(bot_app, PHOTO_POST, campaign="spiking-awareness")
    near = fixture("rate_limit_headers.json")["near_limit"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _answer(
            rsps,
            PAGE_INSIGHTS,
            _graph_insights(fixture("insights_page_daily.json")),
        )
        for post in (BIKE_POST, PHOTO_POST):
            _answer(
                rsps,
                f"{GRAPH}/{post}/insights",
                _graph_insights(fixture("insights_post.json"), headers=near),
            )
        with pytest.raises(RateLimited, match="after 1 posts"):
            collect_facebook_insights(bot_app)
        assert len(rsps.calls) == 2
    with bot_app.db.session() as session:
        stored = {r.post_id for r in session.exec(select(PostDailyMetric)).all()}
    assert stored == {first} and _daily(bot_app) != {}


def test_an_expired_token_is_an_auth_error_not_a_generic_failure(
    bot_app: App, facebook: FacebookChannel
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, PAGE_INSIGHTS, json=fixture("error_190_expired.json"), status=400)
        with pytest.raises(AuthError, match="reconnect the Facebook page"):
            collect_facebook_insights(bot_app)


def test_a_deleted_post_is_reported_and_the_others_still_read(
    bot_app: App, facebook: FacebookChannel
) -> None:
    _published(bot_app, BIKE_POST)
    _published(bot_app, PHOTO_POST, campaign="spiking-awareness")
    missing = {
        "error": {
            "message": f"Unsupported get request. Object with ID '{PHOTO_POST}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation.",
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
            "fbtrace_id": "AkQ3hTq0m9yZ1xWcV4bN2pL",
        }
    }
    with responses.RequestsMock() as rsps:
        _register(rsps, {BIKE_POST: fixture("insights_post.json")})
        rsps.add(responses.GET, f"{GRAPH}/{PHOTO_POST}/insights", json=missing, status=400)
        report = collect_facebook_insights(bot_app)
    assert report.unreadable_posts == [PHOTO_POST] and report.posts_read == 1


def test_without_a_configured_page_it_says_so(bot_app: App) -> None:
    with pytest.raises(ConfigError, match="facebook"):
        collect_facebook_insights(bot_app)


def test_metric_names_in_config_are_checked() -> None:
    with pytest.raises(ValueError, match="lower_snake_case"):
        FacebookSettings(page_metrics={"Page Views": "views"})
    with pytest.raises(ValueError, match="same name"):
        FacebookSettings(post_metrics={"post_media_view": "views", "post_impressions": "views"})


@pytest.fixture
def config(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "page_access_token": "page-token",
        "app_secret": "test-app-secret",
        "verify_token": "test-verify-token",
    }.items():
        monkeypatch.setenv(f"CAMPUSBOT_FACEBOOK__{name.upper()}", value)
    path = tmp_path / "config.yaml"
    path.write_text(
        "classifier:\n  kind: keywords\nfacebook:\n  enabled: true\n"
        f"  page_id: '{PAGE}'\n  page_metrics:\n    page_impressions: impressions\n"
        "    page_total_media_view_unique: reach\n"
    )
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    return path


def test_the_insights_command_stores_and_says_what_it_skipped(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        with responses.RequestsMock() as rsps:
            _register(rsps, {})
            assert main(["--config", str(config), "channels", "insights", "facebook"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert (
        printed
        == [
            "facebook: 7 page figures, 0 post figures from 0 posts; "
            "skipped unknown metrics page_impressions"
        ]
        * 2
    )
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            PAGE_INSIGHTS,
            json=fixture("error_613.json"),
            status=400,
            headers=fixture("rate_limit_headers.json")["throttled"],
        )
        assert main(["--config", str(config), "channels", "insights", "facebook"]) == 1
    assert "rate limited until" in capsys.readouterr().err
    assert main(["--config", str(config), "channels", "insights", "twitter"]) == 2
