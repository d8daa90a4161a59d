"""`lti-tool mc …`: an institution's catalogue from the command line.

`mc import FILE` / `mc export CODE` move Design Plans in and out; `mc submit|approve|reject|
revalidate|retire CODE --by "NAME <EMAIL>"` run the approval workflow through the catalogue
service, recorded (approval history and audit log) as done through the CLI by that person.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
from sqlalchemy.orm import Session

from lti_tool.badges import issuance
from lti_tool.catalogue import importexport, service
from lti_tool.cli_support import get_runtime
from lti_tool.domain.actors import CLI, labelled
from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.store import institutions
from lti_tool.store.db import transaction
from lti_tool.store.models.core import AuditEntry, Institution

WORKFLOW_ACTIONS = ("submit", "approve", "reject", "revalidate", "retire")
BY = re.compile(r"^(?P<name>[^<>\x00-\x1f]{1,200}?)\s*<(?P<email>[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+)>$")


def parse_by(value: str) -> tuple[str, str]:
    """`NAME <EMAIL>` as (name, email); anything else is a 400 that shows the form."""
    match = BY.match((value or "").strip())
    if not match or not match.group("name").strip():
        raise BadRequest(f'--by must be "NAME <EMAIL>" (e.g. "Ayşe Yılmaz <ayse@example.edu>"),'
                         f" not {value!r}.")
    return match.group("name").strip(), match.group("email")


def _scope(db: Session, slug: str | None) -> tuple[Institution, service.Scope]:
    institution = institutions.resolve(db, slug)
    return institution, service.Scope(institution_id=institution.id)


def _fail(problems: list, heading: str) -> None:
    click.echo(heading, err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


institution_option = click.option(
    "--institution", "slug", default=None,
    help="Institution slug (default: the only institution).")


@click.group("mc")
def mc_group() -> None:
    """Micro-credential Design Plans (YAML or JSON; schema at /schemas/microcredential.json)."""


@mc_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@institution_option
@click.pass_context
def import_command(ctx: click.Context, file: Path, slug: str | None) -> None:
    """Create or update a micro-credential of the institution's catalogue from FILE; on any
    error nothing is stored."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{file} is not UTF-8 text") from None
    runtime = get_runtime(ctx)
    try:
        with transaction(runtime.sessions) as db:
            institution, scope = _scope(db, slug)
            plan = service.plan_from_document(
                db, scope, importexport.load_text(text, importexport.format_for(file.name)))
            version = service.save(db, scope, plan, CLI, runtime.settings)
            summary = (f"{plan.code} version {version.version} saved as {version.status} "
                       f"in the catalogue of {institution.slug}")
    except ValidationFailed as failed:
        count = len(failed.problems)
        _fail(failed.problems, f"{file}: {count} problem{'s' if count != 1 else ''}, "
                               "nothing was stored:")
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from exc
    for warning in plan.warnings():
        click.echo(f"Warning: {warning}", err=True)
    click.echo(summary)


@mc_group.command("export")
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(importexport.FORMATS), default="yaml",
              show_default=True)
@click.option("--version", "number", type=int, default=None,
              help="Version number (default: the newest).")
@institution_option
@click.pass_context
def export_command(ctx: click.Context, code: str, fmt: str, number: int | None,
                   slug: str | None) -> None:
    """Print the Design Plan of micro-credential CODE to standard output."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        institution, scope = _scope(db, slug)
        mc = service.find_by_code(db, scope, code)
        if mc is None:
            raise NotFound(f"No micro-credential with code {code!r} in the catalogue of "
                           f"{institution.slug}.")
        versions = [v for v in mc.versions if number is None or v.version == number]
        if not versions:
            raise NotFound(f"{code} has no version {number}.")
        text = importexport.dump(service.plan_of(versions[-1]), fmt)
    click.echo(text, nl=False)


def _workflow_command(action: str) -> click.Command:
    @click.command(action, help=f"{action.capitalize()} the newest version of micro-credential "
                                "CODE, recorded as done through the CLI by --by.")
    @click.argument("code")
    @click.option("--by", "by", required=True, help='Who acts: "NAME <EMAIL>".')
    @click.option("--note", default="", help="A note kept in the approval history.")
    @institution_option
    @click.pass_context
    def command(ctx: click.Context, code: str, by: str, note: str, slug: str | None) -> None:
        name, email = parse_by(by)
        runtime = get_runtime(ctx)
        label = f"{name} <{email}> (cli)"
        doer = labelled(label[:255], role="admin")
        try:
            with transaction(runtime.sessions) as db:
                institution, scope = _scope(db, slug)
                mc = service.find_by_code(db, scope, code)
                if mc is None:
                    raise NotFound(f"No micro-credential with code {code!r} in the catalogue "
                                   f"of {institution.slug}.")
                before = mc.head.status
                version = service.act(db, scope, mc.head.id, action, doer,
                                      settings=runtime.settings, note=note[:2000],
                                      release_held=issuance.issue_held)
                db.add(AuditEntry(institution_id=institution.id, actor_label=label[:255],
                                  action=f"mc.{action}", target=code,
                                  details={"via": "cli", "name": name, "email": email,
                                           "version": version.version, "from": before,
                                           "to": version.status, "note": note[:2000]}))
                summary = (f"{code} version {version.version}: {before} -> {version.status} "
                           f"(by {name} <{email}>, through the CLI)")
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from exc
        click.echo(summary)

    return command


for _action in WORKFLOW_ACTIONS:
    mc_group.add_command(_workflow_command(_action))


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
    cli.add_command(mc_group)
