"""Europass European Digital Credentials (ELM 3): the unsigned form the EDC Issuer seals.

Beside the Open Badges 3.0 credential, every issued credential can be exported as an unsigned
European Digital Credential in JSON-LD (`../shared/spec/elm/`): the Office uploads it to the
Commission's EDC Issuer, which seals it with the institution's qualified e-seal (this tool has
no e-seal). Every element of Annex I of Council Recommendation 2022/C 243/02 sits where the
Commission's own Annex I sample puts it (README "EU micro-credential elements and Europass").

`edc_document` is pure (facts in, document out); `export` and `offering_zip` read the store.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pycountry
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.badges import images
from lti_tool.badges import vocabularies as vocab
from lti_tool.badges.builder import (
    AchievementFacts,
    BodyFacts,
    IssuerFacts,
    MissingElement,
    RecipientFacts,
    iso,
    overall_level,
)
from lti_tool.badges.facts import achievement_facts, recipient_facts
from lti_tool.badges.signing import issuer_facts
from lti_tool.catalogue.offerings import visible_offering
from lti_tool.domain.actors import Actor
from lti_tool.errors import Conflict, NotFound
from lti_tool.settings import Settings
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import Institution, Person

VC_V1 = "https://www.w3.org/2018/credentials/v1"
EDC_CONTEXT = "http://data.europa.eu/snb/model/context/edc-ap"
EDC_PROFILE = "http://data.europa.eu/snb/model/ap/edc-generic-full"
BASE64 = "http://data.europa.eu/snb/encoding/6146cde7dd"  # the sample's "base64"
BASE64_SCHEME = "http://data.europa.eu/snb/encoding/25831c2"
PNG = "http://publications.europa.eu/resource/authority/file-type/PNG"  # the sample's logo
FILE_TYPE_SCHEME = "http://publications.europa.eu/resource/authority/file-type"
ASSESSMENT_TYPE_SCHEME = "urn:epass:conceptScheme:assessment-type"
NOTE_SUBJECTS = {  # the subject of each additional note (the tool's own concepts)
    "quality_assurance": "Type of quality assurance",
    "stackability": "Integration and stackability options",
    "recognition": "Recognition",
    "further_information": "Further information",
    "tqf_level": "Turkish Qualifications Framework level",
}
MAX_ZIP_CREDENTIALS = 5000


@dataclass(frozen=True)
class EdcAward:
    """The parts of one issued credential the EDC states."""

    public_id: str
    issued_at: datetime
    passed_at: datetime
    outcome_levels: dict[str, str]
    page_url: str
    via_pathway: bool = False


def _concept(iri: str, scheme: str, label: str, lang: str = "en") -> dict:
    return {"id": iri, "type": "Concept", "inScheme": {"id": scheme, "type": "ConceptScheme"},
            "prefLabel": {lang: label}}


def _tool_concept(concept: vocab.Concept) -> dict:
    return _concept(concept.iri, concept.scheme, concept.label)


def _country(alpha_2: str) -> dict:
    """The EU country authority's concept (ISO 3166-1 alpha-3 codes, as the sample: IRL)."""
    found = pycountry.countries.get(alpha_2=alpha_2)
    if found is None:
        raise MissingElement(f"{alpha_2!r} is not an ISO 3166-1 alpha-2 country code")
    return _concept(vocab.COUNTRY + found.alpha_3, vocab.COUNTRY_SCHEME, found.name) \
        | {"notation": "country"}


def _language(code: str) -> dict:
    alpha_3, name = vocab.LANGUAGES.get(code, ("ENG", "English"))
    return _concept(vocab.LANGUAGE + alpha_3, vocab.LANGUAGE_SCHEME, name) \
        | {"notation": "language"}


def _note(note_id: str, text: str, lang: str, subject: str = "") -> dict:
    note: dict = {"id": note_id, "type": "Note", "noteLiteral": {lang: text}}
    if subject:
        note["subject"] = _concept(vocab.VOCAB + subject.replace("_", "-"),
                                   vocab.TOOL_SCHEME, NOTE_SUBJECTS[subject])
    return note


def _hours(value: Decimal) -> str:
    """Notional workload as an xsd:duration in hours (`PT25H`, `PT27.5H`)."""
    text = format(value.normalize(), "f")
    return f"PT{text}H"


