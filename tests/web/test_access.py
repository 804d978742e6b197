"""Every console route against every role, signed out, and without its CSRF token.

A refused role gets 403 and changes nothing; a POST without the session's CSRF token (or
with another one) gets 403 and changes nothing; the allowed role gets through. Nothing
changes is checked on the audit log, which every action writes to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from bot.app import App
from bot.models import AuditEntry, User
from tests.web.support import BY_ROLE, attach_photo, client_for, csrf_of, seed_cases, seed_post

STAFF = frozenset({"officer", "comms_officer", "admin"})
CASEWORK = frozenset({"officer", "admin"})
APPROVERS = frozenset({"comms_officer", "admin"})  # the default approval tiers
ADMIN = frozenset({"admin"})
EVERYONE = frozenset(BY_ROLE)


@dataclass(frozen=True)
class Ids:
    case: int
    message: int
    sha256: str
    pending_post: int
    draft_post: int
    other_user: int


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[Ids], str]
    allowed: frozenset[str]
    form: dict[str, Any] = field(default_factory=dict)
    acts_as: str | None = None  # the allowed role that acts (default: the first in order)


ROUTES = {
    "inbox": Route("GET", lambda i: "/", STAFF),
    "inbox rows": Route("GET", lambda i: "/inbox/rows?urgent=1", STAFF),
    "case": Route("GET", lambda i: f"/cases/{i.case}", STAFF),
    "canned reply": Route(
        "GET", lambda i: f"/cases/{i.case}/canned?canned=report_online", CASEWORK
    ),
    "case photo": Route("GET", lambda i: f"/cases/{i.case}/media/{i.sha256}", CASEWORK),
    "approvals": Route("GET", lambda i: "/approvals", APPROVERS),
    "calendar": Route("GET", lambda i: "/calendar", EVERYONE),
    "reports": Route("GET", lambda i: "/reports", EVERYONE),
    "users": Route("GET", lambda i: "/users", ADMIN),
    "audit": Route("GET", lambda i: "/audit", ADMIN),
    "audit verify": Route("GET", lambda i: "/audit/verify", ADMIN),
    "assign": Route("POST", lambda i: f"/cases/{i.case}/assign", CASEWORK),
    "reply": Route("POST", lambda i: f"/cases/{i.case}/reply", CASEWORK, {"text": "On our way."}),
    "escalate": Route("POST", lambda i: f"/cases/{i.case}/escalate", CASEWORK, {"priority": "P2"}),
    "close": Route("POST", lambda i: f"/cases/{i.case}/close", CASEWORK),
    "correct": Route(
        "POST",
        lambda i: f"/cases/{i.case}/messages/{i.message}/correct",
        CASEWORK,
        {"scenarios": ["theft"], "intent": "report_incident"},
    ),
    "export corrections": Route("POST", lambda i: "/corrections.jsonl", ADMIN),
    "approve": Route("POST", lambda i: f"/approvals/{i.pending_post}/approve", APPROVERS),
    "reject": Route(
        "POST", lambda i: f"/approvals/{i.pending_post}/reject", APPROVERS, {"note": "Too long"}
    ),
    "edit and resubmit": Route(
        "POST",
        lambda i: f"/approvals/{i.pending_post}/edit",
        APPROVERS,
        {"text": "Two locks, always: most bike thefts take under a minute."},
    ),
    "submit draft": Route("POST", lambda i: f"/approvals/{i.draft_post}/submit", APPROVERS),
    "add user": Route(
        "POST", lambda i: "/users", ADMIN, {"username": "pc.new", "roles": ["officer"]}
    ),
    "change roles": Route(
        "POST", lambda i: f"/users/{i.other_user}/roles", ADMIN, {"roles": ["officer", "admin"]}
    ),
    "disable user": Route("POST", lambda i: f"/users/{i.other_user}/disable", ADMIN),
    "reset password": Route("POST", lambda i: f"/users/{i.other_user}/password", ADMIN),
    "sign out": Route("POST", lambda i: "/logout", EVERYONE, acts_as="analyst"),
}
ORDER = ("comms_officer", "officer", "admin", "analyst")


def _prepare(app: App) -> Ids:
    seeded = seed_cases(app)
    sha256 = attach_photo(app, seeded.theft_messages[0])
    with app.db.session() as session:
        other = session.exec(select(User.id).where(User.username == "pc.khan")).one()
    return Ids(
        case=seeded.theft_case,
        message=seeded.theft_messages[0],
        sha256=sha256,
        pending_post=seed_post(app, by="dev.comms"),
        draft_post=seed_post(app, by="dev.comms", submit=False, days_ahead=3),
        other_user=other or 0,
    )


def _audit_count(app: App) -> int:
    with app.db.session() as session:
        return session.exec(select(func.count()).select_from(AuditEntry)).one()


def _send(client: TestClient, route: Route, ids: Ids, csrf: str | None) -> int:
    if route.method == "GET":
        return client.get(route.path(ids), follow_redirects=False).status_code
    data = dict(route.form)
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(route.path(ids), data=data, follow_redirects=False).status_code


@pytest.mark.parametrize("name", list(ROUTES))
def test_route_checks_role_and_csrf(web_app: App, name: str) -> None:
    route = ROUTES[name]
    ids = _prepare(web_app)
    clients = {role: client_for(web_app, BY_ROLE[role]) for role in ORDER}
    tokens = {role: csrf_of(client) for role, client in clients.items()}

    anonymous = client_for(web_app)
    response_status = _send(anonymous, route, ids, "anything")
    assert response_status == 303  # to the sign-in page

    before = _audit_count(web_app)
    for role in ORDER:
        if role not in route.allowed:
            assert _send(clients[role], route, ids, tokens[role]) == 403, role
    actor = route.acts_as or next(r for r in ORDER if r in route.allowed)
    if route.method == "POST":
        assert _send(clients[actor], route, ids, None) == 403  # no token
        other = next(t for r, t in tokens.items() if r != actor)
        assert _send(clients[actor], route, ids, other) == 403  # someone else's token
        assert _audit_count(web_app) == before  # nothing was done
    status = _send(clients[actor], route, ids, tokens[actor])
    assert status in (200, 201, 303), (actor, status)
    if route.method == "POST":
        assert _audit_count(web_app) > before  # the action was done, and audited


def test_every_console_page_route_is_in_the_matrix() -> None:
    """A new route in a console page router (bot.web.pages) without a row here would have no
    role test. (Other areas - the API, webhooks, public forms - test their own access.)"""
    from bot.web.server import PAGES

    declared = {
        (method, route.path)
        for router in PAGES
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
        if method != "HEAD"
    }
    ids = Ids(case=1, message=2, sha256="a" * 64, pending_post=3, draft_post=4, other_user=5)
    covered = {(r.method, r.path(ids).split("?")[0]) for r in ROUTES.values()}
    concrete = {
        "{case_id}": "1",
        "{message_id}": "2",
        "{sha256}": "a" * 64,
        "{user_id}": "5",
    }

    def example(method: str, path: str) -> str:
        for name, value in concrete.items():
            path = path.replace(name, value)
        if "{post_id}" in path:
            path = path.replace("{post_id}", "4" if path.endswith("/submit") else "3")
        return path

    served_elsewhere = {("POST", "/logout"), ("GET", "/reports")}  # by bot.web.server itself
    assert {(m, example(m, p)) for m, p in declared} == covered - served_elsewhere
