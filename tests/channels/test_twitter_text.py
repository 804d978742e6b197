"""channels.limits against twitter-text's official conformance cases (tests/fixtures/twitter_text).

Every case of the four sections that test counting runs, each field compared. The sections
that test twitter-text's username, list, hashtag and URL validators are not run: the bot has
no such validators.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from channels.limits import (
    V1,
    V2,
    V3,
    WeightConfig,
    fits,
    has_url,
    length_for,
    parse_tweet,
    weighted_length,
)
from tests.conftest import FIXTURES

CONFORMANCE = FIXTURES / "twitter_text"
CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (CONFORMANCE / "validate.yml").read_text(encoding="utf-8")
)["tests"]
# Which configuration each section is run with, as in twitter-text's own conformance runner.
COUNTING = {
    "WeightedTweetsCounterTest": V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": V3,
    "UnicodeDirectionalMarkerCounterTest": V3,
}


def _cases(section: str) -> list[Any]:
    return [pytest.param(case, id=f"{section}: {case['description']}") for case in CASES[section]]


def test_fixture_is_whole() -> None:
    """A truncated or re-encoded copy would quietly test less."""
    text = (CONFORMANCE / "validate.yml").read_text(encoding="utf-8")
    assert len(text) == 51_579  # characters in the upstream file
    counts = {name: len(CASES[name]) for name in [*COUNTING, "tweets"]}
    assert counts == {
        "WeightedTweetsCounterTest": 20,
        "WeightedTweetsWithDiscountedEmojiCounterTest": 21,
        "UnicodeDirectionalMarkerCounterTest": 2,
        "tweets": 8,
    }


@pytest.mark.parametrize("case", [param for section in COUNTING for param in _cases(section)])
def test_weighted_counting(case: dict[str, Any], request: pytest.FixtureRequest) -> None:
    section = request.node.callspec.id.split(":")[0]
    result = parse_tweet(case["text"], COUNTING[section])
    expected = case["expected"]
    assert {
        "weightedLength": result.weighted_length,
        "valid": result.valid,
        "permillage": result.permillage,
        "displayRangeStart": result.display_range[0],
        "displayRangeEnd": result.display_range[1],
        "validRangeStart": result.valid_range[0],
        "validRangeEnd": result.valid_range[1],
    } == expected


@pytest.mark.parametrize("case", _cases("tweets"))
def test_legacy_tweet_validity(case: dict[str, Any]) -> None:
    """twitter-text's isValidTweet: the v1 configuration, URLs weighed by their characters."""
    assert parse_tweet(case["text"], V1, count_urls=False).valid is case["expected"]


@pytest.mark.parametrize(("config", "name"), [(V1, "v1.json"), (V2, "v2.json"), (V3, "v3.json")])
def test_configurations_match_upstream(config: WeightConfig, name: str) -> None:
    upstream = json.loads((CONFORMANCE / name).read_text())
    assert config == WeightConfig(
        version=upstream["version"],
        max_weighted_length=upstream["maxWeightedTweetLength"],
        scale=upstream["scale"],
        default_weight=upstream["defaultWeight"],
        transformed_url_length=upstream["transformedURLLength"],
        ranges=tuple((r["start"], r["end"], r["weight"]) for r in upstream["ranges"]),
        emoji_parsing=upstream.get("emojiParsingEnabled", False),
    )


@pytest.mark.parametrize(
    ("text", "weight", "link"),
    [
        ("Lock your bike at the SU racks", 30, False),
        ("Advice: uclan.ac.uk/safety tonight", 8 + 23 + 8, True),
        ("Stay safe e.g. at halls. No.5 bus", 33, False),
        (
            "Report it: https://www.lancashire.police.uk/ro/report/ \U0001f6b2\U0001f512",
            11 + 23 + 5,
            True,
        ),
        ("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f UK", 5, False),
        ("\u0031\ufe0f\u20e3 first tip", 2 + 10, False),
        ("Figures \u00a9 Lancashire Constabulary", 8 + 1 + 24, False),  # \u00a9 alone is text
    ],
)
def test_campus_texts(text: str, weight: int, link: bool) -> None:
    assert weighted_length(text) == weight
    assert length_for("twitter", text) == weight
    assert has_url(text) is link


def test_fits_uses_the_weighted_limit_on_x_only() -> None:
    cjk = "\u5b89" * 141  # 282 weighted, 141 characters
    assert not fits("twitter", cjk)
    assert fits("twitter", "\u5b89" * 140)
    assert fits("facebook", cjk)
    assert not fits("twitter", "")  # X refuses an empty post
    assert not fits("twitter", "ok\ufffe")  # and one with a non-character
    assert length_for("facebook", cjk) == 141