def _organisation(org_id: str, name: str, country: str, legal_identifier: str, lang: str,
                  url: str = "", region: str = "") -> dict:
    location: dict = {"id": f"{org_id}:location", "type": "Location",
                      "address": {"id": f"{org_id}:address", "type": "Address",
                                  "countryCode": _country(country)}}
    if region:
        location["geographicName"] = {lang: region}
    org: dict = {"id": org_id, "type": "Organisation", "legalName": {lang: name},
                 "location": location,
                 "eIDASIdentifier": {"id": f"{org_id}:legalIdentifier",
                                     "type": "LegalIdentifier", "notation": legal_identifier,
                                     "spatial": _country(country)}}
    if url:
        org["homepage"] = {"id": f"{org_id}:homepage", "type": "WebResource",
                           "contentURL": url}
    return org


def _co_body(index: int, body: BodyFacts, lang: str) -> dict:
    return _organisation(f"urn:epass:org:{index + 2}", body.name, body.country,
                         body.legal_identifier, lang, body.url)


def _grade(facts: AchievementFacts, award: EdcAward) -> str:
    """The overall grade: the plan's overall result, else the level reached per outcome."""
    code = overall_level(facts, award.outcome_levels)
    if code == "passed":
        return "Passed"
    if code is not None:
        level = facts.outcomes[0].level(code)
        return level.label if level else code
    parts = []
    for outcome in facts.outcomes:
        level = outcome.level(award.outcome_levels.get(outcome.code, ""))
        if level is not None:
            parts.append(f"{outcome.code}: {level.label}")
    if parts:
        return "; ".join(parts)
    return "Passed: every micro-credential of the pathway held" if award.via_pathway \
        else "Passed"


def _outcome_assessments(facts: AchievementFacts, award: EdcAward, awarded_by: dict,
                         lang: str) -> list[dict]:
    parts = []
    for index, outcome in enumerate(facts.outcomes, start=1):
        level = outcome.level(award.outcome_levels.get(outcome.code, ""))
        if level is None:
            continue
        parts.append({"id": f"urn:epass:learningAssessment:{index + 1}",
                      "type": "LearningAssessment",
                      "title": {lang: f"{outcome.code}: {outcome.statement}"},
                      "awardedBy": awarded_by,
                      "grade": _note(f"urn:epass:note:grade-{index}", level.label, lang)})
    return parts


def _assessment(facts: AchievementFacts, award: EdcAward, awarded_by: dict,
                lang: str) -> dict:
    methods = "; ".join(m for m in facts.assessment_methods if m.strip())
    assessment: dict = {
        "id": "urn:epass:learningAssessment:1", "type": "LearningAssessment",
        "title": {lang: f"Assessment: {facts.title}"},
        "awardedBy": awarded_by,
        "grade": _note("urn:epass:note:grade", _grade(facts, award), lang),
        "specifiedBy": {
            "id": "urn:epass:learningAssessmentSpec:1",
            "type": "LearningAssessmentSpecification",
            "title": {lang: methods},
            # Type of assessment: the plan's own words, as a concept (the sample does so).
            "dcType": _concept(f"urn:epass:concept:assessment-type:{facts.key}",
                               ASSESSMENT_TYPE_SCHEME, methods, lang),
            "language": _language(facts.language),
            "gradingScheme": {
                "id": "urn:epass:gradingScheme:1", "type": "GradingScheme",
                "title": {lang: "Analytic rubric per learning outcome"},
                "description": {lang: "Each learning outcome is assessed with an analytic "
                                      "rubric; it is attained at or above its threshold "
                                      "level."}},
        },
    }
    if facts.supervision:
        assessment["idVerification"] = _tool_concept(vocab.SUPERVISION[facts.supervision])
    parts = _outcome_assessments(facts, award, awarded_by, lang)
    if parts:
        assessment["hasPart"] = parts
    return assessment


def _notes(facts: AchievementFacts, lang: str) -> list[dict]:
    notes = [_note("urn:epass:note:quality-assurance", facts.quality_assurance, lang,
                   "quality_assurance"),
             _note("urn:epass:note:tqf", f"TQF level {facts.tqf_level}", lang, "tqf_level")]
    for name in ("stackability", "recognition", "further_information"):
        text = getattr(facts, name)
        if text.strip():
            notes.append(_note(f"urn:epass:note:{name.replace('_', '-')}", text, lang, name))
    return notes


