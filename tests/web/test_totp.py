"""The optional second factor, through the console as a person meets it.

Setting it up on /security, signing in in two steps, codes that do not work twice, wrong
codes throttled like passwords, the short-lived second step, admins who must have one, and
an admin's reset for someone who lost their phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import col, select

from bot import migrate
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings
from bot.credentials import new_key
from bot.db import Database
from bot.models import AuditEntry, TotpSecret, User
from bot.web.auth import CHALLENGE_COOKIE, COOKIE
from bot.web.server import create_app
from tests.web.support import PASSWORD, add_people, client_for, csrf_of

SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')  # in groups of four, to read out


def _app(tmp_path: Path, settings: Settings, clock: FixedClock, **web: object) -> Iterator[App]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'console.db'}")
    migrate.upgrade(database)
    configured = settings.model_copy(
        update={
            "credentials_key": SecretStr(new_key()),
            "web": settings.web.model_copy(update=web),
        }
    )
    app = build(configured, clock=clock, db=database)
    add_people(app)
    yield app
    database.dispose()


@pytest.fixture
def console(tmp_path: Path, settings: Settings, clock: FixedClock) -> Iterator[App]:
    yield from _app(tmp_path, settings, clock)


@pytest.fixture
def strict(tmp_path: Path, settings: Settings, clock: FixedClock) -> Iterator[App]:
    """Admins must have a second factor."""
    yield from _app(tmp_path, settings, clock, require_totp_for_admins=True)


def code(secret: str, app: App) -> str:
    return pyotp.TOTP(secret).at(app.clock.now())


def set_up(app: App, username: str) -> str:
    """Through /security, as the person would; returns the secret their app holds."""
    client = client_for(app, username)
    csrf = csrf_of(client)
    started = client.post("/security/totp/start", data={"csrf_token": csrf})
    assert started.status_code == 200  # followed to the page showing the key
    found = SECRET.search(started.text)
    assert found is not None, started.text
    secret = found.group(1).replace(" ", "")
    done = client.post(
        "/security/totp/confirm",
        data={"csrf_token": csrf, "code": code(secret, app)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    return secret


def password_step(app: App, username: str) -> TestClient:
    client = TestClient(create_app(app), headers={"accept": "text/html"})
    answer = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 200, answer.text
    assert "your code" in answer.text
    return client


def actions(app: App) -> list[tuple[str, str, dict[str, object]]]:
    with app.db.session() as session:
        return [
            (e.actor, e.action, e.detail)
            for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
        ]


def test_setting_up_shows_the_key_and_turns_on_only_with_a_right_code(console: App) -> None:
    client = client_for(console, "pc.jones")
    csrf = csrf_of(client)
    assert "Off." in client.get("/security").text

    page = client.post("/security/totp/start", data={"csrf_token": csrf})
    found = SECRET.search(page.text)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    assert "otpauth://totp/UCLan%20Campus%20Police:pc.jones?secret=" + secret in page.text

    wrong = client.post("/security/totp/confirm", data={"csrf_token": csrf, "code": "000000"})
    assert wrong.status_code == 422
    assert "not right" in wrong.text
    assert "Waiting for your first code" in wrong.text  # the key is still there to scan

    right = client.post(
        "/security/totp/confirm",
        data={"csrf_token": csrf, "code": code(secret, console)},
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert "On since" in client.get("/security").text
    assert [a for _, a, _ in actions(console)][-2:] == [
        "user.totp_setup_started",
        "user.totp_enabled",
    ]
    with console.db.engine.connect() as connection:  # sealed, never in clear
        stored = connection.execute(text("SELECT sealed_secret FROM totp_secrets")).scalar_one()
    assert secret not in stored


def test_sign_in_asks_for_the_code_after_the_password(console: App, clock: FixedClock) -> None:
    secret = set_up(console, "pc.jones")
    clock.advance(timedelta(seconds=30))  # the set-up code is used up

    client = password_step(console, "pc.jones")
    assert COOKIE not in client.cookies  # no session yet
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    challenge = client.cookies.get(CHALLENGE_COOKIE)
    assert challenge

    signed_in = client.post(
        "/login/code", data={"code": code(secret, console)}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"
    cookie = signed_in.headers.get_list("set-cookie")
    assert any(c.startswith(f"{COOKIE}=") and "HttpOnly" in c for c in cookie)
    assert client.get("/", follow_redirects=False).status_code == 200
    assert actions(console)[-1] == ("pc.jones", "user.signed_in", {"second_factor": True})


def test_the_challenge_cookie_is_httponly_strict_and_kept_to_the_sign_in_path(
    console: App,
) -> None:
    set_up(console, "pc.jones")
    client = TestClient(create_app(console), headers={"accept": "text/html"})
    answer = client.post("/login", data={"username": "pc.jones", "password": PASSWORD})
    header = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{CHALLENGE_COOKIE}=")
    )
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/login" in header
    assert "Max-Age=300" in header


def test_a_code_does_not_work_twice(console: App, clock: FixedClock) -> None:
    secret = set_up(console, "pc.jones")
    used = code(secret, console)  # the one that confirmed the set-up, still current
    client = password_step(console, "pc.jones")
    again = client.post("/login/code", data={"code": used})
    assert again.status_code == 401
    assert "was used already" in again.text

    clock.advance(timedelta(seconds=30))
    fresh = client.post("/login/code", data={"code": code(secret, console)}, follow_redirects=False)
    assert fresh.status_code == 303
    other = password_step(console, "pc.jones")  # the same code a second time: refused
    assert other.post("/login/code", data={"code": code(secret, console)}).status_code == 401


def test_a_code_from_a_phone_a_step_behind_still_works(console: App, clock: FixedClock) -> None:
    secret = set_up(console, "pc.jones")
    clock.advance(timedelta(seconds=60))
    behind = pyotp.TOTP(secret).at(console.clock.now() - timedelta(seconds=30))
    client = password_step(console, "pc.jones")
    assert (
        client.post("/login/code", data={"code": behind}, follow_redirects=False).status_code == 303
    )


def test_wrong_codes_are_throttled_like_passwords(console: App, clock: FixedClock) -> None:
    secret = set_up(console, "pc.jones")
    clock.advance(timedelta(seconds=30))
    client = password_step(console, "pc.jones")
    for _ in range(console.settings.web.max_failed_sign_ins):
        assert client.post("/login/code", data={"code": "123456"}).status_code == 401
    throttled = client.post("/login/code", data={"code": code(secret, console)})
    assert throttled.status_code == 429
    assert "too many failed sign-ins" in throttled.text
    # the challenge is gone: even the right code needs the password again
    assert client.post("/login/code", data={"code": code(secret, console)}).status_code == 400
    # and the password step itself is throttled for this name too
    again = TestClient(create_app(console), headers={"accept": "text/html"}).post(
        "/login", data={"username": "pc.jones", "password": PASSWORD}
    )
    assert again.status_code == 429


def test_the_code_step_expires_after_five_minutes(console: App, clock: FixedClock) -> None:
    secret = set_up(console, "pc.jones")
    client = password_step(console, "pc.jones")
    clock.advance(timedelta(minutes=5, seconds=30))
    late = client.post("/login/code", data={"code": code(secret, console)})
    assert late.status_code == 400
    assert "expired" in late.text
    assert "User name" in late.text  # back at the sign-in form


def test_a_code_without_a_password_step_is_refused(console: App) -> None:
    set_up(console, "pc.jones")
    client = TestClient(create_app(console), headers={"accept": "text/html"})
    assert client.post("/login/code", data={"code": "123456"}).status_code == 400


def test_people_without_a_second_factor_sign_in_with_the_password_alone(console: App) -> None:
    client_for(console, "pc.khan")  # asserts the 303 straight after the password


def test_an_admin_who_must_have_one_sets_it_up_while_signing_in(strict: App) -> None:
    client_for(strict, "pc.jones")  # not an admin: the password is enough

    client = TestClient(create_app(strict), headers={"accept": "text/html"})
    first = client.post("/login", data={"username": "sgt.admin", "password": PASSWORD})
    assert first.status_code == 200
    found = SECRET.search(first.text)
    assert found is not None and "Set up your second factor first" in first.text
    shown = found.group(1)
    secret = shown.replace(" ", "")

    typo = client.post("/login/code", data={"code": "000000"})
    assert typo.status_code == 401
    assert f'id="totp-secret">{shown}<' in typo.text  # the same key, shown again

    done = client.post("/login/code", data={"code": code(secret, strict)}, follow_redirects=False)
    assert done.status_code == 303
    with strict.db.session() as session:
        admin = session.exec(select(User).where(User.username == "sgt.admin")).one()
        factor = session.exec(select(TotpSecret).where(TotpSecret.user_id == admin.id)).one()
    assert factor.confirmed_at == strict.clock.now()
    assert "On since" in client.get("/security").text


def test_without_the_key_a_second_factor_cannot_be_checked_and_says_why(console: App) -> None:
    set_up(console, "pc.jones")
    keyless = build(
        console.settings.model_copy(update={"credentials_key": None}),
        clock=console.clock,
        db=console.db,
    )
    client = TestClient(create_app(keyless), headers={"accept": "text/html"})
    refused = client.post("/login", data={"username": "pc.jones", "password": PASSWORD})
    assert refused.status_code == 503
    assert "CAMPUSBOT_CREDENTIALS_KEY" in refused.text
    page = client_for(keyless, "pc.khan").get("/security")
    assert "cannot be set up yet" in page.text and "CAMPUSBOT_CREDENTIALS_KEY" in page.text


def test_an_admin_resets_a_lost_second_factor(console: App) -> None:
    set_up(console, "pc.jones")
    with console.db.session() as session:
        jones = session.exec(select(User.id).where(User.username == "pc.jones")).one()
        khan = session.exec(select(User.id).where(User.username == "pc.khan")).one()
    admin = client_for(console, "sgt.admin")
    csrf = csrf_of(admin)
    listed = admin.get("/security")
    assert f'id="factor-{jones}"' in listed.text and "on since" in listed.text

    reset = admin.post(
        f"/security/totp/{jones}/reset", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert reset.status_code == 303
    assert actions(console)[-1] == ("sgt.admin", "user.totp_reset", {"was_on": True})
    client_for(console, "pc.jones")  # the password alone again

    nothing = admin.post(f"/security/totp/{khan}/reset", data={"csrf_token": csrf})
    assert nothing.status_code == 409 and "no second factor" in nothing.text
    assert admin.post("/security/totp/999/reset", data={"csrf_token": csrf}).status_code == 404


def test_a_disabled_person_cannot_finish_signing_in(console: App, clock: FixedClock) -> None:
    secret = set_up(console, "pc.jones")
    clock.advance(timedelta(seconds=30))
    client = password_step(console, "pc.jones")
    with console.db.session() as session:
        jones = session.exec(select(User).where(User.username == "pc.jones")).one()
        jones.disabled = True
        session.add(jones)
    assert client.post("/login/code", data={"code": code(secret, console)}).status_code == 400
