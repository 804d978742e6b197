"""Engagement and reach reports for analysts, aggregated in SQL on SQLite and PostgreSQL.

Every table is one SQL query. Days are Europe/London calendar days: a small calendar of the
report's days with their UTC bounds is joined in, so a message at 00:30 BST on 1 April counts
for 1 April on either database. Both ends of the date range are inclusive.

Percentiles are nearest-rank, computed with window functions (both databases have them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    select,
    values,
)
from sqlmodel import Session

from bot.models import (
    Case,
    ChannelDailyMetric,
    ChannelPeriodMetric,
    Message,
    MessageScenario,
    Post,
    PostDailyMetric,
    SurveyClick,
    SurveyLink,
)
from schedules.campaigns import Campaign

ENGAGEMENT_METRICS = ("views", "reach", "reactions", "replies", "shares", "link_clicks")
AUDIENCE_METRICS = ("followers_gained", "likes_gained", "members_new")


@dataclass(frozen=True)
class ReportQuery:
    start: date
    end: date
    tz: ZoneInfo
    campaign: str | None = None
    channel: str | None = None


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class Report:
    query: ReportQuery
    tables: dict[str, Table]


def _t(model: Any) -> Any:
    """A model's table, for Core queries (reports are SQL, not ORM objects)."""
    return model.__table__


def _c(model: Any) -> Any:
    return _t(model).c


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _calendar(query: ReportQuery) -> Any:
    """The report's days with their UTC start and end, as an inline SQL table."""
    days = []
    day = query.start
    while day <= query.end:
        start = datetime.combine(day, time(), tzinfo=query.tz)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=query.tz)
        days.append((day, _utc_naive(start), _utc_naive(end)))
        day += timedelta(days=1)
    table = values(
        column("day", Date),
        column("day_start", DateTime),
        column("day_end", DateTime),
        name="calendar",
    ).data(days)
    return table.cte("calendar")  # WITH calendar(day, ...) AS (VALUES ...): both databases


def _seconds(dialect: str, later: Any, earlier: Any) -> Any:
    if dialect == "postgresql":  # EXTRACT gives numeric (Decimal in Python): make it a float
        return cast(func.extract("epoch", later - earlier), Float)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def build_report(session: Session, query: ReportQuery, campaigns: list[Campaign]) -> Report:
    dialect = session.get_bind().dialect.name
    tables = [
        _summary(session, query),
        _reach_per_day(session, query),
        _period_figures(session, query),
        _audience(session, query),
        _campaigns(query, campaigns),
        _engagement(session, query, campaigns),
        _inbound_by_scenario(session, query),
        _response_times(session, query, dialect),
        _survey_clicks(session, query),
    ]
    return Report(query=query, tables={t.name: t for t in tables})


def _channel_filter(query: ReportQuery, column_: Any) -> list[Any]:
    return [column_ == query.channel] if query.channel else []


def _summary(session: Session, q: ReportQuery) -> Table:
    m = _c(ChannelDailyMetric)
    rows = session.execute(
        select(m.channel, func.count(func.distinct(m.day)), func.sum(m.value), func.avg(m.value))
        .where(
            m.metric == "reach", m.day >= q.start, m.day <= q.end, *_channel_filter(q, m.channel)
        )
        .group_by(m.channel)
        .order_by(m.channel)
    ).all()
    return Table(
        "summary",
        "Daily reach per channel",
        ["channel", "days", "total_reach", "mean_daily_reach"],
        [[c, d, round(t or 0), round(a or 0, 1)] for c, d, t, a in rows],
    )


def _reach_per_day(session: Session, q: ReportQuery) -> Table:
    m = _c(ChannelDailyMetric)
    rows = session.execute(
        select(m.day, m.channel, func.sum(m.value))
        .where(
            m.metric == "reach", m.day >= q.start, m.day <= q.end, *_channel_filter(q, m.channel)
        )
        .group_by(m.day, m.channel)
        .order_by(m.day, m.channel)
    ).all()
    return Table(
        "reach_per_day",
        "Reach per day and channel",
        ["day", "channel", "reach"],
        [[d.isoformat(), c, round(v)] for d, c, v in rows],
    )


