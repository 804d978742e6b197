"""Rendering console pages: one Jinja2 environment (autoescaped), the menu, local times.

Every page gets ``who`` (the signed-in user), ``menu`` (the links their roles open) and
``tz`` (times are shown in the force's time zone, stored in UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from bot.templating import TEMPLATES_DIR
from bot.web.access import ADMIN, CASEWORK, EVERYONE, STAFF, app_of, has_role, may_approve
from bot.web.auth import SignedIn

HTMX_VERSION = "2.0.11"  # bot/web/static/htmx.min.js, from the npm package htmx.org (0BSD)


@dataclass(frozen=True)
class MenuItem:
    href: str
    label: str


def _local(value: datetime | None, tz: tzinfo, fmt: str = "%a %d %b %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt) if value is not None else ""


pages = Jinja2Templates(directory=TEMPLATES_DIR / "web")
pages.env.filters["local"] = _local
pages.env.globals["htmx_version"] = HTMX_VERSION


def menu(request: Request, who: SignedIn | None) -> list[MenuItem]:
    if who is None:
        return []
    items: list[MenuItem] = []
    if has_role(who, STAFF):
        items.append(MenuItem("/", "Inbox"))
    if may_approve(who.user, app_of(request).settings.approval):
        items.append(MenuItem("/approvals", "Approvals"))
    if has_role(who, EVERYONE):
        items.append(MenuItem("/calendar", "Calendar"))
        items.append(MenuItem("/reports", "Reports"))
    if has_role(who, ADMIN):
        items.append(MenuItem("/users", "Users"))
        items.append(MenuItem("/audit", "Audit log"))
        items.append(MenuItem("/accounts", "Accounts"))
    items.append(MenuItem("/security", "Security"))
    return items


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    who: SignedIn | None,
    status_code: int = 200,
) -> HTMLResponse:
    bot = app_of(request)
    full = {
        "who": who,
        "menu": menu(request, who),
        "tz": bot.settings.tz,
        "now": bot.clock.now(),
        "is_caseworker": has_role(who, CASEWORK),
        "is_admin": has_role(who, ADMIN),
        **context,
    }
    return pages.TemplateResponse(request, name, full, status_code=status_code)


def query_string(params: Mapping[str, str | int | None]) -> str:
    """A URL query from the non-empty values, for links that keep the current filters."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
