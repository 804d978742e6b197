"""FastAPI application: the read-only triage inbox, health check and (later) webhooks.

Until sign-in lands (web console issue) the console shows personal data to anyone who can
reach it, so it only binds to the loopback interface.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
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
from bot.models import Case, Message, SurveyClick, SurveyLink
from bot.report_render import render_html
from bot.reports import ReportQuery, build_report
from bot.templating import TEMPLATES_DIR
from schedules.campaigns import load_campaigns

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1", "testserver")
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


def create_app(bot: App, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    web = FastAPI(title="campusbot", version="0.1.0", docs_url=None, redoc_url=None)
    pages = Jinja2Templates(directory=Path(TEMPLATES_DIR) / "web")
    # Until sign-in lands the console answers only to loopback names, which also defeats
    # DNS rebinding (a web page cannot make the browser send Host: 127.0.0.1).
    web.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or LOOPBACK_HOSTS))

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
    def inbox(request: Request) -> HTMLResponse:
        with bot.db.session() as session:
            rows = list(
                session.exec(select(Message, Case).join(Case, col(Message.case_id) == col(Case.id)))
            )
        rows.sort(key=lambda mc: (PRIORITY_ORDER[mc[1].priority], -mc[0].received_at.timestamp()))
        return pages.TemplateResponse(request, "inbox.html", {"rows": rows[:500]})

    @web.get("/reports", response_class=HTMLResponse)
    def reports(
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

    if not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host}: the console has no sign-in yet, so it "
            "only listens on 127.0.0.1 or ::1"
        )
    uvicorn.run(create_app(bot), host=host, port=port, log_level="info")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
