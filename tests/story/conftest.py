import pytest

from lti_tool.settings import Settings
from tests.fakelms.pytest_fixtures import *  # noqa: F403
from tests.loopback import allow_loopback_fakes


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The fake Moodle runs on loopback: the tool may call it (and nothing else)."""
    return allow_loopback_fakes(settings)
