"""The append-only, hash-chained audit log. It holds ids and states, never message text."""

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from bot.models.base import json_field, utc_field


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_field(index=True)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    detail: dict[str, Any] = json_field(dict)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
