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

from lti_tool.badges import vocabularies as vocab
from lti_tool.badges.jsonld import DID_V1, EXTENSION_V2, MULTIKEY_V1, OB_V3, VC_V2
from lti_tool.domain.catalogue import missing_annex_elements, overall_result

# The EU vocabulary IRIs of EQF levels and ISCED-F fields (as the Commission's sample uses them).
EQF_URL = vocab.EQF
TQF_URL = "https://www.myk.gov.tr/index.php/tr/turkiye-yeterlilikler-cercevesi"
ISCED_F_URL = vocab.ISCED_F
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
class BodyFacts:
    """A co-awarding body of a joint micro-credential."""

    name: str
    country: str
    legal_identifier: str
    url: str = ""


class MissingElement(ValueError):
    """A mandatory EU micro-credential element is missing: no credential is built."""


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
    recognition: str = ""
    prerequisites: str = ""
    supervision: str = ""  # a code of lti_tool.domain.catalogue.SUPERVISION, or empty
    qf_ehea_cycle: str = ""
    learning_setting: str = ""
    region: str = ""  # the plan's region of the issuer; the institution's when empty
    co_awarding_bodies: tuple[BodyFacts, ...] = ()
    further_information: str = ""
    overall_result: str = ""  # a code of lti_tool.domain.catalogue.OVERALL_RESULTS, or empty

    def missing(self) -> list[str]:
        """The mandatory Annex I elements these facts lack (the domain's rule)."""
        return missing_annex_elements(
            title=self.title, has_outcomes=bool(self.outcomes or self.pathway_of),
            workload_hours=self.workload_hours, eqf_level=self.eqf_level,
            assessment_methods=self.assessment_methods,
            participation_form=self.participation_form,
            quality_assurance=self.quality_assurance)


@dataclass(frozen=True)
class IssuerFacts:
    id: str
    name: str
    url: str
    country: str
    email: str = ""
    image_url: str = ""
    region: str = ""
    legal_identifier: str = ""  # national registration, VAT or EUID number


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


def _legal_identifier(value: str) -> list[dict]:
    return [{"type": "IdentifierEntry", "identifier": value,
             "identifierType": "ext:LegalIdentifier"}] if value else []


def issuer_summary(issuer: IssuerFacts) -> dict:
    """The issuer Profile as embedded in credentials: OB 3.0's own terms only (an address with
    the country and region, the legal identifier as an `otherIdentifier`)."""
    profile = {"id": issuer.id, "type": ["Profile"], "name": issuer.name, "url": issuer.url}
    if issuer.email:
        profile["email"] = issuer.email
    if issuer.image_url:
        profile["image"] = _image(issuer.image_url, issuer.name)
    address: dict = {"type": ["Address"], "addressCountryCode": issuer.country}
    if issuer.region:
        address["addressRegion"] = issuer.region
    profile["address"] = address
    if identifiers := _legal_identifier(issuer.legal_identifier):
        profile["otherIdentifier"] = identifiers
    return profile


def _co_awarding_body(body: BodyFacts) -> dict:
    profile: dict = {"type": ["Profile"], "name": body.name,
                     "address": {"type": ["Address"], "addressCountryCode": body.country},
                     "otherIdentifier": _legal_identifier(body.legal_identifier)}
    if body.url:
        profile["url"] = body.url
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


OVERALL = "overall"


def _overall_levels(facts: AchievementFacts) -> tuple[LevelFacts, ...]:
    """The common level scale of a `lowest_level` plan (the first outcome's levels)."""
    return facts.outcomes[0].levels if facts.outcomes else ()


def _overall_description(facts: AchievementFacts, achievement_id: str) -> dict | None:
    """The ResultDescription of the overall result the plan defines, if it defines one."""
    base = {"id": f"{achievement_id}#{OVERALL}", "type": ["ResultDescription"],
            "name": "Overall result"}
    if facts.overall_result == "pass_fail":
        return base | {"resultType": "Status", "allowedValue": ["Completed", "Failed"]}
    levels = _overall_levels(facts)
    if facts.overall_result == "lowest_level" and levels:
        return base | {
            "name": "Overall result: the lowest level reached over the required outcomes",
            "resultType": "PerformanceLevel",
            "allowedValue": [level.label for level in levels],
            "rubricCriterionLevel": [
                {"id": f"{achievement_id}#{OVERALL}-level-{level.code}",
                 "type": ["RubricCriterionLevel"], "name": level.label, "level": level.code,
                 "description": level.descriptor or f"The lowest level reached: {level.label}"}
                for level in levels]}
    return None


def overall_level(facts: AchievementFacts, levels: dict[str, str]) -> str | None:
    """The learner's overall result code (domain rule), or None when the plan has none."""
    return overall_result(
        facts.overall_result,
        tuple((o.code, tuple(level.code for level in o.levels), o.required)
              for o in facts.outcomes), levels)


