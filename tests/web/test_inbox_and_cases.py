"""The triage inbox and the case page, as a browser uses them, on both databases."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from bot.app import App
from bot.clock import FixedClock
from bot.messages import InboundMessage
from bot.models import AuditEntry, Case, OutboundMessage, ReplyKind
from channels.base import Batch
from tests.conftest import message_line
from tests.web.support import Seeded, attach_photo, client_for, csrf_of, png_bytes

ROW = re.compile(r'<tr class="(P\d)" data-case="(\d+)">')


def rows(html: str) -> list[tuple[str, int]]:
    return [(p, int(c)) for p, c in ROW.findall(html)]


def test_one_row_per_case_most_serious_first(console: App, seeded: Seeded) -> None:
    page = client_for(console, "pc.jones").get("/")
    assert page.status_code == 200
    assert rows(page.text) == [
        ("P1", seeded.risk_case),
        ("P2", seeded.urgent_case),
        ("P3", seeded.theft_case),
    ]
    assert "2 messages" in page.text  # the bike case: two messages, one row
    assert "it was a blue Carrera" in page.text  # the latest message is the one shown


def test_filters_narrow_the_rows_and_survive_the_automatic_refresh(
    console: App, seeded: Seeded
) -> None:
    client = client_for(console, "pc.jones")
    page = client.get("/?urgent=1&channel=twitter")
    urgent = [("P1", seeded.risk_case), ("P2", seeded.urgent_case)]  # risk to life is urgent too
    assert rows(page.text) == urgent
    # the live region asks for the same filters every 15 seconds
    live = re.search(r'hx-get="([^"]+)" hx-trigger="every 15s"', page.text)
    assert live is not None
    refreshed = client.get(live.group(1).replace("&amp;", "&"))
    assert refreshed.status_code == 200 and "<html" not in refreshed.text
    assert rows(refreshed.text) == urgent

    assert rows(client.get("/inbox/rows?scenario=theft").text) == [("P3", seeded.theft_case)]
    assert rows(client.get("/inbox/rows?risk=1").text) == [("P1", seeded.risk_case)]
    assert rows(client.get("/inbox/rows?channel=facebook").text) == []
    assert rows(client.get("/inbox/rows?assignee=none").text) != []
    csrf = csrf_of(client)
    client.post(f"/cases/{seeded.theft_case}/assign", data={"csrf_token": csrf})
    client.post(f"/cases/{seeded.urgent_case}/close", data={"csrf_token": csrf})
    assert rows(client.get("/inbox/rows?assignee=me").text) == [("P3", seeded.theft_case)]
    assert rows(client.get("/inbox/rows?assignee=pc.jones").text) == [("P3", seeded.theft_case)]
    assert seeded.urgent_case not in [c for _, c in rows(client.get("/").text)]  # open only
    assert rows(client.get("/?status=closed").text) == [("P2", seeded.urgent_case)]
    assert len(rows(client.get("/?status=all").text)) == 3

    bad = client.get("/?scenario=burglary")
    assert bad.status_code == 422 and "unknown scenario" in bad.text


def test_the_automatic_refresh_does_not_keep_a_session_alive(console: App, seeded: Seeded) -> None:
    client = client_for(console, "pc.jones")
    clock = console.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(minutes=20))
    assert client.get("/inbox/rows").status_code == 200
    clock.advance(timedelta(minutes=20))  # 40 minutes since the last real request
    expired = client.get("/inbox/rows", headers={"HX-Request": "true"}, follow_redirects=False)
    assert expired.status_code == 401 and expired.headers["hx-redirect"] == "/login"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_case_page_shows_the_conversation_inert_and_in_order(console: App) -> None:
    hostile = '<img src=x onerror="alert(1)"> they took my phone'
    arabic = "سرق أحدهم دراجتي من أمام المكتبة"
    lines = [
        message_line("a1", hostile, author={"id": "u-a"}, received_at="2026-11-21T09:00:00+00:00"),
        message_line(
            "a2",
            arabic,
            author={"id": "u-a"},
            conversation_id="conv-a1",
            received_at="2026-11-21T09:30:00+00:00",
            attachments=[
                {"kind": "image", "url": "javascript:alert(1)", "media_type": "text/html"},
            ],
        ),
    ]
    console.pipeline.run(
        Batch(messages=[InboundMessage.model_validate(line) for line in lines]), source="replay"
    )
    with console.db.session() as session:
        case = session.exec(select(Case).where(Case.author_id == "u-a")).one()
    page = client_for(console, "pc.jones").get(f"/cases/{case.id}")
    assert page.status_code == 200
    body = page.text
    assert "<img src=x" not in body and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in body
    assert body.index("they took my phone") < body.index(arabic)
    assert f'<div class="text" dir="auto">{arabic}</div>' in body
    # a link that was never stored is shown as text, never as something to click
    assert "javascript:alert(1)" in body and 'href="javascript' not in body
    assert "<script" not in body.replace('<script src="/static/htmx.min.js', "")


def test_stored_photos_are_served_with_their_proven_type_to_officers_only(
    console: App, seeded: Seeded
) -> None:
    sha256 = attach_photo(console, seeded.theft_messages[0])
    officer = client_for(console, "pc.jones")
    page = officer.get(f"/cases/{seeded.theft_case}")
    src = f"/cases/{seeded.theft_case}/media/{sha256}"
    assert f'<img src="{src}"' in page.text
    photo = officer.get(src)
    assert photo.status_code == 200 and photo.content == png_bytes()
    assert photo.headers["content-type"] == "image/png"
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in photo.headers["content-security-policy"]
    # only through the case it belongs to
    assert officer.get(f"/cases/{seeded.urgent_case}/media/{sha256}").status_code == 404
    assert officer.get(f"/cases/{seeded.theft_case}/media/{'0' * 64}").status_code == 404
    assert officer.get(f"/cases/{seeded.theft_case}/media/..%2f..%2fetc").status_code == 404
    with console.db.session() as session:
        viewed = session.exec(select(AuditEntry).where(AuditEntry.action == "media.viewed")).all()
    assert [e.actor for e in viewed] == ["pc.jones"]
    # comms officers read the case but not the originals (they keep location data)
    comms = client_for(console, "cara.comms")
    assert src not in comms.get(f"/cases/{seeded.theft_case}").text
    assert comms.get(src).status_code == 403


def test_comms_officers_read_cases_but_get_no_casework_forms(console: App, seeded: Seeded) -> None:
    page = client_for(console, "cara.comms").get(f"/cases/{seeded.risk_case}")
    assert page.status_code == 200
    assert "Only officers act on cases" in page.text
    assert "/reply" not in page.text and "/correct" not in page.text


def test_reply_with_a_canned_response(console: App, seeded: Seeded) -> None:
    client = client_for(console, "pc.jones")
    with console.db.session() as session:
        reference = session.get(Case, seeded.urgent_case).reference  # type: ignore[union-attr]
    assert reference
    # without script: the page fills the reply box; with htmx: the partial does
    filled = client.get(f"/cases/{seeded.urgent_case}?canned=thanks_we_are_looking")
    assert reference in filled.text.split('id="reply-text"')[1]
    partial = client.get(f"/cases/{seeded.urgent_case}/canned?canned=thanks_we_are_looking")
    assert partial.text.lstrip().startswith('<div id="reply-box">') and reference in partial.text
    assert client.get(f"/cases/{seeded.urgent_case}/canned?canned=nope").status_code == 404
    text = partial.text.split('name="text"')[1].split(">", 1)[1].split("</textarea>")[0]

    sent = client.post(
        f"/cases/{seeded.urgent_case}/reply",
        data={"csrf_token": csrf_of(client), "text": text, "canned": "thanks_we_are_looking"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    page = client.get(sent.headers["location"])
    assert "Reply queued" in page.text and "Reply by pc.jones" in page.text
    with console.db.session() as session:
        human = session.exec(
            select(OutboundMessage).where(
                OutboundMessage.case_id == seeded.urgent_case,
                OutboundMessage.kind == ReplyKind.HUMAN,
            )
        ).one()
    assert human.created_by == "pc.jones" and reference in human.text

    empty = client.post(
        f"/cases/{seeded.urgent_case}/reply",
        data={"csrf_token": csrf_of(client), "text": " "},
    )
    assert empty.status_code == 409 and "the reply is empty" in empty.text


def test_correct_escalate_assign_and_close_through_the_page(console: App, seeded: Seeded) -> None:
    client = client_for(console, "pc.khan")
    csrf = csrf_of(client)
    case_url = f"/cases/{seeded.theft_case}"
    corrected = client.post(
        f"{case_url}/messages/{seeded.theft_messages[0]}/correct",
        data={
            "csrf_token": csrf,
            "scenarios": ["theft", "criminal_damage"],
            "urgent": "true",
            "intent": "report_incident",
        },
        follow_redirects=False,
    )
    assert corrected.status_code == 303
    page = client.get(corrected.headers["location"])
    assert "Corrected by pc.khan" in page.text and "criminal damage" in page.text
    assert rows(client.get("/inbox/rows?scenario=criminal_damage").text) == [
        ("P2", seeded.theft_case)  # urgent now: raised from P3
    ]
    wrong_case = client.post(
        f"/cases/{seeded.urgent_case}/messages/{seeded.theft_messages[0]}/correct",
        data={"csrf_token": csrf, "intent": "other"},
    )
    assert wrong_case.status_code == 404

    assert client.post(f"{case_url}/escalate", data={"csrf_token": csrf}).status_code == 200
    with console.db.session() as session:
        assert session.get(Case, seeded.theft_case).priority == "P1"  # type: ignore[union-attr]
    again = client.post(f"{case_url}/escalate", data={"csrf_token": csrf})
    assert again.status_code == 409 and "already P1" in again.text

    given = client.post(f"{case_url}/assign", data={"csrf_token": csrf, "to": "pc.jones"})
    assert given.status_code == 200 and "assigned to pc.jones" in given.text
    refused = client.post(f"{case_url}/assign", data={"csrf_token": csrf, "to": "ana.lyst"})
    assert refused.status_code == 409 and "ana.lyst is not an officer" in refused.text

    closed = client.post(f"{case_url}/close", data={"csrf_token": csrf})
    assert closed.status_code == 200 and "This case is closed" in closed.text
    twice = client.post(f"{case_url}/close", data={"csrf_token": csrf})
    assert twice.status_code == 409 and "is closed" in twice.text


def test_a_browser_gets_a_readable_refusal(console: App, seeded: Seeded) -> None:
    analyst = client_for(console, "ana.lyst")
    page = analyst.get("/")
    assert page.status_code == 403
    assert "Not allowed" in page.text and "your role does not allow this page" in page.text
    assert analyst.get("/", headers={"accept": "application/json"}).json() == {
        "detail": "your role does not allow this page"
    }
    missing = client_for(console, "pc.jones").get("/cases/999999")
    assert missing.status_code == 404 and "no case 999999" in missing.text


def test_bad_input_is_explained_to_a_browser(console: App) -> None:
    client = client_for(console, "pc.jones")
    page = client.get("/calendar?weeks=13")
    assert page.status_code == 422 and "weeks" in page.text and "<html" in page.text
    assert client.get("/cases/abc").status_code == 422
    api = client.get("/calendar?weeks=13", headers={"accept": "application/json"})
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["query", "weeks"]


def test_the_inbox_shows_recent_alerts_to_officers_and_links_their_cases(
    console: App, seeded: Seeded
) -> None:
    from bot.alerts import run_alerts

    run_alerts(console)  # the worker's job: raises the P1 and P2 alerts (email is off)
    page = client_for(console, "pc.jones").get("/").text
    assert "Recent alerts" in page
    assert f'href="/cases/{seeded.risk_case}"' in page and "P1 risk to life" in page
    assert f'href="/cases/{seeded.urgent_case}"' in page
    assert "kill herself" not in page.split("Recent alerts")[1].split("</section>")[0]
