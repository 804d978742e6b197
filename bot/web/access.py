"""Who may see and do what in the console: one dependency alias per kind of route.

A page names the alias it needs (``Staff``, ``Admin``...); an action (a POST) names the
``...Action`` alias, which also checks the form's CSRF token. Without a live session the
browser goes to the sign-in page; with the wrong role the answer is 403 and says why.

- Staff (officer, comms officer, admin): the inbox and cases, read.
- Caseworkers (officer, admin): everything done to a case, and the photos sent with it.
- Approvers (any role or person that `approval.tiers` names): the approval queue.
- Admins: people and roles, the audit log, the corrections export.
- Anyone signed in (analysts too): reports and the campaigns calendar.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request

from bot.app import App
from bot.config import ApprovalSettings
from bot.models import Role, User
from bot.web import auth
from bot.web.auth import SignedIn

STAFF = frozenset({Role.OFFICER.value, Role.COMMS_OFFICER.value, Role.ADMIN.value})
CASEWORK = frozenset({Role.OFFICER.value, Role.ADMIN.value})
ADMIN = frozenset({Role.ADMIN.value})
EVERYONE = frozenset(r.value for r in Role)


class NeedsSignIn(Exception):
    """No live session: the handler sends the browser to the sign-in page."""


def app_of(request: Request) -> App:
    bot: App = request.app.state.bot
    return bot


def signed_in(
    request: Request, roles: frozenset[str], *, why: str = "", touch: bool = True
) -> SignedIn:
    """The signed-in user, who must hold one of ``roles``; else sign-in page or 403."""
    bot = app_of(request)
    with bot.db.session() as session:
        who = auth.current(
            session,
            request.cookies.get(auth.COOKIE),
            at=bot.clock.now(),
            web=bot.settings.web,
            touch=touch,
        )
    if who is None:
        raise NeedsSignIn
    if not set(who.user.roles) & roles:
        raise HTTPException(status_code=403, detail=why or "your role does not allow this page")
    return who


def check_csrf(who: SignedIn, token: str) -> None:
    if not auth.csrf_ok(who, token):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


def approver_names(policy: ApprovalSettings) -> frozenset[str]:
    """Every role and ``user:name`` that some approval tier of some channel names."""
    return frozenset(entry for tiers in policy.tiers.values() for tier in tiers for entry in tier)


def may_approve(user: User, policy: ApprovalSettings) -> bool:
    names = approver_names(policy)
    return bool(set(user.roles) & names) or f"user:{user.username}" in names


def has_role(who: SignedIn | None, roles: frozenset[str]) -> bool:
    return who is not None and bool(set(who.user.roles) & roles)


def landing_page(roles: list[str]) -> str:
    """Where sign-in leads: the inbox for staff, the reports for analysts."""
    return "/" if set(roles) & STAFF else "/reports"


# -- pages --------------------------------------------------------------------------------------
def _staff(request: Request) -> SignedIn:
    return signed_in(request, STAFF)


def _staff_polling(request: Request) -> SignedIn:
    return signed_in(request, STAFF, touch=False)


def _caseworker(request: Request) -> SignedIn:
    return signed_in(request, CASEWORK, why="casework needs the officer role")


def _admin(request: Request) -> SignedIn:
    return signed_in(request, ADMIN, why="only an admin may do this")


def _anyone(request: Request) -> SignedIn:
    return signed_in(request, EVERYONE)


def _approver(request: Request) -> SignedIn:
    who = signed_in(request, EVERYONE)
    if not may_approve(who.user, app_of(request).settings.approval):
        raise HTTPException(
            status_code=403, detail="no approval tier names your role; see approval.tiers"
        )
    return who


# -- actions: the same checks, and the form's CSRF token --------------------------------------
CsrfToken = Annotated[str, Form(max_length=128)]


def _casework_action(request: Request, csrf_token: CsrfToken = "") -> SignedIn:
    who = _caseworker(request)
    check_csrf(who, csrf_token)
    return who


def _admin_action(request: Request, csrf_token: CsrfToken = "") -> SignedIn:
    who = _admin(request)
    check_csrf(who, csrf_token)
    return who


def _approver_action(request: Request, csrf_token: CsrfToken = "") -> SignedIn:
    who = _approver(request)
    check_csrf(who, csrf_token)
    return who


def _anyone_action(request: Request, csrf_token: CsrfToken = "") -> SignedIn:
    who = _anyone(request)
    check_csrf(who, csrf_token)
    return who


Staff = Annotated[SignedIn, Depends(_staff)]
StaffPolling = Annotated[SignedIn, Depends(_staff_polling)]
Caseworker = Annotated[SignedIn, Depends(_caseworker)]
Admin = Annotated[SignedIn, Depends(_admin)]
Anyone = Annotated[SignedIn, Depends(_anyone)]
Approver = Annotated[SignedIn, Depends(_approver)]
CaseworkAction = Annotated[SignedIn, Depends(_casework_action)]
AdminAction = Annotated[SignedIn, Depends(_admin_action)]
ApproverAction = Annotated[SignedIn, Depends(_approver_action)]
AnyoneAction = Annotated[SignedIn, Depends(_anyone_action)]
