"""The scale suite runs only when asked for (`-m scale`, tests/run.sh does it once)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "scale" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the scale suite runs with -m scale (tests/run.sh)")
    for item in items:
        if "scale" in item.keywords:
            item.add_marker(skip)
