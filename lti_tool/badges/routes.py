"""Public endpoints: credentials, achievements, issuers, keys, contexts, status lists, verify.

Anyone may read these (verifiers, employers, wallets), so they answer with CORS open and never
need a session. `POST /verify` takes untrusted uploads: unreadable input is a 400 with a
message, a credential that fails is a 200 report with the failed checks.
"""

from __future__ import annotations

import base64
import json

from flask import Blueprint, Response, render_template, request
from jwcrypto import jwk

from lti_tool.badges import europass, images, jsonld, presentation, records
from lti_tool.badges.builder import achievement_document, issuer_profile
from lti_tool.badges.facts import achievement_facts
from lti_tool.badges.issuance import default_image
from lti_tool.badges.signing import (
    ED25519,
    RSA,
    issuer_facts,
    published_multikeys,
)
from lti_tool.badges.verify import Verifier
from lti_tool.errors import BadRequest, NotFound, PayloadTooLarge, ToolError
from lti_tool.store import keys
from lti_tool.store.db import referenced
from lti_tool.store.institutions import find_institution
from lti_tool.store.models.badges import StatusList
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import Institution
from lti_tool.web.auth import same_for_everyone
from lti_tool.web.csrf import csrf_exempt
from lti_tool.web.db import get_db, runtime
from lti_tool.web.public import public_document

bp = Blueprint("public", __name__, template_folder="templates")

LD_JSON = "application/ld+json"
PUBLISHED_STATUSES = ("approved", "lapsed", "retired")


bp.before_request(same_for_everyone)  # public pages: the same in a signed-in browser


def _settings():
    return runtime().settings


def _json(body: dict | str, mimetype: str = LD_JSON) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, indent=2)
    return public_document(text, mimetype)


def _wants_json_ld() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", LD_JSON, "application/json"])
    return best in (LD_JSON, "application/json")


@bp.get("/credentials/<public_id>")
def credential_page(public_id: str):
    """People get a page; machines asking for JSON-LD get the signed credential."""
    row = records.by_public_id(get_db(), public_id)
    if _wants_json_ld():
        return _json(row.document)
    report = Verifier(get_db(), _settings()).verify(json.loads(row.document), None, "json")
    info = records.summary(row)
    # The tool's own face of this credential, shown when the plan gives no image or its image
    # does not load (tool.js swaps it in), so the page never shows a broken image.
    face = "data:image/svg+xml;base64," + base64.b64encode(
        images.badge_svg(records.credential_face(get_db(), row)).encode()).decode()
    image = info["achievement"].get("image")
    return render_template("badges/credential.html", credential=row, report=report,
                           badge_image=image.get("id") if isinstance(image, dict) and
                           image.get("id") else face, badge_face=face,
                           info=info, elements=presentation.annex_elements(
                               info["document"], info["recipient"]),
                           issued_on=presentation.date_text(info["valid_from"]),
                           valid_until=presentation.date_text(info["valid_until"] or ""),
                           url=_settings().url(f"/credentials/{row.public_id}"))


@bp.get("/credentials/<public_id>.json")
def credential_json(public_id: str) -> Response:
    return _json(records.by_public_id(get_db(), public_id).document, "application/json")


@bp.get("/credentials/<public_id>.jwt")
def credential_jwt(public_id: str) -> Response:
    row = records.by_public_id(get_db(), public_id)
    return public_document(row.jwt, "application/jwt")


def _baked_text(row) -> tuple[str, bool]:
    """The JWT with `?format=jwt`, else the JSON credential with its embedded proof."""
    if request.args.get("format") == "jwt":
        return row.jwt, True
    return row.document, False


