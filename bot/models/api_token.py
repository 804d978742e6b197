"""Bearer tokens for the JSON API: an integration acts as the user its token belongs to."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class ApiToken(SQLModel, table=True):
    """Only a hash of the secret is kept; the token itself is shown once, when made."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    name: str = Field(max_length=100)  # what it is for, e.g. "control room dashboard"
    secret_sha256: str = Field(max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = utc_field()
    last_used_at: datetime | None = optional_utc()
    revoked_at: datetime | None = optional_utc()
