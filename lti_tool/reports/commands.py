"""`lti-tool report`: the Annual Quality Assurance Report of a calendar year."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lti_tool.cli_support import get_runtime
from lti_tool.reports.render import FORMATS, LANGUAGES, render
from lti_tool.reports.service import build_report
from lti_tool.store import institutions


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
    cli.add_command(report)


@click.command()
@click.option("--year", type=click.IntRange(2000, 2100), required=True,
              help="The calendar year (YYYY).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True)
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True,
              help="Language of the HTML and PDF report.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write to this file (default: standard output).")
@click.option("--institution", "slug", default=None,
              help="Institution slug (may be left out while there is only one).")
@click.pass_context
def report(ctx: click.Context, year: int, fmt: str, lang: str, out: Path | None,
           slug: str | None) -> None:
    """Write an institution's annual quality report (per micro-credential and overall) for
    YEAR: only its own offerings, credentials and answers."""
    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        institution = institutions.resolve(db, slug)
        built = build_report(db, runtime.settings, institution_id=institution.id, year=year)
        body = render(built, fmt, lang)
    if out is None:
        if fmt == "pdf" and sys.stdout.isatty():
            raise click.UsageError("A PDF goes to a file: add --out FILE.")
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        out.write_bytes(body)
        click.echo(f"Wrote the {year} report ({fmt}) to {out}", err=True)
