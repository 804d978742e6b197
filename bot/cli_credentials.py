"""`campusbot credentials`: the key that seals stored tokens, and renewing X's token."""

from __future__ import annotations

import typer

from bot.cli_common import out, state_of

credentials_app = typer.Typer(
    no_args_is_help=True, help="The key sealing stored channel tokens and second factors."
)


@credentials_app.command("new-key")
def new_key() -> None:
    """Print a new key for CAMPUSBOT_CREDENTIALS_KEY (keep it out of config.yaml and git).

    Set it once for the web server and the worker alike; changing it later makes what was
    stored with the old key unreadable (accounts must be reconnected, second factors reset).
    """
    from bot.credentials import new_key as make

    out.print(make(), markup=False)


@credentials_app.command("refresh")
def refresh(ctx: typer.Context) -> None:
    """Renew X's token if it expires within 15 minutes (for cron, every 5 minutes)."""
    from bot.channel_auth import refresh_due

    renewed = refresh_due(state_of(ctx).app)
    out.print(f"{renewed} token(s) renewed")