def _period_figures(session: Session, q: ReportQuery) -> Table:
    p = _c(ChannelPeriodMetric)
    rows = session.execute(
        select(p.channel, p.metric, p.start_day, p.end_day, p.value, p.note)
        .where(p.start_day <= q.end, p.end_day >= q.start, *_channel_filter(q, p.channel))
        .order_by(p.start_day, p.channel, p.metric)
    ).all()
    return Table(
        "period_figures",
        "Figures reported for a whole period (not sums of days)",
        ["channel", "metric", "start", "end", "value", "note"],
        [[c, m, s.isoformat(), e.isoformat(), round(v), n or ""] for c, m, s, e, v, n in rows],
    )


def _audience(session: Session, q: ReportQuery) -> Table:
    m = _c(ChannelDailyMetric)
    rows = session.execute(
        select(m.channel, m.metric, func.sum(m.value))
        .where(
            m.metric.in_(AUDIENCE_METRICS),
            m.day >= q.start,
            m.day <= q.end,
            *_channel_filter(q, m.channel),
        )
        .group_by(m.channel, m.metric)
        .order_by(m.channel, m.metric)
    ).all()
    return Table(
        "audience",
        "New followers, likes and members (daily figures summed)",
        ["channel", "metric", "total"],
        [[c, mt, round(v)] for c, mt, v in rows],
    )


def _campaigns(q: ReportQuery, campaigns: list[Campaign]) -> Table:
    rows = [
        [c.name, c.topic.value, c.start.isoformat(), c.end.isoformat(), ",".join(c.channels)]
        for c in sorted(campaigns, key=lambda c: c.start)
        if c.start <= q.end and c.end >= q.start and (q.campaign in (None, c.name))
    ]
    return Table(
        "campaigns",
        "Campaigns running in the period",
        ["campaign", "topic", "start", "end", "channels"],
        rows,
    )


def _engagement(session: Session, q: ReportQuery, campaigns: list[Campaign]) -> Table:
    topics = {c.name: c.topic.value for c in campaigns}
    pm = _c(PostDailyMetric)
    post = _c(Post)
    sums = [
        func.sum(case((pm.metric == name, pm.value), else_=literal(0.0, Float)))
        for name in ENGAGEMENT_METRICS
    ]
    query = (
        select(post.campaign, post.channel, func.count(func.distinct(post.id)), *sums)
        .join(_t(PostDailyMetric), pm.post_id == post.id)
        .where(
            post.campaign.is_not(None),
            pm.day >= q.start,
            pm.day <= q.end,
            *_channel_filter(q, post.channel),
        )
        .group_by(post.campaign, post.channel)
        .order_by(post.campaign, post.channel)
    )
    if q.campaign:
        query = query.where(post.campaign == q.campaign)
    rows = session.execute(query).all()
    return Table(
        "engagement",
        "Engagement per campaign, topic and channel",
        ["campaign", "topic", "channel", "posts", *ENGAGEMENT_METRICS],
        [[r[0], topics.get(r[0], ""), r[1], r[2], *(round(v or 0) for v in r[3:])] for r in rows],
    )


def _inbound_by_scenario(session: Session, q: ReportQuery) -> Table:
    cal = _calendar(q)
    msg, tag = _c(Message), _c(MessageScenario)
    scenario = func.coalesce(tag.scenario, literal("other"))
    rows = session.execute(
        select(cal.c.day, scenario, func.count(func.distinct(msg.id)))
        .select_from(cal)
        .join(
            Message,
            and_(
                msg.received_at >= cal.c.day_start,
                msg.received_at < cal.c.day_end,
            ),
        )
        .outerjoin(_t(MessageScenario), tag.message_id == msg.id)
        .where(*_channel_filter(q, msg.channel))
        .group_by(cal.c.day, scenario)
        .order_by(cal.c.day, scenario)
    ).all()
    return Table(
        "inbound_by_scenario",
        "Inbound messages per day and scenario",
        ["day", "scenario", "messages"],
        [[d.isoformat() if isinstance(d, date) else str(d), s, n] for d, s, n in rows],
    )


