"""Facebook Insights and X metrics into the daily metric tables that reports read.

- Page metrics (``period=day``) become one ``channel_daily_metrics`` row per day and
  metric, under the name config maps each Graph metric to ("reach", "views"...), so a
  metric Meta renames keeps its history. Graph's day ends at midnight Pacific time and
  ``end_time`` marks that end, so a value is filed under the day before its ``end_time``.
  Meta revises recent days, so each run re-reads ``insights_days`` and updates in place.
- ``page_follows`` is a running total; the day-on-day difference is also stored as
  ``followers_gained``, the figure reports add up.
- Post metrics are lifetime totals. Reports add a post's daily rows over the days asked
  for, so each day stores what the total gained since the rows before it: the rows always
  add up to the latest total, and a second run on the same day rewrites that day's row.
- A metric Graph no longer knows is skipped with a warning; the rest are stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from bot.app import App
from bot.crud.api_calls import BudgetExceeded, CostKind, price_micros
from bot.errors import ConfigError, PermanentError, RateLimited
from bot.metrics_import import upsert
from bot.models import ChannelDailyMetric, Post, PostDailyMetric, PostStatus
from channels.facebook import FacebookChannel, Insights
from channels.twitter import TwitterChannel

log = logging.getLogger(__name__)

CHANNEL = "facebook"
FOLLOWERS = "followers"
FOLLOWERS_GAINED = "followers_gained"
CHANNEL_KEYS = ["channel", "account", "day", "metric"]
POST_KEYS = ["post_id", "day", "metric"]
TWITTER_POST_METRICS_DAYS = 30  # X gives private metrics for 30 days; later ones barely move


@dataclass
class InsightsReport:
    page_rows: int = 0
    post_rows: int = 0
    posts_read: int = 0
    skipped_metrics: list[str] = field(default_factory=list)
    unreadable_posts: list[str] = field(default_factory=list)


def collect_facebook_insights(app: App, *, days: int | None = None) -> InsightsReport:
    """Read page and post insights and store them; safe to run as often as wanted.

    Raises the channel's typed errors (RateLimited, AuthError, TransientError) for the
    caller to reschedule; what was stored before the error stays stored.
    """
    channel = app.channels().get(CHANNEL)
    if not isinstance(channel, FacebookChannel):
        raise ConfigError("facebook is not enabled or not fully configured (see `config check`)")
    settings = app.settings.facebook
    now = app.clock.now()
    today = now.astimezone(app.settings.tz).date()
    report = InsightsReport()

    page = channel.page_insights(
        list(settings.page_metrics),
        since=today - timedelta(days=days or settings.insights_days),
        until=today,
    )
    _note_skipped(report, page)
    with app.db.session() as session:
        report.page_rows = _store_page(
            session, page, settings.page_metrics, account=channel.page_id, at=now
        )

    with app.db.session() as session:
        posts = session.exec(
            select(Post.id, Post.external_id).where(
                Post.channel == CHANNEL,
                Post.status == PostStatus.PUBLISHED,
                col(Post.external_id).is_not(None),
                col(Post.published_at) >= now - timedelta(days=settings.post_insights_days),
            )
        ).all()
    for post_id, external_id in posts:
        if post_id is None or external_id is None:
            continue
        paused = channel.pause_until()
        if paused is not None:
            raise RateLimited(
                f"Facebook usage near its limit after {report.posts_read} posts' insights",
                retry_at=paused,
                channel=CHANNEL,
            )
        try:
            insights = channel.post_insights(external_id, list(settings.post_metrics))
        except PermanentError as exc:  # e.g. deleted from the page since it was published
            log.warning("facebook: insights of post %s not readable: %s", external_id, exc)
            report.unreadable_posts.append(external_id)
            continue
        _note_skipped(report, insights)
        with app.db.session() as session:
            report.post_rows += _store_post(
                session, insights, settings.post_metrics, post_id=post_id, day=today, at=now
            )
        report.posts_read += 1
    return report


def _note_skipped(report: InsightsReport, insights: Insights) -> None:
    report.skipped_metrics += [m for m in insights.skipped if m not in report.skipped_metrics]


def _store_page(
    session: Session, insights: Insights, names: dict[str, str], *, account: str, at: datetime
) -> int:
    rows: list[dict[str, Any]] = [
        {
            "channel": CHANNEL,
            "account": account,
            "day": (value.end_time - timedelta(days=1)).date(),
            "metric": names[value.metric],
            "value": value.value,
            "recorded_at": at,
        }
        for value in insights.values
        if value.end_time is not None and value.metric in names
    ]
    upsert(session, ChannelDailyMetric, rows, CHANNEL_KEYS)
    followed = sorted(r["day"] for r in rows if r["metric"] == FOLLOWERS)
    if followed:
        rows += _followers_gained(session, CHANNEL, account, followed[0], followed[-1], at)
    return len(rows)


def _followers_gained(
    session: Session, channel: str, account: str, first: date, last: date, at: datetime
) -> list[dict[str, Any]]:
    """Day-on-day differences of the follower total, where both days are known."""
    totals: dict[date, float] = dict(
        session.exec(
            select(col(ChannelDailyMetric.day), col(ChannelDailyMetric.value)).where(
                ChannelDailyMetric.channel == channel,
                ChannelDailyMetric.account == account,
                ChannelDailyMetric.metric == FOLLOWERS,
                col(ChannelDailyMetric.day) >= first - timedelta(days=1),
                col(ChannelDailyMetric.day) <= last,
            )
        ).all()
    )
    rows = [
        {
            "channel": channel,
            "account": account,
            "day": day,
            "metric": FOLLOWERS_GAINED,
            "value": total - totals[day - timedelta(days=1)],
            "recorded_at": at,
        }
        for day, total in totals.items()
        if day >= first and day - timedelta(days=1) in totals
    ]
    upsert(session, ChannelDailyMetric, rows, CHANNEL_KEYS)
    return rows


def _store_post(
    session: Session,
    insights: Insights,
    names: dict[str, str],
    *,
    post_id: int,
    day: date,
    at: datetime,
) -> int:
    totals = {names[v.metric]: v.value for v in insights.values if v.metric in names}
    return _store_post_totals(session, totals, post_id=post_id, day=day, at=at)


def _store_post_totals(
    session: Session, totals: dict[str, float], *, post_id: int, day: date, at: datetime
) -> int:
    """Lifetime totals stored as what each gained since the days already stored."""
    rows: list[dict[str, Any]] = []
    for metric, total in totals.items():
        before = session.exec(
            select(func.coalesce(func.sum(PostDailyMetric.value), 0.0)).where(
                PostDailyMetric.post_id == post_id,
                PostDailyMetric.metric == metric,
                col(PostDailyMetric.day) < day,
            )
        ).one()
        rows.append(
            {
                "post_id": post_id,
                "day": day,
                "metric": metric,
                "value": total - float(before),
                "recorded_at": at,
            }
        )
    upsert(session, PostDailyMetric, rows, POST_KEYS)
    return len(rows)


@dataclass
class TwitterMetricsReport:
    followers: int = 0
    posts_read: int = 0
    post_rows: int = 0


def collect_twitter_metrics(app: App) -> TwitterMetricsReport:
    """Today's follower count and the lifetime figures of recent published posts.

    Reading costs money on X: when this month's budget is spent the round is refused
    (``BudgetExceeded``) like any other non-essential call; polling never is.
    """
    channel = app.channels().get("twitter")
    if not isinstance(channel, TwitterChannel):
        raise ConfigError("twitter is not enabled or not fully configured (see `config check`)")
    now = app.clock.now()
    today = now.astimezone(app.settings.tz).date()
    account = channel.user_id
    with app.db.session() as session:
        posts = session.exec(
            select(Post.id, Post.external_id).where(
                Post.channel == "twitter",
                Post.status == PostStatus.PUBLISHED,
                col(Post.external_id).is_not(None),
                col(Post.published_at) >= now - timedelta(days=TWITTER_POST_METRICS_DAYS),
            )
        ).all()
    prices = app.settings.twitter.cost
    cost = price_micros(prices, CostKind.USER_READ) + price_micros(
        prices, CostKind.POST_READ, len(posts)
    )
    budget = channel.ledger.budget()
    if not budget.allows(cost):
        raise BudgetExceeded(budget, cost_micros=cost)
    report = TwitterMetricsReport(followers=channel.follower_count())
    with app.db.session() as session:
        upsert(
            session,
            ChannelDailyMetric,
            [
                {
                    "channel": "twitter",
                    "account": account,
                    "day": today,
                    "metric": FOLLOWERS,
                    "value": float(report.followers),
                    "recorded_at": now,
                }
            ],
            CHANNEL_KEYS,
        )
        _followers_gained(session, "twitter", account, today, today, now)
    by_tweet = {external: post_id for post_id, external in posts if post_id and external}
    totals = channel.post_metrics(list(by_tweet))
    with app.db.session() as session:
        for tweet_id, figures in totals.items():
            post_id = by_tweet.get(tweet_id)
            if post_id is None:
                continue
            report.post_rows += _store_post_totals(
                session, figures, post_id=post_id, day=today, at=now
            )
            report.posts_read += 1
    return report
