"""People and their roles (admins only): add, change roles, reset a password, disable.

A new person (or a reset) gets a random one-off password, shown once on the answer page
and never stored in clear; they change it with `campusbot users reset-password` or ask an
admin again. Nobody is ever deleted: a disabled account keeps the audit trail readable.
An admin cannot disable themselves or drop their own admin role, so the console always
keeps someone who can manage it.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from bot.crud import users
from bot.errors import BotError
from bot.models import Role, User
from bot.web.access import Admin, AdminAction, app_of
from bot.web.auth import SignedIn, set_password
from bot.web.render import render

router = APIRouter()
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
DONE = {"roles": "Roles changed.", "disabled": "Account disabled; its sessions have ended."}
Roles = Annotated[list[str] | None, Form()]


def _one_off_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, about 120 bits


def _show(
    request: Request,
    who: SignedIn,
    *,
    error: str | None = None,
    created: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    bot = app_of(request)
    with bot.db.session() as session:
        people = list(users.list_users(session))
    context: dict[str, Any] = {
        "people": people,
        "roles": [r.value for r in Role],
        "error": error,
        "created": created,
        "done": DONE.get(request.query_params.get("done", "")),
    }
    return render(request, "users.html", context, who=who, status_code=status_code)


def _person(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")
    return user


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, who: Admin) -> HTMLResponse:
    return _show(request, who)


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    who: AdminAction,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=128)] = "",
    roles: Roles = None,
) -> HTMLResponse:
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        return _show(
            request,
            who,
            error="a user name is 2 to 64 lower-case letters, digits, dots, dashes or underscores",
            status_code=422,
        )
    if not roles:
        return _show(request, who, error="choose at least one role", status_code=422)
    bot = app_of(request)
    password = _one_off_password()
    try:
        with bot.db.session() as session:
            users.add(
                session,
                username=name,
                roles=roles,
                at=bot.clock.now(),
                by=who.user.username,
                display_name=display_name.strip() or None,
            )
            set_password(
                session, username=name, password=password, at=bot.clock.now(), by=who.user.username
            )
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return _show(request, who, created={"username": name, "password": password}, status_code=201)


@router.post("/users/{user_id}/roles")
def change_roles(request: Request, who: AdminAction, user_id: int, roles: Roles = None) -> Response:
    bot = app_of(request)
    chosen = roles or []
    try:
        with bot.db.session() as session:
            person = _person(session, user_id)
            if person.id == who.user.id and Role.ADMIN.value not in chosen:
                raise BotError("you cannot remove your own admin role; ask another admin")
            users.set_roles(
                session,
                username=person.username,
                roles=chosen,
                at=bot.clock.now(),
                by=who.user.username,
            )
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return RedirectResponse("/users?done=roles", status_code=303)


@router.post("/users/{user_id}/disable")
def disable_user(request: Request, who: AdminAction, user_id: int) -> Response:
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            person = _person(session, user_id)
            if person.id == who.user.id:
                raise BotError("you cannot disable yourself; ask another admin")
            users.disable(
                session, username=person.username, at=bot.clock.now(), by=who.user.username
            )
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return RedirectResponse("/users?done=disabled", status_code=303)


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(request: Request, who: AdminAction, user_id: int) -> HTMLResponse:
    """A new one-off password, shown once; every open session of that person ends."""
    bot = app_of(request)
    password = _one_off_password()
    try:
        with bot.db.session() as session:
            person = _person(session, user_id)
            if person.disabled:
                raise BotError(f"{person.username} is disabled")
            set_password(
                session,
                username=person.username,
                password=password,
                at=bot.clock.now(),
                by=who.user.username,
            )
            name = person.username
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return _show(request, who, created={"username": name, "password": password, "reset": "1"})