def _specification(facts: AchievementFacts, lang: str) -> dict:
    spec: dict = {
        "id": "urn:epass:qualification:1", "type": "Qualification",
        "title": {lang: facts.title},
        "description": {lang: facts.description or facts.title},
        "language": _language(facts.language),
        "eqfLevel": _concept(f"{vocab.EQF}{facts.eqf_level}", vocab.EQF_SCHEME,
                             f"Level {facts.eqf_level}"),
        "volumeOfLearning": _hours(facts.workload_hours),
        "mode": _tool_concept(vocab.MODES[facts.participation_form]),
        "dcType": _concept(vocab.SHORT_LEARNING_PROGRAMME, vocab.LEARNING_OPPORTUNITY_SCHEME,
                           "Short learning programme"),
        "isPartialQualification": bool(facts.stackability.strip() or facts.pathway_of),
        "additionalNote": _notes(facts, lang),
        "learningOutcome": [
            {"id": f"urn:epass:learningOutcome:{index}", "type": "LearningOutcome",
             "title": {lang: f"{o.code}: {o.statement}"}}
            for index, o in enumerate(facts.outcomes, start=1)],
    }
    if facts.ects is not None:
        spec["creditPoint"] = {"id": "urn:epass:creditPoint:1", "type": "CreditPoint",
                               "framework": _concept(vocab.ECTS, vocab.ECTS_SCHEME,
                                                     "European Credit Transfer System"),
                               "point": format(facts.ects.normalize(), "f")}
    if facts.isced_f_code:
        spec["thematicArea"] = _concept(vocab.ISCED_F + facts.isced_f_code,
                                        vocab.ISCED_F_SCHEME,
                                        facts.field_of_study or facts.isced_f_code)
    if facts.learning_setting:
        spec["learningSetting"] = _tool_concept(vocab.SETTINGS[facts.learning_setting])
    if facts.qf_ehea_cycle:
        spec["educationLevel"] = _tool_concept(vocab.QF_EHEA[facts.qf_ehea_cycle])
    if facts.prerequisites.strip():
        spec["entryRequirement"] = _note("urn:epass:note:entry", facts.prerequisites, lang)
    if facts.pathway_of:
        spec["learningOutcomeSummary"] = _note(
            "urn:epass:note:pathway",
            "Awarded for holding every micro-credential of the pathway: "
            + "; ".join(facts.pathway_of) + ".", lang)
    return spec


