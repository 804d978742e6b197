"""FastAPI application: the console (signed in, by role), webhooks, health, survey links.

Pages that show personal data need a signed-in user with a role allowed to see them; the
channel webhooks answer only to valid platform signatures; /healthz and the survey redirect
are public and reveal nothing. The app answers only to host names in ``web.allowed_hosts``.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.templating import Jinja2Templates
from sqlalchemy import text
from sqlmodel import col, select
from starlette.middleware.trustedhost import TrustedHostMiddleware

from bot.app import App
from bot.errors import ConfigError
from bot.models import Case, Message, Role, SurveyClick, SurveyLink
from bot.report_render import render_html
from bot.reports import ReportQuery, build_report
from bot.templating import TEMPLATES_DIR
from bot.web import auth
from bot.web.auth import SignedIn
from schedules.campaigns import load_campaigns

SURVEY_CODE = re.compile(r"[A-Za-z0-9_-]{4,32}")
PRIORITY_ORDER = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class NeedsSignIn(Exception):
    """No live session: the handler sends the browser to the sign-in page."""


def _signed_in(request: Request, roles: tuple[Role, ...]) -> SignedIn:
    """The signed-in user, who must hold one of ``roles``; else sign-in page or 403."""
    bot: App = request.app.state.bot
    with bot.db.session() as session:
        who = auth.current(
            session, request.cookies.get(auth.COOKIE), at=bot.clock.now(), web=bot.settings.web
        )
    if who is None:
        raise NeedsSignIn
    if not set(who.user.roles) & {r.value for r in roles}:
        raise HTTPException(status_code=403, detail="your role does not allow this page")
    return who


def _staff(request: Request) -> SignedIn:
    return _signed_in(request, (Role.OFFICER, Role.COMMS_OFFICER, Role.ADMIN))


def _anyone(request: Request) -> SignedIn:
    return _signed_in(request, tuple(Role))


# Who may see what (FastAPI's Annotated dependency aliases)
Staff = Annotated[SignedIn, Depends(_staff)]
Anyone = Annotated[SignedIn, Depends(_anyone)]


def create_app(bot: App, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    web = FastAPI(title="campusbot", version="0.1.0", docs_url=None, redoc_url=None)
    pages = Jinja2Templates(directory=Path(TEMPLATES_DIR) / "web")
    settings = bot.settings.web
    # Only configured host names: this also defeats DNS rebinding against a local console.
    hosts = allowed_hosts or [*settings.allowed_hosts, "testserver"]
    web.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)

    web.state.bot = bot

    @web.exception_handler(NeedsSignIn)
    async def _to_sign_in(request: Request, exc: NeedsSignIn) -> Response:
        return RedirectResponse("/login", status_code=303)

    def signed_in(request: Request, *roles: Role) -> SignedIn:
        return _signed_in(request, roles)

    @web.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return pages.TemplateResponse(request, "login.html", {"error": None})

    @web.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        client = request.client.host if request.client else "unknown"
        try:
            with bot.db.session() as session:  # commits the attempt, failed or not
                opened = auth.sign_in(
                    session,
                    username=username,
                    password=password,
                    client=client,
                    at=bot.clock.now(),
                    web=settings,
                )
        except auth.SignInRefused as exc:
            return pages.TemplateResponse(
                request, "login.html", {"error": str(exc)}, status_code=429
            )
        if opened is None:
            return pages.TemplateResponse(
                request, "login.html", {"error": "wrong user name or password"}, status_code=401
            )
        token, _ = opened
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            auth.COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            max_age=settings.idle_minutes * 60,
        )
        return response

    @web.post("/logout")
    def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        who = signed_in(request, *Role)
        if not auth.csrf_ok(who, csrf_token):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        with bot.db.session() as session:
            fresh = auth.current(
                session, request.cookies.get(auth.COOKIE), at=bot.clock.now(), web=settings
            )
            if fresh is not None:
                auth.sign_out(session, fresh, at=bot.clock.now())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    @web.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def store(channel: str, body: bytes) -> None:
        """Called by each channel's webhook route after its signature check: store, then 200."""
        bot.pipeline.ingest(bot.channels()[channel].parse(body), source=channel)

    for channel in bot.channels().values():
        router = getattr(channel, "router", None)
        if router is not None:
            web.include_router(router(store))

    @web.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with bot.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "database": bot.db.dialect})

    @web.get("/", response_class=HTMLResponse)
    def inbox(request: Request, who: Staff) -> HTMLResponse:
        with bot.db.session() as session:
            rows = list(
                session.exec(select(Message, Case).join(Case, col(Message.case_id) == col(Case.id)))
            )
        rows.sort(key=lambda mc: (PRIORITY_ORDER[mc[1].priority], -mc[0].received_at.timestamp()))
        return pages.TemplateResponse(request, "inbox.html", {"rows": rows[:500], "who": who})

    @web.get("/reports", response_class=HTMLResponse)
    def reports(
        who: Anyone,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
    ) -> HTMLResponse:
        """The same report as `campusbot report --format html`, for the last 28 days by default."""
        today = bot.clock.now().astimezone(bot.settings.tz).date()
        end = end or today
        start = start or end - timedelta(days=27)
        if end < start or (end - start).days > 3 * 366:
            return HTMLResponse("Choose a range of at most three years, from before to.", 422)
        query = ReportQuery(start=start, end=end, tz=bot.settings.tz)
        with bot.db.session() as session:
            built = build_report(session, query, load_campaigns(bot.settings.campaigns_dir))
        return HTMLResponse(render_html(built))

    @web.get("/s/{code}")
    def survey_redirect(code: str) -> Response:
        """Count a survey click (when and which link, nothing about who) and send them on."""
        if not SURVEY_CODE.fullmatch(code):
            return PlainTextResponse("No such survey link.", status_code=404)
        with bot.db.session() as session:
            link = session.exec(select(SurveyLink).where(SurveyLink.code == code)).first()
            if link is None or link.id is None:
                return PlainTextResponse("No such survey link.", status_code=404)
            session.add(SurveyClick(link_id=link.id, clicked_at=bot.clock.now()))
            target = link.target_url
        return RedirectResponse(target, status_code=302)

    return web


def run_server(bot: App, *, host: str, port: int) -> None:
    import uvicorn

    if not _is_loopback(host) and not bot.settings.web.secure_cookies:
        raise ConfigError(
            f"refusing to serve on {host} without web.secure_cookies: beyond this machine the "
            "console must sit behind HTTPS (set web.secure_cookies and web.allowed_hosts)"
        )
    uvicorn.run(
        create_app(bot),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