def _download(body: bytes | str, mimetype: str, name: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/credentials/<public_id>.png")
def credential_png(public_id: str) -> Response:
    """The PNG badge with the credential baked in (the VC-JWT with `?format=jwt`)."""
    row = records.by_public_id(get_db(), public_id)
    _text, is_jwt = _baked_text(row)
    return _download(records.baked(get_db(), row, "png", as_jwt=is_jwt), "image/png",
                     f"credential-{public_id}.png")


@bp.get("/credentials/<public_id>.svg")
def credential_svg(public_id: str) -> Response:
    row = records.by_public_id(get_db(), public_id)
    _text, is_jwt = _baked_text(row)
    return _download(records.baked(get_db(), row, "svg", as_jwt=is_jwt), "image/svg+xml",
                     f"credential-{public_id}.svg")


# Ids in public URLs come from anyone: beyond a 64-bit integer they are simply not found
# (the database would refuse to compare them).
MAX_ID = 2**31 - 1  # PostgreSQL INTEGER, the type of every id


@bp.get("/credentials/<public_id>/europass.json")
def credential_edc(public_id: str) -> Response:
    """The unsigned Europass European Digital Credential (ELM 3) in the form the EDC Issuer
    seals. It states what the public credential states (the learner's name, no e-mail);
    a revoked credential answers 409."""
    db = get_db()
    row = records.by_public_id(db, public_id)
    document = europass.export(db, _settings(), row)
    return _download(europass.dumps(document), "application/ld+json",
                     f"europass-{public_id}.json")


def _version_face(version: MicroCredentialVersion) -> images.BadgeFace:
    institution = referenced(get_db(), Institution, version.institution_id)
    return images.BadgeFace(seed=str(version.id), title=version.title,
                            eqf_level=version.eqf_level,
                            issuer=issuer_facts(_settings(), institution).name,
                            language=version.language)


def _published_version(version_id: int) -> MicroCredentialVersion:
    if not 0 < version_id <= MAX_ID:
        raise NotFound("There is no such achievement.")
    version = get_db().get(MicroCredentialVersion, version_id)
    if version is None or version.status not in PUBLISHED_STATUSES:
        raise NotFound("There is no such achievement.")
    return version


@bp.get("/achievements/<int:version_id>")
def achievement(version_id: int) -> Response:
    settings = _settings()
    version = _published_version(version_id)
    institution = referenced(get_db(), Institution, version.institution_id)
    return _json(achievement_document(achievement_facts(get_db(), version),
                                      issuer_facts(settings, institution), settings.base_url,
                                      default_image(settings, version.id)))


@bp.get("/achievements/<int:version_id>/image.png")
def achievement_png(version_id: int) -> Response:
    version = _published_version(version_id)
    return Response(images.badge_png(_version_face(version)), mimetype="image/png")


@bp.get("/achievements/<int:version_id>/image.svg")
def achievement_svg(version_id: int) -> Response:
    version = _published_version(version_id)
    return Response(images.badge_svg(_version_face(version)), mimetype="image/svg+xml")


@bp.get("/issuers/<slug>")
def issuer(slug: str) -> Response:
    """The issuer Profile, also the controller document listing every Ed25519 key ever used."""
    settings = _settings()
    institution = find_institution(get_db(), slug[:63])
    if institution is None:
        raise NotFound("There is no such issuer.")
    profile = issuer_profile(issuer_facts(settings, institution),
                             published_multikeys(get_db(), settings, institution))
    response = _json(profile)
    get_db().commit()  # the first request may have created the key
    return response


@bp.get("/keys/jwks.json")
def badge_jwks() -> Response:
    """Every institution's badge signing keys (RSA and Ed25519, current and retired)."""
    settings, db = _settings(), get_db()
    found = []
    for institution in db.query(Institution).order_by(Institution.id):
        found += [*keys.public_jwks(db, settings, RSA, institution_id=institution.id)["keys"],
                  *keys.public_jwks(db, settings, ED25519, institution_id=institution.id)["keys"]]
    db.commit()
    return _json({"keys": found}, "application/json")


@bp.get("/keys/<kid>")
def badge_key(kid: str) -> Response:
    """The public JWK a VC-JWT `kid` URL names."""
    row = keys.find_public_key(get_db(), kid[:100])
    if row is None or row.purpose not in (RSA, ED25519):
        raise NotFound("There is no such key.")
    return _json(jwk.JWK(**row.public_jwk).export_public(as_dict=True) | {
        "kid": row.kid, "alg": row.algorithm, "use": "sig"}, "application/jwk+json")


@bp.get(jsonld.EXTENSION_PATH)
def extension_context() -> Response:
    """The old per-deployment extension context, for credentials issued before 2.0.0."""
    return _json(jsonld.extension_context(_settings().base_url))


@bp.get(jsonld.EXTENSION_V2_PATH)
def extension_context_v2() -> Response:
    """A copy of the stable extension context (its URL is jsonld.EXTENSION_V2)."""
    response = _json(jsonld.extension_v2_context())
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response


@bp.get("/status/<list_id>")
def status_list(list_id: str) -> Response:
    row = get_db().query(StatusList).filter_by(public_id=list_id[:40]).one_or_none()
    if row is None or not row.signed_credential:
        raise NotFound("There is no such status list.")
    response = _json(row.signed_credential, "application/vc+ld+json")
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def _upload() -> bytes:
    """The credential from a file field, a text field, or the raw request body."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read()
    text = request.form.get("credential", "")
    if text.strip():
        return text.encode()
    data = request.get_data(cache=False)
    if not data.strip():
        raise BadRequest("Send a credential: a file, a 'credential' form field, or the body.")
    return data


@bp.get("/verify")
def verify_form() -> str:
    return render_template("badges/verify.html", report=None, error=None)


@bp.post("/verify")
@csrf_exempt
def verify():
    """Verify an uploaded credential (JSON, VC-JWT, PNG or SVG) and report every check."""
    wants_page = request.accept_mimetypes.best_match(["application/json", "text/html"]) \
        == "text/html" and bool(request.form or request.files)
    try:
        limit = _settings().verify_max_bytes
        if (request.content_length or 0) > limit + 64 * 1024:  # room for the form around it
            raise PayloadTooLarge(f"The credential is larger than {limit // 1024} KB, the most "
                                  "this verifier reads.")
        report = Verifier(get_db(), _settings()).verify_bytes(_upload())
    except ToolError as exc:
        if wants_page:
            return render_template("badges/verify.html", report=None,
                                   error=exc.message), exc.status
        raise
    if wants_page:
        return render_template("badges/verify.html", report=report, error=None)
    return _json(report.to_dict(), "application/json")
