"""Surveys as YAML: short questionnaires officers define, or a link to an external one.

A file in ``schedules/surveys/`` (``surveys_dir`` in config) holds one survey: its id (the
file name), title, the days it is open (Europe/London, both included) and either
``questions`` (single choice, multiple choice, a 1-5 rating, free text) or an
``external_url``, for which only clicks on the tracking links are counted. A campaign
points at a survey with ``survey: {id: ..., label: ...}``; the campaign's per-channel
tracking link then leads to the survey's page, which knows the channel from the link.

This module is pure: parsing files and checking answers against a definition. Storing
answers is in bot/survey_store.py, reading In The Know replies in bot/survey_replies.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from bot.errors import BotError
from bot.yaml_files import load_folder, load_model
from schedules.campaigns import Campaign

MAX_FILE_BYTES = 64 * 1024
MAX_QUESTIONS = 30
MAX_CHOICES = 26  # In The Know replies name a choice by its letter
RATING_POINTS = ("1", "2", "3", "4", "5")
SURVEY_ID = r"^[a-z0-9][a-z0-9-]{1,63}$"


class QuestionKind(StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    RATING = "rating"
    TEXT = "text"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def slug(label: str) -> str:
    """A choice's stable key from its wording, so reordering choices keeps the counts."""
    words = re.findall(r"[a-z0-9]+", label.casefold())
    return "-".join(words)[:64] or "choice"


class Choice(_Strict):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    label: str = Field(min_length=1, max_length=200)


class Question(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text: str = Field(min_length=3, max_length=500)
    kind: QuestionKind
    required: bool | None = None  # default: choices and ratings yes, free text no
    choices: list[Choice] = Field(default_factory=list)
    max_chars: int = Field(default=2000, ge=10, le=5000)  # free text only
    low: str | None = Field(default=None, max_length=60)  # rating: what 1 means
    high: str | None = Field(default=None, max_length=60)  # rating: what 5 means

    @field_validator("choices", mode="before")
    @classmethod
    def _plain_labels(cls, value: Any) -> Any:
        """A choice may be written as just its label; its key is then made from it."""
        if isinstance(value, list):
            return [{"key": slug(c), "label": c} if isinstance(c, str) else c for c in value]
        return value

    @model_validator(mode="after")
    def _choices_fit_kind(self) -> Question:
        if self.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            if not 2 <= len(self.choices) <= MAX_CHOICES:
                raise ValueError(f"a {self.kind} question needs 2 to {MAX_CHOICES} choices")
            for seen, what in (
                (self.keys, "key"),
                ([c.label.casefold() for c in self.choices], "label"),
            ):
                duplicates = sorted({k for k in seen if seen.count(k) > 1})
                if duplicates:
                    raise ValueError(f"choices repeat the {what} {', '.join(duplicates)}")
        elif self.choices:
            raise ValueError(f"a {self.kind} question has no choices")
        if (self.low or self.high) and self.kind is not QuestionKind.RATING:
            raise ValueError("low and high describe a rating's ends")
        return self

    @property
    def keys(self) -> list[str]:
        if self.kind is QuestionKind.RATING:
            return list(RATING_POINTS)
        return [c.key for c in self.choices]

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.kind is not QuestionKind.TEXT

    def options(self) -> list[Choice]:
        """What can be picked: the choices, or the points of a rating."""
        if self.kind is QuestionKind.RATING:
            return [Choice(key=p, label=p) for p in RATING_POINTS]
        return list(self.choices)


class InTheKnowMatch(_Strict):
    """How a reply by email is known to answer this survey, besides replying to a campaign
    post of it that the bot published: the alert's id (set when an officer sent the survey
    from the Alert system by hand), or words in the reply's subject (default: the title)."""

    alert_ids: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=50
    )
    subject: str | None = Field(default=None, min_length=5, max_length=200)


