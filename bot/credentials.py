"""Channel tokens and TOTP secrets, sealed with Fernet under a key from the environment.

The key (CAMPUSBOT_CREDENTIALS_KEY, made by `campusbot credentials new-key`) never lives in
the database or in config.yaml, so a copy of either reveals no secret. Without it nothing
is stored: every attempt fails with a message naming the variable, rather than keeping a
token in clear. A stored channel token is preferred over the environment's keys; the
environment keeps working for a channel nobody connected in the console.

Tokens are never overwritten with an empty value: ``save`` refuses one, and a refresh that
gets no new refresh token keeps the old one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlmodel import Session, select

from bot.crud import audit
from bot.db import Database
from bot.errors import AuthError, BotError
from bot.models import ChannelCredential

KEY_VARIABLE = "CAMPUSBOT_CREDENTIALS_KEY"
MAKE_ONE = "make one with `campusbot credentials new-key`"
# What a stored credential stands in for, per channel: these settings may then be unset.
# X's OAuth 2.0 user token replaces every OAuth 1.0a key; its consumer secret still signs
# the Account Activity webhooks. Facebook's page token replaces the environment's.
COVERS: dict[str, frozenset[str]] = {
    "twitter": frozenset({"bearer_token", "consumer_key", "access_token", "access_token_secret"}),
    "facebook": frozenset({"page_access_token"}),
}
READ_CACHE_SECONDS = 30.0  # a refreshed or reconnected token is in use within this


class CredentialError(BotError):
    """A secret cannot be sealed or opened: the key is missing, malformed or not the one used."""


def new_key() -> str:
    return Fernet.generate_key().decode()


class Sealer:
    """Encrypts and decrypts the bot's stored secrets with the configured key."""

    def __init__(self, key: SecretStr | None) -> None:
        self._fernet: Fernet | None = None
        self._problem: str | None = None
        raw = key.get_secret_value().strip() if key is not None else ""
        if not raw:
            self._problem = f"{KEY_VARIABLE} is not set; {MAKE_ONE} and set it in the environment"
            return
        try:
            self._fernet = Fernet(raw.encode())
        except ValueError:
            self._problem = f"{KEY_VARIABLE} is not a Fernet key; {MAKE_ONE}"

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    @property
    def problem(self) -> str | None:
        """Why nothing can be sealed, for the pages to show; None when the key is usable."""
        return self._problem

    def require(self) -> None:
        """Refuse to go on (before any platform is asked) when nothing could be stored."""
        self._key()

    def _key(self) -> Fernet:
        if self._fernet is None:
            raise CredentialError(f"secrets cannot be stored or read: {self._problem}")
        return self._fernet

    def seal(self, plain: str) -> str:
        if not plain:
            raise CredentialError("refusing to store an empty secret")
        return self._key().encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._key().decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise CredentialError(
                f"a stored secret does not open with {KEY_VARIABLE}: it was sealed with another "
                "key (restore that key, or reconnect the account)"
            ) from None


@dataclass(frozen=True)
class NewToken:
    """What a platform granted, before it is sealed."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scopes: str = ""


def find(session: Session, channel: str) -> ChannelCredential | None:
    return session.exec(
        select(ChannelCredential).where(ChannelCredential.channel == channel)
    ).first()


def save(
    session: Session,
    sealer: Sealer,
    *,
    channel: str,
    token: NewToken,
    account_id: str | None,
    account_name: str | None,
    by: str,
    at: datetime,
) -> ChannelCredential:
    """Store (or replace) a channel's token, sealed, and audit who connected it - never what."""
    if not token.access_token.strip():
        raise CredentialError(f"{channel}: the platform returned an empty token; nothing stored")
    sealed_access = sealer.seal(token.access_token)
    sealed_refresh = sealer.seal(token.refresh_token) if token.refresh_token else None
    stored = find(session, channel)
    replacing = stored is not None
    if stored is None:
        stored = ChannelCredential(
            channel=channel, sealed_access_token=sealed_access, connected_by=by, connected_at=at
        )
    stored.sealed_access_token = sealed_access
    stored.sealed_refresh_token = sealed_refresh
    stored.expires_at = token.expires_at
    stored.scopes = token.scopes[:500]
    stored.account_id = account_id
    stored.account_name = account_name
    stored.needs_reauth = False
    stored.problem = None
    stored.connected_by = by
    stored.connected_at = at
    stored.refreshed_at = None
    stored.refresh_claimed_at = None
    stored.version = (stored.version or 0) + 1 if replacing else 1
    session.add(stored)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=by,
        action="channel.reconnected" if replacing else "channel.connected",
        entity="channel",
        entity_id=channel,
        detail={
            "account_id": account_id,
            "account": account_name,
            "scopes": token.scopes.split(),
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
    )
    return stored


def still_missing(db: Database, channel: str, gaps: list[str]) -> list[str]:
    """The settings a channel still lacks once a stored credential stands in for its tokens.

    Only asks the database when every gap is one a credential covers, so a channel set up
    wholly from the environment never depends on the credentials table.
    """
    if not gaps or not set(gaps) <= COVERS.get(channel, frozenset()):
        return gaps
    with db.session() as session:
        return [] if find(session, channel) is not None else gaps


class StoredToken:
    """A channel's stored access token, opened on demand: what the adapters call per request.

    Returns None when nobody connected the channel here (the adapter then uses the
    environment's keys). The answer is kept for ``READ_CACHE_SECONDS`` so a busy adapter
    does not ask the database on every API call. A stored token that cannot be opened
    raises ``AuthError`` (the channel is parked, its work kept): falling back to older keys
    from the environment would hide that the key changed.
    """

    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        channel: str,
        *,
        cache_seconds: float = READ_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.channel = channel
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, str | None] | None = None

    def __call__(self) -> str | None:
        with self._lock:
            now = self._monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            with self.db.session() as session:
                stored = find(session, self.channel)
                sealed = stored.sealed_access_token if stored is not None else None
            try:
                token = self.sealer.open(sealed) if sealed is not None else None
            except CredentialError as exc:
                raise AuthError(
                    f"the {self.channel} token connected in the console cannot be read: {exc}",
                    channel=self.channel,
                ) from None
            self._cached = (now, token)
            return token
