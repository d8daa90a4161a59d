"""Helpers for `lti-tool` commands defined in the packages (kept apart to avoid import cycles)."""

from __future__ import annotations

import click

from lti_tool.runtime import Runtime, build_runtime


def get_runtime(ctx: click.Context | None = None) -> Runtime:
    """The runtime for this invocation, built lazily so `--help` needs no database."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    if "runtime" not in obj:
        obj["runtime"] = build_runtime()
    return obj["runtime"]
