"""`lti-tool mc import FILE` and `lti-tool mc export CODE`: Design Plan files in and out."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.catalogue import importexport, service
from lti_tool.cli_support import get_runtime
from lti_tool.domain.actors import CLI
from lti_tool.domain.errors import IllegalTransition, ValidationFailed
from lti_tool.errors import BadRequest, Conflict, NotFound
from lti_tool.store.db import transaction
from lti_tool.store.models.core import Platform


def resolve_platform(db: Session, platform_id: int | None) -> int:
    """The platform to attach micro-credentials to: the one given, or the only one there is."""
    if platform_id is not None:
        if db.get(Platform, platform_id) is None:
            raise NotFound(f"No platform with id {platform_id} (see `lti-tool platform list`).")
        return platform_id
    ids = list(db.scalars(select(Platform.id).order_by(Platform.id)))
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise BadRequest("No platform is registered yet: add one with `lti-tool platform add`.")
    raise BadRequest(f"{len(ids)} platforms are registered: choose one with --platform ID "
                     f"(one of {', '.join(map(str, ids))}).")


def _fail(problems: list, heading: str) -> None:
    click.echo(heading, err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


@click.group("mc")
def mc_group() -> None:
    """Micro-credential Design Plans (YAML or JSON; schema at /schemas/microcredential.json)."""


@mc_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--platform", "platform_id", type=int, default=None,
              help="Platform registration id (default: the only one registered).")
@click.pass_context
def import_command(ctx: click.Context, file: Path, platform_id: int | None) -> None:
    """Create or update a micro-credential from FILE; on any error nothing is stored."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{file} is not UTF-8 text") from None
    runtime = get_runtime(ctx)
    try:
        with transaction(runtime.sessions) as db:
            platform = resolve_platform(db, platform_id)
            plan = service.plan_from_document(
                db, platform, importexport.load_text(text, importexport.format_for(file.name)))
            version = service.save(db, platform, plan, CLI)
            summary = (f"{plan.code} version {version.version} saved as {version.status} "
                       f"on platform {platform}")
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
@click.option("--platform", "platform_id", type=int, default=None,
              help="Platform registration id (default: the only one registered).")
@click.pass_context
def export_command(ctx: click.Context, code: str, fmt: str, number: int | None,
                   platform_id: int | None) -> None:
    """Print the Design Plan of micro-credential CODE to standard output."""
    runtime = get_runtime(ctx)
    with transaction(runtime.sessions) as db:
        platform = resolve_platform(db, platform_id)
        mc = service.find_by_code(db, platform, code)
        if mc is None:
            raise NotFound(f"No micro-credential with code {code!r} on platform {platform}.")
        versions = [v for v in mc.versions if number is None or v.version == number]
        if not versions:
            raise NotFound(f"{code} has no version {number}.")
        text = importexport.dump(service.plan_of(versions[-1]), fmt)
    click.echo(text, nl=False)


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
    cli.add_command(mc_group)
