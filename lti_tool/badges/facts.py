"""The one adapter from the catalogue models to the builder's plain facts."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.badges.builder import (
    AchievementFacts,
    BodyFacts,
    LevelFacts,
    OutcomeFacts,
    RecipientFacts,
)
from lti_tool.store.models.catalogue import MicroCredentialVersion
from lti_tool.store.models.core import Person


def _outcome(row) -> OutcomeFacts:
    levels = tuple(
        LevelFacts(code=str(level["code"]), label=str(level.get("label") or level["code"]),
                   lower_bound=Decimal(str(level.get("lower_bound", 0))),
                   descriptor=str(level.get("descriptor") or ""))
        for level in row.levels or []
    )
    return OutcomeFacts(code=row.code, statement=row.statement, levels=levels,
                        threshold=row.threshold, domain=row.domain, required=row.required)


def _http_image(value: str) -> str:
    """Only an absolute http(s) image URL is usable as an OB Image id; else ours is used."""
    return value if value.startswith(("https://", "http://")) else ""


def achievement_facts(db: Session, version: MicroCredentialVersion) -> AchievementFacts:
    """What the credential says about a micro-credential version.

    The badge's standard metadata (Art. 4/1-c, Art. 11/2) and every element of Annex I of
    Council Recommendation 2022/C 243/02 come from the Design Plan as stored, never from a
    default: the builder refuses facts that lack a mandatory one.
    """
    pathway_titles = tuple(
        db.scalar(select(MicroCredentialVersion.title)
                  .where(MicroCredentialVersion.micro_credential_id == component.required.id)
                  .order_by(MicroCredentialVersion.version.desc()).limit(1))
        or component.required.code
        for component in version.components
    )
    return AchievementFacts(
        key=str(version.id), code=version.micro_credential.code, version=version.version,
        title=version.title, description=version.description, language=version.language,
        eqf_level=version.eqf_level, tqf_level=version.tqf_level,
        workload_hours=Decimal(version.workload_hours), ects=version.ects,
        assessment_methods=tuple(str(m) for m in version.assessment_methods or []),
        field_of_study=version.field_of_study or "", isced_f_code=version.isced_f_code or "",
        participation_form=version.participation_form or "",
        quality_assurance=version.quality_assurance, stackability=version.stackability,
        recognition=version.recognition, prerequisites=version.prerequisites,
        supervision=version.supervision, qf_ehea_cycle=version.qf_ehea_cycle,
        learning_setting=version.learning_setting, region=version.region,
        further_information=version.further_information,
        overall_result=version.overall_result,
        co_awarding_bodies=tuple(
            BodyFacts(name=str(b.get("name", "")), country=str(b.get("country", "")),
                      legal_identifier=str(b.get("legal_identifier", "")),
                      url=str(b.get("url", "")))
            for b in version.co_awarding_bodies or []),
        image_url=_http_image(version.image or ""),
        outcomes=tuple(_outcome(outcome) for outcome in version.outcomes),
        pathway_of=pathway_titles,
    )


def recipient_facts(person: Person) -> RecipientFacts:
    name = person.name or " ".join(p for p in (person.given_name, person.family_name) if p)
    return RecipientFacts(name=name, email=person.email or "",
                          sourced_id=person.lis_person_sourcedid or person.sub)

