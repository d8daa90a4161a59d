"""`lti-tool platform check ID`: the registration's LMS services, tested from the CLI.

The command joins the `platform` group that `lti_tool.launch.commands` defines (the root CLI
registers launch's commands first, then these).
"""

from __future__ import annotations

import json

import click

from lti_tool.cli_support import get_runtime
from lti_tool.errors import NotFound
from lti_tool.lms.check import run_check
from lti_tool.store.models.core import Platform


@click.command("check")
@click.argument("platform_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def platform_check(ctx: click.Context, platform_id: int, as_json: bool) -> None:
    """Test the registration's LMS services: LTI Advantage scopes, Moodle web services (functions
    and capabilities) or Canvas REST; each problem with the LMS admin path that fixes it.

    Exits 1 when anything is missing.
    """
    runtime = get_runtime(ctx)
    with runtime.sessions() as db:
        platform = db.get(Platform, platform_id)
        if platform is None:
            raise NotFound(f"No platform with id {platform_id}.")
        findings = run_check(db, runtime.settings, platform)
    if as_json:
        click.echo(json.dumps([f.as_json() for f in findings], indent=2))
    else:
        for finding in findings:
            mark = "ok     " if finding.ok else "MISSING"
            click.echo(f"{mark} {finding.service}: {finding.what}")
            if finding.fix:
                click.echo(f"        {finding.fix}")
    if not all(f.ok for f in findings):
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Add `check` to the `platform` group."""
    group = cli.commands["platform"]
    assert isinstance(group, click.Group)
    group.add_command(platform_check)
