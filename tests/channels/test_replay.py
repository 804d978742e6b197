"""The replay channel reads JSONL as a real channel would deliver it, bad lines included."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.replay import MAX_LINE_BYTES, ReplayChannel
from tests.conftest import message_line, write_jsonl


def test_reads_good_lines_and_reports_bad_ones_with_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [
            message_line("1", "bike nicked 🚲"),
            '{"channel": "twitter", ',
            "",
            "[1, 2, 3]",
            message_line("2", "no tz", received_at="2026-11-21T11:00:00"),
            message_line("3", "مرحبا، سرقت دراجتي"),
        ],
    )
    batch = ReplayChannel(path).fetch(None)
    assert [m.external_id for m in batch.messages] == ["1", "3"]
    reasons = [f.reason for f in batch.failures]
    assert reasons[0].startswith("line 2: malformed JSON")
    assert reasons[1] == "line 4: expected a JSON object"
    assert reasons[2].startswith("line 5: received_at") and "timezone" in reasons[2]
    assert batch.failures[0].raw == b'{"channel": "twitter", '
    assert batch.failures[0].origin == "in.jsonl:2"
    assert batch.exhausted


def test_streams_in_batches_and_resumes_from_the_cursor(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [message_line(str(i), f"m{i}") for i in range(7)])
    channel = ReplayChannel(path, batch_size=3)
    seen: list[str] = []
    cursor = None
    rounds = 0
    while True:
        batch = channel.fetch(cursor)
        seen += [m.external_id for m in batch.messages]
        cursor = batch.cursor
        rounds += 1
        if batch.exhausted:
            break
    assert seen == [str(i) for i in range(7)]
    assert rounds == 3


def test_oversized_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    big = json.dumps(message_line("big", "x" * (MAX_LINE_BYTES * 2)))
    path.write_text(big + "\n" + json.dumps(message_line("ok", "fine")) + "\n")
    batch = ReplayChannel(path).fetch(None)
    assert [m.external_id for m in batch.messages] == ["ok"]
    assert "longer than" in batch.failures[0].reason
    assert len(batch.failures[0].raw) <= MAX_LINE_BYTES + 1


def test_text_over_the_configured_limit_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [message_line("1", "y" * 501)])
    batch = ReplayChannel(path, max_text_chars=500).fetch(None)
    assert batch.messages == [] and "longer than 500 characters" in batch.failures[0].reason


def test_not_utf8_and_deep_nesting_are_clear_failures() -> None:
    channel = ReplayChannel(None)
    assert "not UTF-8" in channel.parse(b"\xff\xfe{}").failures[0].reason
    deep = b"[" * 100_000 + b"]" * 100_000
    assert channel.parse(deep).failures[0].reason.startswith("line 1:")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_parse_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    batch = ReplayChannel(None).parse(payload)
    assert len(batch.messages) + len(batch.failures) == 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_round_trips(text: str) -> None:
    batch = ReplayChannel(None).parse(json.dumps(message_line("1", text)).encode())
    assert batch.failures == []
    assert batch.messages[0].text == text.replace("\x00", "")


def test_a_huge_integer_is_a_dead_letter_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"channel": "twitter", "external_id": '
        + "9" * 5000
        + "}\n"
        + json.dumps(message_line("ok", "fine"))
        + "\n"
    )
    batch = ReplayChannel(path).fetch(None)
    assert [m.external_id for m in batch.messages] == ["ok"]
    assert "unreadable JSON value" in batch.failures[0].reason