def _annex_terms(facts: AchievementFacts) -> dict:
    """The extension terms (context EXTENSION_V2) for the Annex I elements OB 3.0 lacks."""
    missing = facts.missing()
    if missing:
        raise MissingElement("the Design Plan lacks the mandatory EU micro-credential "
                             "element(s): " + ", ".join(missing))
    terms: dict = {
        "notionalWorkloadHours": str(facts.workload_hours),
        "assessmentType": "; ".join(facts.assessment_methods),
        "participationForm": vocab.MODES[facts.participation_form].iri,
        "qualityAssurance": facts.quality_assurance,
    }
    optional = {
        "learningSetting": vocab.SETTINGS[facts.learning_setting].iri
        if facts.learning_setting else "",
        "qfEheaCycle": vocab.QF_EHEA[facts.qf_ehea_cycle].iri if facts.qf_ehea_cycle else "",
        "supervisionVerification": vocab.SUPERVISION[facts.supervision].iri
        if facts.supervision else "",
        "prerequisites": facts.prerequisites,
        "stackability": facts.stackability,
        "recognition": facts.recognition,
        "furtherInformation": facts.further_information,
    }
    terms.update({name: value for name, value in optional.items() if value})
    if facts.co_awarding_bodies:
        terms["coAwardingBody"] = [_co_awarding_body(b) for b in facts.co_awarding_bodies]
    return terms


def _awarding_place(facts: AchievementFacts, issuer: IssuerFacts) -> dict:
    place = {"awardingBodyCountry": issuer.country}
    if region := facts.region or issuer.region:
        place["awardingBodyRegion"] = region
    return place


def achievement(facts: AchievementFacts, base_url: str, default_image: str) -> dict:
    """The OB 3.0 Achievement of a micro-credential version: OB 3.0's own terms where they
    exist (`creditsAvailable`, `fieldOfStudy`, `alignment` with the EU vocabularies' IRIs,
    `resultDescription`), the extension context's for the other Annex I elements."""
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
            _alignment("European Qualifications Framework", facts.eqf_level,
                       f"{EQF_URL}{facts.eqf_level}", "EQF"),
            _alignment("Turkish Qualifications Framework", facts.tqf_level, TQF_URL, "TQF"),
        ],
        "resultDescription": [_result_description(achievement_id, o) for o in facts.outcomes],
        **_annex_terms(facts),
    }
    if overall := _overall_description(facts, achievement_id):
        body["resultDescription"].append(overall)
    if facts.ects is not None:
        body["creditsAvailable"] = json_number(facts.ects)
    if facts.field_of_study:
        body["fieldOfStudy"] = facts.field_of_study
    if facts.isced_f_code:
        body["alignment"].append({
            "type": ["Alignment"], "targetName": facts.field_of_study or facts.isced_f_code,
            "targetFramework": "ISCED-F 2013", "targetCode": facts.isced_f_code,
            "targetUrl": ISCED_F_URL + facts.isced_f_code, "targetType": "ext:ISCED-F"})
    return body


def achievement_document(facts: AchievementFacts, issuer: IssuerFacts, base_url: str,
                         default_image: str) -> dict:
    """The achievement as served at /achievements/<key>, with its context and creator."""
    body = achievement(facts, base_url, default_image) | _awarding_place(facts, issuer)
    body["creator"] = issuer_summary(issuer)
    return {"@context": [VC_V2, OB_V3, EXTENSION_V2], **body}


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


def _results(facts: AchievementFacts, achievement_id: str, levels: dict[str, str],
             via_pathway: bool = False) -> list[dict]:
    results = []
    for outcome in facts.outcomes:
        level = outcome.level(levels.get(outcome.code, ""))
        if level is None:
            continue
        results.append({"type": ["Result"], "resultDescription": f"{achievement_id}#lo-"
                        f"{outcome.code}", "achievedLevel": _level_id(achievement_id, outcome,
                                                                      level)})
    overall = f"{achievement_id}#{OVERALL}"
    if facts.overall_result == "pass_fail":
        results.append({"type": ["Result"], "resultDescription": overall, "status": "Completed"})
    elif (code := overall_level(facts, levels)) is not None and not via_pathway:
        results.append({"type": ["Result"], "resultDescription": overall,
                        "achievedLevel": f"{overall}-level-{code}"})
    return results


def credential(facts: AchievementFacts, issuer: IssuerFacts, recipient: RecipientFacts,
               award: AwardFacts, base_url: str, default_image: str) -> dict:
    """An unsigned OpenBadgeCredential for one learner."""
    body = achievement(facts, base_url, default_image) | _awarding_place(facts, issuer)
    subject: dict = {
        "id": award.subject_id,
        "type": ["AchievementSubject"],
        "achievement": body,
        "identifier": _identifiers(recipient, award.salt),
    }
    results = _results(facts, body["id"], award.outcome_levels, award.via_pathway)
    if results:
        subject["result"] = results
    if facts.ects is not None:
        subject["creditsEarned"] = json_number(facts.ects)
    document: dict = {
        "@context": [VC_V2, OB_V3, EXTENSION_V2],
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
    methods = "; ".join(facts.assessment_methods)
    return (f"Assessed through {methods}, mapped to {len(facts.outcomes)} learning outcomes and "
            f"scored with an analytic rubric; passed on {award.passed_at:%Y-%m-%d}. "
            f"Levels reached: {', '.join(attained) or 'see results'}.")
