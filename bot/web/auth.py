"""Signing in to the console: argon2 passwords, server-side sessions, CSRF, throttling.

The session cookie is a random token; only its SHA-256 is stored, so a copy of the database
does not let anyone sign in. Sessions end after ``web.idle_minutes`` without a request, or
at sign-out. Every form carries the session's CSRF token. After ``max_failed_sign_ins``
failures for a name or from a client within ``throttle_minutes``, sign-in is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bot.config import WebSettings
from bot.crud import audit
from bot.errors import BotError
from bot.models import SignInAttempt, User, WebSession

COOKIE = "campusbot_session"
MIN_PASSWORD_CHARS = 12
_hasher = PasswordHasher()
_HASHING = threading.BoundedSemaphore(4)
# Verifying against this when the name is unknown keeps the timing the same either way.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class SignInRefused(BotError):
    """Wrong name or password (deliberately not saying which), or throttled."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise BotError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: WebSession


def sign_in(
    db: Session, *, username: str, password: str, client: str, at: datetime, web: WebSettings
) -> tuple[str, WebSession] | None:
    """Check the password and open a session; returns the cookie token (shown once), or
    None for a wrong name or password. The attempt is recorded either way, so the caller
    must commit before reporting a failure: throttling counts it."""
    since = at - timedelta(minutes=web.throttle_minutes)
    # Record the attempt as failed *before* counting and checking, and commit it, so that
    # concurrent guesses each see the others: the throttle cannot be raced past.
    attempt = SignInAttempt(username=username[:64], client=client[:64], succeeded=False, at=at)
    db.add(attempt)
    db.commit()
    failures = db.exec(
        select(func.count())
        .select_from(SignInAttempt)
        .where(
            col(SignInAttempt.succeeded).is_(False),
            col(SignInAttempt.at) >= since,
            or_(col(SignInAttempt.username) == username, col(SignInAttempt.client) == client),
        )
    ).one()
    if failures > web.max_failed_sign_ins:
        raise SignInRefused(
            f"too many failed sign-ins; try again in {web.throttle_minutes} minutes"
        )
    user = db.exec(select(User).where(User.username == username)).first()
    stored = user.password_hash if user and not user.disabled and user.password_hash else None
    with _HASHING:  # argon2 takes 64 MiB a time: a burst must not exhaust memory
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
            ok = stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
    if not ok or user is None or user.id is None:
        return None
    attempt.succeeded = True
    db.add(attempt)
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_sha256=_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=at,
        last_seen_at=at,
    )
    db.add(web_session)
    db.flush()
    audit.record(
        db,
        at=at,
        actor=user.username,
        action="user.signed_in",
        entity="user",
        entity_id=user.id,
        detail={},
    )
    return token, web_session


def current(
    db: Session, token: str | None, *, at: datetime, web: WebSettings, touch: bool = True
) -> SignedIn | None:
    """The signed-in user for a cookie, if the session is alive; refreshes its idle timer.

    ``touch=False`` leaves the timer alone: the inbox's automatic refresh must not keep a
    session alive on an office PC that nobody is using.
    """
    if not token:
        return None
    web_session = db.exec(
        select(WebSession).where(WebSession.token_sha256 == _digest(token))
    ).first()
    if web_session is None:
        return None
    if at - web_session.last_seen_at > timedelta(minutes=web.idle_minutes):
        db.delete(web_session)
        return None
    user = db.get(User, web_session.user_id)
    if user is None or user.disabled:
        db.delete(web_session)
        return None
    if touch:
        web_session.last_seen_at = at
        db.add(web_session)
    return SignedIn(user=user, session=web_session)


def sign_out(db: Session, signed_in: SignedIn, *, at: datetime) -> None:
    db.delete(signed_in.session)
    audit.record(
        db,
        at=at,
        actor=signed_in.user.username,
        action="user.signed_out",
        entity="user",
        entity_id=signed_in.user.id or 0,
        detail={},
    )


def csrf_ok(signed_in: SignedIn, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given, signed_in.session.csrf_token)


def set_password(db: Session, *, username: str, password: str, at: datetime, by: str) -> None:
    user = db.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise BotError(f"no user {username}")
    user.password_hash = hash_password(password)
    db.add(user)
    for web_session in db.exec(select(WebSession).where(WebSession.user_id == user.id)):
        db.delete(web_session)  # a reset ends every open session
    audit.record(
        db,
        at=at,
        actor=by,
        action="user.password_set",
        entity="user",
        entity_id=user.id or 0,
        detail={},
    )
