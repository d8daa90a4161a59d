"""Build Open Badges 3.0 documents (credential, achievement, issuer profile) from plain facts.

The builder knows nothing of the database: `AchievementFacts` and friends carry what it needs,
so building, signing and their tests stand alone; `lti_tool.badges.facts` fills them from the
catalogue models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from lti_tool.badges.jsonld import DID_V1, MULTIKEY_V1, OB_V3, VC_V2, extension_url

EQF_URL = "https://europass.europa.eu/en/description-eight-eqf-levels"
TQF_URL = "https://www.myk.gov.tr/index.php/tr/turkiye-yeterlilikler-cercevesi"
# The EU's ISCED-F 2013 vocabulary (the one Europass credentials use for a field of study).
ISCED_F_URL = "http://data.europa.eu/snb/isced-f/"
DOMAIN_LABELS = {"knowledge": "Knowledge", "skill": "Skill", "competence": "Competence"}


@dataclass(frozen=True)
class LevelFacts:
    code: str
    label: str
    lower_bound: Decimal
    descriptor: str = ""


@dataclass(frozen=True)
class OutcomeFacts:
    code: str
    statement: str
    levels: tuple[LevelFacts, ...]
    threshold: str
    domain: str = "knowledge"
    required: bool = True

    def level(self, code: str) -> LevelFacts | None:
        return next((level for level in self.levels if level.code == code), None)


@dataclass(frozen=True)
class AchievementFacts:
    """What a micro-credential version says about itself (the Design Plan, as published)."""

    key: str  # the id used in /achievements/<key>
    code: str
    version: int
    title: str
    description: str
    language: str
    eqf_level: int
    tqf_level: int
    workload_hours: Decimal
    outcomes: tuple[OutcomeFacts, ...]
    ects: Decimal | None = None
    field_of_study: str = ""
    isced_f_code: str = ""  # ISCED-F 2013 code of the field of study, if the plan gives one
    assessment_methods: tuple[str, ...] = ()
    participation_form: str = ""
    quality_assurance: str = ""
    stackability: str = ""
    image_url: str = ""
    pathway_of: tuple[str, ...] = ()  # titles of the component micro-credentials


@dataclass(frozen=True)
class IssuerFacts:
    id: str
    name: str
    url: str
    country: str
    email: str = ""
    image_url: str = ""


@dataclass(frozen=True)
class RecipientFacts:
    name: str = ""
    email: str = ""
    sourced_id: str = ""


@dataclass(frozen=True)
class AwardFacts:
    """One learner's award: the ids, dates, levels and status entry of one credential."""

    credential_id: str
    subject_id: str
    issued_at: datetime
    passed_at: datetime
    outcome_levels: dict[str, str]
    salt: str
    valid_until: datetime | None = None
    status_entry: dict | None = None
    evidence_narrative: str = ""
    via_pathway: bool = False
    extra_types: tuple[str, ...] = field(default=())


