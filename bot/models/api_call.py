"""The ledger of billable API calls: what each call to X cost, for the monthly budget."""

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from bot.models.base import utc_field


class ApiCall(SQLModel, table=True):
    """One call to a paid API, with its estimated cost in millionths of the currency unit.

    Money is kept as whole micro-units so sums are exact on SQLite and PostgreSQL alike.
    """

    __tablename__ = "api_calls"
    __table_args__ = (Index("ix_api_calls_channel_at", "channel", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    method: str = Field(max_length=8)
    endpoint: str = Field(max_length=128)  # the route, ids as :id: /2/users/:id/mentions
    kind: str = Field(max_length=16)  # the price it is billed at: post_read, write_with_url...
    units: int = 0  # items returned (reads are billed per item) or 1 for a write
    cost_micros: int = 0
    purpose: str = Field(max_length=16)  # poll, backfill, reply, post, media, check
    status: int | None = None  # the HTTP status; None when no answer came
    at: datetime = utc_field()
