"""Switches an officer sets for the whole system, such as pausing campaign publishing."""

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from bot.models.base import utc_field


class SystemFlag(SQLModel, table=True):
    __tablename__ = "system_flags"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text)
    set_by: str = Field(max_length=128)
    set_at: datetime = utc_field()
