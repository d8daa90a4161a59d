"""What the benchmarks that talk to the fake LMS set up alike: the database, the data folder
and settings that let the guarded outbound client call the fake on loopback."""

from __future__ import annotations

import os
import tempfile

from lti_tool.settings import Settings, load_settings


def loopback_settings(database_url: str = "") -> tuple[str, str, Settings]:
    """(database URL, data folder, settings): `database_url`, else
    `LTI_TOOL_BENCH_DATABASE_URL`, else a SQLite file in a new temporary folder. The fake LMS
    listens on loopback, which the outbound client refuses unless the allow-list names it."""
    workdir = tempfile.mkdtemp(prefix="lti-bench-")
    url = (database_url or os.environ.get("LTI_TOOL_BENCH_DATABASE_URL")
           or f"sqlite:///{workdir}/bench.db")
    settings = load_settings(overrides={"database_url": url, "data_dir": workdir,
                                        "key_storage": "database",
                                        "outbound_allow": "127.0.0.1"}, environ={})
    return url, workdir, settings
