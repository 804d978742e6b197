"""`campusbot worker`: APScheduler drives the periodic jobs.

Jobs hold no state of their own: the database is the queue (messages in ``received``,
replies in ``queued``), so a restart loses nothing. Coalescing is on and only one
instance of each job runs at a time, so a slow round is never stacked up behind itself.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from bot.alerts import ALERTS_EVERY_SECONDS, run_alerts
from bot.app import App
from bot.channel_auth import refresh_due
from bot.delivery import deliver_due
from bot.errors import AuthError, PermanentError, RateLimited, TransientError
from bot.incident_reports import run_round
from bot.meeting_reminders import send_reminders
from bot.observability import metrics
from bot.polling import poll_once
from bot.posts import expire_overdue
from bot.survey_store import run_collection
from channels.base import Channel
from schedules.leader import Leadership
from schedules.publisher import publish_due

log = logging.getLogger(__name__)

PROCESS_EVERY_SECONDS = 5
DELIVER_EVERY_SECONDS = 10
PUBLISH_EVERY_SECONDS = 30
EXPIRE_EVERY_SECONDS = 300
RETENTION_EVERY_SECONDS = 24 * 3600
SURVEYS_EVERY_SECONDS = 300
REMINDERS_EVERY_SECONDS = 300
TOKENS_EVERY_SECONDS = 300  # X's tokens are renewed 15 minutes before they expire
REPORTS_EVERY_SECONDS = 15  # guided report conversations answer within seconds
INSIGHTS_EVERY_SECONDS = 6 * 3600  # Meta settles a day's figures over the following hours


def jobs(app: App) -> dict[str, tuple[Callable[[], object], int]]:
    """Each job and its interval in seconds."""
    grace = timedelta(minutes=app.settings.approval.expire_grace_minutes)

    def expire() -> int:
        with app.db.session() as session:
            return expire_overdue(session, at=app.clock.now(), grace=grace)

    polls = {
        f"poll_{name}": (
            _poller(app, name, channel),
            app.settings.channels()[name].poll_interval_seconds,
        )
        for name, channel in app.channels().items()
    }

    def purge_expired() -> object:
        from bot.retention import purge

        with app.db.session() as session:
            purged = purge(
                session, now=app.clock.now(), retention=app.settings.retention, web=app.settings.web
            )
        with app.db.session() as session:  # the files of the media no message needs any more
            app.media.sweep(session, actor="retention", at=app.clock.now())
        return purged

    daily: dict[str, tuple[Callable[[], object], int]] = {}
    if "facebook" in app.channels():
        from bot.insights import collect_facebook_insights

        daily["facebook_insights"] = (
            _guarded(app, "facebook", lambda: collect_facebook_insights(app)),
            INSIGHTS_EVERY_SECONDS,
        )
    if "twitter" in app.channels():
        from bot.insights import collect_twitter_metrics

        daily["twitter_metrics"] = (
            _guarded(app, "twitter", lambda: collect_twitter_metrics(app)),
            INSIGHTS_EVERY_SECONDS,
        )

    return {
        **polls,
        "retention_purge": (purge_expired, RETENTION_EVERY_SECONDS),
        "process_pending": (app.pipeline.process_pending, PROCESS_EVERY_SECONDS),
        "deliver_replies": (
            lambda: deliver_due(app.db, app.channels(), app.clock),
            DELIVER_EVERY_SECONDS,
        ),
        "publish_posts": (
            lambda: publish_due(app.db, app.channels(), app.clock, grace=grace),
            PUBLISH_EVERY_SECONDS,
        ),
        "expire_posts": (expire, EXPIRE_EVERY_SECONDS),
        "send_alerts": (lambda: run_alerts(app), ALERTS_EVERY_SECONDS),
        "collect_survey_replies": (lambda: run_collection(app), SURVEYS_EVERY_SECONDS),
        "incident_reports": (lambda: run_round(app), REPORTS_EVERY_SECONDS),
        "refresh_channel_tokens": (lambda: refresh_due(app), TOKENS_EVERY_SECONDS),
        "send_meeting_reminders": (lambda: send_reminders(app), REMINDERS_EVERY_SECONDS),
        **daily,
    }


def _poller(app: App, name: str, channel: Channel) -> Callable[[], object]:
    return _guarded(app, name, lambda: poll_once(app, name, channel))


def _guarded(app: App, name: str, call: Callable[[], object]) -> Callable[[], object]:
    """A job against a platform's API that waits out a rate limit without holding up any
    other job, and logs (never raises) what the platform refused."""
    not_before: list[datetime] = []

    def run() -> object:
        now = app.clock.now()
        if not_before and now < not_before[0]:
            return None
        not_before.clear()
        try:
            return call()
        except RateLimited as exc:
            metrics.record_api_error(name, exc)
            not_before.append(exc.retry_at)
            log.warning("channel=%s rate limited until %s", name, exc.retry_at.isoformat())
        except AuthError as exc:
            metrics.record_api_error(name, exc)
            log.error("channel=%s needs re-authorisation: %s", name, exc)
        except TransientError as exc:
            metrics.record_api_error(name, exc)
            log.warning("channel=%s unavailable, will retry: %s", name, exc)
        except PermanentError as exc:  # e.g. an untrusted certificate or a missing folder
            metrics.record_api_error(name, exc)
            log.error("channel=%s cannot be polled until its settings are fixed: %s", name, exc)
        return None

    return run


# Jobs whose work is claimed row by row (SKIP LOCKED, conditional updates) run on every
# worker and share the load; the rest (polling the platforms, expiring posts) only on the
# leader, so several workers never poll the same API twice.
SHARED_JOBS = frozenset({"process_pending", "deliver_replies", "publish_posts", "send_alerts"})


def _leader_only(
    leadership: Leadership, name: str, job: Callable[[], object]
) -> Callable[[], object]:
    def run() -> object:
        if not leadership.try_acquire():
            log.debug("not the leader; skipping %s", name)
            return None
        return job()

    return run


def run_worker(app: App, *, once: bool = False) -> None:
    leadership = Leadership(app.db)
    planned = {
        name: (job if name in SHARED_JOBS else _leader_only(leadership, name, job), seconds)
        for name, (job, seconds) in jobs(app).items()
    }
    if once:
        for name, (job, _) in planned.items():
            log.info("running %s once", name)
            job()
        leadership.release()
        return
    scheduler = BlockingScheduler(timezone=app.settings.timezone)
    for name, (job, seconds) in planned.items():
        scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=seconds,
            # the daily purge also runs at start, so frequent restarts never postpone it
            **(
                {"next_run_time": datetime.now(app.settings.tz)}
                if name == "retention_purge"
                else {}
            ),
        )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the running jobs", signum)
        scheduler.shutdown(wait=True)
        leadership.release()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker started with jobs %s", ", ".join(jobs(app)))
    scheduler.start()
