"""A JSONL file read as a channel: the demo's sample data, backfills and load tests.

Each line is one message in the normalised shape (``bot.messages.InboundMessage``), with
``channel`` naming the platform it came from. The file is streamed in bounded batches;
the cursor is a byte offset and line number, so a huge file never sits in memory and a
resumed replay starts where it stopped. A line that is not valid becomes an
``Undeliverable`` with its line number and the exact bytes, never an exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO, ClassVar

from pydantic import ValidationError

from bot.messages import Capabilities, InboundMessage
from channels.base import BaseChannel, Batch, Undeliverable, parser

DEFAULT_BATCH = 500
MAX_LINE_BYTES = 1024 * 1024


class ReplayChannel(BaseChannel):
    name: ClassVar[str] = "replay"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self, path: Path | None, *, batch_size: int = DEFAULT_BATCH, max_text_chars: int = 10_000
    ) -> None:
        self.path = path
        self.batch_size = batch_size
        self.max_text_chars = max_text_chars

    def fetch(self, cursor: str | None) -> Batch:
        if self.path is None:
            raise ValueError("this replay channel has no file; it can only parse payloads")
        offset, line_no = _decode_cursor(cursor)
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            read = 0
            while read < self.batch_size:
                line, oversized, eof = _read_line(handle)
                if eof:
                    return Batch(messages, failures, _encode_cursor(handle.tell(), line_no))
                line_no += 1
                read += 1
                origin = f"{self.path.name}:{line_no}"
                if oversized:
                    failures.append(
                        Undeliverable(
                            line, f"line {line_no}: longer than {MAX_LINE_BYTES} bytes", origin
                        )
                    )
                    continue
                if not line.strip():
                    continue
                parsed = self._parse_line(line, line_no, origin)
                if isinstance(parsed, Undeliverable):
                    failures.append(parsed)
                else:
                    messages.append(parsed)
            position = handle.tell()
            at_end = handle.read(1) == b""
            return Batch(messages, failures, _encode_cursor(position, line_no), exhausted=at_end)

    @parser("payload")
    def parse(self, payload: bytes) -> Batch:
        parsed = self._parse_line(payload, 1, "payload")
        if isinstance(parsed, Undeliverable):
            return Batch(failures=[parsed])
        return Batch(messages=[parsed])

    def _parse_line(self, line: bytes, line_no: int, origin: str) -> InboundMessage | Undeliverable:
        try:
            data = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return Undeliverable(line, f"line {line_no}: not UTF-8 ({exc.reason})", origin)
        except json.JSONDecodeError as exc:
            return Undeliverable(
                line, f"line {line_no}: malformed JSON ({exc.msg} at column {exc.colno})", origin
            )
        except RecursionError:
            return Undeliverable(line, f"line {line_no}: JSON nested too deeply", origin)
        except ValueError as exc:  # e.g. an integer too long to convert
            return Undeliverable(line, f"line {line_no}: unreadable JSON value ({exc})", origin)
        if not isinstance(data, dict):
            return Undeliverable(line, f"line {line_no}: expected a JSON object", origin)
        data.setdefault("raw", {k: v for k, v in data.items() if k != "raw"})
        try:
            message = InboundMessage.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            return Undeliverable(line, f"line {line_no}: {problems}", origin)
        if len(message.text) > self.max_text_chars:
            return Undeliverable(
                line, f"line {line_no}: text longer than {self.max_text_chars} characters", origin
            )
        return message


def _read_line(handle: BinaryIO) -> tuple[bytes, bool, bool]:
    """(line without newline, oversized, end of file); an oversized line is cut short."""
    line = handle.readline(MAX_LINE_BYTES + 1)
    if not line:
        return b"", False, True
    if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
        return line.rstrip(b"\r\n"), False, False
    while True:  # skip the remainder of the oversized line in bounded reads
        rest = handle.readline(MAX_LINE_BYTES)
        if not rest or rest.endswith(b"\n"):
            return line, True, False


def _decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    offset, _, line_no = cursor.partition(":")
    return int(offset), int(line_no or 0)


def _encode_cursor(offset: int, line_no: int) -> str:
    return f"{offset}:{line_no}"
