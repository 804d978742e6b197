"""Property-based tests: every parser of outside data survives any input.

For each parser the property is the same one the pipeline relies on: whatever arrives, the
parser returns (never raises), and everything it was given is accounted for - as messages
or as failures carrying the original bytes and a reason, so the dead-letter table can keep
it. Inputs are random bytes, random JSON in the platform's shape, and mutations of real
recorded payloads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import FacebookSettings, TwitterSettings, load_settings
from bot.errors import BotError, ConfigError
from bot.metrics_import import read_metrics_file
from channels.base import Batch
from channels.facebook import FacebookChannel
from channels.in_the_know import parse_email, parse_feed, parse_push
from channels.replay import ReplayChannel
from channels.twitter import TwitterChannel
from schedules.campaigns import load_campaign
from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RUNS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _twitter() -> TwitterChannel:
    from pydantic import SecretStr

    return TwitterChannel(
        TwitterSettings(
            enabled=True,
            user_id="1450000000000000001",
            bearer_token=SecretStr("AAAA-test"),
            consumer_key=SecretStr("ck"),
            consumer_secret=SecretStr("cs"),
            access_token=SecretStr("at"),
            access_token_secret=SecretStr("ats"),
        )
    )


def _facebook() -> FacebookChannel:
    from pydantic import SecretStr

    return FacebookChannel(
        FacebookSettings(
            enabled=True,
            page_id="104000000000001",
            page_access_token=SecretStr("page-token"),
            app_secret=SecretStr("app-secret"),
            verify_token=SecretStr("verify-token"),
        )
    )


def _accounted(batch: Batch) -> None:
    assert isinstance(batch, Batch)
    for failure in batch.failures:
        assert failure.reason  # a reason an officer can read
        assert isinstance(failure.raw, bytes)


def _mutations(payload: Any) -> st.SearchStrategy[Any]:
    """A recorded payload with one value somewhere replaced by anything JSON can hold."""

    def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [prefix]
        if isinstance(node, dict):
            for key, value in node.items():
                found += paths(value, (*prefix, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found += paths(value, (*prefix, index))
        return found

    def replace(path: tuple[Any, ...], value: Any) -> Any:
        copy = json.loads(json.dumps(payload))
        if not path:
            return value
        node = copy
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return copy

    return st.builds(replace, st.sampled_from(paths(payload)), json_values)


def _fixture(channel: str, name: str) -> Any:
    return json.loads((FIXTURES / channel / name).read_text())


TWITTER_WEBHOOKS = ["aaa_tweet_create_event.json", "aaa_dm_event.json"]
FACEBOOK_WEBHOOKS = [
    "webhook_message_text.json",
    "webhook_message_image.json",
    "webhook_feed_comment.json",
    "webhook_postback.json",
    "webhook_batched.json",
]


@RUNS
@given(st.binary(max_size=2048))
def test_every_webhook_parser_survives_random_bytes(body: bytes) -> None:
    for parser in (_twitter().parse, _facebook().parse, ReplayChannel(None).parse):
        _accounted(parser(body))
    _accounted(parse_push(body, now=NOW))
    _accounted(parse_email(body, now=NOW))


@RUNS
@given(st.data())
def test_twitter_webhook_survives_any_value_in_a_real_payload(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(TWITTER_WEBHOOKS))
    body = json.dumps(data.draw(_mutations(_fixture("twitter", name)))).encode()
    _accounted(_twitter().parse(body))


@RUNS
@given(st.data())
def test_twitter_poll_pages_survive_any_value_in_a_real_page(data: st.DataObject) -> None:
    twitter = _twitter()
    page = data.draw(_mutations(_fixture("twitter", "mentions_page1.json")))
    if isinstance(page, dict):
        _accounted(twitter.parse_v2_tweets(page))
    dms = data.draw(_mutations(_fixture("twitter", "dm_events.json")))
    if isinstance(dms, dict):
        _accounted(twitter.parse_v2_dms(dms))


@RUNS
@given(st.data())
def test_facebook_webhook_survives_any_value_in_a_real_payload(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FACEBOOK_WEBHOOKS))
    body = json.dumps(data.draw(_mutations(_fixture("facebook", name)))).encode()
    _accounted(_facebook().parse(body))


@RUNS
@given(st.data())
def test_facebook_polled_comments_survive_any_value(data: st.DataObject) -> None:
    page = data.draw(_mutations(_fixture("facebook", "comments_bike_page1.json")))
    _accounted(_facebook().parse_polled(json.dumps(page).encode()))


@RUNS
@given(json_values)
def test_replay_lines_survive_any_json(value: Any) -> None:
    _accounted(ReplayChannel(None).parse(json.dumps(value).encode()))


@RUNS
@given(st.data())
def test_in_the_know_emails_survive_mutated_headers_and_bodies(data: st.DataObject) -> None:
    names = sorted(p.name for p in (FIXTURES / "in_the_know").glob("*.eml"))
    raw = (FIXTURES / "in_the_know" / data.draw(st.sampled_from(names))).read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    noise = data.draw(st.binary(max_size=64))
    _accounted(parse_email(raw[:cut] + noise + raw[cut:], now=NOW))


@RUNS
@given(st.binary(max_size=4096))
def test_the_in_the_know_feed_parser_survives_random_documents(document: bytes) -> None:
    alerts, warning = parse_feed(document)
    assert isinstance(alerts, list)
    assert warning is None or isinstance(warning, str)


@RUNS
@given(st.text(max_size=300) | json_values.map(lambda v: yaml.safe_dump(v)))
def test_a_campaign_file_is_loaded_or_refused_with_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, content: str
) -> None:
    path = tmp_path_factory.mktemp("campaign") / "bikes.yaml"
    path.write_text(content, encoding="utf-8")
    try:
        load_campaign(path)
    except ConfigError as exc:
        refusal = str(exc)
    else:
        refusal = "bikes.yaml: loaded"
    assert refusal.startswith("bikes.yaml")  # the refusal names the file


@RUNS
@given(st.binary(max_size=1024) | json_values.map(lambda v: json.dumps(v).encode()))
def test_a_metrics_file_is_read_or_refused_with_a_clear_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path: Path = tmp_path_factory.mktemp("metrics") / "figures.json"
    path.write_bytes(content)
    try:
        read_metrics_file(path)
    except BotError as exc:
        refusal = str(exc)
    else:
        refusal = "loaded"
    assert refusal.strip()  # refused with a reason, never a traceback


@RUNS
@given(st.text(max_size=300) | json_values.map(lambda v: yaml.safe_dump(v)))
def test_a_config_file_is_loaded_or_refused_with_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, content: str
) -> None:
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(content, encoding="utf-8")
    try:
        load_settings(path)
    except ConfigError as exc:
        refusal = str(exc)
    else:
        refusal = "loaded"
    assert refusal.strip()
