"""Who may share, and which case they mean: the checks every partner command starts with."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.errors import BotError
from bot.models import Case, Role, User

SHARING_ROLES = frozenset({Role.OFFICER.value, Role.ADMIN.value})


class PartnerError(BotError):
    """A grading or a sending that the rules refuse; the message says which rule."""


def require_officer(session: Session, username: str) -> User:
    """Grading and sending are an officer's decisions, made by a named, active person."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.disabled:
        raise PartnerError(f"{username} is not an active user (see `campusbot users add`)")
    if not SHARING_ROLES & set(user.roles):
        raise PartnerError(
            f"grading and sharing intelligence need the officer or admin role; {username} has "
            f"{', '.join(user.roles) or 'no role'}"
        )
    return user


def find_case(session: Session, reference: str) -> Case:
    """A case by its reference (UCC-2026-000123) or, for older cases, its number."""
    given = reference.strip()
    case = session.exec(select(Case).where(Case.reference == given.upper())).first()
    if case is None and given.isdigit():
        case = session.get(Case, int(given))
    if case is None:
        raise PartnerError(f"no case {given!r}; give its reference, e.g. UCC-2026-000123")
    return case


def reference_of(case: Case) -> str:
    return case.reference or f"case {case.id}"
