"""What every command shares: the lazily loaded settings and app, and the consoles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from bot.config import Settings, load_settings
from bot.observability.logs import configure_logging

if TYPE_CHECKING:
    from bot.app import App

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    config: Path | None = None
    _settings: Settings | None = None
    _app: App | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
            configure_logging(self._settings.log_level, self._settings.log_format)
        return self._settings

    @property
    def app(self) -> App:
        if self._app is None:
            from bot.app import build

            self._app = build(self.settings)
        return self._app


def state_of(ctx: typer.Context) -> State:
    state = ctx.find_root().obj
    assert isinstance(state, State)
    return state
