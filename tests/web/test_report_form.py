"""The public /report form and /report/add, end to end over HTTP, with hostile input."""

from __future__ import annotations

import asyncio
import io
import re
import tracemalloc
from collections.abc import AsyncIterator, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from bot.app import App
from bot.incident_reports.flags import SAFEGUARDING_TAG
from bot.models import (
    Case,
    CaseStatus,
    IncidentReport,
    MediaItem,
    Message,
    MessageAttachment,
    OutboundMessage,
    OutboxStatus,
    ReportEntry,
)
from bot.web import report_form
from bot.web.server import create_app
from tests.bot.test_incident_reports import approve_all, dm, last_reply, say
from tests.conftest import NOW
from tests.web.support import PASSWORD

MB = 1024 * 1024
GB = 1024 * MB
TOKEN = re.compile(r'name="token" value="([^"]+)"')
REFERENCE = re.compile(r'class="reference">(UCC-\d{4}-\d{6})<')
CODE = re.compile(r'class="code">([A-Z0-9]{4}-[A-Z0-9]{4})<')
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(50) + b"This program cannot be run"
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (20, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def web_for(app: App) -> FastAPI:
    """The console app with the report form included, as create_app will include it."""
    web = create_app(app)
    web.include_router(report_form.router(app))
    return web


def client_for(app: App) -> TestClient:
    return TestClient(web_for(app), headers={"accept": "text/html"})


def token_of(client: TestClient, path: str = "/report") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = TOKEN.search(page.text)
    assert found is not None
    return found.group(1)


def post_form(
    client: TestClient,
    path: str,
    data: dict[str, str],
    files: Sequence[tuple[str, bytes, str]] = (),
) -> httpx2.Response:
    """As a browser sends it: the token first, then the fields, then the files."""
    return client.post(
        path,
        data=data,
        files=[("files", (name, body, kind)) for name, body, kind in files] or None,
    )


def send(
    client: TestClient,
    token: str,
    *,
    files: Sequence[tuple[str, bytes, str]] = (),
    **fields: str,
) -> httpx2.Response:
    data = {"token": token, "kind": "incident", "anonymous": "no", **fields}
    return post_form(client, "/report", data, files)


def file_report(client: TestClient, **fields: Any) -> tuple[str, str, httpx2.Response]:
    response = send(client, token_of(client), **fields)
    assert response.status_code == 200, response.text
    reference, code = REFERENCE.search(response.text), CODE.search(response.text)
    assert reference is not None and code is not None, response.text
    return reference.group(1), code.group(1), response


def nothing_stored(app: App) -> bool:
    with app.db.session() as session:
        return (
            session.exec(select(Message)).first() is None
            and session.exec(select(IncidentReport)).first() is None
        )


@pytest.fixture
def report_app(console: App) -> App:
    approve_all(console)
    return console


# -- the happy path ---------------------------------------------------------------------------


def test_a_student_files_a_report_with_a_photo_and_an_officer_sees_the_case(
    report_app: App,
) -> None:
    client = client_for(report_app)
    page = client.get("/report")
    assert 'name="viewport"' in page.text
    assert "<script" not in page.text  # works with no JavaScript at all
    assert "script-src 'self'" in page.headers["content-security-policy"]
    image = photo()
    reference, _, received = file_report(
        client,
        what="Someone stole my purse from my bag",
        where="Library, second floor",
        when="today about 3pm",
        who="man in a grey hoodie",
        contact="Sam, 07700 900123",
        files=[("IMG_0001.jpg", image, "image/jpeg")],
    )
    for must in ("not monitored 24/7", "999", "101", "0800 555 111"):
        assert must in received.text
    assert report_app.settings.account.online_report_url in received.text
    with report_app.db.session() as session:
        message = session.exec(select(Message)).one()
        case = session.exec(select(Case)).one()
        report = session.exec(select(IncidentReport)).one()
        attachment = session.exec(select(MessageAttachment)).one()
        acks = session.exec(select(OutboundMessage)).all()
    assert (message.channel, message.private, message.case_id) == ("web", True, case.id)
    assert case.reference == reference
    assert (case.scenarios, case.priority) == (["theft"], "P3")
    assert "Where: Library, second floor" in message.text
    assert "Contact: Sam, 07700 900123" in message.text
    assert (report.case_id, report.anonymous, report.filed_reason) == (case.id, False, "web")
    assert attachment.media_type == "image/jpeg" and attachment.sha256 is not None
    # The automatic acknowledgement counts as delivered: the page showed the signposting.
    assert {a.status for a in acks} == {OutboxStatus.SENT}

    officer = client_for(report_app)
    officer.post("/login", data={"username": "pc.jones", "password": PASSWORD})
    assert reference in officer.get("/").text
    case_page = officer.get(f"/cases/{case.id}").text
    assert "Someone stole my purse from my bag" in case_page
    assert f"/cases/{case.id}/media/{attachment.sha256}" in case_page


def test_an_anonymous_report_keeps_no_contact_details(report_app: App) -> None:
    client = client_for(report_app)
    file_report(client, what="dealing from flat 3 every night", anonymous="yes",
                kind="intelligence", contact="Jo 07700 900456")  # fmt: skip
    with report_app.db.session() as session:
        message = session.exec(select(Message)).one()
        report = session.exec(select(IncidentReport)).one()
    assert "07700 900456" not in message.text
    assert (report.anonymous, report.kind) == (True, "intelligence")


def test_the_same_form_sent_twice_is_one_report_with_the_same_answer(report_app: App) -> None:
    client = client_for(report_app)
    token = token_of(client)
    first = send(client, token, what="my bike was stolen")
    again = send(client, token, what="my bike was stolen")
    assert REFERENCE.findall(first.text) == REFERENCE.findall(again.text)
    assert CODE.findall(first.text) == CODE.findall(again.text)
    assert "already been sent" in again.text
    with report_app.db.session() as session:
        assert len(session.exec(select(Message)).all()) == 1


# -- hostile input ----------------------------------------------------------------------------


def test_a_program_renamed_as_a_photo_is_refused_and_the_text_is_kept(web_app: App) -> None:
    client = client_for(web_app)
    response = send(
        client,
        token_of(client),
        what="they smashed my window",
        files=[("holiday.jpg", WINDOWS_EXE, "image/jpeg")],
    )
    assert response.status_code == 422
    assert "holiday.jpg: not a photo or video (it looks like a Windows program)" in response.text
    assert ">they smashed my window</textarea>" in response.text
    assert nothing_stored(web_app)
    with web_app.db.session() as session:
        assert session.exec(select(MediaItem)).first() is None


def test_a_malformed_photo_is_refused(web_app: App) -> None:
    client = client_for(web_app)
    broken = photo()[:200] + bytes(300)
    response = send(
        client, token_of(client), what="x", files=[("broken.jpg", broken, "image/jpeg")]
    )
    assert response.status_code == 422
    assert "damaged or incomplete" in response.text
    assert nothing_stored(web_app)


def test_more_files_than_allowed_are_refused(web_app: App) -> None:
    client = client_for(web_app)
    many = [(f"p{i}.jpg", photo(), "image/jpeg") for i in range(6)]
    response = send(client, token_of(client), what="x", files=many)
    assert response.status_code == 422
    assert "at most 5 photos or videos" in response.text
    assert nothing_stored(web_app)


class EndlessUpload:
    """A 2 GB multipart body made on the fly, counting what the server pulled."""

    def __init__(self, token: str, total: int = 2 * GB) -> None:
        self.boundary = "----campusbotTestBoundary"
        self.token = token
        self.total = total
        self.sent = 0

    async def body(self) -> AsyncIterator[bytes]:
        head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n'
            f"{self.token}\r\n--{self.boundary}\r\nContent-Disposition: form-data; "
            'name="what"\r\n\r\nvideo of the fight\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="files"; '
            'filename="huge.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode() + b"\xff\xd8\xff\xe0"
        self.sent += len(head)
        yield head
        chunk = bytes(MB)
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


def post_streaming(app: App, upload: EndlessUpload, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=web_for(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/report")
            found = TOKEN.search(page.text)
            assert found is not None
            upload.token = found.group(1)
            return await client.post(
                "/report",
                content=upload.body(),
                headers={
                    "content-type": f"multipart/form-data; boundary={upload.boundary}",
                    "accept": "text/html",
                    **headers,
                },
            )

    return asyncio.run(go())


def test_a_2gb_upload_is_refused_while_streaming_without_filling_memory_or_disk(
    web_app: App,
) -> None:
    upload = EndlessUpload(token="")
    tracemalloc.start()
    try:
        response = post_streaming(web_app, upload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert "huge.jpg: the JPEG photo is larger than the 25.0 MB allowed" in response.text
    assert ">video of the fight</textarea>" in response.text  # what was written is kept
    limit = web_app.settings.media.max_image_bytes
    assert upload.sent <= limit + 4 * MB, f"read {upload.sent / MB:.0f} MB"
    assert peak < 32 * MB, f"peak {peak / MB:.1f} MB"
    staging = web_app.settings.var_dir / "media" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert nothing_stored(web_app)


def test_a_declared_body_larger_than_the_form_can_hold_is_refused_before_reading_it(
    web_app: App,
) -> None:
    """Straight through ASGI: HTTP clients recompute Content-Length for a streamed body."""
    pulled = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": bytes(MB), "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/report",
        "raw_path": b"/report",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"accept", b"text/html"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", str(10 * GB).encode()),  # five 500 MB videos at most
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(web_for(web_app)(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413
    assert b"too large to accept (10,240 MB)" in body
    assert pulled == 0


def test_script_in_a_report_is_shown_inert_everywhere(report_app: App) -> None:
    client = client_for(report_app)
    refused = send(client, token_of(client), what=SCRIPT, anonymous="")
    assert refused.status_code == 422
    assert "<script>alert" not in refused.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in refused.text
    reference, _, received = file_report(client, what=SCRIPT, where=SCRIPT)
    assert "<script>alert" not in received.text and "onerror=alert" not in received.text
    officer = client_for(report_app)
    officer.post("/login", data={"username": "pc.jones", "password": PASSWORD})
    with report_app.db.session() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
    page = officer.get(f"/cases/{case.id}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_the_form_cannot_be_sent_from_another_site(web_app: App) -> None:
    mine = client_for(web_app)
    token = token_of(mine)
    stranger = client_for(web_app)  # has no cookie: a cross-site form post sends none
    assert send(stranger, token, what="forged").status_code == 403
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = send(mine, forged, what="forged")
    assert response.status_code == 403
    assert "security token is not valid" in response.text
    assert nothing_stored(web_app)


def test_an_expired_form_keeps_the_text_and_offers_a_fresh_token(web_app: App) -> None:
    client = client_for(web_app)
    token = token_of(client)
    clock = web_app.clock
    clock.advance(timedelta(minutes=web_app.settings.reports.form_minutes + 1))  # type: ignore[attr-defined]
    response = send(client, token, what="my bike was stolen")
    assert response.status_code == 403
    assert "open for too long" in response.text
    assert ">my bike was stolen</textarea>" in response.text
    fresh = TOKEN.search(response.text)
    assert fresh is not None and fresh.group(1) != token
    assert send(client, fresh.group(1), what="my bike was stolen").status_code == 200


# -- safeguarding and signposting -------------------------------------------------------------


def test_a_web_report_suggesting_someone_under_18_is_flagged(report_app: App) -> None:
    client = client_for(report_app)
    reference, _, page = file_report(client, what="I'm 15 and a man keeps messaging me")
    assert report_app.settings.account.young_person_support in page.text
    with report_app.db.session() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        report = session.exec(select(IncidentReport)).one()
    assert report.safeguarding and SAFEGUARDING_TAG in case.scenarios
    assert case.priority in ("P1", "P2")


def test_a_web_report_of_a_sexual_offence_is_signposted(report_app: App) -> None:
    client = client_for(report_app)
    _, _, page = file_report(client, what="I was groped on the dance floor at the SU")
    assert "Lancashire SAFE Centre" in page.text
    assert "01772 523344" in page.text
    assert "247sexualabusesupport.org.uk" in page.text


# -- adding to a report -----------------------------------------------------------------------


def add(client: TestClient, **fields: str) -> httpx2.Response:
    return post_form(client, "/report/add", {"token": token_of(client, "/report/add"), **fields})


def test_adding_to_a_web_report_needs_the_reference_and_its_code(report_app: App) -> None:
    client = client_for(report_app)
    reference, code, _ = file_report(client, what="Secret detail: my bike, blue Carrera")
    later = client_for(report_app)  # another day, another browser
    wrong = add(later, reference=reference, code="ABCD-EFGH", text="more")
    unknown = add(later, reference="UCC-2026-999999", code=code, text="more")
    assert wrong.status_code == unknown.status_code == 403
    assert "do not match" in wrong.text and "do not match" in unknown.text
    assert code not in unknown.text  # a code is never echoed back
    added = add(later, reference=reference.lower(), code=code.lower(), text="the lock was cut")
    assert added.status_code == 200
    assert reference in added.text
    assert "Carrera" not in added.text  # the report itself is never shown
    with report_app.db.session() as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        texts = [m.text for m in session.exec(select(Message).where(Message.case_id == case.id))]
        entries = [e.field for e in session.exec(select(ReportEntry))]
    assert any("the lock was cut" in t for t in texts)
    assert entries == ["web", "addition"]


def test_a_reference_is_locked_after_five_wrong_codes(report_app: App) -> None:
    client = client_for(report_app)
    reference, code, _ = file_report(client, what="my bike was stolen")
    for _ in range(5):
        assert add(client, reference=reference, code="ZZZZ-ZZZZ", text="x").status_code == 403
    locked = add(client, reference=reference, code=code, text="x")
    assert locked.status_code == 403
    report_app.clock.advance(timedelta(hours=1, minutes=1))  # type: ignore[attr-defined]
    assert add(client, reference=reference, code=code, text="x").status_code == 200


def test_a_dm_report_can_be_added_to_on_the_web_with_its_code(report_app: App) -> None:
    say(report_app, dm("d0", "I want to report something"))
    say(report_app, dm("d1", "stop", at=NOW + timedelta(minutes=1)))
    filed = last_reply(report_app).text
    reference = re.search(r"UCC-\d{4}-\d{6}", filed)
    code = re.search(r"code is ([A-Z0-9]{4}-[A-Z0-9]{4})", filed)
    assert reference is not None and code is not None
    client = client_for(report_app)
    response = add(
        client,
        reference=reference.group(0),
        code=code.group(1),
        text="here is a photo of him",
    )
    assert response.status_code == 200, response.text
    with report_app.db.session() as session:
        dm_case = session.exec(select(Case).where(Case.reference == reference.group(0))).one()
        addition = session.exec(select(Message).where(Message.channel == "web")).one()
        web_cases = session.exec(select(Case).where(Case.channel == "web")).all()
    assert addition.case_id == dm_case.id  # merged into the report's open case
    assert [c.status for c in web_cases] == [CaseStatus.CLOSED]


def test_the_add_page_never_reveals_whether_a_reference_exists(web_app: App) -> None:
    client = client_for(web_app)
    first = add(client, reference="UCC-2026-000001", code="AAAA-BBBB", text="x")
    second = add(client, reference="nonsense", code="x", text="x")
    assert first.status_code == second.status_code == 403
    strip = re.compile(r'name="token" value="[^"]+"|value="[^"]*"')
    assert strip.sub("", first.text) == strip.sub("", second.text)
    with web_app.db.session() as session:
        assert session.exec(select(Message)).first() is None
