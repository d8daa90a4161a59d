"""Public pages and machine formats, POST /verify, the Office's revocation, and the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from click.testing import CliRunner

from lti_tool.badges import baking, images, issuance, statuslist
from lti_tool.cli import main
from lti_tool.store.models.badges import Credential, StatusList
from lti_tool.store.models.core import AuditEntry, WebSession
from lti_tool.web.auth import SESSION_HEADER, start_session, token_hash
from tests.badges.conftest import PASSED_AT
from tests.conftest import institution_for_new_platform


def _issued(world) -> Credential:
    person, version = world.person(), world.micro_credential()
    credential = issuance.issue_on_pass(
        world.db, world.settings, person_id=person.id, mc_version_id=version.id,
        offering_id=None, outcome_levels={"LO1": "proficient", "LO2": "exemplary"},
        passed_at=PASSED_AT)
    world.db.commit()
    return credential


def _verify(client, body: bytes, content_type: str = "application/octet-stream"):
    return client.post("/verify", data=body, content_type=content_type,
                       headers={"Accept": "application/json"})


def test_credential_page_tells_people_who_earned_what(world, client) -> None:
    credential = _issued(world)
    page = client.get(f"/credentials/{credential.public_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "text/html" in page.content_type
    for expected in ("Ada Lovelace", "DATA-101: Data analysis basics", "Test University",
                     "Valid", "Exemplary", "eddsa-rdfc-2022", "25 hours · 2 ECTS",
                     "Data science (ISCED-F 0542)", "<dd>online; non-formal learning</dd>",
                     # the ISCED-F alignment is no level; the cycle is
                     "<dd>EQF level 5; TQF level 5; first cycle (QF-EHEA)</dd>",
                     "<dd>Türkiye, Ege</dd>", "Hochschule Beispiel (Germany, DE123456789)",
                     "supervised online, with identity verification", "Project; Quiz",
                     "Annual review by the Micro-credentials Office",
                     "<dt>Overall result</dt>\n    <dd>Proficient</dd>",
                     "Basic spreadsheet skills", "Recognised in the BSc Economics",
                     "https://www.example.edu/mc", "/europass.json"):
        assert expected in text, expected
    assert "Not specified" not in text and "http://data.europa.eu" not in text  # names, no codes
    assert "<td>Overall result" not in text  # stated once, with the EU elements, not as an outcome


def test_credential_page_speaks_turkish(world, client) -> None:
    """Plain words in Turkish too: Babel dates and numbers, country names, code names."""
    credential = _issued(world)
    text = client.get(f"/credentials/{credential.public_id}?lang=tr").get_data(as_text=True)
    from babel.dates import format_date

    issued = format_date(credential.issued_at, "long", locale="tr")
    for expected in (issued, "25 saat", "Almanya", "çevrim içi", "yaygın öğrenme",
                     "kimlik doğrulamalı", "Genel sonuç", "AYÇ düzeyi 5"):
        assert expected in text, expected


def test_machine_formats_of_a_credential(world, client) -> None:
    credential = _issued(world)
    base = f"/credentials/{credential.public_id}"
    as_ld = client.get(base, headers={"Accept": "application/ld+json"})
    assert as_ld.content_type.startswith("application/ld+json")
    assert as_ld.get_json(force=True)["id"].endswith(credential.public_id)
    assert client.get(base + ".json").get_data(as_text=True) == credential.document
    assert client.get(base + ".jwt").get_data(as_text=True) == credential.jwt
    png = client.get(base + ".png").data
    assert baking.extract_png(png) == credential.document
    assert baking.extract_svg(client.get(base + ".svg?format=jwt").get_data(as_text=True)) \
        == credential.jwt
    for suffix in (".png", ".svg", ".png?format=jwt", ".svg?format=jwt", ".json", ".jwt"):
        reply = _verify(client, client.get(base + suffix).data)
        assert reply.status_code == 200 and reply.get_json()["valid"], (suffix, reply.get_json())


def test_issuer_keys_achievement_context_and_status_list_resolve(world, client) -> None:
    credential = _issued(world)
    document = json.loads(credential.document)
    path = lambda url: url.replace(world.settings.base_url, "")  # noqa: E731
    profile = client.get(path(document["issuer"]["id"])).get_json(force=True)
    method = document["proof"][0]["verificationMethod"]
    assert method in profile["assertionMethod"]
    assert profile["@context"][0] == "https://www.w3.org/ns/did/v1"
    entry = next(m for m in profile["verificationMethod"] if m["id"] == method)
    assert entry["type"] == "Multikey" and entry["controller"] == profile["id"]
    header = json.loads(base64.urlsafe_b64decode(credential.jwt.split(".")[0] + "=="))
    jwk = client.get(path(header["kid"])).get_json(force=True)
    assert jwk["kty"] == "RSA" and "d" not in jwk
    assert header["kid"].rsplit("/", 1)[1] in {k["kid"] for k in
                                              client.get("/keys/jwks.json").get_json()["keys"]}
    achievement = client.get(path(document["credentialSubject"]["achievement"]["id"]))
    assert achievement.get_json(force=True)["achievementType"] == "MicroCredential"
    context = client.get("/contexts/microcredential-v1.jsonld").get_json(force=True)
    assert "notionalWorkloadHours" in context["@context"]
    status = client.get(path(document["credentialStatus"]["statusListCredential"]))
    subject = status.get_json(force=True)["credentialSubject"]
    bits = statuslist.decode(subject["encodedList"])
    assert len(bits) * 8 >= 131072 and not any(bits)
    assert client.get("/issuers/someone-else").status_code == 404
    assert client.get("/credentials/not-a-credential").status_code == 404


def test_garbage_and_forgeries_get_clear_answers(world, client) -> None:
    credential = _issued(world)
    for body in (b"", b"hello", b"{not json", b"\x89PNG\r\n\x1a\nbroken", b"<svg></svg>",
                 b"a.b.c", b"[1, 2]", "ü".encode("latin-1"),
                 b'{"name": "' + b"x" * 600_000 + b'"}'):
        reply = _verify(client, body)
        # Larger than LTI_TOOL_VERIFY_MAX_BYTES: 413 before it is parsed.
        assert reply.status_code == (413 if len(body) > 262144 else 400), body
        assert reply.get_json()["message"]
    forged = json.loads(credential.document)
    forged["credentialSubject"]["result"][0]["achievedLevel"] = \
        forged["credentialSubject"]["result"][1]["achievedLevel"]
    reply = _verify(client, json.dumps(forged).encode(), "application/json")
    assert reply.status_code == 200
    failed = {c["name"] for c in reply.get_json()["checks"] if c["passed"] is False}
    assert failed == {"proof"}
    head, payload, signature = credential.jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["name"] = "Something else"
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    reply = _verify(client, f"{head}.{tampered}.{signature}".encode())
    assert not reply.get_json()["valid"]
    assert {c["name"] for c in reply.get_json()["checks"] if c["passed"] is False} >= {"jwt"}


def test_verify_form_page_and_upload(world, client) -> None:
    credential = _issued(world)
    assert "Verify" in client.get("/verify").get_data(as_text=True)
    from io import BytesIO

    reply = client.post("/verify", data={"file": (BytesIO(client.get(
        f"/credentials/{credential.public_id}.png").data), "badge.png")},
        headers={"Accept": "text/html"}, content_type="multipart/form-data")
    assert reply.status_code == 200 and "Valid" in reply.get_data(as_text=True)


def _office(world, client) -> dict:
    admin = world.person("office-1", "office@example.edu", "Office Person")
    token = start_session(world.db, platform_id=world.platform.id, person_id=admin.id,
                          context_id=None, resource_link_id=None, role="admin")
    world.db.commit()
    secret = world.db.query(WebSession).filter_by(token_hash=token_hash(token)).one().csrf_secret
    csrf = hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()
    return {SESSION_HEADER: token, "X-CSRF-Token": csrf}


def test_office_revokes_with_a_reason_and_every_verifier_sees_it(world, client) -> None:
    credential = _issued(world)
    headers = _office(world, client)
    listing = client.get("/admin/credentials/?q=ada", headers=headers)
    assert listing.status_code == 200 and "Ada Lovelace" in listing.get_data(as_text=True)
    detail = client.get(f"/admin/credentials/{credential.public_id}", headers=headers)
    assert detail.status_code == 200 and "Revoke this credential" in detail.get_data(as_text=True)
    url = f"/admin/credentials/{credential.public_id}/revoke"
    assert client.post(url, data={"reason": "x"}).status_code == 401
    assert client.post(url, data={"reason": "x"},
                       headers={SESSION_HEADER: headers[SESSION_HEADER]}).status_code == 403
    assert client.post(url, data={"reason": " "}, headers=headers).status_code == 400
    reply = client.post(url, data={"reason": "Plagiarism confirmed"}, headers=headers)
    assert reply.status_code == 303
    world.db.expire_all()
    row = world.db.get(Credential, credential.id)
    assert row.status == "revoked" and row.revoked_reason == "Plagiarism confirmed"
    listed = world.db.get(StatusList, row.status_list_id)
    assert statuslist.get_bit(listed.bits, row.status_index)
    audit = world.db.query(AuditEntry).filter_by(action="credential.revoke").one()
    assert audit.target == credential.public_id
    report = _verify(client, credential.document.encode()).get_json()
    assert report["status"] == "revoked"
    assert "revoked" in client.get(f"/credentials/{credential.public_id}").get_data(as_text=True)
    assert client.post(url, data={"reason": "again"}, headers=headers).status_code == 409


def test_learner_cannot_reach_the_office_pages(world, client) -> None:
    credential = _issued(world)
    token = start_session(world.db, platform_id=world.platform.id,
                          person_id=credential.person_id, context_id=None,
                          resource_link_id=None, role="learner")
    world.db.commit()
    assert client.get("/admin/credentials/", headers={SESSION_HEADER: token}).status_code == 403


def test_cli_lists_and_verifies(world, runtime, tmp_path) -> None:
    credential = _issued(world)
    runner = CliRunner()
    listed = runner.invoke(main, ["credentials", "list", "--json"], obj={"runtime": runtime})
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert rows[0]["id"] == credential.public_id and rows[0]["status"] == "active"
    assert rows[0]["urls"]["jwt"].endswith(".jwt")
    badge = tmp_path / "badge.png"
    badge.write_bytes(baking.bake_png(images.medal_png("x"), credential.jwt))
    result = runner.invoke(main, ["verify", str(badge)], obj={"runtime": runtime})
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output
    forged = tmp_path / "forged.json"
    forged.write_text(credential.document.replace("Ada Lovelace", "Eve"))
    result = runner.invoke(main, ["verify", str(forged)], obj={"runtime": runtime})
    assert result.exit_code == 1 and "FAIL proof" in result.output
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing here")
    result = runner.invoke(main, ["verify", str(junk)], obj={"runtime": runtime})
    assert result.exit_code == 1 and "Error:" in result.output


def test_another_platforms_office_sees_none_of_our_credentials(world, client) -> None:
    credential = _issued(world)
    from lti_tool.store.models.core import Person, Platform

    other = Platform(institution_id=institution_for_new_platform(world.db).id, status="active",
                     issuer="https://other.example", client_id="x", auth_login_url="a",
                     auth_token_url="b")
    world.db.add(other)
    world.db.flush()
    admin = Person(platform_id=other.id, sub="o", name="Other Office")
    world.db.add(admin)
    world.db.flush()
    token = start_session(world.db, platform_id=other.id, person_id=admin.id, context_id=None,
                          resource_link_id=None, role="admin")
    world.db.commit()
    headers = {SESSION_HEADER: token}
    assert client.get(f"/admin/credentials/{credential.public_id}",
                      headers=headers).status_code == 404
    listing = client.get("/admin/credentials/", headers=headers).get_data(as_text=True)
    assert "Ada Lovelace" not in listing
