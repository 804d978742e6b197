"""Surveys: files checked like campaigns, answers checked against them, In The Know replies
read into answers, stored once, tagged by scenario, and purged with the messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from bot.app import App
from bot.cli import main
from bot.clock import FixedClock
from bot.config import Settings
from bot.db import Database
from bot.errors import ConfigError
from bot.models import Message, Post, PostStatus
from bot.models.survey import SurveyAnswer, SurveyAnswerScenario, SurveyResponse
from bot.paths import ROOT
from bot.retention import delete_messages, purge
from bot.survey_replies import parse_reply
from bot.survey_store import WEB, Arrival, record_response, store_definition
from bot.surveys import (
    AnswersRefused,
    Given,
    Survey,
    campaign_surveys,
    check_answers,
    load_survey,
    load_surveys,
    problem_with,
    unknown_references,
)
from schedules.campaigns import load_campaigns
from tests.bot.survey_support import (
    CAMPAIGN,
    SURVEY,
    SURVEY_ID,
    collect,
    deliver_email,
    deliver_push,
    reply_email,
    survey_bot,
    survey_folders,
)
from tests.conftest import NOW


@pytest.fixture
def survey() -> Survey:
    return Survey.model_validate(yaml.safe_load(SURVEY))


@pytest.fixture
def app(db: Database, settings: Settings, clock: FixedClock, tmp_path: Path) -> App:
    return survey_bot(db, settings, clock, tmp_path)


def _c(model: type) -> Any:
    """A table's columns, for plain Core queries."""
    return model.__table__.c  # type: ignore[attr-defined]


def _count(session: Session, model: type, *where: Any) -> int:
    table = model.__table__  # type: ignore[attr-defined]
    return int(session.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


# -- files ---------------------------------------------------------------------------------------
def test_the_bundled_survey_is_valid_and_the_pilot_campaign_links_to_it() -> None:
    surveys = load_surveys(ROOT / "schedules" / "surveys")
    links = campaign_surveys(load_campaigns(ROOT / "schedules" / "campaigns"))
    assert links["pilot-awareness"] == "campus-safety-2017"
    assert unknown_references(surveys, links) == []
    [pilot] = [s for s in surveys if s.id == "campus-safety-2017"]
    assert [q.kind.value for q in pilot.questions] == [
        "single",
        "multiple",
        "rating",
        "single",
        "text",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("choices: [Getting home at night, Theft", "choices: [Theft, Theft"),
            "repeat the key theft",
        ),
        (("opens: 2026-11-01", "opens: 2027-01-01"), "closes is before opens"),
        (("id: safety-2026", "id: other-survey"), "must match the file name"),
        (("kind: rating", "kind: rating\n    choices: [a, b]"), "a rating question has no choices"),
        (("kind: single", "kind: essay"), "questions.0.kind"),
        (("title: Campus", "external_url: https://x.example/s\ntitle: Campus"), "not both"),
        (("key: concerns", "key: worry"), "repeat the key worry"),
    ],
)
def test_a_bad_survey_file_names_the_file_the_field_and_the_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / f"{SURVEY_ID}.yaml"
    path.write_text(SURVEY.replace(*change, 1))
    with pytest.raises(ConfigError) as refused:
        load_survey(path)
    assert str(refused.value).startswith(f"{SURVEY_ID}.yaml: ")
    assert message in str(refused.value)