def iso(moment: datetime) -> str:
    """XML Schema dateTime in UTC with a `Z`, to the second (what the schema and JWT agree on)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_number(value: Decimal) -> int | float:
    """An integral value as a JSON integer: Python and JavaScript JSON-LD agree only then."""
    return int(value) if value == value.to_integral_value() else float(value)


def identity_hash(value: str, salt: str) -> str:
    return "sha256$" + hashlib.sha256((value + salt).encode()).hexdigest()


def _image(url: str, caption: str = "") -> dict:
    image = {"id": url, "type": "Image"}
    if caption:
        image["caption"] = caption
    return image


def issuer_summary(issuer: IssuerFacts) -> dict:
    """The issuer Profile as embedded in credentials."""
    profile = {"id": issuer.id, "type": ["Profile"], "name": issuer.name, "url": issuer.url}
    if issuer.email:
        profile["email"] = issuer.email
    if issuer.image_url:
        profile["image"] = _image(issuer.image_url, issuer.name)
    profile["address"] = {"type": ["Address"], "addressCountryCode": issuer.country}
    return profile


def issuer_profile(issuer: IssuerFacts, multikeys: list[str]) -> dict:
    """The public issuer document: a Profile that is also the controller of its Ed25519 keys.

    The context list is the one @digitalbazaar verifiers accept for a controller document
    (did/v1 first, then VC 2.0, OB 3.0.3 and Multikey); every key ever used stays listed.
    """
    methods = [{"id": f"{issuer.id}#{key}", "type": "Multikey", "controller": issuer.id,
                "publicKeyMultibase": key} for key in multikeys]
    return {"@context": [DID_V1, VC_V2, OB_V3, MULTIKEY_V1], **issuer_summary(issuer),
            "verificationMethod": methods,
            "assertionMethod": [method["id"] for method in methods]}


def _level_id(achievement_id: str, outcome: OutcomeFacts, level: LevelFacts) -> str:
    return f"{achievement_id}#lo-{outcome.code}-level-{level.code}"


def _result_description(achievement_id: str, outcome: OutcomeFacts) -> dict:
    threshold = outcome.level(outcome.threshold)
    description = {
        "id": f"{achievement_id}#lo-{outcome.code}",
        "type": ["ResultDescription"],
        "name": f"{outcome.code}: {outcome.statement}",
        "resultType": "RubricCriterionLevel",
        "allowedValue": [level.label for level in outcome.levels],
        "rubricCriterionLevel": [
            {"id": _level_id(achievement_id, outcome, level), "type": ["RubricCriterionLevel"],
             "name": level.label, "level": level.code,
             "description": level.descriptor or f"From {level.lower_bound}%"}
            for level in outcome.levels
        ],
    }
    if threshold is not None:
        description["requiredLevel"] = _level_id(achievement_id, outcome, threshold)
    return description


def criteria_narrative(facts: AchievementFacts) -> str:
    """Markdown: what a learner must attain, outcome by outcome, with the threshold level."""
    lines = [f"Awarded when every required learning outcome of {facts.title} is attained at or "
             "above its threshold level, assessed with an analytic rubric:", ""]
    for outcome in facts.outcomes:
        threshold = outcome.level(outcome.threshold)
        label = threshold.label if threshold else outcome.threshold
        bound = f" ({threshold.lower_bound}% or more)" if threshold else ""
        optional = "" if outcome.required else " (optional)"
        lines.append(f"- **{outcome.code}** ({DOMAIN_LABELS.get(outcome.domain, outcome.domain)})"
                     f"{optional}: {outcome.statement} Threshold: {label}{bound}.")
    if facts.pathway_of:
        lines += ["", "Awarded when all of these micro-credentials are held: "
                  + "; ".join(facts.pathway_of) + "."]
    return "\n".join(lines)


def _alignment(framework: str, level: int, url: str, kind: str) -> dict:
    return {"type": ["Alignment"], "targetName": f"{framework} level {level}",
            "targetFramework": framework, "targetCode": str(level), "targetUrl": url,
            "targetType": f"ext:{kind}"}


def achievement(facts: AchievementFacts, base_url: str, default_image: str) -> dict:
    """The OB 3.0 Achievement of a micro-credential version, with the EU extension terms."""
    achievement_id = base_url.rstrip("/") + f"/achievements/{facts.key}"
    body: dict = {
        "id": achievement_id,
        "type": ["Achievement"],
        "achievementType": "MicroCredential",
        "name": facts.title,
        "description": facts.description or facts.title,
        "humanCode": facts.code,
        "version": str(facts.version),
        "criteria": {"narrative": criteria_narrative(facts)},
        "image": _image(facts.image_url or default_image, facts.title),
        "inLanguage": facts.language,
        "alignment": [
            _alignment("European Qualifications Framework", facts.eqf_level, EQF_URL, "EQF"),
            _alignment("Turkish Qualifications Framework", facts.tqf_level, TQF_URL, "TQF"),
        ],
        "resultDescription": [_result_description(achievement_id, o) for o in facts.outcomes],
        "notionalWorkloadHours": str(facts.workload_hours),
        "assessmentType": "; ".join(facts.assessment_methods)
        or "Analytic rubric per learning outcome",
        "participationForm": facts.participation_form or "Not specified",
        "qualityAssurance": facts.quality_assurance or "Not specified",
    }
    if facts.ects is not None:
        body["creditsAvailable"] = json_number(facts.ects)
    if facts.field_of_study:
        body["fieldOfStudy"] = facts.field_of_study
    if facts.isced_f_code:
        body["alignment"].append({
            "type": ["Alignment"], "targetName": facts.field_of_study or facts.isced_f_code,
            "targetFramework": "ISCED-F 2013", "targetCode": facts.isced_f_code,
            "targetUrl": ISCED_F_URL + facts.isced_f_code, "targetType": "ext:ISCED-F"})
    if facts.stackability:
        body["stackability"] = facts.stackability
    return body


def achievement_document(facts: AchievementFacts, issuer: IssuerFacts, base_url: str,
                         default_image: str) -> dict:
    """The achievement as served at /achievements/<key>, with its context and creator."""
    body = achievement(facts, base_url, default_image)
    body["awardingBodyCountry"] = issuer.country
    body["creator"] = issuer_summary(issuer)
    return {"@context": [VC_V2, OB_V3, extension_url(base_url)], **body}


def _identifiers(recipient: RecipientFacts, salt: str) -> list[dict]:
    found = []
    if recipient.name:
        found.append({"type": "IdentityObject", "identityType": "name", "hashed": False,
                      "identityHash": recipient.name})
    if recipient.email:
        found.append({"type": "IdentityObject", "identityType": "emailAddress", "hashed": True,
                      "identityHash": identity_hash(recipient.email.strip().lower(), salt),
                      "salt": salt})
    elif recipient.sourced_id:
        found.append({"type": "IdentityObject", "identityType": "sourcedId", "hashed": True,
                      "identityHash": identity_hash(recipient.sourced_id, salt), "salt": salt})
    return found


def _results(facts: AchievementFacts, achievement_id: str, levels: dict[str, str]) -> list[dict]:
    results = []
    for outcome in facts.outcomes:
        level = outcome.level(levels.get(outcome.code, ""))
        if level is None:
            continue
        results.append({"type": ["Result"], "resultDescription": f"{achievement_id}#lo-"
                        f"{outcome.code}", "achievedLevel": _level_id(achievement_id, outcome,
                                                                      level)})
    return results


def credential(facts: AchievementFacts, issuer: IssuerFacts, recipient: RecipientFacts,
               award: AwardFacts, base_url: str, default_image: str) -> dict:
    """An unsigned OpenBadgeCredential for one learner."""
    body = achievement(facts, base_url, default_image)
    body["awardingBodyCountry"] = issuer.country
    subject: dict = {
        "id": award.subject_id,
        "type": ["AchievementSubject"],
        "achievement": body,
        "identifier": _identifiers(recipient, award.salt),
    }
    results = _results(facts, body["id"], award.outcome_levels)
    if results:
        subject["result"] = results
    if facts.ects is not None:
        subject["creditsEarned"] = json_number(facts.ects)
    document: dict = {
        "@context": [VC_V2, OB_V3, extension_url(base_url)],
        "id": award.credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential", *award.extra_types],
        "name": facts.title,
        "description": facts.description or facts.title,
        "image": _image(facts.image_url or default_image, facts.title),
        "issuer": issuer_summary(issuer),
        "validFrom": iso(award.issued_at),
        "awardedDate": iso(award.passed_at),
        "credentialSubject": subject,
        "evidence": [{
            "type": ["Evidence"],
            "name": "How this was assessed",
            "narrative": award.evidence_narrative or evidence_narrative(facts, award),
        }],
    }
    if award.valid_until is not None:
        document["validUntil"] = iso(award.valid_until)
    if award.status_entry is not None:
        document["credentialStatus"] = award.status_entry
    return document


def evidence_narrative(facts: AchievementFacts, award: AwardFacts) -> str:
    """A summary of the assessment: the learner's own levels, nothing about anyone else."""
    if award.via_pathway:
        return ("Awarded for holding every micro-credential of the pathway: "
                + "; ".join(facts.pathway_of) + ".")
    attained = []
    for outcome in facts.outcomes:
        level = outcome.level(award.outcome_levels.get(outcome.code, ""))
        if level is not None:
            attained.append(f"{outcome.code}: {level.label}")
    methods = "; ".join(facts.assessment_methods) or "course work"
    return (f"Assessed through {methods}, mapped to {len(facts.outcomes)} learning outcomes and "
            f"scored with an analytic rubric; passed on {award.passed_at:%Y-%m-%d}. "
            f"Levels reached: {', '.join(attained) or 'see results'}.")
