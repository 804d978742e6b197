"""Column helpers shared by the tables."""

from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from bot.db import UTCDateTime


def utc_field(*, index: bool = False) -> Any:
    """A required timestamp that is always timezone-aware UTC in Python."""
    return Field(sa_type=UTCDateTime, index=index, nullable=False)


def optional_utc() -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def json_field(default_factory: Any = dict, *, nullable: bool = False) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))
