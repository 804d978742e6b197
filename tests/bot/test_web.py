"""The console as a browser sees it: the inbox page, health, headers, safe rendering."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.app import App
from bot.errors import ConfigError
from bot.messages import InboundMessage
from bot.web.server import create_app, run_server
from channels.base import Batch
from tests.bot.test_console_auth import add, sign_in
from tests.conftest import message_line


def signed_in_client(app: App, role: str = "officer") -> TestClient:
    add(app, f"user-{role}", role)
    client = TestClient(create_app(app))
    assert sign_in(client, f"user-{role}") == 303
    return client


def test_inbox_lists_messages_with_script_shown_inert(bot_app: App) -> None:
    hostile = '<script>alert("x")</script> my bike got nicked'
    bot_app.pipeline.run(
        Batch(
            messages=[
                InboundMessage.model_validate(message_line("1", hostile)),
                InboundMessage.model_validate(message_line("2", "fight outside the SU right now")),
            ]
        ),
        source="replay",
    )
    client = signed_in_client(bot_app)
    response = client.get("/")
    assert response.status_code == 200
    body = response.text
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; my bike got nicked" in body
    assert body.index("fight outside the SU") < body.index("my bike got nicked")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_healthz_reports_the_database(bot_app: App) -> None:
    response = TestClient(create_app(bot_app)).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": bot_app.db.dialect}


def test_console_refuses_to_listen_beyond_loopback_without_https(bot_app: App) -> None:
    with pytest.raises(ConfigError, match="secure_cookies"):
        run_server(bot_app, host="0.0.0.0", port=8000)  # noqa: S104


def test_survey_links_redirect_and_count_clicks(bot_app: App) -> None:
    from datetime import UTC, datetime

    from sqlmodel import select

    from bot.models import SurveyClick, SurveyLink

    with bot_app.db.session() as session:
        session.add(
            SurveyLink(
                code="abc123",
                campaign="bikes",
                channel="twitter",
                target_url="https://forms.example.org/bikes",
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
    client = TestClient(create_app(bot_app), follow_redirects=False)
    for _ in range(3):
        response = client.get("/s/abc123")
        assert response.status_code == 302
        assert response.headers["location"] == "https://forms.example.org/bikes"
    assert client.get("/s/nope99").status_code == 404
    assert client.get("/s/<script>").status_code == 404
    with bot_app.db.session() as session:
        assert len(session.exec(select(SurveyClick)).all()) == 3


def test_reports_page_shows_the_same_report(bot_app: App) -> None:
    bot_app.pipeline.run(
        Batch(
            messages=[
                InboundMessage.model_validate(
                    message_line("1", "my bike was stolen", received_at="2026-11-20T10:00:00+00:00")
                )
            ]
        ),
        source="replay",
    )
    client = signed_in_client(bot_app, "analyst")
    page = client.get("/reports", params={"from": "2026-11-20", "to": "2026-11-21"})
    assert page.status_code == 200
    assert "Inbound messages per day and scenario" in page.text and "theft" in page.text
    assert (
        client.get("/reports", params={"from": "2026-11-21", "to": "2026-11-20"}).status_code == 422
    )
    assert client.get("/reports", params={"from": "not-a-date"}).status_code == 422


def test_console_answers_only_to_loopback_host_names(bot_app: App) -> None:
    client = TestClient(create_app(bot_app))
    assert client.get("/healthz", headers={"host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/", headers={"host": "evil.example.com"}).status_code == 400
