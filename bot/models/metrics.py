"""Engagement and reach figures, as the platforms report them, one value per row.

Rows are (channel, account, day or period, metric name, value) rather than fixed columns,
because platforms rename and add metrics (Meta especially) and reports must keep working on
old snapshots. A figure that is only meaningful for a whole period, such as unique reach
over a week, is stored as given for that period and never summed from days.
"""

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from bot.models.base import utc_field


class ChannelDailyMetric(SQLModel, table=True):
    __tablename__ = "channel_daily_metrics"
    __table_args__ = (
        UniqueConstraint("channel", "account", "day", "metric", name="uq_channel_daily_metric"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, index=True)
    account: str = Field(max_length=128)
    day: date = Field(sa_type=Date, index=True)  # the Europe/London calendar day
    metric: str = Field(max_length=64, index=True)
    value: float = Field(sa_type=Float)
    recorded_at: datetime = utc_field()


class ChannelPeriodMetric(SQLModel, table=True):
    __tablename__ = "channel_period_metrics"
    __table_args__ = (
        UniqueConstraint(
            "channel", "account", "start_day", "end_day", "metric", name="uq_channel_period_metric"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, index=True)
    account: str = Field(max_length=128)
    start_day: date = Field(sa_type=Date)
    end_day: date = Field(sa_type=Date)  # inclusive
    metric: str = Field(max_length=64)
    value: float = Field(sa_type=Float)
    note: str | None = Field(default=None, max_length=512)
    recorded_at: datetime = utc_field()


class PostDailyMetric(SQLModel, table=True):
    __tablename__ = "post_daily_metrics"
    __table_args__ = (UniqueConstraint("post_id", "day", "metric", name="uq_post_daily_metric"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(
        sa_column=Column(Integer, ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    )
    day: date = Field(sa_type=Date, index=True)
    metric: str = Field(max_length=64)
    value: float = Field(sa_type=Float)
    recorded_at: datetime = utc_field()


class MessageScenario(SQLModel, table=True):
    """One row per scenario a message was tagged with, so reports can count in plain SQL."""

    __tablename__ = "message_scenarios"

    message_id: int = Field(
        sa_column=Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    )
    scenario: str = Field(max_length=32, primary_key=True, index=True)
