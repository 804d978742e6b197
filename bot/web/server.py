"""FastAPI application: the console (signed in, by role), webhooks, health, survey links.

This module assembles the app: sign-in, security headers, error pages, the static files
and the console's page routers (``bot.web.pages``, one per area; who may use each route is
declared there with the aliases of ``bot.web.access``). Pages that show personal data need
a signed-in user with a role allowed to see them; the channel webhooks answer only to valid
platform signatures; /healthz and the survey redirect are public and reveal nothing. The app
answers only to host names in ``web.allowed_hosts``.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, Query, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from bot.app import App
from bot.credentials import Sealer
from bot.errors import ConfigError
from bot.intake import GroupCommit
from bot.models import SurveyClick, SurveyLink
from bot.observability import metrics as observed
from bot.observability.middleware import RequestContext
from bot.report_render import render_html
from bot.reports import ReportQuery, build_report
from bot.web import auth, meeting_pages, report_form, survey_pages
from bot.web.access import Anyone, AnyoneAction, NeedsSignIn, landing_page
from bot.web.api import create_api
from bot.web.headers import SecurityHeaders
from bot.web.pages import accounts, approvals, audit, calendar, cases, inbox, security, users
from bot.web.render import render
from schedules.campaigns import load_campaigns

SURVEY_CODE = re.compile(r"[A-Za-z0-9_-]{4,32}")
STATIC_DIR = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# htmx and the style sheet change only with a release; everything else is never cached.
STATIC_CACHE = "private, max-age=3600"
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGES = (
    inbox.router,
    cases.router,
    approvals.router,
    calendar.router,
    users.router,
    audit.router,
    accounts.router,
    security.router,
)


def create_app(
    bot: App, *, allowed_hosts: list[str] | None = None, metrics: observed.Metrics | None = None
) -> FastAPI:
    """``metrics``: the registry /metrics serves; by default this process's own."""
    intake = GroupCommit(lambda batch, source: bot.pipeline.ingest(batch, source=source))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        intake.close()  # what is queued is stored before the server stops

    # The console's routes are not an API: only /api/v1 publishes a schema.
    web = FastAPI(
        title="campusbot",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    web.mount("/api/v1", create_api(bot))
    settings = bot.settings.web
    # Only configured host names: this also defeats DNS rebinding against a local console.
    hosts = allowed_hosts or [*settings.allowed_hosts, "testserver"]
    web.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)

    web.state.bot = bot

    @web.exception_handler(NeedsSignIn)
    async def _to_sign_in(request: Request, exc: NeedsSignIn) -> Response:
        if request.headers.get("hx-request") == "true":
            # An htmx refresh after the session ended: the whole page goes to sign-in,
            # rather than the sign-in form appearing inside the inbox table.
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @web.exception_handler(StarletteHTTPException)
    async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
        """A page a person can read for browsers; the usual JSON for everything else."""
        if "text/html" not in request.headers.get("accept", "") or exc.status_code < 400:
            return await http_exception_handler(request, exc)
        return render(
            request,
            "error.html",
            {"message": exc.detail, "status": exc.status_code},
            who=None,
            status_code=exc.status_code,
        )

    @web.exception_handler(RequestValidationError)
    async def _bad_input_page(request: Request, exc: RequestValidationError) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return render(
            request, "error.html", {"message": problems, "status": 422}, who=None, status_code=422
        )

    web.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @web.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return render(request, "login.html", {"error": None}, who=None)

    sealer = Sealer(bot.settings.credentials_key)
    issuer = bot.settings.account.team_name  # how authenticator apps name the console

    def _client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def _signed_in(opened: auth.Opened) -> Response:
        response = RedirectResponse(landing_page(opened.user.roles), status_code=303)
        response.set_cookie(
            auth.COOKIE,
            opened.token,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            max_age=settings.idle_minutes * 60,
        )
        response.delete_cookie(auth.CHALLENGE_COOKIE, path="/login")
        return response

    def _refused(request: Request, exc: auth.SignInRefused) -> Response:
        response = render(
            request, "login.html", {"error": str(exc)}, who=None, status_code=exc.status
        )
        response.delete_cookie(auth.CHALLENGE_COOKIE, path="/login")
        return response

    @web.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        try:
            with bot.db.session() as session:  # commits the attempt, failed or not
                opened = auth.sign_in(
                    session,
                    username=username,
                    password=password,
                    client=_client(request),
                    at=bot.clock.now(),
                    web=settings,
                    sealer=sealer,
                    issuer=issuer,
                )
        except auth.SignInRefused as exc:
            return _refused(request, exc)
        if opened is None:
            return render(
                request,
                "login.html",
                {"error": "wrong user name or password"},
                who=None,
                status_code=401,
            )
        if isinstance(opened, auth.Opened):
            return _signed_in(opened)
        response = render(
            request, "login_code.html", {"enrolment": opened.enrolment, "error": None}, who=None
        )
        response.set_cookie(
            auth.CHALLENGE_COOKIE,
            opened.token,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            max_age=int(auth.CHALLENGE_FOR.total_seconds()),
            path="/login",
        )
        return response

    @web.post("/login/code", response_class=HTMLResponse)
    def login_code(request: Request, code: Annotated[str, Form(max_length=16)] = "") -> Response:
        """The second step of signing in, for people with a second factor."""
        token = request.cookies.get(auth.CHALLENGE_COOKIE)
        try:
            with bot.db.session() as session:  # commits the attempt, failed or not
                opened = auth.finish_sign_in(
                    session,
                    token=token,
                    code=code,
                    client=_client(request),
                    at=bot.clock.now(),
                    web=settings,
                    sealer=sealer,
                )
        except auth.SignInRefused as exc:
            return _refused(request, exc)
        if opened is not None:
            return _signed_in(opened)
        with bot.db.session() as session:
            enrolment = auth.pending_enrolment(session, token=token, sealer=sealer, issuer=issuer)
        return render(
            request,
            "login_code.html",
            {"enrolment": enrolment, "error": "that code is not right, or was used already"},
            who=None,
            status_code=401,
        )

    @web.post("/logout")
    def logout(request: Request, who: AnyoneAction) -> Response:
        with bot.db.session() as session:
            fresh = auth.current(
                session, request.cookies.get(auth.COOKIE), at=bot.clock.now(), web=settings
            )
            if fresh is not None:
                auth.sign_out(session, fresh, at=bot.clock.now())
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.COOKIE)
        return response

    web.add_middleware(SecurityHeaders, headers=SECURITY_HEADERS, static_cache=STATIC_CACHE)

    def store(channel: str, body: bytes) -> None:
        """Called by each channel's webhook route after its signature check: store, then 200.

        Concurrent requests share one transaction (group commit), so a burst does not queue
        on the database's write lock one body at a time."""
        intake.store(channel, bot.channels()[channel].parse(body))

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

    served = metrics or observed.process_metrics()

    @web.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        """For Prometheus, which cannot sign in: loopback clients, or the bearer token."""
        if not _may_read_metrics(request, bot.settings.metrics_token):
            return PlainTextResponse(
                "metrics are served to this machine, or with the metrics bearer token", 403
            )
        return Response(generate_latest(served.registry), media_type=CONTENT_TYPE_LATEST)

    for page in PAGES:
        web.include_router(page)
    web.include_router(accounts.public_router)  # X's return address, before the session
    web.include_router(survey_pages.router(bot))
    web.include_router(report_form.router(bot))
    web.include_router(meeting_pages.router(bot))

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
        # The report is one self-contained file with its own style sheet and no script.
        return HTMLResponse(render_html(built), headers={"Content-Security-Policy": REPORT_CSP})

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

    # Added last, so outermost: it also counts refused hosts (400) and server errors (500).
    web.add_middleware(RequestContext, metrics=served)
    return web


def _may_read_metrics(request: Request, token: SecretStr | None) -> bool:
    """A client on this machine, or one sending ``Authorization: Bearer <metrics_token>``.

    Behind a reverse proxy on this machine, the proxy must set X-Forwarded-For (trusted
    from 127.0.0.1 only), or every request it forwards would look local.
    """
    if token is not None and token.get_secret_value():
        expected = f"Bearer {token.get_secret_value()}".encode()
        if hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return True
    return request.client is not None and _is_loopback(request.client.host)


def run_server(bot: App, *, host: str, port: int) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

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
        # json: uvicorn's own lines go through the root handler too, one object per line
        log_config=None if bot.settings.log_format == "json" else LOGGING_CONFIG,
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
