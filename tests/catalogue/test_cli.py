"""`lti-tool mc import` / `mc export`: every error on standard error, nothing stored on error."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from lti_tool.catalogue import importexport
from lti_tool.cli import main
from lti_tool.store.models.catalogue import MicroCredential, MicroCredentialVersion
from tests.catalogue.conftest import EXAMPLES, make_platform

COURSE = EXAMPLES / "data-literacy-for-engineers.yaml"
EMBEDDED = EXAMPLES / "technical-report-writing-embedded.yaml"


@pytest.fixture
def run(runtime):
    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), obj={"runtime": runtime})

    return invoke


def count_rows(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_import_then_export_gives_the_same_plan(run, db, platform) -> None:
    result = run("mc", "import", str(COURSE))
    assert result.exit_code == 0, result.output
    assert "DLE-101 version 1 saved as draft" in result.output
    exported = run("mc", "export", "DLE-101")
    assert exported.exit_code == 0
    original = importexport.parse_plan(yaml.safe_load(COURSE.read_text()))
    assert importexport.parse_plan(yaml.safe_load(exported.stdout)) == original
    as_json = run("mc", "export", "DLE-101", "--format", "json")
    assert importexport.parse_plan(json.loads(as_json.stdout)) == original


def test_importing_again_updates_the_draft(run, db, platform) -> None:
    assert run("mc", "import", str(EMBEDDED)).exit_code == 0
    assert run("mc", "import", str(EMBEDDED)).exit_code == 0
    assert count_rows(db, MicroCredentialVersion) == 1


def test_a_file_with_errors_reports_all_of_them_and_stores_nothing(run, db, platform,
                                                                  tmp_path) -> None:
    data = yaml.safe_load(COURSE.read_text())
    data["workload_hours"] = 40
    data["outcomes"][2]["rubric"]["threshold"] = "expert"
    data["outcomes"][0]["rubric"]["levels"][1]["lower_bound"] = 0
    data["requires"] = ["NOT-THERE"]
    del data["title"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = run("mc", "import", str(bad))
    assert result.exit_code == 1
    for path in ("workload_hours:", "outcomes[2].rubric.threshold:",
                 "outcomes[0].rubric.levels[1].lower_bound:", "title: is required",
                 "requires[0]: no micro-credential with code 'NOT-THERE'"):
        assert path in result.stderr
    assert "5 problems, nothing was stored" in result.stderr
    assert count_rows(db, MicroCredential) == 0


def test_pathway_errors_come_from_the_store_too(run, db, platform, tmp_path) -> None:
    data = yaml.safe_load(COURSE.read_text())
    data["requires"] = ["NOT-THERE"]
    bad = tmp_path / "pathway.json"
    bad.write_text(json.dumps(data))
    result = run("mc", "import", str(bad))
    assert result.exit_code == 1
    assert "requires[0]: no micro-credential with code 'NOT-THERE'" in result.stderr
    assert count_rows(db, MicroCredential) == 0


@pytest.mark.parametrize("content", ["code: [", "\xff\xfe", "{}"])
def test_malformed_files_fail_cleanly(run, platform, tmp_path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content.encode("latin-1"))
    result = run("mc", "import", str(bad))
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_the_institution_must_be_chosen_when_there_are_several(run, db) -> None:
    first = make_platform(db)
    make_platform(db)  # a registration of a second institution
    db.commit()
    result = run("mc", "import", str(COURSE))
    assert result.exit_code == 1 and "--institution" in result.stderr
    slug = first.institution.slug
    assert run("mc", "import", str(COURSE), "--institution", slug).exit_code == 0
    assert run("mc", "export", "DLE-101", "--institution", slug).exit_code == 0
    other = run("mc", "export", "DLE-101", "--institution", "test-university-2")
    assert other.exit_code == 1 and "No micro-credential" in other.stderr  # not its catalogue
    assert run("mc", "import", str(COURSE), "--institution", "nope").exit_code == 1


def test_one_catalogue_serves_every_registration_of_the_institution(run, db) -> None:
    from lti_tool.catalogue import service

    moodle = make_platform(db)
    canvas = make_platform(db)
    canvas.institution_id = moodle.institution_id  # Moodle and Canvas of one institution
    db.commit()
    assert run("mc", "import", str(COURSE), "--institution", moodle.institution.slug
               ).exit_code == 0
    assert service.find_by_code(db, canvas.id, "DLE-101") is not None
    assert [m.code for m in service.list_micro_credentials(db, moodle.id)] == ["DLE-101"]


@pytest.mark.parametrize("by", ["Ayse", "<a@b.c>", "Ayse <not-an-email>", "", "A <a@b.c> x"])
def test_the_workflow_wants_name_and_email(run, platform, by) -> None:
    assert run("mc", "import", str(COURSE)).exit_code == 0
    result = run("mc", "submit", "DLE-101", "--by", by)
    assert result.exit_code == 1 and "NAME <EMAIL>" in result.stderr


def test_the_office_workflow_from_the_cli_is_audited(run, db, platform) -> None:
    from lti_tool.store.models.catalogue import ApprovalEvent
    from lti_tool.store.models.core import AuditEntry

    assert run("mc", "import", str(COURSE)).exit_code == 0
    by = ["--by", "Ayşe Yılmaz <ayse@example.edu>"]
    assert run("mc", "approve", "DLE-101", *by).exit_code == 1  # a draft is submitted first
    submitted = run("mc", "submit", "DLE-101", *by)
    assert submitted.exit_code == 0, submitted.output
    approved = run("mc", "approve", "DLE-101", *by, "--note", "Board of 2 May")
    assert approved.exit_code == 0 and "in_review -> approved" in approved.output
    db.expire_all()
    version = db.scalar(select(MicroCredentialVersion))
    assert version.status == "approved" and version.revalidation_due is not None
    event = db.scalar(select(ApprovalEvent).where(ApprovalEvent.action == "approve"))
    assert event.actor_label == "Ayşe Yılmaz <ayse@example.edu> (cli)"
    assert event.note == "Board of 2 May"
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "mc.approve"))
    assert entry.institution_id == platform.institution_id
    assert entry.details["via"] == "cli" and entry.details["email"] == "ayse@example.edu"
    assert (entry.details["from"], entry.details["to"]) == ("in_review", "approved")
    assert run("mc", "retire", "DLE-101", *by).exit_code == 0
    assert run("mc", "revalidate", "DLE-101", *by).exit_code == 1  # retired is final


def test_export_of_an_unknown_code_or_version_fails(run, platform) -> None:
    result = run("mc", "export", "NOPE")
    assert result.exit_code == 1 and "NOPE" in result.stderr
    assert run("mc", "import", str(COURSE)).exit_code == 0
    assert run("mc", "export", "DLE-101", "--version", "1").exit_code == 0
    assert run("mc", "export", "DLE-101", "--version", "2").exit_code == 1
