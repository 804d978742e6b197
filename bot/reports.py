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
    Integer,
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
from bot.models.survey import (
    SurveyAnswer,
    SurveyAnswerScenario,
    SurveyChoice,
    SurveyQuestion,
    SurveyRecord,
    SurveyResponse,
)
from classifiers.redact import redact
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
    survey: str | None = None  # survey tables only: one survey's answers


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
        *survey_tables(session, query),
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


# -- surveys -------------------------------------------------------------------------------------
FREE_TEXT_ROWS = 500
NO_QUESTION = "(part of a reply that answered no question)"


def _bounds(q: ReportQuery) -> tuple[datetime, datetime]:
    """The report's first and last London days as UTC instants (end excluded)."""
    start = datetime.combine(q.start, time(), tzinfo=q.tz)
    end = datetime.combine(q.end + timedelta(days=1), time(), tzinfo=q.tz)
    return start, end


def _responses(q: ReportQuery) -> Any:
    """The responses the report counts: in its days, and of its channel, campaign, survey."""
    r = _c(SurveyResponse)
    start, end = _bounds(q)
    where = [r.submitted_at >= start, r.submitted_at < end, *_channel_filter(q, r.channel)]
    if q.campaign:
        where.append(r.campaign == q.campaign)
    if q.survey:
        where.append(r.survey_id == q.survey)
    return select(r.id, r.survey_id).where(*where).subquery("period_responses")


def survey_tables(session: Session, q: ReportQuery) -> list[Table]:
    """Responses, answers per choice, ratings, free-text themes and the free text itself."""
    return [
        _survey_responses(session, q),
        _survey_choices(session, q),
        _survey_ratings(session, q),
        _survey_themes(session, q),
        _survey_free_text(session, q),
    ]


def _survey_responses(session: Session, q: ReportQuery) -> Table:
    r, s = _c(SurveyResponse), _c(SurveyRecord)
    period = _responses(q)
    channel = func.coalesce(r.channel, literal("direct"))
    rows = session.execute(
        select(s.id, s.title, r.source, channel, func.count(r.id))
        .select_from(_t(SurveyResponse))
        .join(period, period.c.id == r.id)
        .join(_t(SurveyRecord), s.id == r.survey_id)
        .group_by(s.id, s.title, r.source, channel)
        .order_by(s.id, r.source, channel)
    ).all()
    return Table(
        "survey_responses",
        "Survey responses, by where they came from (web page through a channel's link, "
        "or In The Know reply)",
        ["survey", "title", "source", "channel", "responses"],
        [list(row) for row in rows],
    )


def _answered(q: ReportQuery) -> Any:
    """Per question, how many of the period's responses answered it."""
    a = _c(SurveyAnswer)
    period = _responses(q)
    return (
        select(a.question_id, func.count(func.distinct(a.response_id)).label("answered"))
        .join(period, period.c.id == a.response_id)
        .where(a.question_id.is_not(None))
        .group_by(a.question_id)
        .subquery("answered")
    )


def _survey_choices(session: Session, q: ReportQuery) -> Table:
    """Every choice of every question of the surveys answered in the period, even those
    nobody picked (a left join from the choices), with their share of the question's
    respondents; a choice since taken out of the survey shows only if it was picked."""
    qu, ch, a = _c(SurveyQuestion), _c(SurveyChoice), _c(SurveyAnswer)
    period = _responses(q)
    picked = (
        select(a.id, a.choice_id)
        .join(period, period.c.id == a.response_id)
        .where(a.choice_id.is_not(None))
        .subquery("picked")
    )
    answered = _answered(q)
    count = func.count(picked.c.id)
    rows = session.execute(
        select(
            qu.survey_id,
            qu.position,
            qu.text,
            ch.position,
            ch.label,
            count,
            func.max(func.coalesce(answered.c.answered, 0)),
        )
        .select_from(_t(SurveyQuestion))
        .join(_t(SurveyChoice), ch.question_id == qu.id)
        .outerjoin(picked, picked.c.choice_id == ch.id)
        .outerjoin(answered, answered.c.question_id == qu.id)
        .where(qu.survey_id.in_(select(period.c.survey_id)))
        .group_by(qu.survey_id, qu.id, qu.position, qu.text, ch.id, ch.position, ch.label)
        .having(ch.current | (count > 0))
        .order_by(qu.survey_id, qu.position, qu.id, ch.position, ch.id)
    ).all()
    return Table(
        "survey_choices",
        "Survey answers per choice (share of those who answered the question)",
        ["survey", "question_no", "question", "choice", "answers", "share_pct"],
        [
            [sid, qpos, text, label, n, round(100.0 * n / total, 1) if total else 0.0]
            for sid, qpos, text, _cpos, label, n, total in rows
        ],
    )


