"""The safety rules catch the unmistakable, and step back for negation and hypotheticals."""

from __future__ import annotations

import pytest
import spacy

from classifiers.rules import SafetyRules
from classifiers.text import prepare
from classifiers.train import TOKENIZER


@pytest.fixture(scope="module")
def rules() -> spacy.language.Language:
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})
    nlp.add_pipe("safety_rules")
    assert isinstance(nlp.get_pipe("safety_rules"), SafetyRules)
    return nlp


@pytest.mark.parametrize(
    "text",
    [
        "he's pulled a knife on my mate outside the SU",
        "I can't go on, I've got the pills lined up",
        "my flatmate is unconscious and not breathing",
        "i just want to end it all tonight",
        "SHE'S BEEN STABBED PLEASE",
    ],
)
def test_risk_phrases_fire(rules: spacy.language.Language, text: str) -> None:
    doc = rules(prepare(text))
    assert doc._.risk_rule is not None
    assert doc._.urgent_rule is not None


@pytest.mark.parametrize(
    "text",
    [
        "he didn't have a knife, he just shouted",
        "what should I do if someone is unconscious after drinking",
        "I was stabbed last year and want to talk about it",
        "if a friend says they want to die what do I say",
        "this deadline is killing me",
    ],
)
def test_negated_hypothetical_and_past_do_not_fire(
    rules: spacy.language.Language, text: str
) -> None:
    doc = rules(prepare(text))
    assert doc._.risk_rule is None


def test_urgent_without_risk(rules: spacy.language.Language) -> None:
    doc = rules(prepare("someone is following me right now"))
    assert doc._.urgent_rule is not None
    assert doc._.risk_rule is None


@pytest.mark.parametrize(
    "text",
    [
        "there's a man with a knife outside the library right now, how do i get out",
        "I’m suicidal and I can’t go on",
        "I've taken all my tablets. I used to be happy",
    ],
)
def test_a_cue_in_another_clause_or_a_curly_apostrophe_does_not_hide_risk(
    rules: spacy.language.Language, text: str
) -> None:
    assert rules(prepare(text))._.risk_rule is not None
