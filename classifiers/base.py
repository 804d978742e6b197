"""The one interface every classifier implements, so the pipeline never knows which it has."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class Scenario(StrEnum):
    THEFT = "theft"
    DRUGS = "drugs"
    CRIMINAL_DAMAGE = "criminal_damage"
    ANTI_SOCIAL_BEHAVIOUR = "anti_social_behaviour"
    MENTAL_HEALTH = "mental_health"
    VIOLENT_CRIME = "violent_crime"


class Intent(StrEnum):
    REPORT_INCIDENT = "report_incident"
    INTELLIGENCE = "intelligence"
    ASK_ADVICE = "ask_advice"
    REQUEST_MEETING = "request_meeting"
    FEEDBACK = "feedback"
    OTHER = "other"


SCENARIOS: tuple[str, ...] = tuple(s.value for s in Scenario)
INTENTS: tuple[str, ...] = tuple(i.value for i in Intent)


class Classification(BaseModel):
    """Tags for one message. It only ever sets tags: closing or hiding is for people."""

    model_config = ConfigDict(frozen=True)

    scenarios: tuple[Scenario, ...] = ()
    urgent: bool = False
    risk: bool = False
    intent: Intent = Intent.OTHER
    scores: dict[str, float] = Field(default_factory=dict)
    language: str = "en"
    model: str = ""

    @property
    def needs_human(self) -> bool:
        """A message not in English is read by a person, whatever the model thought."""
        return self.language != "en"


class Classifier(Protocol):
    name: str

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Classify a batch; batching is what makes the spaCy model fast."""
        ...
