"""Signing in to the console: passwords, sessions, roles, CSRF, throttling."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import App
from bot.cli import main
from bot.clock import FixedClock
from bot.crud import users
from bot.web.auth import COOKIE, set_password
from bot.web.server import create_app

PASSWORD = "correct horse battery staple"


def add(app: App, name: str, *roles: str) -> None:
    with app.db.session() as session:
        users.add(session, username=name, roles=list(roles), at=app.clock.now(), by="admin")
        set_password(session, username=name, password=PASSWORD, at=app.clock.now(), by="admin")


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    return client.post(
        "/login", data={"username": name, "password": password}, follow_redirects=False
    ).status_code


@pytest.fixture
def client(bot_app: App) -> TestClient:
    add(bot_app, "pc.jones", "officer")
    add(bot_app, "ana", "analyst")
    return TestClient(create_app(bot_app))


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/reports", follow_redirects=False).status_code == 303
    assert client.get("/healthz").status_code == 200  # public, reveals nothing


def test_officer_signs_in_sees_the_inbox_and_signs_out(client: TestClient) -> None:
    assert sign_in(client, "pc.jones") == 303
    cookie = client.cookies.get(COOKIE)
    assert cookie is not None
    page = client.get("/")
    assert page.status_code == 200 and "Triage inbox" in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403  # no CSRF
    assert (
        client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    )
    client.cookies.set(COOKIE, cookie)  # the old cookie no longer works
    assert client.get("/", follow_redirects=False).status_code == 303


def test_session_cookie_is_http_only_and_strict(client: TestClient) -> None:
    response = client.post(
        "/login", data={"username": "pc.jones", "password": PASSWORD}, follow_redirects=False
    )
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header


def test_analyst_reads_reports_but_not_the_inbox(client: TestClient) -> None:
    assert sign_in(client, "ana") == 303
    assert client.get("/reports").status_code == 200
    assert client.get("/").status_code == 403


def test_wrong_password_is_refused_without_saying_which(client: TestClient) -> None:
    first = client.post("/login", data={"username": "pc.jones", "password": "nope"})
    second = client.post("/login", data={"username": "nobody", "password": "nope"})
    assert first.status_code == second.status_code == 401
    assert "wrong user name or password" in first.text and "wrong user name or password" in (
        second.text
    )


def test_sign_in_is_throttled_after_repeated_failures(client: TestClient) -> None:
    for _ in range(5):
        assert sign_in(client, "pc.jones", "guess") == 401
    throttled = client.post("/login", data={"username": "pc.jones", "password": PASSWORD})
    assert throttled.status_code == 429 and "too many failed sign-ins" in throttled.text


def test_an_idle_session_ends(bot_app: App, client: TestClient) -> None:
    assert sign_in(client, "pc.jones") == 303
    assert client.get("/").status_code == 200
    clock = bot_app.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(minutes=31))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_users_cli_sets_passwords_from_stdin(
    settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        main(
            [
                "--config",
                str(config),
                "users",
                "add",
                "cara",
                "--role",
                "comms_officer",
                "--password-stdin",
            ]
        )
        == 0
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(config), "users", "reset-password", "cara"]) == 1
