"""A pull-based reader of a multipart/form-data body, one part at a time, never whole.

python-multipart parses by being pushed bytes; the media store reads an upload by pulling
chunks. ``MultipartReader`` joins the two: a part's ``chunks()`` pushes request bytes into
the parser only as fast as the consumer asks for the part's data, so a refused upload
stops the reading of the request at that point, and memory holds one chunk at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from bot.errors import BotError

MAX_HEADER_BYTES = 8 * 1024


class FormError(BotError):
    """The body is not a well-formed form, or a part is larger than allowed."""


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    _reader: MultipartReader = field(repr=False)
    _finished: bool = False

    def chunks(self) -> Iterator[bytes]:
        """The part's bytes as they arrive; each part can be read once."""
        while not self._finished:
            event = self._reader.next_event()
            if event[0] == "data":
                yield event[1]
            elif event[0] == "part_end":
                self._finished = True
            else:
                raise FormError("the form ended in the middle of a field")

    def text(self, limit: int) -> str:
        """A text field, refused past ``limit`` bytes."""
        data = bytearray()
        for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                raise FormError(f"the {self.name!r} field is longer than allowed")
        return data.decode("utf-8", errors="replace")

    def drain(self) -> None:
        for _ in self.chunks():
            pass


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise FormError("the form must be sent as multipart/form-data")
    return boundary


class MultipartReader:
    def __init__(self, body: Iterator[bytes], boundary: bytes) -> None:
        self._body = body
        self._events: deque[tuple[str, bytes]] = deque()
        self._finished_headers: deque[dict[str, str]] = deque()
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._header_bytes = 0
        self._ended = False
        self._current: Part | None = None
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": lambda: self._events.append(("part_end", b"")),
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )

    # -- parser callbacks ------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._events.append(("part_begin", b""))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end])))

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]
        self._count_header(end - start)

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._count_header(end - start)

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise FormError("a form field's headers are too long")

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode(
            "utf-8", "replace"
        )
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        # Callbacks for several parts can fire in one write: each part's headers travel
        # with its own event rather than in shared state.
        self._finished_headers.append(self._headers)
        self._headers = {}
        self._events.append(("headers", b""))

    def _on_end(self) -> None:
        self._ended = True
        self._events.append(("end", b""))

    # -- pulling ---------------------------------------------------------------------
    def next_event(self) -> tuple[str, bytes]:
        while not self._events:
            chunk = next(self._body, None)
            if chunk is None:
                if not self._ended:
                    raise FormError("the form was cut off before its end")
                return ("end", b"")
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise FormError(f"the form is not well formed: {exc}") from None
        return self._events.popleft()

    def parts(self) -> Iterator[Part]:
        """Each part in order; a part not read through is skipped when the next is asked."""
        while True:
            if self._current is not None and not self._current._finished:
                self._current.drain()
            event = self.next_event()
            if event[0] == "end":
                return
            if event[0] != "part_begin":
                raise FormError("the form is not well formed")
            while event[0] != "headers":
                event = self.next_event()
                if event[0] == "end":
                    raise FormError("the form ended in a field's headers")
            headers = self._finished_headers.popleft()
            disposition, options = parse_options_header(headers.get("content-disposition", ""))
            if disposition != b"form-data" or b"name" not in options:
                raise FormError("a form field has no name")
            filename = options.get(b"filename")
            self._current = Part(
                name=options[b"name"].decode("utf-8", "replace"),
                filename=filename.decode("utf-8", "replace") if filename is not None else None,
                content_type=headers.get("content-type", "text/plain"),
                _reader=self,
            )
            yield self._current
