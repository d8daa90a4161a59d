"""`lti-tool platform check`: scopes, Moodle functions and capabilities, with the fix for each."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lti_tool.cli import main
from lti_tool.lms.ags import SCOPE_SCORE
from lti_tool.lms.check import check_platform
from lti_tool.lms.nrps import SCOPE_MEMBERSHIP
from lti_tool.lms.source import rest_base_url
from lti_tool.store.models.core import Context, Platform
from tests.fakelms.pytest_fixtures import make_context


def _platform_id(runtime, context_id: int) -> int:
    with runtime.sessions() as db:
        return db.get(Context, context_id).platform_id


def test_everything_granted_passes(fast_runtime, moodle_lms, fast_http) -> None:
    context_id = make_context(fast_runtime, moodle_lms)
    with fast_runtime.sessions() as db:
        platform = db.get(Platform, _platform_id(fast_runtime, context_id))
        findings = check_platform(db, fast_runtime.settings, platform, fast_http)
    assert findings and all(f.ok for f in findings), [f for f in findings if not f.ok]
    assert {f.service for f in findings} == {"LTI Advantage", "Moodle web services"}


def test_missing_scope_function_and_capability_are_named(fast_runtime, moodle_lms) -> None:
    moodle_lms.allowed_scopes = moodle_lms.allowed_scopes - {SCOPE_MEMBERSHIP, SCOPE_SCORE}
    moodle_lms.ws_functions = {"core_webservice_get_site_info",
                               "gradereport_user_get_grade_items", "core_grades_get_gradeitems"}
    moodle_lms.ws_denied = {"core_grades_get_gradeitems"}
    context_id = make_context(fast_runtime, moodle_lms)
    platform_id = _platform_id(fast_runtime, context_id)
    result = CliRunner().invoke(main, ["platform", "check", str(platform_id), "--json"],
                                obj={"runtime": fast_runtime})
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    bad = {f["what"]: f["fix"] for f in findings if not f["ok"]}
    assert any("contextmembership.readonly" in what for what in bad)
    assert any(what.startswith("scope score") for what in bad)
    assert "Manage tools" in next(fix for what, fix in bad.items() if "score" in what)
    functions = bad["functions in the tool's external service"]
    assert "core_grading_get_definitions" in functions and "External services" in functions
    assert "gradereport_user_get_grade_items" not in functions
    capability = bad["core_grades_get_gradeitems in course 2"]
    assert "moodle/grade:viewall" in capability and "Define roles" in capability
    assert "Sorry, but" not in result.stdout  # Moodle's own text is only logged
    # The check only reads: no grade column was made, no score sent.
    assert moodle_lms.created_line_items == [] and moodle_lms.posted_scores == []


def test_no_token_says_how_to_get_one(fast_runtime, moodle_lms) -> None:
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    platform_id = _platform_id(fast_runtime, context_id)
    result = CliRunner().invoke(main, ["platform", "check", str(platform_id)],
                                obj={"runtime": fast_runtime})
    assert result.exit_code == 1
    assert "MISSING Moodle web services: web-service token" in result.stdout
    assert f"lti-tool platform rest-token {platform_id}" in result.stdout


def test_dynamic_registration_moodle_uses_its_wwwroot(fast_runtime, moodle_lms, tmp_path) -> None:
    """A Moodle registered by Dynamic Registration has no REST base URL: the issuer (Moodle's
    wwwroot) + /webservice/rest/server.php is used once a token is stored."""
    context_id = make_context(fast_runtime, moodle_lms, rest=False)
    platform_id = _platform_id(fast_runtime, context_id)
    secret = tmp_path / "token"
    secret.write_text(moodle_lms.ws_token)
    secret.chmod(0o600)
    stored = CliRunner().invoke(main, ["platform", "rest-token", str(platform_id), "--file",
                                       str(secret)], obj={"runtime": fast_runtime})
    assert stored.exit_code == 0, stored.output
    expected = moodle_lms.base_url + "/webservice/rest/server.php"
    assert expected in stored.stdout
    with fast_runtime.sessions() as db:
        platform = db.get(Platform, platform_id)
        assert platform.rest_base_url is None and rest_base_url(platform) == expected
    checked = CliRunner().invoke(main, ["platform", "check", str(platform_id)],
                                 obj={"runtime": fast_runtime})
    assert checked.exit_code == 0, checked.output
    changed = CliRunner().invoke(main, ["platform", "rest-token", str(platform_id), "--file",
                                        str(secret), "--base-url", "ftp://x"],
                                 obj={"runtime": fast_runtime})
    assert changed.exit_code == 1 and "http(s) URL" in changed.stderr
