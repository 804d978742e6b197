"""Keyword classifier: the stand-in the trained model replaces, kept as a safety net.

Deliberately simple and predictable: regexes per label. It is what the pipeline uses
when no trained model is configured, and what tests use when the label logic itself
is not under test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from classifiers.base import Classification, Intent, Scenario
from classifiers.language import detect_language


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")", re.IGNORECASE)


SCENARIO_PATTERNS: dict[Scenario, re.Pattern[str]] = {
    Scenario.THEFT: _words(
        r"stol(?:e|en)",
        r"nick(?:ed)?\b",
        r"theft",
        r"thief",
        r"robb",
        r"mugg",
        r"pinch(?:ed)",
        r"burgl",
        r"swiped",
        r"snatch",
        r"pickpocket",
        r"shoplift",
    ),
    Scenario.DRUGS: _words(
        r"drug",
        r"weed",
        r"cannabis",
        r"spik(?:ed|ing)",
        r"\bnos\b",
        r"laughing gas",
        r"cocaine",
        r"\bcoke\b",
        r"pills\b",
        r"deal(?:ing|er)",
        r"\bket\b",
        r"ketamine",
    ),
    Scenario.CRIMINAL_DAMAGE: _words(
        r"smashed",
        r"vandal",
        r"graffiti",
        r"keyed",
        r"damag",
        r"slashed",
        r"arson",
        r"set (?:on )?fire",
        r"broken window",
    ),
    Scenario.ANTI_SOCIAL_BEHAVIOUR: _words(
        r"noise",
        r"noisy",
        r"loud music",
        r"rowdy",
        r"anti.?social",
        r"fireworks",
        r"youths",
        r"gang of",
        r"shouting",
        r"party",
        r"litter",
        r"fly.?tip",
    ),
    Scenario.MENTAL_HEALTH: _words(
        r"suicid",
        r"kill (?:my|him|her)self",
        r"end it",
        r"self.?harm",
        r"depress",
        r"anxiety",
        r"panic attack",
        r"struggling",
        r"mental health",
        r"can'?t cope",
        r"hurt(?:ing)? myself",
        r"no point",
    ),
    Scenario.VIOLENT_CRIME: _words(
        r"assault",
        r"attack",
        r"punch",
        r"stab",
        r"knife",
        r"fight",
        r"beat(?:en|ing)? up",
        r"glassed",
        r"rape",
        r"grop",
        r"threaten",
        r"hit me",
        r"violen",
        r"weapon",
        r"mugg",
        r"robb",
    ),
}
URGENT = _words(
    r"right now",
    r"\bnow\b",
    r"happening",
    r"help",
    r"emergency",
    r"bleeding",
    r"unconscious",
    r"still (?:here|there|outside)",
    r"following me",
    r"being followed",
    r"\brn\b",
)
RISK = _words(
    r"suicid",
    r"kill (?:my|him|her)self",
    r"end it all",
    r"end my life",
    r"self.?harm",
    r"want to die",
    r"overdose",
    r"stabb",
    r"knife",
    r"not breathing",
    r"unconscious",
    r"jump(?:ing)? off",
    r"bleeding",
)
NEGATED = re.compile(r"\b(?:no one|nobody|not|wasn'?t|didn'?t|never)\b[^.!?]{0,30}$", re.IGNORECASE)
INTENT_PATTERNS: list[tuple[Intent, re.Pattern[str]]] = [
    (Intent.REQUEST_MEETING, _words(r"meet", r"drop.?in", r"surgery", r"appointment", r"book")),
    (
        Intent.INTELLIGENCE,
        _words(r"heads up", r"fyi", r"every night", r"dealing from", r"tip.?off"),
    ),
    (
        Intent.ASK_ADVICE,
        _words(
            r"what should",
            r"how do i",
            r"how can i",
            r"is it illegal",
            r"advice",
            r"where can i",
            r"what do i do",
        ),
    ),
    (Intent.FEEDBACK, _words(r"thank", r"cheers", r"great (?:post|advice|work)", r"well done")),
]


def _found(pattern: re.Pattern[str], text: str) -> bool:
    """True if the pattern occurs somewhere not preceded closely by a negation."""
    return any(not NEGATED.search(text[: match.start()]) for match in pattern.finditer(text))


class KeywordClassifier:
    name = "keywords-v1"

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> Classification:
        scenarios = tuple(s for s, pattern in SCENARIO_PATTERNS.items() if _found(pattern, text))
        risk = _found(RISK, text)
        urgent = risk or _found(URGENT, text)
        intent = next((i for i, p in INTENT_PATTERNS if p.search(text)), None)
        if intent is None:
            intent = Intent.REPORT_INCIDENT if scenarios else Intent.OTHER
        scores = {f"scenario:{s.value}": float(s in scenarios) for s in Scenario}
        scores |= {f"intent:{i.value}": float(i == intent) for i in Intent}
        scores |= {"urgent": float(urgent), "risk": float(risk)}
        return Classification(
            scenarios=scenarios,
            urgent=urgent,
            risk=risk,
            intent=intent,
            scores=scores,
            language=detect_language(text),
            model=self.name,
        )
