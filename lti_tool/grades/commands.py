"""`lti-tool` commands of this package; `register` adds them to the root group."""

import click


def register(cli: click.Group) -> None:
    """Add this package's commands to `cli`."""