def test_validate_lists_a_campaign_pointing_at_no_survey(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_folders = survey_folders(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"campaigns_dir: {app_folders[0]}\nsurveys_dir: {app_folders[1]}\n"
        "classifier:\n  kind: keywords\n"
    )
    assert main(["--config", str(config), "surveys", "validate"]) == 0
    assert "2 survey(s) valid; 1 campaign(s) link to one of them" in capsys.readouterr().out
    (app_folders[1] / f"{SURVEY_ID}.yaml").unlink()
    assert main(["--config", str(config), "surveys", "validate"]) == 2
    assert f"campaign {CAMPAIGN}: no survey '{SURVEY_ID}'" in capsys.readouterr().err


# -- answers -------------------------------------------------------------------------------------
def test_answers_are_checked_against_the_definition(survey: Survey) -> None:
    good = [
        Given("worry", choices=("theft",)),
        Given("channels", choices=("twitter", "face-to-face")),
        Given("safe", choices=("4",)),
        Given("concerns", text=None),
    ]
    assert [g.question for g in check_answers(survey, good)] == ["worry", "channels", "safe"]
    with pytest.raises(AnswersRefused) as refused:
        check_answers(
            survey,
            [
                Given("worry", choices=("aliens",)),
                Given("channels", choices=("twitter",)),
                Given("safe", choices=("4", "5")),
                Given("concerns", text="x" * 301),
                Given("shoe_size", choices=("9",)),
            ],
        )
    assert refused.value.problems == {
        "worry": 'Question 1 (What worries you most?): "aliens" is not one of its choices.',
        "safe": "Question 3 (How safe do you feel on campus after dark?): pick only one.",
        "concerns": "Question 4 (Anything else worrying you?): please keep it under 300 "
        "characters.",
        "shoe_size": 'There is no question "shoe_size".',
    }
    with pytest.raises(AnswersRefused) as missing:
        check_answers(survey, [Given("worry", choices=("theft",))])
    assert set(missing.value.problems) == {"channels", "safe"}  # free text is optional


@pytest.mark.parametrize(
    ("reply", "answers", "leftover"),
    [
        ("1 B", {"worry": ("theft",)}, ""),
        ("q1: theft", {"worry": ("theft",)}, ""),
        ("1B 2A 3 4", {"worry": ("theft",), "channels": ("twitter",), "safe": ("4",)}, ""),
        (
            "Question 3 - 5/5\n2: A, D",
            {"safe": ("5",), "channels": ("twitter", "face-to-face")},
            "",
        ),
        ("2) twitter and facebook", {"channels": ("twitter", "facebook")}, ""),
        (
            "4: the underpass by the library is dark\nand the lights never get fixed",
            {"concerns": ("the underpass by the library is dark\nand the lights never get fixed",)},
            "",
        ),
        ("my bike got nicked outside the SU", {}, "my bike got nicked outside the SU"),
        ("1 Z\n3 4", {"safe": ("4",)}, "1 Z"),
        ("2 people saw it happen", {}, "2 people saw it happen"),
        ("1 B\nthanks for asking!", {"worry": ("theft",)}, "thanks for asking!"),
        ("1 B\n1 C", {"worry": ("theft",)}, "1 C"),
    ],
)
def test_in_the_know_replies_are_read_into_answers_and_nothing_is_lost(
    survey: Survey, reply: str, answers: dict[str, tuple[str, ...]], leftover: str
) -> None:
    parsed = parse_reply(reply, survey)
    got = {a.question: (a.text,) if a.text else a.choices for a in parsed.answers}
    assert got == answers
    assert parsed.free_text == leftover


SURVEY_DEFINITION = Survey.model_validate(yaml.safe_load(SURVEY))
REPLY_WORDS = st.sampled_from(
    [
        *("1", "2", "3", "4", "Q1:", "2:", "b", "A,", "C", "and", "twitter", "5/5", "-", ")"),
        *("\n", ",", "/", "q", "ß", "1²", "٣"),  # ß folds to two letters; int() refuses ²
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=400),
        st.lists(REPLY_WORDS, max_size=30).map(" ".join),
    )
)
def test_any_reply_is_read_without_error_and_what_is_not_an_answer_is_kept(text: str) -> None:
    parsed = parse_reply(text, SURVEY_DEFINITION)
    for answer in parsed.answers:
        question = SURVEY_DEFINITION.question(answer.question)
        assert question is not None
        assert problem_with(SURVEY_DEFINITION, question, answer) is None
    if not parsed.answers:  # nothing understood: every word is kept as free text
        kept = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        assert parsed.free_text == "\n".join(kept).strip()


