"""An officer's correction of a message's classification: a new training example.

The message keeps the model's own tags (what the model said is evidence of how it does);
the correction is stored apart, the latest per message wins, and `casework.export_corrections`
writes them in the classifier's data format. A correction lives as long as its message:
retention and erasure delete it with the message, so no text outlives its retention period.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer
from sqlmodel import Column, Field, SQLModel

from bot.models.base import json_field, utc_field


class Correction(SQLModel, table=True):
    __tablename__ = "corrections"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    scenarios: list[str] = json_field(list)
    urgent: bool
    risk: bool
    intent: str = Field(max_length=32)
    classifier: str | None = Field(default=None, max_length=64)  # the model that was wrong
    corrected_by: str = Field(max_length=128)
    corrected_at: datetime = utc_field(index=True)
