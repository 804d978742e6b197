"""The console in a real browser: Debian's Chromium driven by Playwright, against a real
uvicorn server (`campusbot serve`) on a free port with its own SQLite database.

These prove what TestClient cannot: htmx loads and works under the CSP (no violation is
reported), the live refresh keeps the filters, the forms work by clicking, and the pages
fit a phone. Set CAMPUSBOT_SCREENSHOTS=1 to keep screenshots in tests/web/screenshots/.
Outside CI a missing Chromium skips these tests, saying why; under CI=true it fails them.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlmodel import col, select

from bot import migrate
from bot.app import App, build
from bot.config import load_settings
from bot.db import Database
from bot.messages import InboundMessage
from bot.models import Case, Correction, OutboundMessage, Post, PostStatus, ReplyKind
from channels.base import Batch
from tests.conftest import message_line
from tests.web.support import PASSWORD, add_people, seed_post

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "screenshots"
PHONE = {"width": 390, "height": 844}


def _require_chromium() -> None:
    if Path(CHROMIUM).is_file():
        return
    reason = (
        f"{CHROMIUM} is not installed: the browser tests drive Debian's chromium package "
        "(bash scripts/system-deps installs it)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run them")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Console:
    url: str
    app: App  # the same database, for seeding and checking from the test

    def case_id(self, author_id: str) -> int:
        with self.app.db.session() as session:
            case = session.exec(select(Case).where(Case.author_id == author_id)).one()
            assert case.id is not None
            return case.id

    def reference(self, author_id: str) -> str:
        with self.app.db.session() as session:
            case = session.exec(select(Case).where(Case.author_id == author_id)).one()
            assert case.reference is not None
            return case.reference

    def receive(self, *lines: dict[str, object]) -> None:
        self.app.pipeline.run(
            Batch(messages=[InboundMessage.model_validate(line) for line in lines]),
            source="replay",
        )


def _ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """`campusbot serve` in a child process, on a migrated SQLite database with people of
    every role and three conversations received minutes ago."""
    _require_chromium()
    config = tmp_path / "config.yaml"
    database = tmp_path / "console.db"
    config.write_text(
        f"database_url: sqlite:///{database}\n"
        f"var_dir: {tmp_path / 'var'}\n"
        "timezone: Europe/London\nlog_level: WARNING\nclassifier:\n  kind: keywords\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSBOT_")}
    settings = load_settings(config)
    db = Database.from_url(settings.database_url)
    migrate.upgrade(db)
    app = build(settings, db=db)
    add_people(app)
    served = Console(url="", app=app)
    served.receive(
        message_line("b1", "my bike got nicked from the library racks", author={"id": "u-bike"},
                     received_at=_ago(30)),
        message_line("f1", "fight outside the SU right now", author={"id": "u-fight"},
                     received_at=_ago(20)),
        message_line("r1", "my flatmate says she wants to kill herself tonight",
                     author={"id": "u-risk"}, received_at=_ago(40)),
    )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))",
            "--config",
            str(config),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served.url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                output = server.stdout.read().decode() if server.stdout else ""
                pytest.fail(f"campusbot serve exited with {server.returncode}:\n{output}")
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("campusbot serve did not answer /healthz within 30 s")
            time.sleep(0.2)
        yield served
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        db.dispose()


@pytest.fixture
def browser() -> Iterator[Browser]:
    _require_chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, **context: Any) -> tuple[Page, list[str]]:
    """A fresh browser profile; the list collects every console error (CSP reports too)."""
    page = browser.new_context(**context).new_page()
    problems: list[str] = []
    page.on(
        "console",
        # a failed load is reported below with its URL; a refused form (409) is expected
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    return page, problems


def sign_in(page: Page, console: Console, username: str) -> None:
    page.goto(console.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("CAMPUSBOT_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_officer_replies_to_the_p1_case_and_corrects_its_tags(
    console: Console, browser: Browser
) -> None:
    page, problems = open_page(browser)
    sign_in(page, console, "pc.jones")
    rows = page.locator("#inbox-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_class("P1")  # risk to life on top, then urgent
    expect(rows.nth(1)).to_have_class("P2")
    expect(rows.first).to_contain_text("risk to life")
    screenshot(page, "inbox")

    reference = console.reference("u-risk")
    rows.first.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(page.locator(".conversation")).to_contain_text("wants to kill herself tonight")

    # choosing a canned response fills the reply box through htmx, with no reload
    page.get_by_label("Canned response").select_option(label="Wellbeing and support")
    expect(page.get_by_label(re.compile("Your reply"))).to_have_value(re.compile(reference))
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Reply queued")
    expect(page.locator(".conversation li.ours").last).to_contain_text("Reply by pc.jones")

    page.get_by_text("Correct the classification").first.click()
    page.get_by_label("mental health").first.check()
    page.get_by_label("Intent").first.select_option("ask_advice")
    page.get_by_role("button", name="Save correction").first.click()
    expect(page.get_by_role("status")).to_contain_text("Correction saved")
    expect(page.locator(".conversation")).to_contain_text("Corrected by pc.jones")
    screenshot(page, "case")

    case_id = console.case_id("u-risk")
    with console.app.db.session() as session:
        reply = session.exec(
            select(OutboundMessage).where(
                OutboundMessage.case_id == case_id, OutboundMessage.kind == ReplyKind.HUMAN
            )
        ).one()
        correction = session.exec(select(Correction)).one()
    assert reply.created_by == "pc.jones" and reference in reply.text
    assert "mental_health" in correction.scenarios and correction.intent == "ask_advice"
    assert problems == []  # no CSP violation, no script error


def test_the_inbox_refreshes_itself_and_keeps_its_filters(
    console: Console, browser: Browser
) -> None:
    page, problems = open_page(browser)
    sign_in(page, console, "pc.khan")
    page.get_by_label("Risk to life").check()
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#inbox-table tbody tr")
    expect(rows).to_have_count(1)
    console.receive(
        message_line("r2", "I want to end it all, I can't go on", author={"id": "u-new"},
                     received_at=_ago(1)),
        message_line("n2", "someone stole my laptop", author={"id": "u-other"},
                     received_at=_ago(1)),
    )  # fmt: skip
    expect(rows).to_have_count(2, timeout=25_000)  # the 15-second refresh, no reload
    expect(page.locator("#inbox-table")).to_contain_text(console.reference("u-new"))
    expect(page.locator("#inbox-table")).not_to_contain_text("stole my laptop")
    assert "risk=1" in page.url
    assert problems == []


def test_a_second_comms_officer_approves_a_post(console: Console, browser: Browser) -> None:
    post_id = seed_post(console.app, by="cara.comms")
    author, author_problems = open_page(browser)
    sign_in(author, console, "cara.comms")
    author.goto(console.url + "/approvals")
    author.get_by_role("button", name=f"Approve post {post_id}").click()
    expect(author.get_by_role("alert")).to_contain_text("nobody approves their own post")

    colleague, problems = open_page(browser)
    sign_in(colleague, console, "dev.comms")
    colleague.get_by_role("link", name="Approvals").click()
    card = colleague.locator(f"#post-{post_id}")
    expect(card).to_contain_text("of 280 weighted characters")
    screenshot(colleague, "approvals")
    card.get_by_role("button", name=f"Approve post {post_id}").click()
    expect(colleague.get_by_role("status")).to_contain_text("Approved")
    expect(colleague.locator(f"#post-{post_id}")).to_have_count(0)
    with console.app.db.session() as session:
        post = session.get(Post, post_id)
        assert post is not None and post.status == PostStatus.APPROVED
    assert problems == [] and author_problems == []


def test_an_analyst_has_no_approve_button_and_the_action_is_refused(
    console: Console, browser: Browser
) -> None:
    post_id = seed_post(console.app, by="cara.comms")
    page, _ = open_page(browser)
    sign_in(page, console, "ana.lyst")
    expect(page).to_have_url(re.compile(r"/reports$"))  # analysts land on the reports
    page.goto(console.url + "/calendar")
    expect(page.get_by_role("link", name="Approvals")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Approve"))).to_have_count(0)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    refused = page.request.post(
        f"{console.url}/approvals/{post_id}/approve", form={"csrf_token": token or ""}
    )
    assert refused.status == 403
    response = page.goto(console.url + "/approvals")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    with console.app.db.session() as session:
        status = session.exec(select(Post.status).where(col(Post.id) == post_id)).one()
    assert status == PostStatus.PENDING_APPROVAL


def test_the_console_fits_a_phone(console: Console, browser: Browser) -> None:
    page, problems = open_page(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(page, console, "pc.jones")

    def fits() -> bool:
        width: int = page.evaluate("document.documentElement.scrollWidth")
        return width <= PHONE["width"]

    first = page.locator("#inbox-table tbody tr").first
    expect(first).to_contain_text("P1")
    expect(page.locator("#inbox-table thead")).not_to_be_in_viewport()  # rows are cards
    box = first.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    assert fits()
    screenshot(page, "phone-inbox")
    first.get_by_role("link").first.click()
    expect(page.get_by_role("button", name="Send reply")).to_be_visible()
    assert fits()
    screenshot(page, "phone-case")
    assert problems == []
