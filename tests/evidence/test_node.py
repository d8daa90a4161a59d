"""Independent verifiers (tests/node: Node's crypto for the evidence file; Digital Bazaar's VC
stack and jose for credentials) with only what the institution publishes."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from lti_tool.badges import jsonld
from lti_tool.grades.evidence import append_evidence, export_evidence
from lti_tool.grades.lifecycle import erase_person, purge_expired
from lti_tool.store.db import utcnow
from tests.badges.conftest import PASSED_AT
from tests.badges.test_node_verifiers import NODE_DIR, _fetch, _require_node
from tests.conftest import SPEC
from tests.evidence.conftest import Archive, issue_to

pytestmark = pytest.mark.node


def _node(script: str, *files: Path) -> dict:
    run = subprocess.run(["node", script, *map(str, files)], cwd=NODE_DIR, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _verify_export(tmp_path: Path, data: dict, jwks: dict) -> dict:
    export, keys = tmp_path / "export.json", tmp_path / "jwks.json"
    export.write_text(json.dumps(data, ensure_ascii=False))
    keys.write_text(json.dumps(jwks))
    return _node("verify-evidence.mjs", export, keys)


def test_one_learners_export_verifies_offline_with_only_the_public_key(
        archive: Archive, client, tmp_path) -> None:
    _require_node()
    learner = archive.course.learners[0]
    data = export_evidence(archive.db, archive.course.platform.id, learner.id)
    assert data["chain"]["verified"] is True
    # Its own segments only: seq 1 to checkpoint #1 (seq 3) and seq 4 (checkpoint #2).
    assert [(s["from"], s["to"]) for s in data["segments"]] == [(1, 3), (4, 4)]
    others = [link for s in data["segments"] for link in s["links"]
              if link["seq"] not in {r["seq"] for r in data["records"]}]
    assert others and all(set(link) == {"seq", "prev_hash", "hash", "body"} for link in others)
    jwks = json.loads(client.get("/keys/jwks.json").get_data(as_text=True))
    data.pop("keys")  # the verifier uses the published key set, not the file's
    good = _verify_export(tmp_path, data, jwks)
    assert good["verified"] and good["records"] == 2 and good["segments"] == 2, good

    edited = json.loads(json.dumps(data))
    edited["records"][0]["payload"]["to"] = "passed"
    assert "record seq 1: payload is not its canonical text" in \
        _verify_export(tmp_path, edited, jwks)["errors"]
    rehashed = json.loads(json.dumps(data))
    rehashed["segments"][0]["links"][1]["body"] = "0" * 64
    errors = _verify_export(tmp_path, rehashed, jwks)["errors"]
    assert any("link seq 2 does not match its hash" in e for e in errors), errors
    other_key = {"keys": [{**k, "x": base64.urlsafe_b64encode(b"\1" * 32).decode().rstrip("=")}
                          for k in jwks["keys"] if k.get("crv") == "Ed25519"]}
    errors = _verify_export(tmp_path, data, other_key)["errors"]
    assert any("signature does not verify" in e for e in errors), errors


def test_purge_and_erasure_keep_the_credential_verifiable(world, client, tmp_path) -> None:
    _require_node()
    settings, db = world.settings, world.db
    person, credential = issue_to(world, "holder")
    append_evidence(db, platform_id=world.platform.id, event="passed",
                    payload={"person_id": person.id, "at": PASSED_AT}, person_id=person.id)
    db.commit()
    erase_person(db, settings, person.id, reason="request", by="dpo")
    db.commit()
    purge_expired(db, settings, now=utcnow() + timedelta(days=settings.retention_evidence_days
                                                          + 1))
    db.commit()

    document = json.loads(credential.document)
    base = settings.base_url
    header = json.loads(base64.urlsafe_b64decode(credential.jwt.split(".")[0] + "=="))
    urls = {document["issuer"]["id"], document["credentialStatus"]["statusListCredential"],
            jsonld.extension_url(base), settings.url("/keys/jwks.json"), header["kid"]}
    bundle = {"documents": {url: _fetch(client, url, base) for url in urls},
              "contextDir": str(SPEC / "openbadges/contexts"),
              "jwksUrl": settings.url("/keys/jwks.json"),
              "cases": [{"name": "erased-holder", "kind": "di", "credential": document},
                        {"name": "erased-holder", "kind": "jwt", "token": credential.jwt}]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    run = subprocess.run(["node", "verify.mjs", str(path)], cwd=NODE_DIR, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert all(r["verified"] for r in results), results
