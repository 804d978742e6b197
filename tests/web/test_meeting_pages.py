"""The public meetings page: a student picks a slot with no sign-in, gets a confirmation with
an .ics invitation and a private link to cancel or move it; a slot is never booked twice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import select

from bot import meetings
from bot.app import App
from bot.models import Booking, BookingStatus, SlotKind
from bot.web import meeting_pages
from bot.web.server import create_app

TOKEN = re.compile(r'name="token" value="([A-Za-z0-9_-]+)"')
MANAGE = re.compile(r"/meet/manage/([0-9a-f]{32}-[A-Za-z0-9_-]+)")
JUNE_9AM_UTC = datetime(2027, 6, 1, 9, 0, tzinfo=UTC)  # 10:00 in London (BST)
CANCEL = {"confirm": "yes"}  # what the page's cancel button sends
NOV_2PM_UTC = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 14:00 in London (GMT)


def browser(app: App) -> TestClient:
    web = create_app(app)
    web.include_router(meeting_pages.router(app))
    return TestClient(web, headers={"accept": "text/html"})


@pytest.fixture
def slots(bot_app: App) -> list[int]:
    with bot_app.db.session() as session:
        made = [
            meetings.add_slot(
                session,
                officer="PC Sarah Ashworth",
                starts_at=JUNE_9AM_UTC,
                minutes=30,
                place="Foster Building, room 12",
                kind=SlotKind.ONE_TO_ONE,
                at=bot_app.clock.now(),
            ),
            meetings.add_slot(
                session,
                officer="pc.begum",
                starts_at=NOV_2PM_UTC,
                minutes=60,
                place="Students' Union foyer",
                kind=SlotKind.SURGERY,
                at=bot_app.clock.now(),
            ),
        ]
        return [slot.id or 0 for slot in made]


@pytest.fixture
def client(bot_app: App) -> Iterator[TestClient]:
    with browser(bot_app) as c:
        yield c


def token_of(page: str) -> str:
    found = TOKEN.search(page)
    assert found is not None, page[:800]
    return found.group(1)


def live_bookings(app: App) -> list[Booking]:
    with app.db.session() as session:
        return list(session.exec(select(Booking).where(Booking.status == BookingStatus.BOOKED)))


def book(client: TestClient, slot: int, **fields: str) -> str:
    """Book ``slot``; the manage code from the confirmation's address."""
    token = token_of(client.get("/meet").text)
    sent = client.post(
        "/meet", data={"token": token, "slot": str(slot), **fields}, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text[:800]
    found = MANAGE.search(sent.headers["location"])
    assert found is not None
    return found.group(1)


def test_a_student_sees_open_slots_in_london_time_with_first_names_only(
    client: TestClient, slots: list[int]
) -> None:
    page = client.get("/meet")
    assert page.status_code == 200
    assert "Tuesday 01 June, 10:00" in page.text  # BST: an hour ahead of UTC
    assert "Monday 23 November, 14:00" in page.text
    assert "Foster Building, room 12" in page.text and "with Sarah" in page.text
    assert "Ashworth" not in page.text and "begum" not in page.text.lower()
    assert "with a campus officer" in page.text and "drop-in surgery" in page.text
    cookie = page.headers["set-cookie"]
    assert "SameSite=strict" in cookie and "HttpOnly" in cookie and "Path=/meet" in cookie


def test_booking_gives_a_confirmation_an_invitation_and_a_private_manage_link(
    bot_app: App, client: TestClient, slots: list[int]
) -> None:
    code = book(
        client, slots[0], name="Priya", email="priya@example.ac.uk", reference="UCC-2026-000123"
    )
    page = client.get(f"/meet/manage/{code}?booked=1")
    assert page.status_code == 200
    assert "You're booked" in page.text
    assert "Tuesday 01 June 2027, 10:00" in page.text and "Foster Building, room 12" in page.text
    assert f"http://127.0.0.1:8000/meet/manage/{code}" in page.text
    assert "reminder the day before" in page.text
    ics = client.get(f"/meet/manage/{code}/invitation.ics")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    [event] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert event.decoded("dtstart") == JUNE_9AM_UTC
    assert str(event["location"]) == "Foster Building, room 12"
    assert code in str(event["description"])
    [booking] = live_bookings(bot_app)
    assert (booking.slot_id, booking.channel, booking.email) == (
        slots[0],
        "web",
        "priya@example.ac.uk",
    )
    assert (booking.name, booking.case_reference) == ("Priya", "UCC-2026-000123")
    assert code.split("-")[1] not in repr(booking)  # only the random half is stored
    assert "Foster Building" not in client.get("/meet").text  # no longer offered


def test_without_an_email_no_reminder_is_promised_and_the_student_is_told_to_save_it(
    client: TestClient, slots: list[int]
) -> None:
    code = book(client, slots[1])
    page = client.get(f"/meet/manage/{code}").text
    assert "please save the invitation" in page and "reminder the day before" not in page


def test_a_slot_taken_meanwhile_says_pick_another_and_is_never_double_booked(
    bot_app: App, slots: list[int]
) -> None:
    with browser(bot_app) as first, browser(bot_app) as second:
        first_token = token_of(first.get("/meet").text)
        second_token = token_of(second.get("/meet").text)
        won = first.post(
            "/meet", data={"token": first_token, "slot": str(slots[0])}, follow_redirects=False
        )
        assert won.status_code == 303
        lost = second.post(
            "/meet",
            data={"token": second_token, "slot": str(slots[0]), "name": "Tom"},
            follow_redirects=False,
        )
    assert lost.status_code == 409
    assert "just taken. Please pick another" in lost.text
    assert 'value="Tom"' in lost.text  # what they typed is kept
    assert "Foster Building" not in lost.text and "Students&#39; Union foyer" in lost.text
    assert [b.slot_id for b in live_bookings(bot_app)] == [slots[0]]


def test_a_form_from_another_site_or_without_its_cookie_books_nothing(
    bot_app: App, client: TestClient, slots: list[int]
) -> None:
    token = token_of(client.get("/meet").text)
    foreign = client.post(
        "/meet",
        data={"token": token, "slot": str(slots[0])},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    with browser(bot_app) as stranger:  # no cookie: a cross-site page's request
        forged = stranger.post("/meet", data={"token": token, "slot": str(slots[0])})
    assert forged.status_code == 403 and "Nothing was booked" in forged.text
    assert live_bookings(bot_app) == []


def test_bad_details_are_explained_and_kept(
    bot_app: App, client: TestClient, slots: list[int]
) -> None:
    token = token_of(client.get("/meet").text)
    sent = client.post(
        "/meet",
        data={"token": token, "slot": str(slots[0]), "email": "priya at uni", "name": "Priya"},
    )
    assert sent.status_code == 422
    assert "email address does not look right" in sent.text
    assert 'value="priya at uni"' in sent.text and 'value="Priya"' in sent.text
    nothing_picked = client.post("/meet", data={"token": token_of(sent.text)})
    assert nothing_picked.status_code == 422 and "Please pick a time" in nothing_picked.text
    assert live_bookings(bot_app) == []


def test_what_a_student_typed_is_shown_inert(client: TestClient, slots: list[int]) -> None:
    code = book(client, slots[0], name="<script>alert(1)</script>")
    page = client.get(f"/meet/manage/{code}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_manage_link_moves_and_cancels_the_meeting(
    bot_app: App, client: TestClient, slots: list[int]
) -> None:
    code = book(client, slots[0], email="priya@example.ac.uk")
    moved = client.post(
        f"/meet/manage/{code}/move", data={"slot": str(slots[1])}, follow_redirects=False
    )
    assert (moved.status_code, moved.headers["location"]) == (303, f"/meet/manage/{code}")
    page = client.get(f"/meet/manage/{code}").text  # the same link follows the booking
    assert "Monday 23 November 2026, 14:00" in page and "Students&#39; Union foyer" in page
    [booking] = live_bookings(bot_app)
    assert (booking.slot_id, booking.email) == (slots[1], "priya@example.ac.uk")
    assert "Foster Building" in client.get("/meet").text  # the old slot is free again

    cancelled = client.post(f"/meet/manage/{code}/cancel", data=CANCEL, follow_redirects=False)
    assert cancelled.status_code == 303
    assert "Meeting cancelled" in client.get(f"/meet/manage/{code}").text
    assert live_bookings(bot_app) == []
    again = client.post(f"/meet/manage/{code}/cancel", data=CANCEL, follow_redirects=False)
    assert "problem=unavailable" in again.headers["location"]


def test_moving_to_a_slot_just_taken_keeps_the_meeting(
    bot_app: App, client: TestClient, slots: list[int]
) -> None:
    code = book(client, slots[0])
    with browser(bot_app) as other:
        book(other, slots[1])
    moved = client.post(f"/meet/manage/{code}/move", data={"slot": str(slots[1])})
    assert "that time was just taken" in moved.text and "Foster Building" in moved.text
    assert sorted(b.slot_id for b in live_bookings(bot_app)) == sorted(slots)


def test_a_wrong_or_altered_manage_code_leads_nowhere(client: TestClient, slots: list[int]) -> None:
    code = book(client, slots[0])
    manage_id, _, mac = code.partition("-")  # the MAC is base64url: it may hold "-" too
    forged = f"{manage_id}-{'A' * len(mac)}"
    assert client.get(f"/meet/manage/{forged}").status_code == 404
    assert client.get(f"/meet/manage/{forged}/invitation.ics").status_code == 404
    assert client.post(f"/meet/manage/{forged}/cancel", data=CANCEL).status_code == 404
    assert client.get("/meet/manage/nonsense").status_code == 404
    assert "You're booked" not in client.get(f"/meet/manage/{forged}").text
