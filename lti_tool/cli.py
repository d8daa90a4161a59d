"""The `lti-tool` command. Commands only translate: the work is in the services."""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from lti_tool.badges import commands as badges_commands
from lti_tool.catalogue import commands as catalogue_commands
from lti_tool.cli_support import get_runtime
from lti_tool.demo import run_demo
from lti_tool.errors import ToolError
from lti_tool.grades import commands as grades_commands
from lti_tool.jobs.registry import registry
from lti_tool.launch import commands as launch_commands
from lti_tool.lms import commands as lms_commands
from lti_tool.logs import setup_logging
from lti_tool.reports import commands as reports_commands
from lti_tool.scheduler import run_worker
from lti_tool.server import run_server
from lti_tool.settings import SettingsError
from lti_tool.store.migrate import upgrade


class ToolGroup(click.Group):
    """Turn known errors into a message on standard error and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ToolError, SettingsError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except (OperationalError, ProgrammingError) as exc:  # no tables, or no database server
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            click.echo(f"Error: the database could not be read ({reason}). If it is new or "
                       "from an older version, run `lti-tool db upgrade` first.", err=True)
            sys.exit(1)


@click.group(cls=ToolGroup)
@click.version_option(package_name="lti-microcredentials")
def main() -> None:
    """Micro-credential LTI 1.3 tool."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply every migration (creates the database when empty)."""
    runtime = get_runtime(ctx)
    upgrade(runtime.engine)
    click.echo(f"Database is up to date: {runtime.engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Run the tool's web server (migrates an empty database first)."""
    runtime = get_runtime(ctx)
    upgrade(runtime.engine)
    run_server(host=host, port=port, workers=workers)


@main.command()
@click.option("--concurrency", default=4, show_default=True, type=int,
              help="Jobs run at once by this worker (PostgreSQL).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int) -> None:
    """Run the background jobs (syncs, window closing, passback, revalidation...) until stopped.

    On PostgreSQL start as many as you like, on any machines: each job runs once.
    """
    setup_logging()
    runtime = get_runtime(ctx)
    upgrade(runtime.engine)
    jobs = registry()
    for spec in jobs.periodic:
        click.echo(f"periodic {spec.kind}: {spec.cron}", err=True)
    click.echo(f"job kinds: {', '.join(sorted(jobs.kinds))}", err=True)
    run_worker(runtime, concurrency=concurrency)
    click.echo("worker stopped", err=True)


@main.command("demo")
@click.option("--port", default=8000, show_default=True, type=int, help="The tool's port.")
@click.option("--lms-port", default=8001, show_default=True, type=int,
              help="The practice LMS's port.")
@click.option("--database", default="lti_tool_demo.db", show_default=True,
              help="SQLite file in the current directory.")
def demo_command(port: int, lms_port: int, database: str) -> None:
    """Run the tool and a practice LMS with a seeded course, one command, Ctrl-C stops both."""
    run_demo(port=port, lms_port=lms_port, database=database)


# Each package adds its commands explicitly, in this order.
for _package_commands in (launch_commands, lms_commands, catalogue_commands, grades_commands,
                          badges_commands, reports_commands):
    _package_commands.register(main)


if __name__ == "__main__":
    main()
