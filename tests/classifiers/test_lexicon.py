"""Lexicon markers: one shared feature for the many ways students say the same thing."""

from __future__ import annotations

import pytest

from classifiers.text import prepare


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("some scrote's had it away with my bike", "xxtheft"),
        ("lads bagging up in the kitchen", "xxdrugs"),
        ("my tyres have been let down and the door egged", "xxcriminal_damage"),
        ("lairy lads wolf whistling outside the SU", "xxanti_social_behaviour"),
        ("she's been greetin all week and not eating", "xxmental_health"),
        ("he spat at me and shoved me into the wall", "xxviolent_crime"),
        ("I WANT TO DIE LOL 😂 left my USB in halls", "xxjoke"),
        ("it's ok, nobody got hurt and I'm safe now", "xxsafe"),
        ("I'm on the roof and I have a plan", "xxdanger"),
    ],
)
def test_wordings_share_their_marker(text: str, marker: str) -> None:
    assert marker in prepare(text).split()


def test_plain_text_gets_no_markers() -> None:
    assert prepare("what time does the library open") == "what time does the library open"
