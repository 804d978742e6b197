"""Where each channel's polling got to (since_id, page token, byte offset...)."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.models.base import utc_field


class ChannelCursor(SQLModel, table=True):
    __tablename__ = "channel_cursors"
    __table_args__ = (UniqueConstraint("channel", "stream", name="uq_cursor_channel_stream"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    stream: str = Field(max_length=128)
    cursor: str = Field(max_length=1024)
    updated_at: datetime = utc_field()
