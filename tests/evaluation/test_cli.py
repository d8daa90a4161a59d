"""`lti-tool evidence verify` and `evidence export` against a real store."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import text

from lti_tool.cli import main
from lti_tool.grades import evaluation as ev
from tests.evaluation.conftest import seed_course


def test_verify_passes_then_names_the_tampered_record(runtime, db, settings) -> None:
    course = seed_course(db)
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    ev.finalize(db, settings, course.offering.id, course.by)
    db.commit()
    runner = CliRunner()
    ok = runner.invoke(main, ["evidence", "verify"], obj={"runtime": runtime})
    assert ok.exit_code == 0 and "3 records" in ok.output
    exported = runner.invoke(main, ["evidence", "export", str(course.learners[0].id)],
                             obj={"runtime": runtime})
    assert exported.exit_code == 0
    assert json.loads(exported.output)["records"][0]["event"] == "failed"
    db.execute(text("UPDATE evidence_record SET payload = replace(payload, 'failed', 'passed')"
                    " WHERE seq = 2"))
    db.commit()
    bad = runner.invoke(main, ["evidence", "verify"], obj={"runtime": runtime})
    assert bad.exit_code == 1 and "seq 2" in bad.output
    missing = runner.invoke(main, ["evidence", "export", "99999"], obj={"runtime": runtime})
    assert missing.exit_code == 1 and "No person" in missing.output