def test_a_campaign_names_its_survey_by_url_or_id_not_both(tmp_path: Path) -> None:
    campaign = tmp_path / "campaigns" / f"{CAMPAIGN}.yaml"
    survey_folders(tmp_path)
    campaign.write_text(
        campaign.read_text().replace(
            "  id: safety-2026", "  id: safety-2026\n  url: https://x.example/"
        )
    )
    with pytest.raises(ConfigError, match="give the survey's url or its id, not both"):
        load_campaigns(tmp_path / "campaigns")


def test_a_one_question_survey_takes_a_plain_reply_as_its_answer(survey: Survey) -> None:
    yes_no = survey.model_copy(
        update={
            "questions": [
                survey.questions[0].model_copy(
                    update={"choices": [c for c in survey.questions[0].choices if c.key != "theft"]}
                )
            ]
        }
    )
    assert [a.choices for a in parse_reply("Drink spiking", yes_no).answers] == [("drink-spiking",)]
    assert parse_reply("no idea mate", yes_no).free_text == "no idea mate"


# -- storing -------------------------------------------------------------------------------------
def test_one_response_per_browser_and_changes_to_the_file_keep_old_answers(
    app: App, survey: Survey
) -> None:
    answers = check_answers(
        survey,
        [
            Given("worry", choices=("theft",)),
            Given("channels", choices=("twitter",)),
            Given("safe", choices=("2",)),
        ],
    )
    tz, now = app.settings.tz, app.clock.now()
    with app.db.session() as session:
        first = record_response(
            session, survey, answers, arrival=Arrival(WEB), tz=tz, at=now, respondent="a" * 64
        )
        again = record_response(
            session, survey, answers, arrival=Arrival(WEB), tz=tz, at=now, respondent="a" * 64
        )
        other = record_response(
            session, survey, answers, arrival=Arrival(WEB), tz=tz, at=now, respondent="b" * 64
        )
    assert first is not None and other is not None and again is None
    # "Theft" is reworded and reordered: same key, same answers, new label.
    reworded = SURVEY.replace(
        "choices: [Getting home at night, Theft,",
        "choices: [{key: theft, label: Theft of property}, Getting home at night,",
    )
    changed = Survey.model_validate(yaml.safe_load(reworded))
    with app.db.session() as session:
        store_definition(session, changed, tz=tz, at=now)
        assert _count(session, SurveyAnswer) == 6
    kind_changed = Survey.model_validate(
        yaml.safe_load(
            SURVEY.replace("kind: rating", "kind: text", 1).replace(
                "    low: Very unsafe\n    high: Very safe\n", ""
            )
        )
    )
    with pytest.raises(ConfigError, match="question safe was rating and is now text"):
        with app.db.session() as session:
            store_definition(session, kind_changed, tz=tz, at=now)


