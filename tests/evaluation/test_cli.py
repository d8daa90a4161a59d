"""`lti-tool evidence verify` and `evidence export` against a real store."""

from __future__ import annotations

import hashlib
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


def test_an_exported_file_can_be_checked_without_the_tool(runtime, db, settings) -> None:
    """Each exported record re-hashes, with plain hashlib, to its hash (the stated algorithm);
    an empty archive verifies with exit code 0 (tests/evidence checks the signed segments)."""
    runner = CliRunner()
    empty = runner.invoke(main, ["evidence", "verify"], obj={"runtime": runtime})
    assert empty.exit_code == 0 and "0 records" in empty.output
    course = seed_course(db, policy="learner_request")
    ev.save_mapping(db, settings, course.offering.id, course.mapping(), course.by)
    ev.finalize(db, settings, course.offering.id, course.by)
    ev.request_reevaluation(db, settings, course.offering.id, course.learners[0].id, "ill")
    db.commit()
    exported = runner.invoke(main, ["evidence", "export", str(course.learners[0].id),
                                    "--offering", str(course.offering.id)],
                             obj={"runtime": runtime})
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert [r["event"] for r in data["records"]] == ["failed", "reevaluation_granted"]
    assert data["decisions"][0]["status"] == "reevaluation_granted"
    for record in data["records"]:
        canonical = json.dumps(record["payload"], sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        assert canonical == record["canonical"]
        content = hashlib.sha256(canonical.encode()).hexdigest()
        body = hashlib.sha256(f"{record['event']}\n{record['person_id']}\n"
                              f"{record['offering_id']}\n{content}".encode()).hexdigest()
        digest = hashlib.sha256(f"lti-tool-evidence/2\n{record['prev_hash']}\n"
                                f"{record['seq']}\n{body}".encode()).hexdigest()
        assert digest == record["hash"]
    # Other learners' failures sit between this learner's records in the platform's chain.
    assert data["records"][1]["prev_hash"] != data["records"][0]["hash"]
    assert data["chain"]["verified"] is True
    assert data["person"]["id"] == course.learners[0].id


def test_a_database_that_is_not_set_up_is_a_message_not_a_traceback(settings, tmp_path) -> None:
    """An empty (never upgraded) database: exit 1 with a hint on standard error."""
    import dataclasses

    from lti_tool.runtime import Runtime
    from lti_tool.store.db import make_engine, make_session_factory

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    empty = Runtime(settings=dataclasses.replace(settings, database_url=url), engine=engine,
                    sessions=make_session_factory(engine))
    for args in (["evidence", "verify"], ["evidence", "export", "1"], ["sync"]):
        result = CliRunner().invoke(main, args, obj={"runtime": empty})
        assert result.exit_code == 1, (args, result.output)
        assert "lti-tool db upgrade" in result.stderr and "Traceback" not in result.output
    engine.dispose()
