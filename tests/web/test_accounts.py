"""Connecting the channel accounts on /accounts, as an admin does it.

X's consent page cannot be driven here: the tests play X's part, reading the authorise URL
the console links to and coming back to the callback as X would (from another site, so
without the console's cookies). X's token endpoint, its /2/users/me and Graph's /me are
served by `responses` with the bodies in tests/fixtures/channel_accounts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import col, select

from bot.app import App, build
from bot.channel_auth import X_AUTHORIZE_URL, X_ME_URL, X_SCOPES, X_TOKEN_URL
from bot.clock import FixedClock
from bot.config import Settings
from bot.credentials import Sealer, new_key
from bot.models import ApiCall, AuditEntry, ChannelCredential, OAuthPending
from bot.web.server import create_app
from tests.conftest import FIXTURES
from tests.web.support import client_for, csrf_of

ACCOUNTS = FIXTURES / "channel_accounts"
PAGE_ID = "104000000000001"
GRAPH_ME = "https://graph.facebook.com/v25.0/me"
LINK = re.compile(r'id="to-x" href="([^"]+)"')
NEXT = re.compile(r'<a href="(/accounts/twitter/finish[^"]*)"')


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ACCOUNTS / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A public X client (no secret), the bot's account and page, and a credentials key."""
    return settings.model_copy(
        update={
            "credentials_key": SecretStr(new_key()),
            "public_base_url": "https://console.campus-police.example",
            "twitter": settings.twitter.model_copy(
                update={
                    "client_id": "M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ",
                    "user_id": "1450000000000000001",
                }
            ),
            "facebook": settings.facebook.model_copy(update={"page_id": PAGE_ID}),
        }
    )


@pytest.fixture
def platforms() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mocked:
        yield mocked


def sealer(app: App) -> Sealer:
    return Sealer(app.settings.credentials_key)


def stored(app: App, channel: str) -> ChannelCredential | None:
    with app.db.session() as session:
        return session.exec(
            select(ChannelCredential).where(ChannelCredential.channel == channel)
        ).first()


def audit_trail(app: App) -> list[tuple[str, str, dict[str, Any]]]:
    with app.db.session() as session:
        return [
            (e.actor, e.action, e.detail)
            for e in session.exec(
                select(AuditEntry)
                .where(AuditEntry.entity == "channel")
                .order_by(col(AuditEntry.id))
            ).all()
        ]


