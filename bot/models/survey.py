"""Surveys: the links handed out per campaign and channel, the surveys themselves, and answers.

A survey is defined in YAML (schedules/surveys/); its questions and choices are copied here
when it is first answered, so reports can count answers per choice with plain SQL joins and
show choices nobody picked. Questions and choices are never deleted: one taken out of the
file is marked ``current = False`` and its answers still count.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from bot.models.base import optional_utc, utc_field


class SurveyLink(SQLModel, table=True):
    __tablename__ = "survey_links"
    __table_args__ = (UniqueConstraint("campaign", "channel", name="uq_survey_campaign_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    campaign: str = Field(max_length=128)
    channel: str = Field(max_length=32)
    target_url: str = Field(max_length=2048)
    created_at: datetime = utc_field()


class SurveyClick(SQLModel, table=True):
    """One click through the redirect; no IP or cookie is kept, only when and which link."""

    __tablename__ = "survey_clicks"

    id: int | None = Field(default=None, primary_key=True)
    link_id: int = Field(
        sa_column=Column(Integer, ForeignKey("survey_links.id", ondelete="CASCADE"), index=True)
    )
    clicked_at: datetime = utc_field(index=True)


class SurveyRecord(SQLModel, table=True):
    """The stored copy of one survey file; ``digest`` says whether the file has changed."""

    __tablename__ = "surveys"

    id: str = Field(primary_key=True, max_length=64)
    title: str = Field(max_length=200)
    external_url: str | None = Field(default=None, max_length=2048)
    opens_at: datetime | None = optional_utc()
    closes_at: datetime | None = optional_utc()
    digest: str = Field(max_length=64)
    stored_at: datetime = utc_field()


class SurveyQuestion(SQLModel, table=True):
    __tablename__ = "survey_questions"
    __table_args__ = (UniqueConstraint("survey_id", "key", name="uq_survey_question_key"),)

    id: int | None = Field(default=None, primary_key=True)
    survey_id: str = Field(
        sa_column=Column(
            String(64), ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    key: str = Field(max_length=32)
    position: int
    kind: str = Field(sa_type=String(16))
    text: str = Field(sa_type=Text)
    current: bool = True


class SurveyChoice(SQLModel, table=True):
    """A choice of a single or multiple choice question, or one point (1-5) of a rating."""

    __tablename__ = "survey_choices"
    __table_args__ = (UniqueConstraint("question_id", "key", name="uq_survey_choice_key"),)

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("survey_questions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    key: str = Field(max_length=64)
    position: int
    label: str = Field(max_length=200)
    current: bool = True


class SurveyResponse(SQLModel, table=True):
    """One person's answers: from the web page (one per browser) or one In The Know reply.

    ``respondent`` is the SHA-256 of the survey and the browser's random cookie, so the same
    browser cannot answer twice and nothing links answers to a person or to other surveys;
    no IP address is kept. A reply by email points at its message: deleting the message
    (retention, erasure) deletes the answers taken from it.
    """

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("survey_id", "respondent", name="uq_survey_response_respondent"),
    )

    id: int | None = Field(default=None, primary_key=True)
    survey_id: str = Field(
        sa_column=Column(
            String(64), ForeignKey("surveys.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    source: str = Field(sa_type=String(16))  # web or in_the_know
    channel: str | None = Field(default=None, max_length=32, index=True)  # from the link
    campaign: str | None = Field(default=None, max_length=128, index=True)
    link_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("survey_links.id", ondelete="SET NULL"), nullable=True
        ),
    )
    respondent: str | None = Field(default=None, max_length=64)
    message_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, unique=True
        ),
    )
    submitted_at: datetime = utc_field(index=True)


class SurveyAnswer(SQLModel, table=True):
    """One chosen choice, or one piece of free text.

    Free text has no ``choice_id``; text from a reply that answered no particular question
    has no ``question_id`` either. ``tagged_at`` is when the classifier's scenario tags were
    stored (SurveyAnswerScenario); the retention purge empties old ``text`` but keeps tags.
    """

    __tablename__ = "survey_answers"

    id: int | None = Field(default=None, primary_key=True)
    response_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("survey_responses.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    question_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("survey_questions.id", ondelete="CASCADE"),
            nullable=True,
            index=True,
        ),
    )
    choice_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("survey_choices.id", ondelete="CASCADE"), nullable=True, index=True
        ),
    )
    text: str | None = Field(default=None, sa_type=Text)
    tagged_at: datetime | None = optional_utc()


class SurveyAnswerScenario(SQLModel, table=True):
    """One row per scenario a free-text answer was tagged with, for counting in SQL."""

    __tablename__ = "survey_answer_scenarios"

    answer_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("survey_answers.id", ondelete="CASCADE"), primary_key=True
        )
    )
    scenario: str = Field(max_length=32, primary_key=True, index=True)