def edc_document(facts: AchievementFacts, issuer: IssuerFacts, recipient: RecipientFacts,
                 award: EdcAward, image_png: bytes) -> dict:
    """The unsigned European Digital Credential of one award (ELM 3, JSON-LD).

    Raises MissingElement when a mandatory element is missing: the plan's (a migrated plan)
    or the institution's legal identifier, which ELM requires of every issuer.
    """
    missing = facts.missing()
    if missing:
        raise MissingElement("the Design Plan lacks the mandatory EU micro-credential "
                             "element(s): " + ", ".join(missing))
    if not issuer.legal_identifier.strip():
        raise MissingElement("the institution has no legal identifier (a national "
                             "registration, VAT or EUID number), which a European Digital "
                             "Credential requires of its issuer")
    lang = facts.language
    org = _organisation("urn:epass:org:1", issuer.name, issuer.country,
                        issuer.legal_identifier, lang, issuer.url,
                        facts.region or issuer.region)
    bodies = [org] + [_co_body(i, b, lang) for i, b in enumerate(facts.co_awarding_bodies)]
    awarded_by = {"id": "urn:epass:awardingProcess:1", "type": "AwardingProcess",
                  "awardingBody": bodies if len(bodies) > 1 else org,
                  "awardingDate": iso(award.passed_at)}
    achievement = {
        "id": "urn:epass:learningAchievement:1", "type": "LearningAchievement",
        "title": {lang: facts.title},
        "awardedBy": awarded_by,
        "provenBy": _assessment(facts, award, awarded_by, lang),
        "specifiedBy": _specification(facts, lang),
    }
    if facts.ects is not None:
        achievement["creditReceived"] = _specification(facts, lang)["creditPoint"]
    subject = {"id": "urn:epass:person:1", "type": "Person",
               "fullName": {lang: recipient.name or "—"}, "hasClaim": achievement}
    language = _language(lang)
    return {
        "@context": [VC_V1, EDC_CONTEXT],
        "id": f"urn:credential:{award.public_id}",
        "type": ["VerifiableCredential", "EuropeanDigitalCredential"],
        "credentialProfiles": _concept(vocab.CREDENTIAL_GENERIC, vocab.CREDENTIAL_SCHEME,
                                       "Generic"),
        "credentialSchema": {"id": EDC_PROFILE, "type": "ShaclValidator2017"},
        "identifier": {"id": "urn:epass:identifier:1", "type": "Identifier",
                       "schemeName": "Open Badges 3.0 credential", "notation": award.page_url},
        "displayParameter": {
            "id": "urn:epass:displayParameter:1", "type": "DisplayParameter",
            "title": {lang: facts.title},
            "description": {lang: facts.description or facts.title},
            "language": language, "primaryLanguage": language,
            "individualDisplay": {
                "id": "urn:epass:individualDisplay:1", "type": "IndividualDisplay",
                "language": language,
                "displayDetail": {
                    "id": "urn:epass:displayDetail:1", "type": "DisplayDetail", "page": 1,
                    "image": {"id": "urn:epass:mediaObject:1", "type": "MediaObject",
                              "content": base64.b64encode(image_png).decode("ascii"),
                              "contentEncoding": _concept(BASE64, BASE64_SCHEME, "base64"),
                              "contentType": _concept(PNG, FILE_TYPE_SCHEME, "PNG")
                              | {"notation": "file-type"}}}}},
        "credentialSubject": subject,
        "issuer": org,
        "issued": iso(award.issued_at),
        "validFrom": iso(award.issued_at),
    }


def uploadable(document: dict) -> dict:
    """The file the EDC Issuer accepts for sealing: the credential under `credential`."""
    return {"credential": document}


# --- reading the store ----------------------------------------------------------------------


def export(db: Session, settings: Settings, row: Credential) -> dict:
    """The uploadable EDC of one issued credential; a revoked one is refused (409)."""
    if row.status == "revoked":
        raise Conflict("The credential is revoked: it cannot be exported for sealing.")
    version = db.get(MicroCredentialVersion, row.mc_version_id)
    person = db.get(Person, row.person_id)
    if version is None or person is None:
        raise NotFound("There is no such credential.")
    award = EdcAward(public_id=row.public_id, issued_at=row.issued_at, passed_at=row.passed_at,
                     outcome_levels=dict(row.outcome_levels or {}),
                     page_url=settings.url(f"/credentials/{row.public_id}"),
                     via_pathway=row.via_pathway)
    try:
        institution = db.get(Institution, version.institution_id)
        if institution is None:
            raise NotFound("There is no such credential.")
        issuer = issuer_facts(settings, institution)
        face = images.BadgeFace(seed=str(version.id), title=version.title,
                                eqf_level=version.eqf_level, issuer=issuer.name,
                                language=version.language)
        document = edc_document(achievement_facts(db, version), issuer,
                                recipient_facts(person), award, images.badge_png(face))
    except MissingElement as exc:
        raise Conflict(f"No European Digital Credential can be made: {exc}.") from exc
    return uploadable(document)


def dumps(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


def offering_zip(db: Session, settings: Settings, actor: Actor,
                 offering_id: int) -> tuple[bytes, int]:
    """Every active credential of one offering the actor may see as uploadable EDC files in a
    zip, and the count. Credentials that cannot be exported (revoked ones are skipped) fail the
    whole zip with the reason, so the Office never uploads a partial batch unknowingly."""
    offering = visible_offering(db, actor, offering_id, message="No such offering.")
    rows = db.scalars(select(Credential).where(
        Credential.offering_id == offering.id, Credential.platform_id == offering.platform_id,
        Credential.status == "active", Credential.document != "")
        .order_by(Credential.issued_at, Credential.id).limit(MAX_ZIP_CREDENTIALS)).all()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for row in rows:
            archive.writestr(f"edc-{row.public_id}.json", dumps(export(db, settings, row)))
    return buffer.getvalue(), len(rows)