class Survey(_Strict):
    id: str = Field(pattern=SURVEY_ID)
    title: str = Field(min_length=3, max_length=200)
    intro: str | None = Field(default=None, max_length=2000)
    opens: date | None = None
    closes: date | None = None  # the last day it takes answers
    external_url: HttpUrl | None = None
    questions: list[Question] = Field(default_factory=list, max_length=MAX_QUESTIONS)
    in_the_know: InTheKnowMatch = InTheKnowMatch()

    @model_validator(mode="after")
    def _shape(self) -> Survey:
        if (self.external_url is None) == (not self.questions):
            raise ValueError("give either questions or an external_url (not both)")
        if self.opens and self.closes and self.closes < self.opens:
            raise ValueError("closes is before opens")
        keys = [q.key for q in self.questions]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"questions repeat the key {', '.join(duplicates)}")
        if self.external_url and self.in_the_know != InTheKnowMatch():
            raise ValueError("an external survey takes no In The Know replies")
        return self

    @property
    def is_external(self) -> bool:
        return self.external_url is not None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def window(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """When it opens and closes, as instants: local midnight, last day included."""
        opens = datetime.combine(self.opens, time(), tzinfo=tz) if self.opens else None
        closes = (
            datetime.combine(self.closes + timedelta(days=1), time(), tzinfo=tz)
            if self.closes
            else None
        )
        return opens, closes

    def state(self, at: datetime, tz: ZoneInfo) -> str:
        """``open``, ``not_yet`` or ``closed``."""
        opens, closes = self.window(tz)
        if opens is not None and at < opens:
            return "not_yet"
        if closes is not None and at >= closes:
            return "closed"
        return "open"

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)

    @property
    def reply_subject(self) -> str:
        return self.in_the_know.subject or self.title


def load_survey(path: Path) -> Survey:
    """Parse and validate one file; the error names the file, the field and the reason."""
    return load_model(path, Survey, kind="survey", key="id", max_bytes=MAX_FILE_BYTES)


def load_surveys(folder: Path) -> list[Survey]:
    """Every survey in the folder; all problems are reported together."""
    return load_folder(folder, load_survey, kind="survey")


def campaign_surveys(campaigns: Iterable[Campaign]) -> dict[str, str]:
    """Campaign name -> the id of our survey it links to (campaigns with an external link or
    no survey are left out)."""
    return {c.name: c.survey.id for c in campaigns if c.survey is not None and c.survey.id}


def unknown_references(surveys: Sequence[Survey], campaign_surveys: Mapping[str, str]) -> list[str]:
    """Campaigns (name -> survey id) that point at a survey with no file."""
    known = {s.id for s in surveys}
    return [
        f"campaign {name}: no survey {survey_id!r} in the surveys folder"
        for name, survey_id in sorted(campaign_surveys.items())
        if survey_id not in known
    ]


# -- answers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Given:
    """One question's answer as given: choice keys (ratings as "1".."5"), or free text."""

    question: str
    choices: tuple[str, ...] = ()
    text: str | None = None


class AnswersRefused(BotError):
    """Answers that do not fit the survey; ``problems`` maps question key to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def _name(survey: Survey, question: Question) -> str:
    return f"Question {survey.questions.index(question) + 1} ({question.text})"


def problem_with(survey: Survey, question: Question, given: Given) -> str | None:
    """What is wrong with one answer, in words a student understands; None if it fits."""
    name = _name(survey, question)
    if question.kind is QuestionKind.TEXT:
        if given.choices:
            return f"{name} takes written words, not a choice."
        if given.text is not None and len(given.text) > question.max_chars:
            return f"{name}: please keep it under {question.max_chars} characters."
        return None
    if given.text is not None:
        return f"{name} takes one of its choices, not written words."
    unknown = [c for c in given.choices if c not in question.keys]
    if unknown:
        shown = ", ".join(f'"{c[:40]}"' for c in unknown[:3])
        return f"{name}: {shown} is not one of its choices."
    if len(set(given.choices)) != len(given.choices):
        return f"{name}: a choice was given twice."
    if question.kind is not QuestionKind.MULTIPLE and len(given.choices) > 1:
        return f"{name}: pick only one."
    return None


def check_answers(survey: Survey, given: Sequence[Given]) -> list[Given]:
    """The answers that say something, once every one fits and every required question is
    answered; otherwise AnswersRefused naming each problem (unknown questions included)."""
    problems: dict[str, str] = {}
    kept: list[Given] = []
    answered: set[str] = set()
    for answer in given:
        question = survey.question(answer.question)
        if question is None:
            problems[answer.question] = f'There is no question "{answer.question[:40]}".'
            continue
        problem = problem_with(survey, question, answer)
        if problem:
            problems[question.key] = problem
        elif answer.choices or (answer.text and answer.text.strip()):
            kept.append(answer)
            answered.add(question.key)
    for question in survey.questions:
        if question.is_required and question.key not in answered and question.key not in problems:
            problems[question.key] = f"{_name(survey, question)} needs an answer."
    if problems:
        raise AnswersRefused(problems)
    return kept
