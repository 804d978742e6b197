"""The composition root: settings in, a wired-up bot out. Nothing else builds services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db import Database
from bot.media.store import MediaStore
from bot.pipeline import Pipeline
from channels.base import Batch, Channel
from channels.replay import ReplayChannel
from classifiers.base import Classifier
from classifiers.loader import load_classifier

PayloadParser = Callable[[bytes], Batch]


@dataclass
class App:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def classifier(self) -> Classifier:
        return load_classifier(self.settings.classifier)

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(self.db, self.classifier, self.settings, self.clock)

    @cached_property
    def media(self) -> MediaStore:
        return MediaStore.from_settings(self.settings)

    @cached_property
    def _channels(self) -> dict[str, Channel]:
        from bot.credentials import Sealer, StoredToken, still_missing

        built: dict[str, Channel] = {}
        # A token an admin connected in the console (bot.credentials) stands in for the
        # environment's; the adapters read it on each call, so a refresh is used at once.
        sealer = Sealer(self.settings.credentials_key)
        twitter = self.settings.twitter
        if twitter.enabled and not still_missing(self.db, "twitter", twitter.missing()):
            from bot.crud.api_calls import DbLedger
            from channels.twitter import TwitterChannel

            ledger = DbLedger(self.db, twitter.cost, self.clock, self.settings.tz)
            built["twitter"] = TwitterChannel(
                twitter, ledger=ledger, stored_token=StoredToken(self.db, sealer, "twitter")
            )
        facebook = self.settings.facebook
        if facebook.enabled and not still_missing(self.db, "facebook", facebook.missing()):
            from channels.facebook import FacebookChannel

            built["facebook"] = FacebookChannel(
                facebook, clock=self.clock, stored_token=StoredToken(self.db, sealer, "facebook")
            )
        in_the_know = self.settings.in_the_know
        if in_the_know.enabled and not in_the_know.missing():
            from channels.in_the_know import InTheKnowChannel

            built["in_the_know"] = InTheKnowChannel(
                in_the_know, smtp=self.settings.smtp, now=self.clock.now
            )
        return built

    def channels(self) -> dict[str, Channel]:
        """The enabled adapters whose configuration is complete (`config check` names gaps)."""
        return self._channels

    def parsers(self) -> dict[str, PayloadParser]:
        """Parsers by dead-letter source, so a fixed payload can be retried through its own."""
        replay = ReplayChannel(path=None, max_text_chars=self.settings.max_text_chars)
        parsers: dict[str, PayloadParser] = {ReplayChannel.name: replay.parse}
        for name, channel in self.channels().items():
            parsers[name] = channel.parse  # webhook bodies
            polled = getattr(channel, "parse_polled", None)
            if polled is not None:
                parsers[f"{name}:poll"] = polled
        return parsers

    def close(self) -> None:
        self.db.dispose()


def build(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> App:
    return App(
        settings=settings,
        db=db or Database.from_url(settings.database_url),
        clock=clock or SystemClock(),
    )
