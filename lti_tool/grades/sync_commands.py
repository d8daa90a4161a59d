"""`lti-tool sync [--context ID]`: sync now, with a progress bar per course."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.cli_support import get_runtime
from lti_tool.errors import NotFound, ToolError
from lti_tool.grades.jobs import all_context_ids, offering_contexts
from lti_tool.grades.sync import SyncResult, sync_context
from lti_tool.store.db import utcnow
from lti_tool.store.models.core import Context


def resolve_contexts(db: Session, value: str | None) -> list[int]:
    """`--context` as the tool's id or the LMS's course id; all open offerings otherwise."""
    if value is None:
        return offering_contexts(db, utcnow()) or all_context_ids(db)
    if value.isdigit() and db.get(Context, int(value)) is not None:
        return [int(value)]
    matches = list(db.scalars(select(Context.id).where(Context.context_id == value)))
    if not matches:
        raise NotFound(f"No course context {value!r}: give the tool's context id or the "
                       "LMS course id (see the course's sync page).")
    if len(matches) > 1:
        raise ToolError(f"Several platforms have a course {value!r}: give the tool's context "
                        f"id instead (one of {', '.join(map(str, matches))}).")
    return matches


def _summary(result: SyncResult) -> str:
    return (f"{result.items} items, {result.scores} marks, {result.members} members; "
            f"{result.rows_written} changes saved ({result.requests} requests)")


@click.command("sync")
@click.option("--context", "context", metavar="ID",
              help="The course to sync: the tool's context id or the LMS course id.")
def sync_command(context: str | None) -> None:
    """Fetch the gradebook (and roster) of one course, or of every course with an offering."""
    runtime = get_runtime()
    with runtime.sessions() as db:
        ids = resolve_contexts(db, context)
        labels = {c.id: c.label or c.context_id for c in db.scalars(
            select(Context).where(Context.id.in_(ids)))}
    failed = 0
    for context_id in ids:
        label = f"{labels.get(context_id, context_id)} (#{context_id})"
        with click.progressbar(length=1, label=f"Syncing {label}", file=None) as bar:
            # Sources report `done` of `total` items each; the bar adds them up so it only
            # moves forward (earlier sources' items count as done).
            finished: dict[str, int] = {}

            def progress(done: int, total: int, phase: str, bar=bar,
                         finished=finished) -> None:
                if total:
                    finished[phase] = total
                before = sum(t for name, t in finished.items() if name != phase)
                bar.length = max(before + total, bar.length or 1, 1)
                bar.update(max(0, before + done - bar.pos), current_item=phase)

            try:
                result = sync_context(runtime, context_id, trigger="cli", progress=progress)
            except ToolError as exc:  # busy or gone: report, go on with the next course
                result = SyncResult(None, context_id, "failed", error=exc.message)
        if result.status == "succeeded":
            click.echo(f"{label}: {_summary(result)}")
            for warning in result.warnings:  # a source (or part) skipped; its marks kept
                click.echo(f"{label}: warning: {warning}", err=True)
            if result.error:  # saved, but the evaluation afterwards failed
                click.echo(f"{label}: {result.error}", err=True)
        else:
            failed += 1
            click.echo(f"{label}: sync failed: {result.error}", err=True)
    if failed:
        raise click.ClickException(f"{failed} of {len(ids)} course syncs failed.")
