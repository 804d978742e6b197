"""The vendored htmx, and pages that the CSP (script-src 'self', no inline style) allows."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from bot.app import App
from bot.templating import TEMPLATES_DIR
from bot.web.render import HTMX_VERSION
from bot.web.server import STATIC_DIR
from tests.web.support import client_for, seed_cases

# htmx.org 2.0.11 from the npm registry, dist/htmx.min.js, unchanged (0BSD licence)
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
STYLE = re.compile(r"<style|\sstyle\s*=|hx-on|javascript:", re.IGNORECASE)


def test_htmx_is_the_published_file_with_its_licence() -> None:
    vendored = STATIC_DIR / "htmx.min.js"
    assert hashlib.sha256(vendored.read_bytes()).hexdigest() == HTMX_SHA256
    assert HTMX_VERSION == "2.0.11"
    assert "Zero-Clause BSD" in (STATIC_DIR / "htmx.LICENSE.txt").read_text()


def test_no_template_carries_inline_script_or_style() -> None:
    templates = sorted((Path(TEMPLATES_DIR) / "web").glob("*.html"))
    assert len(templates) >= 10
    for path in templates:
        source = path.read_text()
        assert not INLINE_SCRIPT.search(source), path.name
        assert not EVENT_HANDLER.search(source), path.name
        assert not STYLE.search(source), path.name


def test_static_files_are_served_from_here_and_may_be_cached(web_app: App) -> None:
    client = client_for(web_app)
    script = client.get(f"/static/htmx.min.js?v={HTMX_VERSION}")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert script.headers["cache-control"] == "private, max-age=3600"
    assert hashlib.sha256(script.content).hexdigest() == HTMX_SHA256
    assert client.get("/static/console.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/../server.py").status_code == 404


def test_every_page_is_sent_with_the_strict_policy(web_app: App) -> None:
    seeded = seed_cases(web_app)
    client = client_for(web_app, "sgt.admin")
    for path in ("/", f"/cases/{seeded.risk_case}", "/approvals", "/calendar", "/users", "/audit"):
        page = client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe" not in policy, path
        assert page.headers["cache-control"] == "no-store", path
        assert '<script src="/static/htmx.min.js' in page.text
        assert not INLINE_SCRIPT.search(page.text), path
    report = client.get("/reports")
    assert "script-src" not in report.headers["content-security-policy"]  # no script at all
    assert "default-src 'none'" in report.headers["content-security-policy"]
