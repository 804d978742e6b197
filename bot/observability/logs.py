"""Log set-up: readable text for a terminal, one JSON object per line for a service.

In JSON each line carries ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
``request_id`` while a web request is being handled, and any ``extra={...}`` fields, so a
log shipper can index them without parsing prose. The request id lives in a context
variable set by the web middleware; it follows the request into the thread pool that runs
blocking handlers (anyio copies the context), so the pipeline's own log lines carry it too.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

request_id: ContextVar[str | None] = ContextVar("campusbot_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records made while a request is being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None:
            record.request_id = current
        return True


class CampusbotHandler(logging.StreamHandler[TextIO]):
    """Our one root handler. Without a fixed stream it writes to whatever ``sys.stderr`` is
    at the time, so a replaced stderr (a test runner's capture) is never written after close."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._fixed = value


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's copy with ANSI codes
    )


def configure_logging(
    level: str, log_format: LogFormat, *, stream: TextIO | None = None, force: bool = False
) -> CampusbotHandler | None:
    """Install the root handler, replacing one installed before by this function.

    Like ``logging.basicConfig``, it leaves logging alone when something else (a test
    runner, a program embedding the bot) already put handlers on the root logger, unless
    ``force``; then ours is added beside theirs. Returns the handler, or None if left alone.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, CampusbotHandler)]
    if not force and len(ours) != len(root.handlers):
        return None
    for old in ours:
        root.removeHandler(old)
    handler = CampusbotHandler(stream)
    handler.setFormatter(
        json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler
