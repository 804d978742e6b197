"""`campusbot privacy`: subject access export and erasure for one person (see docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import err, out, state_of

privacy_app = typer.Typer(
    no_args_is_help=True, help="Subject access export and erasure for one person."
)

Authors = Annotated[
    list[str],
    typer.Option(
        "--author",
        help="channel:id (twitter:1234, facebook:<page-scoped id>, in_the_know:<email>) or "
        "@handle; repeat for each account of the same person",
    ),
]
By = Annotated[
    str, typer.Option("--by", help="The admin acting (a user name); recorded in the audit log")
]
Request = Annotated[
    str | None,
    typer.Option(
        "--request",
        help="Your reference for the request, e.g. DPA-2026-0042 (never the person's name); "
        "generated when omitted",
    ),
]


@privacy_app.command("export")
def export_command(
    ctx: typer.Context,
    author: Authors,
    output: Annotated[
        Path, typer.Option(help="A new file.json, or a new or empty folder", dir_okay=True)
    ],
    by: By,
    request: Request = None,
) -> None:
    """Write everything held about one person to a file (subject access); audited."""
    from bot import privacy
    from bot.media import MediaStore

    state = state_of(ctx)
    at = state.app.clock.now()
    with state.app.db.session() as session:
        identities = privacy.resolve(session, author)
        document = privacy.export(session, identities, by=by, at=at, request=request)
        store = MediaStore.from_settings(state.settings)
        copies = privacy.MediaCopies(session=session, store=store, by=by, at=at)
        written = privacy.write_export(document, output, copies)
    out.print(f"request {document['request']}: {', '.join(map(str, identities))}", markup=False)
    for kind, count in document["counts"].items():
        out.print(f"  {kind.replace('_', ' ')}: {count}")
    out.print(f"written to {written} (readable by you only)", markup=False)


@privacy_app.command("erase")
def erase_command(
    ctx: typer.Context,
    author: Authors,
    by: By,
    request: Request = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: erasure cannot be undone")] = False,
) -> None:
    """Erase one person's data everywhere it is held; cases stay, without them. Audited."""
    from bot import privacy
    from bot.media import MediaStore

    if not (dry_run or yes):
        raise typer.BadParameter(
            "erasure cannot be undone; check with --dry-run, then confirm with --yes",
            param_hint="--yes",
        )
    state = state_of(ctx)
    with state.app.db.session() as session:
        identities = privacy.resolve(session, author)
        report = privacy.erase(
            session,
            identities,
            by=by,
            at=state.app.clock.now(),
            request=request,
            dry_run=dry_run,
            media=MediaStore.from_settings(state.settings),
        )
    out.print(f"request {report.request}: {', '.join(map(str, identities))}", markup=False)
    out.print("dry run, would erase:" if dry_run else "erased:")
    for kind, count in report.counts().items():
        out.print(f"  {kind.replace('_', ' ')}: {count}")
    if report.media_files_waiting:
        err.print(
            f"{report.media_files_waiting} media file(s) arrived within the last hour and are "
            "kept until the next media sweep (an upload may still be on its way)"
        )
    if report.audit_entries_naming_them:
        err.print(
            f"warning: {report.audit_entries_naming_them} audit entries name this person as "
            "actor or entity; the audit log is hash-chained and keeps them (see docs/privacy.md)"
        )
    if dry_run:
        err.print("dry run: nothing changed and nothing audited; add --yes to erase")
    else:
        err.print(
            "erased; database backups and earlier exports still hold copies until they expire "
            "(see docs/privacy.md)"
        )
