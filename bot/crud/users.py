"""People and their roles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from bot.crud import audit
from bot.errors import BotError
from bot.models import Role, User


def add(
    session: Session,
    *,
    username: str,
    roles: Sequence[str],
    at: datetime,
    by: str,
    display_name: str | None = None,
) -> User:
    _check_roles(roles)
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise BotError(f"user {username} already exists")
    user = User(
        username=username, display_name=display_name or username, roles=sorted(roles), created_at=at
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=by,
        action="user.added",
        entity="user",
        entity_id=user.id or 0,
        detail={"roles": user.roles},
    )
    return user


def _check_roles(roles: Sequence[str]) -> None:
    unknown = [r for r in roles if r not in {role.value for role in Role}]
    if unknown:
        raise BotError(
            f"unknown role {', '.join(unknown)}; choose from {', '.join(r.value for r in Role)}"
        )


def set_roles(
    session: Session, *, username: str, roles: Sequence[str], at: datetime, by: str
) -> User:
    """Replace a person's roles (at least one); the change takes effect on their next request."""
    _check_roles(roles)
    if not roles:
        raise BotError("a person needs at least one role; disable them instead")
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise BotError(f"no user {username}")
    before = user.roles
    user.roles = sorted(set(roles))
    session.add(user)
    audit.record(
        session,
        at=at,
        actor=by,
        action="user.roles_changed",
        entity="user",
        entity_id=user.id or 0,
        detail={"roles": user.roles, "was": before},
    )
    return user


def disable(session: Session, *, username: str, at: datetime, by: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise BotError(f"no user {username}")
    user.disabled = True
    session.add(user)
    audit.record(
        session,
        at=at,
        actor=by,
        action="user.disabled",
        entity="user",
        entity_id=user.id or 0,
        detail={},
    )
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(col(User.username))).all()
