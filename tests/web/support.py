"""Building blocks for the console tests: people of every role, cases, posts, a photo."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta

from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import col, select

from bot import posts as workflow
from bot.app import App
from bot.crud import users
from bot.messages import InboundMessage
from bot.models import Case, Message, Post, PostStatus
from bot.web.auth import set_password
from bot.web.server import create_app
from channels.base import Batch
from tests.conftest import message_line

PASSWORD = "correct horse battery staple"
# One person per role (two for the roles that work in pairs: approving, assigning)
PEOPLE = {
    "pc.jones": ["officer"],
    "pc.khan": ["officer"],
    "cara.comms": ["comms_officer"],
    "dev.comms": ["comms_officer"],
    "sgt.admin": ["admin"],
    "ana.lyst": ["analyst"],
}
BY_ROLE = {
    "officer": "pc.jones",
    "comms_officer": "cara.comms",
    "admin": "sgt.admin",
    "analyst": "ana.lyst",
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_people(app: App) -> None:
    with app.db.session() as session:
        for name, roles in PEOPLE.items():
            users.add(
                session,
                username=name,
                roles=roles,
                at=app.clock.now(),
                by="setup",
                display_name=name.replace(".", " ").title(),
            )
            set_password(session, username=name, password=PASSWORD, at=app.clock.now(), by="setup")


def client_for(app: App, username: str | None = None) -> TestClient:
    """A browser-like client (it asks for HTML), signed in as ``username`` if given."""
    client = TestClient(create_app(app), headers={"accept": "text/html"})
    if username is not None:
        response = client.post(
            "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient) -> str:
    """The session's CSRF token, as every page's sign-out form carries it."""
    page = client.get("/calendar")
    found = CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


@dataclass(frozen=True)
class Seeded:
    risk_case: int  # P1: risk to life
    urgent_case: int  # P2: happening now
    theft_case: int  # P3: a report, two messages
    theft_messages: tuple[int, int]


def seed_cases(app: App) -> Seeded:
    """Three conversations through the real pipeline (keyword classifier)."""
    lines = [
        message_line("t1", "my bike got nicked from outside the library", author={"id": "u-bike"}),
        message_line(
            "t2",
            "it was a blue Carrera, call me on 07700 900123",
            author={"id": "u-bike"},
            conversation_id="conv-t1",
            received_at="2026-11-21T11:05:00+00:00",
        ),
        message_line("u1", "fight outside the SU right now", author={"id": "u-fight"}),
        message_line(
            "r1",
            "my flatmate says she wants to kill herself tonight",
            author={"id": "u-risk"},
            received_at="2026-11-21T10:00:00+00:00",
        ),
    ]
    app.pipeline.run(
        Batch(messages=[InboundMessage.model_validate(line) for line in lines]), source="replay"
    )
    with app.db.session() as session:
        cases = {c.author_id: c.id for c in session.exec(select(Case)).all() if c.id is not None}
        theft = session.exec(
            select(Message.id).where(Message.author_id == "u-bike").order_by(col(Message.id))
        ).all()
    return Seeded(
        risk_case=cases["u-risk"],
        urgent_case=cases["u-fight"],
        theft_case=cases["u-bike"],
        theft_messages=(theft[0] or 0, theft[1] or 0),
    )


def seed_post(
    app: App,
    *,
    by: str = "cara.comms",
    channel: str = "twitter",
    text: str = "Lock your bike with two locks: most thefts on campus take under a minute.",
    submit: bool = True,
    days_ahead: int = 2,
) -> int:
    now = app.clock.now()
    with app.db.session() as session:
        post = Post(
            channel=channel,
            campaign="security-of-property",
            text=text,
            status=PostStatus.DRAFT,
            scheduled_for=now + timedelta(days=days_ahead),
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        session.add(post)
        session.flush()
        assert post.id is not None
        if submit:
            workflow.submit(session, post.id, by=by, at=now)
        return post.id


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def attach_photo(app: App, message_id: int) -> str:
    """Store a real PNG and attach it to the message; returns its sha256."""
    with app.db.session() as session:
        item = app.media.receive(session, [png_bytes()], actor="setup", at=app.clock.now())
        app.media.attach(session, item, message_id=message_id, actor="setup", at=app.clock.now())
        return item.sha256
