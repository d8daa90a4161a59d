"""`lti-tool offering list | map | map-export`: offerings and their mappings as files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lti_tool.cli_support import get_runtime
from lti_tool.domain.actors import CLI
from lti_tool.domain.errors import ValidationFailed
from lti_tool.errors import BadRequest
from lti_tool.grades import mapping_files
from lti_tool.store.db import transaction


@click.group("offering")
def offering_group() -> None:
    """Offerings (a micro-credential in a course) and their mappings."""


@offering_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def offering_list(ctx: click.Context, as_json: bool) -> None:
    """Every offering: id, MC code and version, course and registration."""
    with get_runtime(ctx).sessions() as db:
        rows = mapping_files.list_offerings(db)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No offerings yet: place a micro-credential in a course (deep linking).")
        return
    for row in rows:
        registration = row["registration"]
        click.echo(f"{row['id']}\t{row['mc_code']} v{row['mc_version']}\t"
                   f"{row['course_title'] or '-'} (LMS id {row['course_lms_id']})\t"
                   f"registration {registration['id']} {registration['issuer']} "
                   f"{registration['client_id']}")


@offering_group.command("map")
@click.argument("offering_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.pass_context
def offering_map(ctx: click.Context, offering_id: int, file: Path) -> None:
    """Replace the offering's mapping by FILE (YAML or JSON; `-` reads standard input).

    Every problem is reported with its path and nothing is stored when there is one.
    """
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Cannot read {file}: {exc}") from exc
    data = mapping_files.read_mapping_text(text)
    runtime = get_runtime(ctx)
    try:
        with transaction(runtime.sessions) as db:
            mapping = mapping_files.import_mapping(db, runtime.settings, offering_id, data, CLI)
            version, attempt = mapping.version, mapping.attempt_no
    except ValidationFailed as exc:
        for problem in exc.problems:
            click.echo(f"{problem.path or '(file)'}: {problem.message}", err=True)
        raise BadRequest(f"{len(exc.problems)} problem(s) in {file}; nothing was "
                         "stored.") from exc
    click.echo(f"Saved mapping version {version} (attempt {attempt}) of offering "
               f"{offering_id}; its learners were evaluated with it.")


@offering_group.command("map-export")
@click.argument("offering_id", type=int)
@click.option("--attempt", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
@click.pass_context
def offering_map_export(ctx: click.Context, offering_id: int, attempt: int, fmt: str) -> None:
    """Print the offering's current mapping as a file `offering map` reads back."""
    with get_runtime(ctx).sessions() as db:
        document = mapping_files.export_mapping(db, offering_id, attempt)
    click.echo(mapping_files.dump_json(document) if fmt == "json"
               else mapping_files.dump_yaml(document), nl=False)
