"""Prometheus counters for what the bot receives, classifies, dead-letters, sends and fails.

Per process, by choice: every ``campusbot serve`` and ``campusbot worker`` process counts
what it did itself, in its own ``CollectorRegistry`` (never prometheus_client's global
one), and Prometheus scrapes each process as a target of its own and adds them up, e.g.
``sum by (channel) (rate(campusbot_messages_classified_total[5m]))``. A serve process
exposes its counts at ``/metrics``; a worker, which has no web app, exposes them with
``serve_metrics(port)`` (the built-in server of prometheus_client, bound to loopback).
Counters start at zero when a process starts; ``rate()`` and ``increase()`` allow for
that. prometheus_client's multiprocess mode (files shared through a directory) was not
used: it needs an environment variable set before import in every process and the
directory cleaned on each start, and only adds up processes on one machine anyway.

Which process counts what: webhooks (serve) and polling (worker) count messages received,
stored, duplicates and dead letters by ``source`` (the pipeline's source: ``twitter``,
``twitter:poll``, ``replay``...); the worker counts classification, replies, posts and API
errors by ``channel``. The web middleware counts HTTP requests by route template.

No personal data: label values are the bot's own names (channel, source, route template,
HTTP method and status), checked against a strict pattern; anything else is reported as
``other``. Message text, author ids and raw paths (``/s/abc123``) never become labels.

Which registry: ``current()`` is the one the web middleware set for the request being
handled, else the process's own. A web app uses the process's registry unless it is
given one (tests give each app its own, so they do not see each other's counts).
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from contextvars import ContextVar, Token
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.errors import AuthError, NotSupported, PermanentError, RateLimited, TransientError

SAFE_LABEL = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,47}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def label(value: str) -> str:
    """A channel or source name as a label value; anything unexpected becomes ``other``."""
    return value if SAFE_LABEL.fullmatch(value) else "other"


def error_kind(error: Exception) -> str:
    """The bounded kind of a channel error (the classes in bot.errors), never its text."""
    for kind, cls in (
        ("rate_limited", RateLimited),
        ("auth", AuthError),
        ("transient", TransientError),
        ("permanent", PermanentError),
        ("not_supported", NotSupported),
    ):
        if isinstance(error, cls):
            return kind
    return "other"


class Metrics:
    """One registry and its counters: a process has one, a test app may have its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        self.received = counter(
            "campusbot_messages_received",
            "Messages and undeliverable payloads taken in, by source.",
            ["source"],
        )
        self.stored = counter(
            "campusbot_messages_stored", "New messages stored, by source.", ["source"]
        )
        self.duplicates = counter(
            "campusbot_messages_duplicate",
            "Messages already stored (redeliveries), by source.",
            ["source"],
        )
        self.dead_letters = counter(
            "campusbot_dead_letters",
            "Payloads dead-lettered (kept for a retry), counted on commit; a repeat counts again.",
            ["source"],
        )
        self.classified = counter(
            "campusbot_messages_classified", "Messages classified and triaged.", ["channel"]
        )
        self.replies_sent = counter("campusbot_replies_sent", "Replies sent.", ["channel"])
        self.replies_failed = counter(
            "campusbot_replies_failed", "Replies given up on or interrupted.", ["channel"]
        )
        self.posts_published = counter("campusbot_posts_published", "Posts published.", ["channel"])
        self.posts_failed = counter(
            "campusbot_posts_failed", "Posts given up on or interrupted.", ["channel"]
        )
        self.api_errors = counter(
            "campusbot_api_errors",
            "Channel API errors, by kind (rate_limited, auth, transient, permanent, "
            "not_supported).",
            ["channel", "kind"],
        )
        self.http_requests = counter(
            "campusbot_http_requests",
            "HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
        )
        self.http_latency = Histogram(
            "campusbot_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


_process = Metrics()
_current: ContextVar[Metrics | None] = ContextVar("campusbot_metrics", default=None)


def process_metrics() -> Metrics:
    return _process


def current() -> Metrics:
    return _current.get() or _process


def use(metrics: Metrics) -> Token[Metrics | None]:
    """Make ``metrics`` current in this context; returns the token for ``restore``."""
    return _current.set(metrics)


def restore(token: Token[Metrics | None]) -> None:
    _current.reset(token)


# -- what the services call ------------------------------------------------------------------
def record_ingest(source: str, *, received: int, stored: int, duplicates: int) -> None:
    """After an ingest transaction commits (dead letters count themselves on commit)."""
    m, name = current(), label(source)
    m.received.labels(name).inc(received)
    m.stored.labels(name).inc(stored)
    m.duplicates.labels(name).inc(duplicates)


def record_classified(channel: str, n: int = 1) -> None:
    current().classified.labels(label(channel)).inc(n)


def record_reply_sent(channel: str) -> None:
    current().replies_sent.labels(label(channel)).inc()


def record_reply_failed(channel: str) -> None:
    current().replies_failed.labels(label(channel)).inc()


def record_published(channel: str) -> None:
    current().posts_published.labels(label(channel)).inc()


def record_publish_failed(channel: str) -> None:
    current().posts_failed.labels(label(channel)).inc()


def record_api_error(channel: str, error: Exception) -> None:
    current().api_errors.labels(label(channel), error_kind(error)).inc()


_PENDING = "campusbot_dead_letters_pending"


def record_dead_letter(session: Session, source: str) -> None:
    """Count a dead letter when its transaction commits: one rolled back was never kept,
    and the platform's retry of that delivery will be counted when it is."""
    pending: Tally[str] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = Tally()
        event.listen(session, "after_commit", _count_pending)
        event.listen(session, "after_rollback", _drop_pending)
    pending[label(source)] += 1


def _count_pending(session: Session) -> None:
    pending: Tally[str] = session.info[_PENDING]
    counter = current().dead_letters
    for source, n in pending.items():
        counter.labels(source).inc(n)
    pending.clear()


def _drop_pending(session: Session) -> None:
    session.info[_PENDING].clear()


def serve_metrics(port: int, host: str = "127.0.0.1") -> WSGIServer:
    """Expose this process's counters over HTTP (for a worker); returns the server, whose
    ``shutdown()`` stops it. Loopback by default: it has no sign-in, so reach it remotely
    only through something that has one, or a network only Prometheus can reach."""
    server, _thread = start_http_server(port, addr=host, registry=_process.registry)
    return server
