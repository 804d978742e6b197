"""Every console route against every role, signed out, and without its CSRF token.

A refused role gets 403 and changes nothing; a POST without the session's CSRF token (or
with another one) gets 403 and changes nothing; the allowed role gets through. Nothing
changes is checked on the audit log, which every action writes to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyotp
import pytest
import responses
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import select

from bot.app import App
from bot.config import Settings
from bot.credentials import Sealer, new_key
from bot.models import AuditEntry, User
from bot.web import second_factor
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
    # What the action needs beforehand (e.g. a second factor being set up); returns form
    # fields only known then (e.g. the code).
    prepare: Callable[[App], dict[str, Any]] | None = None
    ok: frozenset[int] = frozenset({200, 201, 303})  # what the allowed role gets


PAGE_ID = "104857600000001"


def _set_up_factor(app: App, username: str, *, confirm: bool) -> str:
    sealer = Sealer(app.settings.credentials_key)
    with app.db.session() as session:
        user = session.exec(select(User).where(User.username == username)).one()
        secret = second_factor.begin(
            session, sealer, user=user, at=app.clock.now(), issuer="test"
        ).secret
        if confirm:
            code = pyotp.TOTP(secret).at(app.clock.now())
            assert second_factor.confirm(session, sealer, user=user, code=code, at=app.clock.now())
    return secret


def _awaiting_first_code(app: App) -> dict[str, Any]:
    """cara.comms (who acts on routes open to all) has begun setting up: her app's code."""
    secret = _set_up_factor(app, "cara.comms", confirm=False)
    return {"code": pyotp.TOTP(secret).at(app.clock.now())}


def _khan_has_a_factor(app: App) -> dict[str, Any]:
    _set_up_factor(app, "pc.khan", confirm=True)
    return {}


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
    "security": Route("GET", lambda i: "/security", EVERYONE),
    "start second factor": Route("POST", lambda i: "/security/totp/start", EVERYONE),
    "confirm second factor": Route(
        "POST", lambda i: "/security/totp/confirm", EVERYONE, prepare=_awaiting_first_code
    ),
    "reset second factor": Route(
        "POST", lambda i: f"/security/totp/{i.other_user}/reset", ADMIN, prepare=_khan_has_a_factor
    ),
    "accounts": Route("GET", lambda i: "/accounts", ADMIN),
    "connect X": Route("POST", lambda i: "/accounts/twitter/connect", ADMIN),
    "finish connecting X": Route(  # an unknown state: the admin is told to start again
        "GET", lambda i: "/accounts/twitter/finish?state=unknown&code=c", ADMIN, ok=frozenset({400})
    ),
    "connect Facebook": Route(
        "POST", lambda i: "/accounts/facebook", ADMIN, {"page_token": "EAAGm0PX4ZCpsBAPageToken"}
    ),
}
ORDER = ("comms_officer", "officer", "admin", "analyst")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """With what connecting the channel accounts needs: the key, X's client, the page."""
    return settings.model_copy(
        update={
            "credentials_key": SecretStr(new_key()),
            "twitter": settings.twitter.model_copy(update={"client_id": "cl-1d"}),
            "facebook": settings.facebook.model_copy(update={"page_id": PAGE_ID}),
        }
    )


@pytest.fixture(autouse=True)
def graph_api() -> Iterator[None]:
    """Facebook's answer when a pasted page token is checked: the configured page."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get(
            "https://graph.facebook.com/v25.0/me",
            json={"id": PAGE_ID, "name": "UCLan Campus Police"},
        )
        yield


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


def _send(
    client: TestClient, route: Route, ids: Ids, csrf: str | None, prepared: dict[str, Any]
) -> int:
    if route.method == "GET":
        return client.get(route.path(ids), follow_redirects=False).status_code
    data = {**route.form, **prepared}
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(route.path(ids), data=data, follow_redirects=False).status_code


@pytest.mark.parametrize("name", list(ROUTES))
def test_route_checks_role_and_csrf(web_app: App, name: str) -> None:
    route = ROUTES[name]
    ids = _prepare(web_app)
    prepared = route.prepare(web_app) if route.prepare is not None else {}
    clients = {role: client_for(web_app, BY_ROLE[role]) for role in ORDER}
    tokens = {role: csrf_of(client) for role, client in clients.items()}

    anonymous = client_for(web_app)
    response_status = _send(anonymous, route, ids, "anything", prepared)
    assert response_status == 303  # to the sign-in page

    before = _audit_count(web_app)
    for role in ORDER:
        if role not in route.allowed:
            assert _send(clients[role], route, ids, tokens[role], prepared) == 403, role
    actor = route.acts_as or next(r for r in ORDER if r in route.allowed)
    if route.method == "POST":
        assert _send(clients[actor], route, ids, None, prepared) == 403  # no token
        other = next(t for r, t in tokens.items() if r != actor)
        assert _send(clients[actor], route, ids, other, prepared) == 403  # someone else's token
        assert _audit_count(web_app) == before  # nothing was done
    status = _send(clients[actor], route, ids, tokens[actor], prepared)
    assert status in route.ok, (actor, status)
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