def _response_times(session: Session, q: ReportQuery, dialect: str) -> Table:
    start = datetime.combine(q.start, time(), tzinfo=q.tz)
    end = datetime.combine(q.end + timedelta(days=1), time(), tzinfo=q.tz)
    c = _c(Case)
    group = case((c.risk, literal("risk")), else_=literal("urgent"))
    base = (
        select(
            group.label("grp"),
            _seconds(dialect, c.first_human_reply_at, c.opened_at).label("human"),
            _seconds(dialect, c.acknowledged_at, c.opened_at).label("auto"),
            case((c.first_human_reply_at <= c.sla_due_at, 1), else_=0).label("in_sla"),
        )
        .where(
            c.urgent | c.risk,
            c.opened_at >= start,
            c.opened_at < end,
            *_channel_filter(q, c.channel),
        )
        .subquery()
    )
    ranked = select(
        base.c.grp,
        base.c.human,
        base.c.auto,
        base.c.in_sla,
        func.row_number()
        .over(partition_by=base.c.grp, order_by=base.c.human.asc().nulls_last())
        .label("rh"),
        func.count(base.c.human).over(partition_by=base.c.grp).label("nh"),
        func.row_number()
        .over(partition_by=base.c.grp, order_by=base.c.auto.asc().nulls_last())
        .label("ra"),
        func.count(base.c.auto).over(partition_by=base.c.grp).label("na"),
    ).subquery()

    def nearest(value: Any, rank: Any, count: Any, share: float) -> Any:
        return func.min(case((and_(value.is_not(None), rank >= count * share), value)))

    rows = session.execute(
        select(
            ranked.c.grp,
            func.count(),
            func.count(ranked.c.human),
            nearest(ranked.c.human, ranked.c.rh, ranked.c.nh, 0.5),
            nearest(ranked.c.human, ranked.c.rh, ranked.c.nh, 0.9),
            func.sum(ranked.c.in_sla),
            func.count(ranked.c.auto),
            nearest(ranked.c.auto, ranked.c.ra, ranked.c.na, 0.5),
        )
        .group_by(ranked.c.grp)
        .order_by(ranked.c.grp)
    ).all()

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 1)

    return Table(
        "response_times",
        "Urgent and risk-to-life cases: time to the first human reply against the SLA "
        "(automatic acknowledgements apart)",
        [
            "group",
            "cases",
            "human_replied",
            "median_minutes",
            "p90_minutes",
            "within_sla",
            "auto_acknowledged",
            "auto_ack_median_minutes",
        ],
        [
            [g, n, h, minutes(md), minutes(p9), int(w or 0), a, minutes(am)]
            for g, n, h, md, p9, w, a, am in rows
        ],
    )


def _survey_clicks(session: Session, q: ReportQuery) -> Table:
    cal = _calendar(q)
    link, click = _c(SurveyLink), _c(SurveyClick)
    query = (
        select(link.campaign, link.channel, func.count(click.id))
        .select_from(cal)
        .join(
            SurveyClick,
            and_(
                click.clicked_at >= cal.c.day_start,
                click.clicked_at < cal.c.day_end,
            ),
        )
        .join(_t(SurveyLink), link.id == click.link_id)
        .where(*_channel_filter(q, link.channel))
        .group_by(link.campaign, link.channel)
        .order_by(link.campaign, link.channel)
    )
    if q.campaign:
        query = query.where(link.campaign == q.campaign)
    rows = session.execute(query).all()
    return Table(
        "survey_clicks",
        "Survey link clicks",
        ["campaign", "channel", "clicks"],
        [list(r) for r in rows],
    )
