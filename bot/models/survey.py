"""Survey links handed out per campaign and channel through the bot's own redirect."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from bot.models.base import utc_field


class SurveyLink(SQLModel, table=True):
    __tablename__ = "survey_links"
    __table_args__ = (UniqueConstraint("campaign", "channel", name="uq_survey_campaign_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    campaign: str = Field(max_length=128)
    channel: str = Field(max_length=32)
    target_url: str = Field(max_length=2048)
    created_at: datetime = utc_field()


class SurveyClick(SQLModel, table=True):
    """One click through the redirect; no IP or cookie is kept, only when and which link."""

    __tablename__ = "survey_clicks"

    id: int | None = Field(default=None, primary_key=True)
    link_id: int = Field(
        sa_column=Column(Integer, ForeignKey("survey_links.id", ondelete="CASCADE"), index=True)
    )
    clicked_at: datetime = utc_field(index=True)
