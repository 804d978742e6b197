"""Signing in to the console: argon2 passwords, server-side sessions, CSRF, throttling.

The session cookie is a random token; only its SHA-256 is stored, so a copy of the database
does not let anyone sign in. Sessions end after ``web.idle_minutes`` without a request, or
at sign-out. Every form carries the session's CSRF token. After ``max_failed_sign_ins``
failures for a name or from a client within ``throttle_minutes``, sign-in is refused.

Someone with a second factor (bot.web.second_factor) signs in in two steps: the right
password opens a challenge, not a session - a random cookie whose hash is kept for
``CHALLENGE_FOR`` - and the code from their app then opens the session. A wrong code counts
as a failed sign-in, so codes are throttled exactly as passwords are. An admin who must have
a second factor and has none sets one up in that same second step.
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
from sqlalchemy import delete, func, or_
from sqlmodel import Session, col, select

from bot.config import WebSettings
from bot.credentials import CredentialError, Sealer
from bot.crud import audit
from bot.errors import BotError
from bot.models import SignInAttempt, SignInChallenge, User, WebSession
from bot.web import second_factor
from bot.web.second_factor import Enrolment

COOKIE = "campusbot_session"
CHALLENGE_COOKIE = "campusbot_sign_in"
CHALLENGE_FOR = timedelta(minutes=5)
MIN_PASSWORD_CHARS = 12
_hasher = PasswordHasher()
_HASHING = threading.BoundedSemaphore(4)
# Verifying against this when the name is unknown keeps the timing the same either way.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class SignInRefused(BotError):
    """Throttled, or the sign-in cannot go on; ``status`` is the HTTP status to answer with."""

    status = 429


class SignInExpired(SignInRefused):
    """The second step came too late, or for a challenge that no longer exists."""

    status = 400


class SecondFactorUnavailable(SignInRefused):
    """The person has (or needs) a second factor but the key to check it is not set."""

    status = 503


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


@dataclass(frozen=True)
class Opened:
    """A signed-in session: ``token`` is its cookie, shown once."""

    token: str
    session: WebSession
    user: User


@dataclass(frozen=True)
class CodeNeeded:
    """The password was right; a code is awaited. ``token`` is the challenge cookie.

    ``enrolment`` is set when the person must set up a second factor first (an admin when
    ``web.require_totp_for_admins``): the secret to put in their app, then its first code.
    """

    token: str
    enrolment: Enrolment | None


def _attempt(
    db: Session, *, username: str, client: str, at: datetime, web: WebSettings
) -> SignInAttempt:
    """Record an attempt as failed *before* counting and checking, and commit it, so that
    concurrent guesses each see the others: the throttle cannot be raced past."""
    since = at - timedelta(minutes=web.throttle_minutes)
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
    return attempt


def sign_in(
    db: Session,
    *,
    username: str,
    password: str,
    client: str,
    at: datetime,
    web: WebSettings,
    sealer: Sealer,
    issuer: str = "campusbot",
) -> Opened | CodeNeeded | None:
    """Check the password; open a session, or a challenge for the second factor. None for a
    wrong name or password. The attempt is recorded either way, so the caller must commit
    before reporting a failure: throttling counts it. ``issuer`` names the console in the
    person's authenticator app."""
    attempt = _attempt(db, username=username, client=client, at=at, web=web)
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
    factor = second_factor.find(db, user.id)
    must_enrol = not second_factor.is_on(factor) and second_factor.required(user, web)
    if not second_factor.is_on(factor) and not must_enrol:
        return _open(db, user, at=at, second_step=False)
    if not sealer.ready:
        db.commit()  # the password was right: not a failure to throttle
        raise SecondFactorUnavailable(
            f"your second factor cannot be checked: {sealer.problem}. Tell the operator."
        )
    try:
        enrolment = (
            second_factor.begin(db, sealer, user=user, at=at, issuer=issuer, renew=False)
            if must_enrol
            else None
        )
    except CredentialError as exc:
        db.commit()
        raise SecondFactorUnavailable(f"your second factor cannot be checked: {exc}") from None
    token = secrets.token_urlsafe(32)
    db.execute(delete(SignInChallenge).where(col(SignInChallenge.created_at) < at - CHALLENGE_FOR))
    db.add(
        SignInChallenge(
            token_sha256=_digest(token), user_id=user.id, client=client[:64], created_at=at
        )
    )
    return CodeNeeded(token=token, enrolment=enrolment)


def pending_enrolment(
    db: Session, *, token: str | None, sealer: Sealer, issuer: str = "campusbot"
) -> Enrolment | None:
    """The secret an admin is setting up in the second step, to show again after a typo."""
    challenge = _challenge(db, token)
    if challenge is None or not sealer.ready:
        return None
    factor = second_factor.find(db, challenge.user_id)
    user = db.get(User, challenge.user_id)
    if factor is None or user is None or second_factor.is_on(factor):
        return None
    return second_factor.enrolment(sealer, factor, username=user.username, issuer=issuer)


def _challenge(db: Session, token: str | None) -> SignInChallenge | None:
    if not token:
        return None
    return db.exec(
        select(SignInChallenge).where(SignInChallenge.token_sha256 == _digest(token))
    ).first()


def finish_sign_in(
    db: Session,
    *,
    token: str | None,
    code: str,
    client: str,
    at: datetime,
    web: WebSettings,
    sealer: Sealer,
) -> Opened | None:
    """The second step: the code for the challenge ``token``. None for a wrong code (counted
    as a failed sign-in; the caller must commit). Raises ``SignInExpired`` when the
    challenge is unknown or older than ``CHALLENGE_FOR``, ``SignInRefused`` when throttled
    (the challenge is then dropped: the password must be given again)."""
    challenge = _challenge(db, token)
    user = db.get(User, challenge.user_id) if challenge is not None else None
    factor = second_factor.find(db, user.id) if user is not None and user.id else None
    if (
        challenge is None
        or user is None
        or user.disabled
        or factor is None
        or at - challenge.created_at > CHALLENGE_FOR
    ):
        if challenge is not None:
            db.delete(challenge)
            db.commit()
        raise SignInExpired("that sign-in has expired; give your name and password again")
    try:
        attempt = _attempt(db, username=user.username, client=client, at=at, web=web)
    except SignInRefused:
        db.delete(challenge)
        db.commit()
        raise
    try:
        accepted = second_factor.accept(db, sealer, factor, code, at)
    except CredentialError as exc:
        raise SecondFactorUnavailable(f"your second factor cannot be checked: {exc}") from None
    if not accepted:
        return None
    attempt.succeeded = True
    db.add(attempt)
    if not second_factor.is_on(factor):  # the first code of a set-up made at sign-in
        second_factor.switch_on(db, factor, user=user, at=at)
    db.delete(challenge)
    return _open(db, user, at=at, second_step=True)


def _open(db: Session, user: User, *, at: datetime, second_step: bool) -> Opened:
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_sha256=_digest(token),
        user_id=user.id or 0,
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
        entity_id=user.id or 0,
        detail={"second_factor": True} if second_step else {},
    )
    return Opened(token=token, session=web_session, user=user)


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
