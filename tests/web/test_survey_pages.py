"""The public survey page: reached from a campaign's tracking link, anonymous, one response
per browser, CSRF-safe, answers checked with clear messages and nothing typed lost."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.app import App
from bot.clock import FixedClock
from bot.config import Settings
from bot.db import Database
from bot.models import SurveyClick
from bot.models.survey import SurveyAnswer, SurveyResponse
from bot.web import survey_pages
from bot.web.server import create_app
from tests.bot.survey_support import CAMPAIGN, SURVEY_ID, survey_bot, tracking_code

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
ANSWERS = {"q_worry": "theft", "q_channels": ["twitter", "face-to-face"], "q_safe": "4"}


@pytest.fixture
def bot(db: Database, settings: Settings, clock: FixedClock, tmp_path: Path) -> App:
    return survey_bot(db, settings, clock, tmp_path)


def browser(app: App) -> TestClient:
    web = create_app(app)
    web.include_router(survey_pages.router(app))
    return TestClient(web, headers={"accept": "text/html"})


@pytest.fixture
def client(bot: App) -> Iterator[TestClient]:
    with browser(bot) as c:
        yield c


def token_of(page: str) -> str:
    found = TOKEN.search(page)
    assert found is not None, page[:800]
    return found.group(1)


def responses(app: App) -> list[SurveyResponse]:
    with app.db.session() as session:
        return list(session.execute(select(SurveyResponse)).scalars())


def test_a_tracking_link_leads_to_the_survey_and_records_the_channel(
    bot: App, client: TestClient
) -> None:
    code = tracking_code(bot, "facebook")
    redirect = client.get(f"/s/{code}", follow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["location"] == f"http://testserver/survey/{code}"
    page = client.get(f"/survey/{code}")
    assert page.status_code == 200
    assert "Campus safety survey" in page.text and "What worries you most?" in page.text
    assert "Content-Security-Policy" in page.headers
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/survey" in cookie
    form = {**ANSWERS, "q_concerns": "My bike was nicked.", "csrf_token": token_of(page.text)}
    sent = client.post(f"/survey/{code}", data=form, follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, f"/survey/{code}")
    assert "we have your answers" in client.get(f"/survey/{code}").text
    again = client.post(f"/survey/{code}", data=form, follow_redirects=False)
    assert again.status_code == 303
    [response] = responses(bot)  # the same browser counts once
    assert (response.channel, response.campaign, response.source) == ("facebook", CAMPAIGN, "web")
    browser_token = client.cookies.get(survey_pages.COOKIE)
    assert response.respondent and len(response.respondent) == 64
    assert browser_token and browser_token not in response.respondent
    with bot.db.session() as session:
        assert session.execute(select(func.count()).select_from(SurveyClick)).scalar_one() == 1
        answers = session.execute(select(SurveyAnswer)).scalars().all()
    assert len(answers) == 5 and {a.tagged_at is not None for a in answers if a.text} == {True}
    with browser(bot) as other:  # another browser is another response
        page = other.get(f"/survey/{code}")
        other.post(f"/survey/{code}", data={**ANSWERS, "csrf_token": token_of(page.text)})
    assert len(responses(bot)) == 2


def test_an_unknown_choice_is_a_clear_422_and_the_answers_come_back(
    bot: App, client: TestClient
) -> None:
    page = client.get(f"/survey/{SURVEY_ID}")
    form = {
        **ANSWERS,
        "q_worry": "aliens",
        "q_concerns": "<script>alert(1)</script> by the library",
        "csrf_token": token_of(page.text),
    }
    refused = client.post(f"/survey/{SURVEY_ID}", data=form)
    assert refused.status_code == 422
    assert "Question 1 (What worries you most?): &#34;aliens&#34; is not one of its choices." in (
        refused.text
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt; by the library</textarea>" in refused.text
    assert "<script>alert(1)" not in refused.text
    assert re.search(r'value="face-to-face" checked', refused.text)
    missing = client.post(f"/survey/{SURVEY_ID}", data={"csrf_token": token_of(page.text)})
    assert missing.status_code == 422 and "Question 3 (How safe" in missing.text
    assert responses(bot) == []


def test_without_the_cookie_or_its_token_nothing_is_stored_and_nothing_is_lost(
    bot: App, client: TestClient
) -> None:
    form = {**ANSWERS, "q_concerns": "lights out on Adelphi St", "csrf_token": "0" * 64}
    cold = client.post(f"/survey/{SURVEY_ID}", data=form)  # no cookie: a forged or stale post
    assert cold.status_code == 403
    assert "not sent" in cold.text and "lights out on Adelphi St</textarea>" in cold.text
    wrong = client.post(f"/survey/{SURVEY_ID}", data=form)  # the cookie now, the wrong token
    assert wrong.status_code == 403
    assert responses(bot) == []
    retry = client.post(
        f"/survey/{SURVEY_ID}",
        data={**form, "csrf_token": token_of(wrong.text)},
        follow_redirects=False,
    )
    assert retry.status_code == 303
    [response] = responses(bot)
    assert response.channel is None  # the survey's own address: "direct"


def test_a_post_from_another_site_is_refused(bot: App, client: TestClient) -> None:
    page = client.get(f"/survey/{SURVEY_ID}")
    form = {**ANSWERS, "csrf_token": token_of(page.text)}
    evil = client.post(
        f"/survey/{SURVEY_ID}", data=form, headers={"origin": "https://evil.example"}
    )
    assert evil.status_code == 403 and responses(bot) == []
    # Our own pages send "Origin: null" under their no-referrer policy.
    ours = client.post(
        f"/survey/{SURVEY_ID}", data=form, headers={"origin": "null"}, follow_redirects=False
    )
    assert ours.status_code == 303 and len(responses(bot)) == 1


def test_bad_requests_get_clear_answers(client: TestClient) -> None:
    assert client.get("/survey/no-such-survey").status_code == 404
    assert client.get("/survey/%3Cscript%3E").status_code == 404
    assert client.post(f"/survey/{SURVEY_ID}", json=ANSWERS).status_code == 415
    huge = client.post(
        f"/survey/{SURVEY_ID}",
        content=b"q_concerns=" + b"x" * (survey_pages.MAX_FORM_BYTES + 1),
        headers={"content-type": survey_pages.FORM_TYPE},
    )
    assert huge.status_code == 413 and "please shorten" in huge.text
    many = "&".join(f"f{i}=1" for i in range(survey_pages.MAX_FIELDS + 1))
    crowded = client.post(
        f"/survey/{SURVEY_ID}", content=many, headers={"content-type": survey_pages.FORM_TYPE}
    )
    assert crowded.status_code == 413


def test_an_external_survey_is_only_a_counted_link(bot: App, client: TestClient) -> None:
    went = client.get("/survey/uni-wide-2026", follow_redirects=False)
    assert (went.status_code, went.headers["location"]) == (
        302,
        "https://forms.example.org/uni-wide",
    )


def test_before_and_after_its_days_the_survey_says_so(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    early = survey_bot(
        db, settings, FixedClock(datetime(2026, 10, 31, 23, 0, tzinfo=UTC)), tmp_path
    )
    with browser(early) as c:
        page = c.get(f"/survey/{SURVEY_ID}")
        assert page.status_code == 200 and "opens on Sunday 01 November 2026" in page.text
        assert c.post(f"/survey/{SURVEY_ID}", data=ANSWERS).status_code == 409
    late = survey_bot(db, settings, FixedClock(datetime(2027, 1, 1, 0, 0, tzinfo=UTC)), tmp_path)
    with browser(late) as c:
        page = c.get(f"/survey/{SURVEY_ID}")
        assert page.status_code == 410 and "closed on Thursday 31 December 2026" in page.text
        assert c.post(f"/survey/{SURVEY_ID}", data=ANSWERS).status_code == 410
    assert responses(late) == []
