"""`campusbot tokens`: bearer tokens for the JSON API (/api/v1), one per integration."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bot.cli_common import out, state_of

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens for integrations.")


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The user the token acts as")],
    name: Annotated[str, typer.Option(help="What it is for, e.g. 'control room dashboard'")],
    by: Annotated[str, typer.Option("--by", help="Who is making it")],
) -> None:
    """Make a token; it is printed once and never stored, so keep it safe now."""
    from bot.crud import api_tokens

    state = state_of(ctx)
    with state.app.db.session() as session:
        token = api_tokens.create(
            session, username=username, name=name, by=by, at=state.app.clock.now()
        )
    out.print(token, markup=False)


@tokens_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every token: whose, what for, when last used; never the secret."""
    from bot.crud import api_tokens

    state = state_of(ctx)
    table = Table("id", "user", "for", "created", "last used", "revoked")
    with state.app.db.session() as session:
        for token in api_tokens.list_tokens(session):
            table.add_row(
                str(token.id),
                token.username,
                token.name,
                f"{token.created_at:%Y-%m-%d}",
                f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
                f"{token.revoked_at:%Y-%m-%d}" if token.revoked_at else "",
            )
    out.print(table)


@tokens_app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="The id `tokens list` shows")],
    by: Annotated[str, typer.Option("--by")],
) -> None:
    """Stop a token working at once."""
    from bot.crud import api_tokens

    state = state_of(ctx)
    with state.app.db.session() as session:
        api_tokens.revoke(session, token_id, by=by, at=state.app.clock.now())
    out.print(f"token {token_id} revoked")
