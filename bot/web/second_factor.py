"""The console's second factor: TOTP codes (RFC 6238) from an authenticator app.

Optional for each person; required for admins when ``web.require_totp_for_admins`` is set
(they set it up at their next sign-in). Setting up makes a secret, sealed with the
credentials key (bot.credentials) and shown once as text and as an otpauth:// URI; it is
on only after the person proves their app has it by giving a code. A code passes for the
current 30-second step or one either side (phone clocks drift), and never twice: the step
it was for is kept, and only a later step passes after it, even under concurrent requests.

Recovery is an admin's reset (a lost phone): the secret is deleted, audited, and the
person sets up again.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import pyotp
from sqlalchemy import CursorResult, update
from sqlmodel import Session, col, select

from bot.config import WebSettings
from bot.credentials import Sealer
from bot.crud import audit
from bot.errors import BotError
from bot.models import Role, TotpSecret, User

DRIFT_STEPS = 1
CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class Enrolment:
    """What the person types or scans into their authenticator app."""

    secret: str
    uri: str


def find(session: Session, user_id: int) -> TotpSecret | None:
    return session.exec(select(TotpSecret).where(TotpSecret.user_id == user_id)).first()


def is_on(factor: TotpSecret | None) -> bool:
    return factor is not None and factor.confirmed_at is not None


def required(user: User, web: WebSettings) -> bool:
    return web.require_totp_for_admins and Role.ADMIN.value in user.roles


def enrolment(sealer: Sealer, factor: TotpSecret, *, username: str, issuer: str) -> Enrolment:
    secret = sealer.open(factor.sealed_secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    return Enrolment(secret=secret, uri=uri)


def begin(
    session: Session,
    sealer: Sealer,
    *,
    user: User,
    at: datetime,
    issuer: str,
    renew: bool = True,
) -> Enrolment:
    """A secret awaiting its first code. ``renew=False`` keeps one already awaiting (so a
    person who scanned it, then signed in again, need not scan again)."""
    if user.id is None:
        raise BotError("unknown user")
    factor = find(session, user.id)
    if is_on(factor):
        raise BotError("your second factor is already on; an admin can reset it")
    if factor is None or renew:
        sealed = sealer.seal(pyotp.random_base32())
        if factor is None:
            factor = TotpSecret(user_id=user.id, sealed_secret=sealed, created_at=at)
        factor.sealed_secret = sealed
        factor.created_at = at
        factor.last_used_step = 0
        session.add(factor)
        session.flush()
        audit.record(
            session,
            at=at,
            actor=user.username,
            action="user.totp_setup_started",
            entity="user",
            entity_id=user.id,
            detail={},
        )
    return enrolment(sealer, factor, username=user.username, issuer=issuer)


def accept(session: Session, sealer: Sealer, factor: TotpSecret, code: str, at: datetime) -> bool:
    """Whether ``code`` is right now and unused; if so it is used up."""
    given = re.sub(r"\s", "", code)
    if not CODE.fullmatch(given):
        return False
    totp = pyotp.TOTP(sealer.open(factor.sealed_secret))
    now = totp.timecode(at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if step <= factor.last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), given):
            used = session.execute(
                update(TotpSecret)
                .where(col(TotpSecret.id) == factor.id, col(TotpSecret.last_used_step) < step)
                .values(last_used_step=step)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], used).rowcount != 1:
                return False  # a concurrent request used this code (or a later one) first
            factor.last_used_step = step
            return True
    return False


def confirm(session: Session, sealer: Sealer, *, user: User, code: str, at: datetime) -> bool:
    """Turn the awaiting secret on if ``code`` is right; False (and nothing changes) if not."""
    factor = find(session, user.id or 0)
    if factor is None:
        raise BotError("start setting up first: no secret is awaiting a code")
    if is_on(factor):
        raise BotError("your second factor is already on")
    if not accept(session, sealer, factor, code, at):
        return False
    switch_on(session, factor, user=user, at=at)
    return True


def switch_on(session: Session, factor: TotpSecret, *, user: User, at: datetime) -> None:
    factor.confirmed_at = at
    session.add(factor)
    audit.record(
        session,
        at=at,
        actor=user.username,
        action="user.totp_enabled",
        entity="user",
        entity_id=user.id or 0,
        detail={},
    )


def reset(session: Session, *, user_id: int, at: datetime, by: str) -> User:
    """Delete a person's second factor (they lost their phone); they set it up again."""
    user = session.get(User, user_id)
    if user is None:
        raise BotError(f"no user {user_id}")
    factor = find(session, user_id)
    if factor is None:
        raise BotError(f"{user.username} has no second factor to reset")
    session.delete(factor)
    audit.record(
        session,
        at=at,
        actor=by,
        action="user.totp_reset",
        entity="user",
        entity_id=user_id,
        detail={"was_on": is_on(factor)},
    )
    return user


def people_with_factors(session: Session) -> dict[int, TotpSecret]:
    return {f.user_id: f for f in session.exec(select(TotpSecret)).all()}
