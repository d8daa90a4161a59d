"""What every entry point needs: settings, the engine and a session factory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.settings import Settings, load_settings
from lti_tool.store.db import make_engine, make_session_factory


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    def __post_init__(self) -> None:
        # Sessions carry the settings, so work done at commit (sealing the evidence chain with
        # a signed checkpoint) can load the keys without every caller passing them along.
        self.sessions.configure(info={"settings": self.settings})


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    return Runtime(settings=settings, engine=engine, sessions=make_session_factory(engine))
