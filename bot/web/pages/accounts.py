"""Channel accounts (admins only): connect or reconnect X and the Facebook page.

X: "Connect" records an authorisation (bot.channel_auth.start_x) and shows the link to X's
consent page - a link, not a redirect, because the console's CSP lets forms post only to
itself. X sends the admin back to the public ``/accounts/twitter/callback``; the session
cookie is SameSite=Strict, so a browser arriving from x.com does not send it, and that page
forwards (a same-site navigation, which does) to ``/accounts/twitter/finish``, where the
admin's session and the state are checked and the code is exchanged.

Facebook: a pasted long-lived page access token, checked against ``facebook.page_id``.
Tokens are stored sealed (bot.credentials) and never shown again.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot import channel_auth
from bot.channel_auth import ConnectFailed
from bot.credentials import Sealer, find
from bot.web.access import Admin, AdminAction, app_of
from bot.web.auth import SignedIn
from bot.web.render import render

router = APIRouter()
public_router = APIRouter()  # X's return address: reached before the session cookie is sent
DONE = {
    "twitter": "X connected: the bot now uses this account's token.",
    "facebook": "Facebook page connected: the bot now uses this page token.",
}
Param = Annotated[str, Query(max_length=512)]


def _show(
    request: Request, who: SignedIn, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    bot = app_of(request)
    settings = bot.settings
    with bot.db.session() as session:
        twitter = find(session, "twitter")
        facebook = find(session, "facebook")
        granted = set(twitter.scopes.split()) if twitter is not None else set()
        context: dict[str, Any] = {
            "twitter": twitter,
            "facebook": facebook,
            "missing_scopes": [s for s in channel_auth.X_SCOPES if s not in granted]
            if twitter is not None and twitter.scopes
            else [],
            "twitter_env": settings.twitter.access_token is not None,
            "facebook_env": settings.facebook.page_access_token is not None,
            "client_id": settings.twitter.client_id,
            "handle": settings.twitter.account_handle,
            "page_id": settings.facebook.page_id,
            "callback_url": channel_auth.callback_url(settings),
            "key_problem": Sealer(settings.credentials_key).problem,
            "error": error,
            "done": DONE.get(request.query_params.get("done", "")),
        }
        return render(request, "accounts.html", context, who=who, status_code=status_code)


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, who: Admin) -> HTMLResponse:
    return _show(request, who)


@router.post("/accounts/twitter/connect", response_class=HTMLResponse)
def connect_twitter(request: Request, who: AdminAction) -> HTMLResponse:
    bot = app_of(request)
    try:
        url = channel_auth.start_x(
            bot, username=who.user.username, session_sha256=who.session.token_sha256
        )
    except ConnectFailed as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return render(
        request,
        "accounts_connect.html",
        {"url": url, "handle": bot.settings.twitter.account_handle},
        who=who,
    )


@public_router.get("/accounts/twitter/callback", response_class=HTMLResponse)
def twitter_callback(
    request: Request, state: Param = "", code: Param = "", error: Param = ""
) -> HTMLResponse:
    """Where X sends the browser back; forwards to the signed-in finish (see the module)."""
    query = urlencode({k: v for k, v in (("state", state), ("code", code), ("error", error)) if v})
    return render(
        request, "accounts_return.html", {"next": f"/accounts/twitter/finish?{query}"}, who=None
    )


@router.get("/accounts/twitter/finish")
def finish_twitter(
    request: Request, who: Admin, state: Param = "", code: Param = "", error: Param = ""
) -> Response:
    bot = app_of(request)
    try:
        channel_auth.finish_x(
            bot,
            state=state,
            code=code or None,
            error=error or None,
            username=who.user.username,
            session_sha256=who.session.token_sha256,
        )
    except ConnectFailed as exc:
        return _show(request, who, error=f"X was not connected: {exc}", status_code=400)
    return RedirectResponse("/accounts?done=twitter", status_code=303)


@router.post("/accounts/facebook")
def connect_facebook(
    request: Request,
    who: AdminAction,
    page_token: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    bot = app_of(request)
    try:
        channel_auth.connect_facebook(bot, page_token=page_token, username=who.user.username)
    except ConnectFailed as exc:
        status = {"empty": 422, "token_refused": 422, "wrong_page": 422, "unreachable": 502}.get(
            exc.reason, 409
        )
        return _show(request, who, error=f"Facebook was not connected: {exc}", status_code=status)
    return RedirectResponse("/accounts?done=facebook", status_code=303)
