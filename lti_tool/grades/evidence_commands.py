"""`lti-tool evidence verify|export|checkpoint|purge`: the archive's chains, signed checkpoints,
one learner's file and the retention purge."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lti_tool.cli_support import get_runtime
from lti_tool.errors import BadRequest, NotFound
from lti_tool.grades.evidence import (
    export_checkpoints,
    export_evidence,
    first_problem,
    seal_all,
    stale_chains,
    verify_against,
    verify_archive,
)
from lti_tool.grades.lifecycle import purge_expired
from lti_tool.grades.timestamp import stamp_if_configured
from lti_tool.store.db import transaction
from lti_tool.store.models.core import Person


@click.group("evidence")
def evidence() -> None:
    """Evidence archive of decisions (directive Art. 9/4)."""


@evidence.command("verify")
@click.option("--against", "against", type=click.Path(dir_okay=False, exists=True,
                                                      path_type=Path),
              help="A file from `evidence checkpoint export`: prove the database still holds "
                   "every checkpoint it records.")
@click.pass_context
def verify(ctx: click.Context, against: Path | None) -> None:
    """Check every chain's hashes, checkpoints and signatures; name the first bad record or
    checkpoint and exit 1."""
    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        results = verify_archive(db, runtime.settings)
        bad = first_problem(results)
        stale = stale_chains(db)
        mismatch = None
        if against is not None:
            try:
                data = json.loads(against.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise BadRequest(f"{against} is not a JSON checkpoint file: {exc}") from exc
            mismatch = verify_against(db, data)
    if bad is not None:
        click.echo(f"Evidence archive broken at {bad}", err=True)
        sys.exit(1)
    if mismatch is not None:
        click.echo(f"Evidence archive differs from {against}: {mismatch}", err=True)
        sys.exit(1)
    records = sum(r.report.records for r in results)
    checkpoints = sum(r.report.checkpoints for r in results)
    click.echo(f"Evidence archive intact: {records} records and {checkpoints} signed "
               f"checkpoints in {len(results)} chain(s).")
    for result in results:
        for purge in result.report.purges:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(purge.kinds.items())) or "nothing"
            click.echo(f"  platform {result.platform_id}: purge record seq {purge.seq} at "
                       f"{purge.at} removed {kinds}; why: {purge.reason}")
    for platform_id, age in stale:
        click.echo(f"  warning: platform {platform_id}'s newest checkpoint is {age} days old; "
                   "is `lti-tool worker` running the daily job?", err=True)
    if against is not None:
        click.echo(f"Every checkpoint in {against} is still in the database.")


@evidence.command("export")
@click.argument("person_id", type=int)
@click.option("--offering", "offering_id", type=int, default=None,
              help="Only this offering's decisions and records.")
@click.pass_context
def export(ctx: click.Context, person_id: int, offering_id: int | None) -> None:
    """Write one learner's decisions and evidence records as JSON to standard output."""
    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        person = db.get(Person, person_id)
        if person is None:
            raise NotFound(f"No person {person_id}.")
        data = export_evidence(db, person.platform_id, person_id, offering_id)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@evidence.group("checkpoint", invoke_without_command=True)
@click.pass_context
def checkpoint(ctx: click.Context) -> None:
    """Sign every chain's head now (or `export` the signed checkpoints)."""
    if ctx.invoked_subcommand is not None:
        return
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        count = seal_all(db, runtime.settings, "manual", always=True)
    click.echo(f"Signed {count} checkpoint(s).")


@checkpoint.command("export")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: standard output).")
@click.pass_context
def checkpoint_export(ctx: click.Context, out: Path | None) -> None:
    """Write the signed checkpoints as JSON (timestamped when LTI_TOOL_EVIDENCE_TSA_URL is set)."""
    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        data = export_checkpoints(db, runtime.settings)
    stamp_if_configured(runtime.settings, data)
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    count = sum(len(c["checkpoints"]) for c in data["chains"])
    click.echo(f"Wrote {count} checkpoint(s) of {len(data['chains'])} chain(s) to {out}"
               + (" (RFC 3161 timestamp included)" if "timestamp" in data else ""))


@evidence.command("purge")
@click.pass_context
def purge(ctx: click.Context) -> None:
    """Run the retention purge now (the worker runs it daily) and print what it removed."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        summary = purge_expired(db, runtime.settings)
    if not summary:
        click.echo("Nothing is past its retention period.")
    for platform_id, kinds in sorted(summary.items()):
        click.echo(f"platform {platform_id}: " + ", ".join(f"{k}: {v}"
                                                          for k, v in sorted(kinds.items())))


def register(cli: click.Group) -> None:
    """Add `evidence` to the root command group."""
    cli.add_command(evidence)
