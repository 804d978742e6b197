"""People who act in the bot: their roles decide what they may approve and see."""

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from bot.models.base import json_field, utc_field


class Role(StrEnum):
    ADMIN = "admin"
    COMMS_OFFICER = "comms_officer"  # plans and approves posts and alerts
    OFFICER = "officer"  # triage, replies, meetings, partner reports
    ANALYST = "analyst"  # reports, read-only


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=128)
    roles: list[str] = json_field(list)
    disabled: bool = False
    password_hash: str | None = Field(default=None, max_length=256)
    created_at: datetime = utc_field()
