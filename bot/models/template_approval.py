"""Which wording of an automatic reply template an officer approved."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.models.base import utc_field


class TemplateApproval(SQLModel, table=True):
    __tablename__ = "template_approvals"
    __table_args__ = (UniqueConstraint("name", "sha256", name="uq_template_approval"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    sha256: str = Field(max_length=64)
    approved_by: str = Field(max_length=128)
    approved_at: datetime = utc_field()
