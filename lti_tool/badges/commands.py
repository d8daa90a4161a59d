"""`lti-tool verify FILE`, `lti-tool credentials list [--json]` and
`lti-tool credentials export ID --format json|jwt|png|svg|edc [--out FILE]`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lti_tool.badges import europass
from lti_tool.badges.records import baked, by_public_id, listing
from lti_tool.badges.verify import Verifier
from lti_tool.cli_support import get_runtime
from lti_tool.errors import BadRequest

MAX_FILE = 8 * 1024 * 1024
EXPORT_FORMATS = ("json", "jwt", "png", "svg", "edc")


def _print_report(report: dict) -> None:
    marks = {True: "ok  ", False: "FAIL", None: "--  "}
    for check in report["checks"]:
        click.echo(f"{marks[check['passed']]} {check['name']}: {check['message']}")
    credential = report.get("credential") or {}
    click.echo(f"{report['status'].upper()}: {credential.get('name')} "
               f"({credential.get('id')}), issued by {credential.get('issuer')}")


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""

    @cli.command("verify")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @click.pass_context
    def verify_command(ctx: click.Context, file: Path, as_json: bool) -> None:
        """Verify a credential file: JSON, VC-JWT, or a baked PNG or SVG badge."""
        if file.stat().st_size > MAX_FILE:
            raise BadRequest(f"{file} is larger than {MAX_FILE // (1024 * 1024)} MB")
        runtime = get_runtime(ctx)
        with runtime.sessions() as db:
            report = Verifier(db, runtime.settings).verify_bytes(file.read_bytes()).to_dict()
            db.rollback()
        if as_json:
            click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            _print_report(report)
        if not report["valid"]:
            ctx.exit(1)

    @cli.group("credentials")
    def credentials_group() -> None:
        """Issued Open Badges 3.0 credentials."""

    @credentials_group.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.option("--search", default="", help="Filter by learner, code, title or id.")
    @click.pass_context
    def list_command(ctx: click.Context, as_json: bool, search: str) -> None:
        """Print issued credentials: id, learner, micro-credential, status, URLs."""
        runtime = get_runtime(ctx)
        with runtime.sessions() as db:
            rows = [row.as_dict(runtime.settings) for row in listing(db, search=search,
                                                                     limit=100000)]
        if as_json:
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        if not rows:
            click.echo("No credentials issued yet.")
        for row in rows:
            click.echo(f"{row['id']}  {row['status']:<8} {row['micro_credential']:<16} "
                       f"{row['learner']}  {row['urls']['page']}")

    @credentials_group.command("export")
    @click.argument("public_id")
    @click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="json",
                  show_default=True,
                  help="json: the signed OB 3.0 credential; jwt: its VC-JWT; png/svg: the "
                       "badge image with the credential baked in; edc: the unsigned Europass "
                       "European Digital Credential (ELM 3) for the EDC Issuer to seal.")
    @click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write to FILE instead of standard output (needed for png).")
    @click.pass_context
    def export_command(ctx: click.Context, public_id: str, fmt: str, out: Path | None) -> None:
        """Write one issued credential (by its id) in FORMAT."""
        runtime = get_runtime(ctx)
        with runtime.sessions() as db:
            row = by_public_id(db, public_id)
            if fmt == "edc":
                body: str | bytes = europass.dumps(europass.export(db, runtime.settings, row))
            elif fmt == "json":
                body = row.document
            elif fmt == "jwt":
                body = row.jwt
            else:
                body = baked(db, row, fmt)
            db.rollback()
        if out is not None:
            out.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
            click.echo(f"{fmt} export of {public_id} written to {out}", err=True)
        elif isinstance(body, bytes):
            raise BadRequest("a PNG is binary: give --out FILE")
        else:
            click.echo(body)
