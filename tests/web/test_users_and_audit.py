"""People and roles, and the audit log: the admin pages."""

from __future__ import annotations

import json
import re

from sqlalchemy import text
from sqlmodel import col, select

from bot import casework
from bot.app import App
from bot.crud import audit
from bot.models import AuditEntry, User
from classifiers.dataset import parse_example
from tests.web.support import PASSWORD, client_for, csrf_of, seed_cases

ONE_OFF = re.compile(r'<span class="password">([^<]+)</span>')


def _user(app: App, name: str) -> User:
    with app.db.session() as session:
        return session.exec(select(User).where(User.username == name)).one()


def _sign_in(app: App, name: str, password: str) -> int:
    client = client_for(app)
    return client.post(
        "/login", data={"username": name, "password": password}, follow_redirects=False
    ).status_code


def test_add_a_person_with_a_one_off_password_shown_once(web_app: App) -> None:
    admin = client_for(web_app, "sgt.admin")
    added = admin.post(
        "/users",
        data={
            "csrf_token": csrf_of(admin),
            "username": "PC.Patel",
            "display_name": "PC Patel",
            "roles": ["officer"],
        },
    )
    assert added.status_code == 201
    found = ONE_OFF.search(added.text)
    assert found is not None and len(found.group(1)) >= 20
    assert added.headers["cache-control"] == "no-store"
    assert _user(web_app, "pc.patel").roles == ["officer"]
    assert _sign_in(web_app, "pc.patel", found.group(1)) == 303
    assert ONE_OFF.search(admin.get("/users").text) is None  # never shown again

    cases: list[tuple[dict[str, str | list[str]], str]] = [
        ({"username": "pc.patel", "roles": ["officer"]}, "already exists"),
        ({"username": "x", "roles": ["officer"]}, "a user name is 2 to 64"),
        ({"username": "<b>bad</b>", "roles": ["officer"]}, "a user name is 2 to 64"),
        ({"username": "pc.nobody"}, "choose at least one role"),
        ({"username": "pc.odd", "roles": ["superuser"]}, "unknown role superuser"),
    ]
    for data, message in cases:
        refused = admin.post("/users", data={"csrf_token": csrf_of(admin), **data})
        assert refused.status_code in (409, 422) and message in refused.text, message


def test_change_roles_reset_a_password_and_disable(web_app: App) -> None:
    admin = client_for(web_app, "sgt.admin")
    csrf = csrf_of(admin)
    officer = client_for(web_app, "pc.khan")
    khan = _user(web_app, "pc.khan").id

    admin.post(f"/users/{khan}/roles", data={"csrf_token": csrf, "roles": ["analyst"]})
    assert _user(web_app, "pc.khan").roles == ["analyst"]
    assert officer.get("/").status_code == 403  # at the next request
    none = admin.post(f"/users/{khan}/roles", data={"csrf_token": csrf})
    assert none.status_code == 409 and "at least one role" in none.text

    reset = admin.post(f"/users/{khan}/password", data={"csrf_token": csrf})
    found = ONE_OFF.search(reset.text)
    assert found is not None and "New password for" in reset.text
    assert officer.get("/calendar", follow_redirects=False).status_code == 303  # sessions ended
    assert _sign_in(web_app, "pc.khan", PASSWORD) == 401
    assert _sign_in(web_app, "pc.khan", found.group(1)) == 303

    admin.post(f"/users/{khan}/disable", data={"csrf_token": csrf})
    assert _user(web_app, "pc.khan").disabled
    assert _sign_in(web_app, "pc.khan", found.group(1)) == 401


def test_an_admin_cannot_lock_themselves_out(web_app: App) -> None:
    admin = client_for(web_app, "sgt.admin")
    csrf = csrf_of(admin)
    me = _user(web_app, "sgt.admin").id
    demoted = admin.post(f"/users/{me}/roles", data={"csrf_token": csrf, "roles": ["officer"]})
    assert demoted.status_code == 409 and "your own admin role" in demoted.text
    disabled = admin.post(f"/users/{me}/disable", data={"csrf_token": csrf})
    assert disabled.status_code == 409 and "cannot disable yourself" in disabled.text
    me_now = _user(web_app, "sgt.admin")
    assert me_now.roles == ["admin"] and not me_now.disabled
    assert admin.post("/users/99999/disable", data={"csrf_token": csrf}).status_code == 404


def test_audit_log_is_newest_first_filtered_and_paged(web_app: App) -> None:
    seeded = seed_cases(web_app)
    with web_app.db.session() as session:
        for _ in range(60):
            casework.assign(
                session, seeded.theft_case, to="pc.jones", by="pc.khan", at=web_app.clock.now()
            )
    admin = client_for(web_app, "sgt.admin")
    page = admin.get("/audit?actor=pc.khan&action=case.assigned")
    assert page.status_code == 200
    assert "60 entries, newest first · page 1 of 2" in page.text
    ids = [int(i) for i in re.findall(r'<td data-label="#">(\d+)</td>', page.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = admin.get("/audit?actor=pc.khan&action=case.assigned&page=2").text
    assert len(re.findall(r'<td data-label="#">', older)) == 10
    by_prefix = admin.get("/audit?action=user.").text
    assert "user.added" in by_prefix and "case.assigned</td>" not in by_prefix
    by_entity = admin.get(f"/audit?entity=case&entity_id={seeded.theft_case}").text
    assert "case.assigned" in by_entity and "user.added</td>" not in by_entity


def test_audit_chain_status_is_shown_and_a_tampered_entry_found(web_app: App) -> None:
    admin = client_for(web_app, "sgt.admin")
    page = admin.get("/audit").text
    assert 'hx-get="/audit/verify" hx-trigger="load"' in page
    intact = admin.get("/audit/verify", headers={"HX-Request": "true"})
    assert "Hash chain intact" in intact.text and "<html" not in intact.text
    with web_app.db.session() as session:
        victim = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).first()
        assert victim is not None
        session.execute(
            text("UPDATE audit_log SET actor = 'someone-else' WHERE id = :id"), {"id": victim.id}
        )
    broken = admin.get("/audit/verify")
    assert "<html" in broken.text  # without htmx: a whole page
    assert f"Hash chain broken at entry {victim.id}" in broken.text
    with web_app.db.session() as session:
        assert not audit.verify(session).ok


def test_admin_downloads_corrections_as_training_examples(web_app: App) -> None:
    seeded = seed_cases(web_app)
    officer = client_for(web_app, "pc.jones")
    officer.post(
        f"/cases/{seeded.theft_case}/messages/{seeded.theft_messages[1]}/correct",
        data={"csrf_token": csrf_of(officer), "scenarios": ["theft"], "intent": "intelligence"},
    )
    admin = client_for(web_app, "sgt.admin")
    download = admin.post("/corrections.jsonl", data={"csrf_token": csrf_of(admin)})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in download.headers["content-disposition"]
    [line] = download.text.splitlines()
    example = parse_example(json.loads(line))
    assert example.intent == "intelligence" and "[phone]" in example.text