def start(client: TestClient) -> dict[str, str]:
    """Press "Connect X"; returns the query of the authorise URL the page links to."""
    page = client.post("/accounts/twitter/connect", data={"csrf_token": csrf_of(client)})
    assert page.status_code == 200, page.text
    found = LINK.search(page.text)
    assert found is not None, page.text
    url = unescape(found.group(1))
    assert url.startswith(X_AUTHORIZE_URL + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def come_back(app: App, client: TestClient, **query: str) -> Any:
    """X sends the browser to the callback; it arrives without the console's cookies."""
    arriving = TestClient(create_app(app), headers={"accept": "text/html"})
    landing = arriving.get("/accounts/twitter/callback", params=query)
    assert landing.status_code == 200
    assert 'http-equiv="refresh"' in landing.text
    found = NEXT.search(landing.text)
    assert found is not None, landing.text
    return client.get(unescape(found.group(1)), follow_redirects=False)


def grant(platforms: responses.RequestsMock, me: str = "x_users_me_bot.json") -> None:
    platforms.post(X_TOKEN_URL, json=body("x_token_granted.json"))
    platforms.get(X_ME_URL, json=body(me))


# -- X ----------------------------------------------------------------------------------------
def test_an_admin_connects_x_with_pkce(web_app: App, platforms: responses.RequestsMock) -> None:
    admin = client_for(web_app, "sgt.admin")
    assert "Not connected." in admin.get("/accounts").text
    asked = start(admin)
    assert asked["response_type"] == "code"
    assert asked["client_id"] == web_app.settings.twitter.client_id
    assert (
        asked["redirect_uri"] == "https://console.campus-police.example/accounts/twitter/callback"
    )
    assert asked["scope"].split() == list(X_SCOPES)
    assert asked["code_challenge_method"] == "S256"
    grant(platforms)

    done = come_back(web_app, admin, state=asked["state"], code="VGhlIGNvZGUgWCBzZW50")
    assert done.status_code == 303
    assert done.headers["location"] == "/accounts?done=twitter"

    exchange = platforms.calls[0].request
    sent = {k: v[0] for k, v in parse_qs(str(exchange.body)).items()}
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == "VGhlIGNvZGUgWCBzZW50"
    assert sent["redirect_uri"] == asked["redirect_uri"]
    assert sent["client_id"] == asked["client_id"]
    verifier = sent["code_verifier"]
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"]
    assert "Authorization" not in exchange.headers  # a public client
    granted = body("x_token_granted.json")
    assert (
        platforms.calls[1].request.headers["Authorization"] == f"Bearer {granted['access_token']}"
    )

    credential = stored(web_app, "twitter")
    assert credential is not None
    assert sealer(web_app).open(credential.sealed_access_token) == granted["access_token"]
    assert credential.sealed_refresh_token is not None
    assert sealer(web_app).open(credential.sealed_refresh_token) == granted["refresh_token"]
    assert credential.expires_at == web_app.clock.now() + timedelta(seconds=7200)
    assert credential.account_name == "@UCLanCampusCops"
    assert credential.connected_by == "sgt.admin"

    page = admin.get("/accounts").text
    assert "Connected as <strong>@UCLanCampusCops</strong> by sgt.admin" in page
    assert "Reconnect X" in page
    assert granted["access_token"] not in page and granted["refresh_token"] not in page
    trail = audit_trail(web_app)
    assert [(actor, action) for actor, action, _ in trail] == [
        ("sgt.admin", "channel.connect_started"),
        ("sgt.admin", "channel.connected"),
    ]
    assert trail[1][2]["account"] == "@UCLanCampusCops"
    assert granted["access_token"] not in json.dumps(trail)
    with web_app.db.session() as session:  # the account check is on the cost ledger
        call = session.exec(select(ApiCall)).one()
    assert (call.endpoint, call.purpose, call.cost_micros) == ("/2/users/me", "connect", 10_000)


def test_a_state_works_once(web_app: App, platforms: responses.RequestsMock) -> None:
    admin = client_for(web_app, "sgt.admin")
    asked = start(admin)
    grant(platforms)
    assert come_back(web_app, admin, state=asked["state"], code="c1").status_code == 303
    again = come_back(web_app, admin, state=asked["state"], code="c1")
    assert again.status_code == 400
    assert "start again" in again.text
    assert len(platforms.calls) == 2  # the second time X was not asked


def test_a_state_from_another_sign_in_is_refused_and_spoils_nothing(
    web_app: App, platforms: responses.RequestsMock
) -> None:
    mine = client_for(web_app, "sgt.admin")
    elsewhere = client_for(web_app, "sgt.admin")  # the same admin, another browser
    asked = start(mine)
    refused = come_back(web_app, elsewhere, state=asked["state"], code="c1")
    assert refused.status_code == 400
    assert stored(web_app, "twitter") is None
    grant(platforms)
    assert come_back(web_app, mine, state=asked["state"], code="c1").status_code == 303


def test_a_state_older_than_ten_minutes_is_refused(
    web_app: App, platforms: responses.RequestsMock, clock: FixedClock
) -> None:
    admin = client_for(web_app, "sgt.admin")
    asked = start(admin)
    clock.advance(timedelta(minutes=11))
    admin.get("/accounts")  # keep the console session alive
    late = come_back(web_app, admin, state=asked["state"], code="c1")
    assert late.status_code == 400
    assert "took longer than 10 minutes" in late.text
    assert len(platforms.calls) == 0


def test_the_wrong_x_account_is_refused(web_app: App, platforms: responses.RequestsMock) -> None:
    admin = client_for(web_app, "sgt.admin")
    asked = start(admin)
    grant(platforms, me="x_users_me_personal.json")
    refused = come_back(web_app, admin, state=asked["state"], code="c1")
    assert refused.status_code == 400
    assert "you authorised @sgt_alex_h" in refused.text
    assert "sign in as @UCLanCampusCops" in refused.text
    assert stored(web_app, "twitter") is None
    assert audit_trail(web_app)[-1] == (
        "sgt.admin",
        "channel.connect_failed",
        {"reason": "wrong_account"},
    )


def test_x_refusing_or_the_admin_cancelling_stores_nothing(
    web_app: App, platforms: responses.RequestsMock
) -> None:
    admin = client_for(web_app, "sgt.admin")
    cancelled = come_back(web_app, admin, state=start(admin)["state"], error="access_denied")
    assert cancelled.status_code == 400
    assert "did not authorise the app (access_denied)" in cancelled.text

    platforms.post(X_TOKEN_URL, status=400, json=body("x_token_error_invalid_request.json"))
    refused = come_back(web_app, admin, state=start(admin)["state"], code="too-late")
    assert refused.status_code == 400
    assert "invalid_request" in refused.text
    assert stored(web_app, "twitter") is None
    reasons = [d["reason"] for _, a, d in audit_trail(web_app) if a == "channel.connect_failed"]
    assert reasons == ["denied", "code_refused"]


def test_x_unreachable_says_to_try_again(web_app: App, platforms: responses.RequestsMock) -> None:
    admin = client_for(web_app, "sgt.admin")
    platforms.post(X_TOKEN_URL, body=requests.ConnectionError("no route to host"))
    failed = come_back(web_app, admin, state=start(admin)["state"], code="c1")
    assert failed.status_code == 400
    assert "could not be reached" in failed.text and "try again" in failed.text


def test_reconnecting_replaces_the_token_and_shows_missing_permissions(
    web_app: App, platforms: responses.RequestsMock
) -> None:
    admin = client_for(web_app, "sgt.admin")
    grant(platforms)
    come_back(web_app, admin, state=start(admin)["state"], code="c1")
    platforms.post(X_TOKEN_URL, json=body("x_token_fewer_scopes.json"))
    platforms.get(X_ME_URL, json=body("x_users_me_bot.json"))
    assert come_back(web_app, admin, state=start(admin)["state"], code="c2").status_code == 303

    credential = stored(web_app, "twitter")
    assert credential is not None and credential.version == 2
    fewer = body("x_token_fewer_scopes.json")["access_token"]
    assert sealer(web_app).open(credential.sealed_access_token) == fewer
    assert "X did not grant dm.read, dm.write, media.write" in admin.get("/accounts").text
    assert audit_trail(web_app)[-1][1] == "channel.reconnected"


def test_the_callback_page_escapes_what_it_is_given(web_app: App) -> None:
    page = TestClient(create_app(web_app)).get(
        "/accounts/twitter/callback", params={"state": '"><script>alert(1)</script>'}
    )
    assert page.status_code == 200
    assert "<script>" not in page.text


def test_nothing_is_started_without_the_key_or_the_client_id(
    web_app: App, settings: Settings
) -> None:
    for missing, says in (
        ({"credentials_key": None}, "CAMPUSBOT_CREDENTIALS_KEY is not set"),
        (
            {"twitter": settings.twitter.model_copy(update={"client_id": None})},
            "twitter.client_id is not set",
        ),
    ):
        app = build(settings.model_copy(update=missing), clock=web_app.clock, db=web_app.db)
        admin = client_for(app, "sgt.admin")
        page = admin.post("/accounts/twitter/connect", data={"csrf_token": csrf_of(admin)})
        assert page.status_code == 409
        assert says in page.text
    with web_app.db.session() as session:
        assert session.exec(select(OAuthPending)).first() is None
    assert [d["reason"] for _, _, d in audit_trail(web_app)] == ["no_key", "no_client_id"]


def test_the_page_says_what_is_missing(web_app: App, settings: Settings) -> None:
    bare = settings.model_copy(
        update={
            "credentials_key": None,
            "twitter": settings.twitter.model_copy(update={"client_id": None}),
        }
    )
    page = client_for(build(bare, clock=web_app.clock, db=web_app.db), "sgt.admin").get("/accounts")
    assert "Tokens cannot be stored yet" in page.text
    assert "campusbot credentials new-key" in page.text
    assert "Set <code>twitter.client_id</code>" in page.text


# -- Facebook ---------------------------------------------------------------------------------
def paste(client: TestClient, token: str) -> Any:
    return client.post(
        "/accounts/facebook",
        data={"csrf_token": csrf_of(client), "page_token": token},
        follow_redirects=False,
    )


def test_an_admin_connects_the_page_with_a_checked_page_token(
    web_app: App, platforms: responses.RequestsMock
) -> None:
    platforms.get(GRAPH_ME, json=body("facebook_me_page.json"))
    admin = client_for(web_app, "sgt.admin")
    answer = paste(admin, "  EAAGm0PX4ZCpsBAKZB3qZCkZDpage  ")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/accounts?done=facebook"
    asked = parse_qs(urlsplit(platforms.calls[0].request.url or "").query)
    assert asked == {"fields": ["id,name"], "access_token": ["EAAGm0PX4ZCpsBAKZB3qZCkZDpage"]}

    credential = stored(web_app, "facebook")
    assert credential is not None
    assert sealer(web_app).open(credential.sealed_access_token) == "EAAGm0PX4ZCpsBAKZB3qZCkZDpage"
    assert (credential.account_id, credential.expires_at) == (PAGE_ID, None)
    page = admin.get("/accounts").text
    assert "Connected to <strong>UCLan Campus Police</strong> by sgt.admin" in page
    assert "EAAGm0PX4ZCpsBAKZB3qZCkZDpage" not in page
    assert audit_trail(web_app)[-1][:2] == ("sgt.admin", "channel.connected")
    with web_app.db.engine.connect() as connection:
        raw = connection.execute(text("SELECT sealed_access_token FROM channel_credentials"))
        assert "EAAGm0PX4ZCpsBAKZB3qZCkZDpage" not in raw.scalar_one()


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        ({"json": body("facebook_me_user.json")}, 422, "is for Alex Hughes (id 10229384756120394)"),
        (
            {"status": 400, "json": body("facebook_error_190_unparseable.json")},
            422,
            "Facebook refused this token (190: Invalid OAuth access token",
        ),
        ({"body": requests.ConnectionError("reset")}, 502, "could not be reached"),
    ],
    ids=["a user token", "not a token", "unreachable"],
)
def test_a_bad_page_token_leaves_the_connected_one_in_place(
    web_app: App,
    platforms: responses.RequestsMock,
    answer: dict[str, Any],
    status: int,
    says: str,
) -> None:
    platforms.get(GRAPH_ME, json=body("facebook_me_page.json"))
    admin = client_for(web_app, "sgt.admin")
    assert paste(admin, "EAAgood").status_code == 303
    platforms.get(GRAPH_ME, **answer)
    refused = paste(admin, "EAAbad")
    assert refused.status_code == status
    assert says in refused.text
    credential = stored(web_app, "facebook")
    assert credential is not None
    assert sealer(web_app).open(credential.sealed_access_token) == "EAAgood"
    assert audit_trail(web_app)[-1][1] == "channel.connect_failed"


def test_an_empty_paste_is_refused_before_facebook_is_asked(
    web_app: App, platforms: responses.RequestsMock
) -> None:
    refused = paste(client_for(web_app, "sgt.admin"), "   ")
    assert refused.status_code == 422
    assert "paste the page access token first" in refused.text
    assert len(platforms.calls) == 0
    assert stored(web_app, "facebook") is None
