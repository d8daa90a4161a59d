"""`lti-tool` commands of this package; `register` adds them to the root group."""

import click

from lti_tool.grades import evidence_commands, lifecycle_commands, offering_commands, sync_commands


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
    evidence_commands.register(cli)
    lifecycle_commands.register(cli)
    cli.add_command(sync_commands.sync_command)
    cli.add_command(offering_commands.offering_group)
