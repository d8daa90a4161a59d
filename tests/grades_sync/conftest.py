from tests.fakelms.pytest_fixtures import *  # noqa: F403
