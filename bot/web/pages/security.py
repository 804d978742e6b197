"""Your second factor (everyone signed in), and resetting other people's (admins).

Setting up shows the secret as text and as its otpauth:// URI (a phone's authenticator app
takes either); it is on once a code from the app is confirmed here. Admins see who has a
second factor and can reset it for someone who lost their phone: audited, and that person
sets it up again (at their next sign-in if admins must have one).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from bot.credentials import CredentialError, Sealer
from bot.errors import BotError
from bot.models import User
from bot.web import second_factor
from bot.web.access import ADMIN, AdminAction, Anyone, AnyoneAction, app_of, has_role
from bot.web.auth import SignedIn
from bot.web.render import render

router = APIRouter()
DONE = {
    "on": "Your second factor is on: sign-in will ask for a code from your app.",
    "reset": "Second factor reset: they set it up again.",
}


def issuer(request: Request) -> str:
    """How the console is named in the authenticator app."""
    return app_of(request).settings.account.team_name


def _show(
    request: Request, who: SignedIn, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    bot = app_of(request)
    sealer = Sealer(bot.settings.credentials_key)
    enrolment = None
    people: list[dict[str, Any]] = []
    with bot.db.session() as session:
        mine = second_factor.find(session, who.user.id or 0)
        if mine is not None and not second_factor.is_on(mine) and sealer.ready:
            try:
                enrolment = second_factor.enrolment(
                    sealer, mine, username=who.user.username, issuer=issuer(request)
                )
            except CredentialError as exc:
                error = error or str(exc)
        if has_role(who, ADMIN):
            factors = second_factor.people_with_factors(session)
            people = [
                {"user": person, "factor": factors.get(person.id or 0)}
                for person in session.exec(select(User).order_by(User.username)).all()
            ]
        context: dict[str, Any] = {
            "mine": mine,
            "on": second_factor.is_on(mine),
            "enrolment": enrolment,
            "required": second_factor.required(who.user, bot.settings.web),
            "key_problem": sealer.problem,
            "people": people,
            "error": error,
            "done": DONE.get(request.query_params.get("done", "")),
        }
        return render(request, "security.html", context, who=who, status_code=status_code)


@router.get("/security", response_class=HTMLResponse)
def security_page(request: Request, who: Anyone) -> HTMLResponse:
    return _show(request, who)


@router.post("/security/totp/start")
def start(request: Request, who: AnyoneAction) -> Response:
    """A new secret awaiting its first code (replacing one that was awaiting)."""
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            second_factor.begin(
                session,
                Sealer(bot.settings.credentials_key),
                user=who.user,
                at=bot.clock.now(),
                issuer=issuer(request),
            )
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return RedirectResponse("/security#set-up", status_code=303)


@router.post("/security/totp/confirm")
def confirm(
    request: Request, who: AnyoneAction, code: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            confirmed = second_factor.confirm(
                session,
                Sealer(bot.settings.credentials_key),
                user=who.user,
                code=code,
                at=bot.clock.now(),
            )
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    if not confirmed:
        return _show(
            request,
            who,
            error="that code is not right (or was used already): enter the code your app shows now",
            status_code=422,
        )
    return RedirectResponse("/security?done=on", status_code=303)


@router.post("/security/totp/{user_id}/reset")
def reset(request: Request, who: AdminAction, user_id: int) -> Response:
    """For someone who lost their phone: their secret goes, and they set up again."""
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            if session.get(User, user_id) is None:
                raise HTTPException(status_code=404, detail=f"no user {user_id}")
            second_factor.reset(session, user_id=user_id, at=bot.clock.now(), by=who.user.username)
    except BotError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return RedirectResponse("/security?done=reset", status_code=303)