def test_in_the_know_replies_to_the_survey_become_responses_once(app: App) -> None:
    with app.db.session() as session:  # the campaign's In The Know post, as published
        session.add(
            Post(
                channel="in_the_know",
                campaign=CAMPAIGN,
                text="Bike security: tell us what worries you",
                status=PostStatus.PUBLISHED,
                external_id="<alert-77@alerts.example>",
                created_by="cara.comms",
                created_at=NOW,
                updated_at=NOW,
                published_at=NOW,
            )
        )
    sent = NOW - timedelta(hours=2)
    # a reply to the published post (its subject says nothing of the survey)
    deliver_email(
        app,
        reply_email(
            "1 B\n2: A, C\n3 4\n4: the underpass is dark and my bike was nicked there",
            subject="Re: Lock your bike",
            thread="<alert-77@alerts.example>",
            message_id="<r1@mail.example>",
            at=sent,
        ),
    )
    # a reply found by its subject, that answers nothing in particular
    deliver_email(
        app,
        reply_email(
            "honestly just walking home past Friargate at 2am",
            message_id="<r2@mail.example>",
            thread="<alert-2@alerts.example>",
            at=sent,
        ),
    )
    # a reply pushed by the Alert system for the alert named in the survey file
    deliver_push(app, "NA-R-1", "Q1: drink spiking", "487390", "2026-11-21T10:00:00Z")
    # not survey replies: another alert; and an answer sent before the survey opened
    deliver_push(app, "NA-R-2", "1 B", "999999", "2026-11-21T10:00:00Z")
    deliver_email(
        app,
        reply_email("1 A", message_id="<r3@mail.example>", at=datetime(2026, 10, 30, tzinfo=UTC)),
    )
    assert collect(app) == 3
    assert collect(app) == 0  # idempotent
    with app.db.session() as session:
        r, m = _c(SurveyResponse), _c(Message)
        rows = session.execute(
            select(r.channel, r.campaign, m.external_id)
            .join(Message.__table__, m.id == r.message_id)  # type: ignore[attr-defined]
            .order_by(m.external_id)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("in_the_know", CAMPAIGN, "<r1@mail.example>"),
            ("in_the_know", None, "<r2@mail.example>"),
            ("in_the_know", None, "push:NA-R-1"),
        ]
        a = _c(SurveyAnswer)
        texts = session.execute(select(a.text).where(a.text.is_not(None))).scalars()
        assert sorted(texts) == [
            "honestly just walking home past Friargate at 2am",
            "the underpass is dark and my bike was nicked there",
        ]
        assert _count(session, SurveyAnswer, a.choice_id.is_not(None)) == 5
        assert (
            _count(session, SurveyAnswerScenario, _c(SurveyAnswerScenario).scenario == "theft") == 1
        )


def test_retention_empties_old_free_text_and_erasure_takes_reply_answers(
    app: App, survey: Survey
) -> None:
    answers = check_answers(
        survey,
        [
            Given("worry", choices=("theft",)),
            Given("channels", choices=("twitter",)),
            Given("safe", choices=("3",)),
            Given("concerns", text="my bike was nicked, ring me on 07700 900123"),
        ],
    )
    with app.db.session() as session:  # answered on the web more than a year ago
        record_response(
            session,
            survey,
            answers,
            arrival=Arrival(WEB),
            tz=app.settings.tz,
            at=NOW,
            submitted_at=NOW - timedelta(days=400),
            respondent="c" * 64,
        )
    deliver_email(app, reply_email("4: someone is dealing in halls", at=NOW - timedelta(hours=1)))
    assert collect(app) == 1
    settings = app.settings
    with app.db.session() as session:
        dry = purge(session, now=NOW, retention=settings.retention, web=settings.web, dry_run=True)
    assert dry.survey_texts_cleared == 1
    with app.db.session() as session:
        assert (
            purge(
                session, now=NOW, retention=settings.retention, web=settings.web
            ).survey_texts_cleared
            == 1
        )
    with app.db.session() as session:
        a, tag = _c(SurveyAnswer), _c(SurveyAnswerScenario)
        texts = session.execute(select(a.text).where(a.text.is_not(None))).scalars().all()
        assert texts == ["someone is dealing in halls"]  # the recent reply's words stay
        tags = session.execute(select(tag.scenario).order_by(tag.scenario)).scalars().all()
        assert tags == ["drugs", "theft"]  # the old answer's theme still counts
        assert _count(session, SurveyAnswer, a.choice_id.is_not(None)) == 3
        delete_messages(session, _c(Message).channel == "in_the_know")
    with app.db.session() as session:  # erasing the reply took the answers read from it
        assert _count(session, SurveyResponse) == 1
        assert _count(session, SurveyAnswer, _c(SurveyAnswer).text.is_not(None)) == 0


def test_the_migration_creates_the_survey_tables_as_the_models_describe(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert [d for d in differences if "survey" in repr(d)] == []
