"""`lti-tool people erase PERSON_ID --reason TEXT`: an erasure request, carried out."""

from __future__ import annotations

import json

import click

from lti_tool.cli_support import get_runtime
from lti_tool.grades.lifecycle import erase_person
from lti_tool.store.db import transaction


@click.group("people")
def people() -> None:
    """People the tool holds (learners, instructors) and their data rights."""


@people.command("erase")
@click.argument("person_id", type=int)
@click.option("--reason", required=True, help="The erasure request (who asked, when, ref).")
@click.option("--by", "by", default="cli", show_default=True,
              help='Who carries it out, e.g. "NAME <EMAIL>" (recorded in the audit log).')
@click.option("--json", "as_json", is_flag=True, help="Print the erasure record as JSON.")
@click.pass_context
def erase(ctx: click.Context, person_id: int, reason: str, by: str, as_json: bool) -> None:
    """Remove a person's data that is not under a retention duty; pseudonymise the rest."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        report = erase_person(db, runtime.settings, person_id, reason=reason, by=by)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    removed = report["removed"]
    click.echo(f"Erased person {person_id}: now {report['pseudonym']}.")
    click.echo("Removed: profile fields " + (", ".join(removed["profile_fields"]) or "none")
               + "; " + ", ".join(f"{k}: {v}" for k, v in removed.items()
                                  if k != "profile_fields"))
    for item in report["kept"]:
        click.echo(f"Kept {item['count']} {item['kind']}: {item['purpose']} "
                   f"(KVKK: {item['kvkk']}; GDPR: {item['gdpr']})")


def register(cli: click.Group) -> None:
    cli.add_command(people)
