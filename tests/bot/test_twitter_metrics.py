"""X metrics into daily snapshots: followers, post engagement as daily gains, budget respected."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import responses
from sqlmodel import select

from bot.app import App
from bot.clock import FixedClock
from bot.crud.api_calls import BudgetExceeded
from bot.insights import collect_twitter_metrics
from bot.models import ChannelDailyMetric, Post, PostDailyMetric, PostStatus
from channels.twitter import TwitterChannel
from tests.channels.test_twitter import API, BOT_ID, fixture, settings

TWEETS = ["2122253352611483648", "2122759171473244160", "2123357047548243968"]


@pytest.fixture
def twitter(bot_app: App, monkeypatch: pytest.MonkeyPatch) -> TwitterChannel:
    channel = TwitterChannel(settings())
    monkeypatch.setattr(App, "channels", lambda self: {"twitter": channel})
    return channel


def _published(app: App, external_id: str, days_ago: int = 3) -> int:
    at = app.clock.now() - timedelta(days=days_ago)
    with app.db.session() as session:
        post = Post(
            channel="twitter",
            campaign="bike-marking",
            text="Free bike marking",
            status=PostStatus.PUBLISHED,
            scheduled_for=at,
            created_by="pc.ahmed",
            created_at=at,
            updated_at=at,
            published_at=at,
            external_id=external_id,
        )
        session.add(post)
        session.flush()
        assert post.id is not None
        return post.id


def _recorded(rsps: responses.RequestsMock, followers: int, boost: int = 0) -> None:
    me = fixture("user_me.json")
    me["data"]["public_metrics"]["followers_count"] = followers
    rsps.add(responses.GET, re.compile(rf"{API}/users/me.*"), json=me)
    tweets = fixture("tweets_metrics.json")
    for tweet in tweets["data"]:
        tweet["public_metrics"]["like_count"] += boost
    rsps.add(responses.GET, re.compile(rf"{API}/tweets\?.*"), json=tweets)


def _rows(app: App) -> tuple[dict[str, float], dict[tuple[int, str], float]]:
    with app.db.session() as session:
        channel = {
            f"{m.day}:{m.metric}": m.value
            for m in session.exec(select(ChannelDailyMetric))
            if m.channel == "twitter" and m.account == BOT_ID
        }
        post: dict[tuple[int, str], float] = {}
        for m in session.exec(select(PostDailyMetric)):
            post[(m.post_id, m.metric)] = post.get((m.post_id, m.metric), 0.0) + m.value
    return channel, post


def test_followers_and_post_engagement_become_daily_snapshots(
    bot_app: App, twitter: TwitterChannel
) -> None:
    ids = [_published(bot_app, tweet, days_ago) for days_ago, tweet in enumerate(TWEETS, 1)]
    today = bot_app.clock.now().astimezone(bot_app.settings.tz).date()
    with responses.RequestsMock() as rsps:
        _recorded(rsps, followers=4862)
        first = collect_twitter_metrics(bot_app)
        _recorded(rsps, followers=4862)
        collect_twitter_metrics(bot_app)  # a rerun the same day changes nothing
    assert (first.followers, first.posts_read) == (4862, 3)
    channel, post = _rows(bot_app)
    assert channel == {f"{today}:followers": 4862.0}
    assert post[(ids[1], "views")] == 5120
    assert post[(ids[1], "link_clicks")] == 163
    assert post[(ids[1], "shares")] == 22 + 2  # retweets and quotes
    assert post[(ids[0], "reactions")] == 31
    assert (ids[0], "link_clicks") not in post  # X gave no link clicks for it

    assert isinstance(bot_app.clock, FixedClock)
    bot_app.clock.advance(timedelta(days=1))
    with responses.RequestsMock() as rsps:
        _recorded(rsps, followers=4870, boost=5)
        collect_twitter_metrics(bot_app)
    channel, post = _rows(bot_app)
    tomorrow = today + timedelta(days=1)
    assert channel[f"{tomorrow}:followers_gained"] == 8
    assert post[(ids[0], "reactions")] == 36  # the days add up to the latest total
    with bot_app.db.session() as session:
        days = {
            m.day
            for m in session.exec(select(PostDailyMetric))
            if m.post_id == ids[0] and m.metric == "reactions"
        }
    assert days == {today, tomorrow}


def test_metrics_are_not_read_once_the_months_budget_is_spent(
    bot_app: App, twitter: TwitterChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    _published(bot_app, TWEETS[0])
    twitter.settings.cost.monthly_budget = 0.001
    twitter.ledger.prices.monthly_budget = 0.001
    with responses.RequestsMock() as rsps:
        with pytest.raises(BudgetExceeded, match="budget"):
            collect_twitter_metrics(bot_app)
        assert len(rsps.calls) == 0  # refused before any billable call