def _survey_ratings(session: Session, q: ReportQuery) -> Table:
    qu, ch, a = _c(SurveyQuestion), _c(SurveyChoice), _c(SurveyAnswer)
    period = _responses(q)
    rows = session.execute(
        select(
            qu.survey_id,
            qu.position,
            qu.text,
            func.count(a.id),
            func.avg(cast(ch.key, Integer) * 1.0),
        )
        .select_from(_t(SurveyAnswer))
        .join(period, period.c.id == a.response_id)
        .join(_t(SurveyChoice), ch.id == a.choice_id)
        .join(_t(SurveyQuestion), qu.id == ch.question_id)
        .where(qu.kind == "rating")
        .group_by(qu.survey_id, qu.id, qu.position, qu.text)
        .order_by(qu.survey_id, qu.position)
    ).all()
    return Table(
        "survey_ratings",
        "Survey ratings (1 to 5)",
        ["survey", "question_no", "question", "answers", "mean"],
        [[sid, pos, text, n, round(float(mean), 2)] for sid, pos, text, n, mean in rows],
    )


def _survey_themes(session: Session, q: ReportQuery) -> Table:
    """Free-text answers per question and scenario the classifier found in them; an answer
    with no scenario is "other", one not yet through the classifier "not yet tagged"."""
    qu, a, tag = _c(SurveyQuestion), _c(SurveyAnswer), _c(SurveyAnswerScenario)
    period = _responses(q)
    scenario = func.coalesce(
        tag.scenario,
        case((a.tagged_at.is_(None), literal("not yet tagged")), else_=literal("other")),
    )
    position = func.coalesce(qu.position, literal(0))
    question = func.coalesce(qu.text, literal(NO_QUESTION))
    rows = session.execute(
        select(period.c.survey_id, position, question, scenario, func.count(func.distinct(a.id)))
        .select_from(_t(SurveyAnswer))
        .join(period, period.c.id == a.response_id)
        .outerjoin(_t(SurveyQuestion), qu.id == a.question_id)
        .outerjoin(_t(SurveyAnswerScenario), tag.answer_id == a.id)
        .where(a.choice_id.is_(None))
        .group_by(period.c.survey_id, position, question, scenario)
        .order_by(period.c.survey_id, position, func.count(func.distinct(a.id)).desc(), scenario)
    ).all()
    return Table(
        "survey_themes",
        "Free-text survey answers by scenario (an answer can mention several)",
        ["survey", "question_no", "question", "scenario", "answers"],
        [list(row) for row in rows],
    )


def _survey_free_text(session: Session, q: ReportQuery) -> Table:
    """The newest free text, with phone numbers, emails and the like redacted."""
    qu, a, r, tag = (
        _c(SurveyQuestion),
        _c(SurveyAnswer),
        _c(SurveyResponse),
        _c(SurveyAnswerScenario),
    )
    period = _responses(q)
    rows = session.execute(
        select(
            a.id,
            r.survey_id,
            func.coalesce(qu.position, literal(0)),
            r.submitted_at,
            func.coalesce(r.channel, literal("direct")),
            a.text,
        )
        .select_from(_t(SurveyAnswer))
        .join(period, period.c.id == a.response_id)
        .join(_t(SurveyResponse), r.id == a.response_id)
        .outerjoin(_t(SurveyQuestion), qu.id == a.question_id)
        .where(a.choice_id.is_(None), a.text.is_not(None))
        .order_by(r.submitted_at.desc(), a.id.desc())
        .limit(FREE_TEXT_ROWS)
    ).all()
    tags: dict[int, list[str]] = {}
    if rows:
        for answer_id, scenario in session.execute(
            select(tag.answer_id, tag.scenario)
            .where(tag.answer_id.in_([row[0] for row in rows]))
            .order_by(tag.answer_id, tag.scenario)
        ):
            tags.setdefault(answer_id, []).append(scenario)
    return Table(
        "survey_free_text",
        f"Free-text survey answers, newest first (at most {FREE_TEXT_ROWS}; personal details "
        "redacted)",
        ["survey", "question_no", "day", "channel", "scenarios", "text"],
        [
            [
                sid,
                pos,
                submitted.astimezone(q.tz).date().isoformat(),
                channel,
                ", ".join(tags.get(answer_id, [])) or "other",
                redact(text),
            ]
            for answer_id, sid, pos, submitted, channel, text in rows
        ],
    )
