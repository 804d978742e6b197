"""Secrets the bot keeps sealed (bot.credentials), and the short-lived steps that lead to them.

Every ``sealed_*`` column holds Fernet ciphertext, never the value itself: a copy of the
database without CAMPUSBOT_CREDENTIALS_KEY reveals no token and no TOTP secret.
"""

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class ChannelCredential(SQLModel, table=True):
    """The token an admin connected for a channel; preferred over the environment's keys."""

    __tablename__ = "channel_credentials"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, unique=True)
    account_id: str | None = Field(default=None, max_length=64)
    account_name: str | None = Field(default=None, max_length=128)
    sealed_access_token: str = Field(sa_type=Text)
    sealed_refresh_token: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = optional_utc()  # None: the token does not expire
    scopes: str = Field(default="", max_length=500)
    # Set when the platform refused a refresh: the old token is kept until someone reconnects.
    needs_reauth: bool = False
    problem: str | None = Field(default=None, max_length=500)
    connected_by: str = Field(max_length=64)
    connected_at: datetime = utc_field()
    refreshed_at: datetime | None = optional_utc()
    # A refresh claims the row first (several workers may run); ``version`` changes with
    # every new token, so a refresh never overwrites a reconnection made while it ran.
    refresh_claimed_at: datetime | None = optional_utc()
    version: int = 1


class OAuthPending(SQLModel, table=True):
    """An authorisation an admin started: its state, PKCE verifier and the session it is for."""

    __tablename__ = "oauth_pending"

    id: int | None = Field(default=None, primary_key=True)
    state_sha256: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=32)
    session_sha256: str = Field(max_length=64)  # the admin's console session (its cookie hash)
    username: str = Field(max_length=64)
    sealed_verifier: str = Field(sa_type=Text)
    created_at: datetime = utc_field(index=True)


class TotpSecret(SQLModel, table=True):
    """A person's second factor: pending until they confirm a code, then on."""

    __tablename__ = "totp_secrets"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", unique=True)
    sealed_secret: str = Field(sa_type=Text)
    created_at: datetime = utc_field()
    confirmed_at: datetime | None = optional_utc()
    # The last 30-second step a code was accepted for: no code works twice.
    last_used_step: int = 0


class SignInChallenge(SQLModel, table=True):
    """A sign-in whose password was right and whose code is awaited (a few minutes at most)."""

    __tablename__ = "sign_in_challenges"

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64, unique=True)  # its cookie is never stored
    user_id: int = Field(foreign_key="users.id", index=True)
    client: str = Field(max_length=64)
    created_at: datetime = utc_field(index=True)
