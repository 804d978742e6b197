"""Making, checking and revoking API tokens.

A token reads ``cbt_<id>_<secret>``: the id finds the row, the 256-bit secret is compared
by its SHA-256 in constant time. A slow password hash buys nothing for a random secret of
that length, and every API request checks one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlmodel import Session, col, select

from bot.crud import audit
from bot.errors import BotError
from bot.models import ApiToken, User

TOKEN = re.compile(r"cbt_(\d{1,12})_([A-Za-z0-9_-]{43})")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(session: Session, *, username: str, name: str, by: str, at: datetime) -> str:
    """A new token for ``username``; the returned value is the only copy there will be."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.disabled:
        raise BotError(f"no active user {username!r}")
    if not name.strip():
        raise BotError("say what the token is for (--name)")
    secret = secrets.token_urlsafe(32)
    token = ApiToken(
        username=username,
        name=name.strip()[:100],
        secret_sha256=_digest(secret),
        created_by=by,
        created_at=at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=by,
        action="api_token.created",
        entity="api_token",
        entity_id=token.id or 0,
        detail={"user": username},
    )
    return f"cbt_{token.id}_{secret}"


def revoke(session: Session, token_id: int, *, by: str, at: datetime) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise BotError(f"no API token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = at
        session.add(token)
        audit.record(
            session,
            at=at,
            actor=by,
            action="api_token.revoked",
            entity="api_token",
            entity_id=token_id,
            detail={"user": token.username},
        )
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))))


def user_for(session: Session, presented: str, *, at: datetime) -> User | None:
    """The active user a live token belongs to, or None for anything else."""
    match = TOKEN.fullmatch(presented)
    if match is None:
        return None
    token = session.get(ApiToken, int(match.group(1)))
    if token is None or token.revoked_at is not None:
        return None
    if not hmac.compare_digest(token.secret_sha256, _digest(match.group(2))):
        return None
    user = session.exec(select(User).where(User.username == token.username)).first()
    if user is None or user.disabled:
        return None
    token.last_used_at = at
    session.add(token)
    return user
