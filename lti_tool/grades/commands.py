"""`lti-tool` commands of this package; `register` adds them to the root group."""

import importlib

import click


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
    importlib.import_module("lti_tool.grades.evidence_commands").register(cli)
    importlib.import_module("lti_tool.grades.lifecycle_commands").register(cli)
    cli.add_command(importlib.import_module("lti_tool.grades.sync_commands").sync_command)
