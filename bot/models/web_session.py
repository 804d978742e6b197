"""Console sign-ins: server-side sessions (revocable, idle-timed) and attempts (throttling)."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from bot.models.base import utc_field


class WebSession(SQLModel, table=True):
    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True)  # the cookie itself is never stored
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = utc_field()
    last_seen_at: datetime = utc_field()


class SignInAttempt(SQLModel, table=True):
    __tablename__ = "sign_in_attempts"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    client: str = Field(max_length=64, index=True)
    succeeded: bool
    at: datetime = utc_field(index=True)
