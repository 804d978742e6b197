"""The JSON API: bearer tokens, roles, the casework and approval rules, and its schema."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from sqlmodel import select

from bot import migrate
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings
from bot.crud import api_tokens, users
from bot.db import Database
from bot.messages import InboundMessage
from bot.models import AuditEntry, Case, Post, PostKind, PostStatus
from bot.web.api import create_api
from channels.base import Batch
from tests.conftest import NOW, message_line


def _people(app: App) -> dict[str, str]:
    """A token each for an officer, a comms officer and an analyst."""
    tokens = {}
    with app.db.session() as session:
        for name, role in (("pc.jones", "officer"), ("cara", "comms_officer"), ("ana", "analyst")):
            users.add(session, username=name, display_name=name, roles=[role], at=NOW, by="admin")
            tokens[name] = api_tokens.create(
                session, username=name, name="test", by="admin", at=NOW
            )
    return tokens


def _case(app: App, text: str = "someone nicked my bike outside the library") -> int:
    app.pipeline.ingest(
        Batch(messages=[InboundMessage.model_validate(message_line("1", text))]), source="twitter"
    )
    app.pipeline.process_pending()
    with app.db.session() as session:
        case = session.exec(select(Case)).one()
        assert case.id is not None
        return case.id


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(bot_app: App) -> tuple[App, TestClient, dict[str, str]]:
    return bot_app, TestClient(create_api(bot_app)), _people(bot_app)


def test_no_token_a_forged_token_and_a_revoked_token_are_refused(
    api: tuple[App, TestClient, dict[str, str]],
) -> None:
    app, client, tokens = api
    assert client.get("/cases").status_code == 401
    assert client.get("/cases").headers["www-authenticate"] == "Bearer"
    real = tokens["pc.jones"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    assert client.get("/cases", headers=_auth(forged)).status_code == 401
    assert client.get("/cases", headers=_auth("cbt_1_' OR 1=1 --")).status_code == 401
    assert client.get("/cases", headers=_auth(real)).status_code == 200
    token_id = int(real.split("_")[1])
    with app.db.session() as session:
        api_tokens.revoke(session, token_id, by="admin", at=NOW)
    assert client.get("/cases", headers=_auth(real)).status_code == 401


def test_roles_decide_what_a_token_may_do(api: tuple[App, TestClient, dict[str, str]]) -> None:
    app, client, tokens = api
    case_id = _case(app)
    assert client.get("/cases", headers=_auth(tokens["ana"])).status_code == 403
    assert client.get(f"/cases/{case_id}", headers=_auth(tokens["cara"])).status_code == 403
    assert client.get("/posts", headers=_auth(tokens["pc.jones"])).status_code == 403
    assert client.get("/posts", headers=_auth(tokens["cara"])).status_code == 200


def test_an_officer_works_a_case_through_the_api(
    api: tuple[App, TestClient, dict[str, str]],
) -> None:
    app, client, tokens = api
    case_id = _case(app)
    officer = _auth(tokens["pc.jones"])
    detail = client.get(f"/cases/{case_id}", headers=officer).json()
    assert detail["case"]["scenarios"] == ["theft"]
    assert detail["messages"][0]["text"] == "someone nicked my bike outside the library"
    assigned = client.post(f"/cases/{case_id}/assign", json={"to": "pc.jones"}, headers=officer)
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "pc.jones"
    replied = client.post(
        f"/cases/{case_id}/replies",
        json={"text": "Sorry to hear that - please report it online with the frame number."},
        headers=officer,
    )
    assert replied.status_code == 201 and replied.json()["created_by"] == "pc.jones"
    message_id = detail["messages"][0]["id"]
    corrected = client.post(
        f"/messages/{message_id}/correction",
        json={"scenarios": ["theft"], "urgent": False, "risk": False, "intent": "report_incident"},
        headers=officer,
    )
    assert corrected.status_code == 201
    escalated = client.post(f"/cases/{case_id}/escalate", json={}, headers=officer)
    assert escalated.status_code == 200
    closed = client.post(f"/cases/{case_id}/close", headers=officer)
    assert closed.json()["status"] == "closed"
    refused = client.post(f"/cases/{case_id}/assign", json={"to": "pc.jones"}, headers=officer)
    assert refused.status_code == 409 and "closed" in refused.json()["detail"]
    assert client.get("/cases/999999", headers=officer).status_code == 404
    bad = client.post(
        f"/messages/{message_id}/correction",
        json={"scenarios": ["arson"], "urgent": False, "risk": False, "intent": "other"},
        headers=officer,
    )
    assert bad.status_code == 422  # an unknown scenario is refused, naming the field
    with app.db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEntry)) if e.actor == "pc.jones"]
    assert {"case.assigned", "case.escalated", "case.closed"} <= set(actions)


def test_approval_through_the_api_keeps_the_workflow_rules(
    api: tuple[App, TestClient, dict[str, str]],
) -> None:
    app, client, tokens = api
    with app.db.session() as session:
        for author in ("cara", "pc.jones"):
            session.add(
                Post(
                    kind=PostKind.CAMPAIGN,
                    channel="twitter",
                    campaign=f"bikes-{author}",
                    text="Lock your bike with a D-lock",
                    status=PostStatus.PENDING_APPROVAL,
                    scheduled_for=NOW + timedelta(days=1),
                    created_by=author,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    comms = _auth(tokens["cara"])
    pending = client.get("/posts", params={"status": "pending_approval"}, headers=comms).json()
    own = next(p for p in pending if p["created_by"] == "cara")
    other = next(p for p in pending if p["created_by"] == "pc.jones")
    refused = client.post(f"/posts/{own['id']}/approve", headers=comms)
    assert refused.status_code == 409 and "own" in refused.json()["detail"]
    assert client.post(f"/posts/{other['id']}/approve", headers=comms).json()["status"] == (
        "approved"
    )
    assert (
        client.post(f"/posts/{own['id']}/reject", json={"note": ""}, headers=comms).status_code
        == 422
    )


# -- the schema, attacked ----------------------------------------------------------------------


def test_the_api_answers_every_generated_request_within_its_schema(
    tmp_path: Path, settings: Settings
) -> None:
    """schemathesis against /openapi.json: no input makes the API fail (5xx) or answer
    outside its own schema, with a valid token (so requests get past authentication)."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'api.db'}")
    migrate.upgrade(db)
    app = build(settings, clock=FixedClock(NOW), db=db)
    token = _people(app)["pc.jones"]
    _case(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_api(app))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def attack(case: Any) -> None:  # a schemathesis Case
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"})

        attack()
    db.dispose()


def test_the_console_serves_the_api_and_only_the_apis_schema(bot_app: App) -> None:
    from bot.web.server import create_app

    client = TestClient(create_app(bot_app))
    tokens = _people(bot_app)
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert set(schema.json()["paths"]) >= {"/cases", "/cases/{case_id}", "/posts"}
    assert client.get("/openapi.json").status_code == 404  # the console publishes none
    listed = client.get("/api/v1/cases", headers=_auth(tokens["pc.jones"]))
    assert listed.status_code == 200
    assert listed.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/v1/cases").status_code == 401
