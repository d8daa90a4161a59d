"""Independent verifiers we did not write (Digital Bazaar's VC stack, jose), run offline.

The key documents, status lists and extension context they load are the tool's own HTTP
responses; the standard contexts come from the spec folder's files. Nothing is fetched.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lti_tool.badges import issuance, jsonld, status
from lti_tool.badges.signing import Signer
from lti_tool.store import keys
from tests.badges.conftest import PASSED_AT
from tests.conftest import SPEC, skip_unless_installed

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
pytestmark = pytest.mark.node


def _require_node() -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules").is_dir():
        skip_unless_installed("Node verifiers (run `npm ci` in tests/node)")


def _issue(world, sub: str):
    person = world.person(sub, f"{sub}@example.edu", sub.title())
    return issuance.issue_on_pass(world.db, world.settings, person_id=person.id,
                                  mc_version_id=world.version.id, offering_id=None,
                                  outcome_levels={"LO1": "proficient", "LO2": "exemplary"},
                                  passed_at=PASSED_AT)


def _expired_copy(world, document: dict) -> tuple[dict, str]:
    """A properly signed credential whose validity ended in 2021."""
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    unsigned.update(validFrom="2020-01-01T00:00:00Z", validUntil="2021-01-01T00:00:00Z")
    signer = Signer.load(world.db, world.settings, world.platform.institution)
    signed = signer.data_integrity(unsigned, datetime(2020, 1, 1, tzinfo=UTC))
    return signed, signer.jwt(signed)


def _change_jwt(token: str, change) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    change(claims)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{body}.{signature}"


MUTATIONS = {
    "name": lambda d: d.__setitem__("name", d["name"] + " (Honours)"),
    "validFrom": lambda d: d.__setitem__("validFrom", "2019-01-01T00:00:00Z"),
    "achievement.name": lambda d: d["credentialSubject"]["achievement"].__setitem__("name", "X"),
    "achievedLevel": lambda d: d["credentialSubject"]["result"][0].__setitem__(
        "achievedLevel", d["credentialSubject"]["result"][1]["achievedLevel"]),
    "identifier": lambda d: d["credentialSubject"]["identifier"][0].__setitem__(
        "identityHash", "Mallory"),
    "workload": lambda d: d["credentialSubject"]["achievement"].__setitem__(
        "notionalWorkloadHours", "250"),
    # Signed, not dropped by JSON-LD: a changed field of study or form of participation fails.
    "fieldOfStudy": lambda d: d["credentialSubject"]["achievement"].__setitem__(
        "fieldOfStudy", "Astrology"),
    "participationForm": lambda d: d["credentialSubject"]["achievement"].__setitem__(
        "participationForm", "http://data.europa.eu/snb/learning-assessment/9191af2ed9"),
    # The Annex I elements in the extension context are signed too.
    "supervision": lambda d: d["credentialSubject"]["achievement"].__setitem__(
        "supervisionVerification",
        "http://data.europa.eu/snb/supervision-verification/c598449d64"),
    "coAwardingBody": lambda d: d["credentialSubject"]["achievement"]["coAwardingBody"][0]
    .__setitem__("name", "Mallory College"),
    "statusIndex": lambda d: d["credentialStatus"].__setitem__("statusListIndex", "7"),
}


def _fetch(client, url: str, base: str) -> dict:
    reply = client.get(url.replace(base, ""))
    assert reply.status_code == 200, url
    return json.loads(reply.get_data(as_text=True))


def test_independent_verifiers_accept_ours_and_reject_every_change(world, client) -> None:
    _require_node()
    settings, db = world.settings, world.db
    world.version = world.micro_credential()
    before = _issue(world, "before")
    keys.rotate(db, settings, "badge-ed25519", institution_id=world.platform.institution_id)
    keys.rotate(db, settings, "badge-rsa", institution_id=world.platform.institution_id)
    after, revoked = _issue(world, "after"), _issue(world, "revoked")
    status.revoke(db, settings, revoked, reason="test", actor_person_id=None, actor_label="t")
    expired_doc, expired_jwt = _expired_copy(world, json.loads(after.document))
    db.commit()

    docs = {c.public_id: json.loads(c.document) for c in (before, after, revoked)}
    base = settings.base_url
    sample = docs[after.public_id]
    urls = {sample["issuer"]["id"], sample["credentialStatus"]["statusListCredential"],
            jsonld.extension_url(base), settings.url("/keys/jwks.json")}
    for credential in (before, after):
        header = json.loads(base64.urlsafe_b64decode(credential.jwt.split(".")[0] + "=="))
        urls.add(header["kid"])
    documents = {url: _fetch(client, url, base) for url in urls}
    # The extension context's URL is not the deployment's: verifiers ship the file, as they
    # ship the OB 3.0 context (it is also served at /contexts/, identical).
    assert sample["@context"][-1] == jsonld.EXTENSION_V2
    assert _fetch(client, settings.url(jsonld.EXTENSION_V2_PATH), base) \
        == jsonld.extension_v2_context()
    documents[jsonld.EXTENSION_V2] = json.loads(
        (jsonld.CONTEXT_DIR / jsonld.EXTENSION_V2_FILE).read_text())

    cases = [
        {"name": "before-rotation", "kind": "di", "credential": docs[before.public_id]},
        {"name": "before-rotation", "kind": "jwt", "token": before.jwt},
        {"name": "after-rotation", "kind": "di", "credential": sample},
        {"name": "after-rotation", "kind": "jwt", "token": after.jwt},
        {"name": "revoked", "kind": "di", "credential": docs[revoked.public_id]},
        {"name": "revoked", "kind": "jwt", "token": revoked.jwt},
        {"name": "expired", "kind": "di", "credential": expired_doc},
        {"name": "expired", "kind": "jwt", "token": expired_jwt},
    ]
    for field, change in MUTATIONS.items():
        forged = json.loads(after.document)
        change(forged)
        cases.append({"name": f"changed-{field}", "kind": "di", "credential": forged})
        cases.append({"name": f"changed-{field}", "kind": "jwt",
                      "token": _change_jwt(after.jwt, change)})

    bundle = {"documents": documents, "contextDir": str(SPEC / "openbadges/contexts"),
              "jwksUrl": settings.url("/keys/jwks.json"), "cases": cases}
    path = Path(world.settings.data_dir) / "bundle.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle))
    run = subprocess.run(["node", "verify.mjs", str(path)], cwd=NODE_DIR, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    results = {(r["name"], r["kind"]): r for r in json.loads(run.stdout)}

    for name in ("before-rotation", "after-rotation"):
        for kind in ("di", "jwt"):
            assert results[(name, kind)]["verified"], results[(name, kind)]
    for kind in ("di", "jwt"):
        assert results[("revoked", kind)]["revoked"] and not results[("revoked", kind)]["verified"]
        expired = results[("expired", kind)]
        assert not expired["verified"]
        assert expired.get("expired") or any('after "validUntil"' in e
                                             for e in expired["errors"]), expired
    for field in MUTATIONS:
        for kind in ("di", "jwt"):
            result = results[(f"changed-{field}", kind)]
            assert not result["verified"], (field, kind)
            assert any("signature" in e.lower() for e in result["errors"]), result
