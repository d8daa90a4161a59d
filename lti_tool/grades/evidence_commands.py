"""`lti-tool evidence verify|export`: check the archive's hash chains, export one learner's file."""

from __future__ import annotations

import json
import sys

import click
from sqlalchemy import func, select

from lti_tool.cli_support import get_runtime
from lti_tool.errors import NotFound
from lti_tool.store.models.core import Person
from lti_tool.store.models.evaluation import EvidenceRecord


@click.group("evidence")
def evidence() -> None:
    """Evidence archive of decisions (directive Art. 9/4)."""


@evidence.command("verify")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check every platform's hash chain; name the first broken record and exit 1."""
    from lti_tool.grades.evidence import verify_chain

    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        broken = verify_chain(db)
        count = db.scalar(select(func.count(EvidenceRecord.id))) or 0
        chains = db.scalar(select(func.count(func.distinct(EvidenceRecord.platform_id)))) or 0
    if broken is not None:
        click.echo(f"Evidence chain broken at {broken}", err=True)
        sys.exit(1)
    click.echo(f"Evidence chain intact: {count} records in {chains} platform chain(s).")


@evidence.command("export")
@click.argument("person_id", type=int)
@click.option("--offering", "offering_id", type=int, default=None,
              help="Only this offering's decisions and records.")
@click.pass_context
def export(ctx: click.Context, person_id: int, offering_id: int | None) -> None:
    """Write one learner's decisions and evidence records as JSON to standard output."""
    from lti_tool.grades.evidence import export_evidence

    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        person = db.get(Person, person_id)
        if person is None:
            raise NotFound(f"No person {person_id}.")
        data = export_evidence(db, person.platform_id, person_id, offering_id)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def register(cli: click.Group) -> None:
    """Add `evidence` to the root command group."""
    cli.add_command(evidence)
