"""Photos and videos received with reports, one row per distinct content (by sha256).

A message links to its media through ``MessageAttachment.sha256``; this table says where
the original bytes are kept, so the same photo sent twice is stored once.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from bot.models.base import utc_field


class MediaItem(SQLModel, table=True):
    __tablename__ = "media_items"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)  # image or video, as AttachmentKind
    media_type: str = Field(max_length=64)  # decided from the bytes, never the declared type
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    backend: str = Field(max_length=16)
    storage_key: str = Field(max_length=256)
    has_location: bool = False  # the original carries GPS or location metadata
    received_at: datetime = utc_field(index=True)
