"""The EU vocabularies' concept IRIs for the Design Plan's codes, and the tool's own.

Each EU IRI here was checked against the Commission's Annex I sample
(`../shared/spec/elm/Sample-MC-Annex1-unsigned.jsonld`) or, where the sample does not use the
concept, against more than one published ELM implementation; the comment says which. Where
no EU IRI could be checked, the concept is the tool's own, in its own vocabulary
(`VOCAB`), never a guessed EU one. `EU_CHECKED` tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# The tool's vocabulary: stable, independent of any deployment (see jsonld.EXTENSION_V2).
VOCAB = "https://w3id.org/lti-microcredentials/vocab#"
EQF = "http://data.europa.eu/snb/eqf/"  # + level; sample: eqf/6 "Level 6"
EQF_SCHEME = "http://data.europa.eu/snb/eqf/25831c2"
ISCED_F = "http://data.europa.eu/snb/isced-f/"  # + code; sample: isced-f/0688, isced-f/003
ISCED_F_SCHEME = "http://data.europa.eu/snb/isced-f/25831c2"
COUNTRY = "http://publications.europa.eu/resource/authority/country/"  # + alpha-3; sample IRL
COUNTRY_SCHEME = "http://publications.europa.eu/resource/authority/country"
LANGUAGE = "http://publications.europa.eu/resource/authority/language/"  # + ENG; sample
LANGUAGE_SCHEME = "http://publications.europa.eu/resource/authority/language"
ECTS = "http://data.europa.eu/snb/education-credit/6fcec5c5af"  # sample creditPoint.framework
ECTS_SCHEME = "http://data.europa.eu/snb/education-credit/25831c2"
CREDENTIAL_GENERIC = "http://data.europa.eu/snb/credential/e34929035b"  # sample profile
CREDENTIAL_SCHEME = "http://data.europa.eu/snb/credential/25831c2"
MODE_SCHEME = "http://data.europa.eu/snb/learning-assessment/25831c2"
SETTING_SCHEME = "http://data.europa.eu/snb/learning-setting/25831c2"
SUPERVISION_SCHEME = "http://data.europa.eu/snb/supervision-verification/25831c2"
LEARNING_OPPORTUNITY_SCHEME = "http://data.europa.eu/snb/learning-opportunity/25831c2"
SHORT_LEARNING_PROGRAMME = "http://data.europa.eu/snb/learning-opportunity/74a4a268e8"  # sample
TOOL_SCHEME = VOCAB + "scheme"


@dataclass(frozen=True)
class Concept:
    iri: str
    scheme: str
    label: str  # the English preferred label
    eu_checked: bool = True


# Form of participation -> ELM `mode` (Europass learning-assessment list).
MODES = {
    "online": Concept("http://data.europa.eu/snb/learning-assessment/920fbb3cbe", MODE_SCHEME,
                      "Online"),  # sample (assessment mode "Online")
    "blended": Concept("http://data.europa.eu/snb/learning-assessment/e92d221e4d", MODE_SCHEME,
                       "Blended"),  # sample (learning mode "Blended")
    # "Presential": not in the sample; the same IRI in several ELM implementations' lists.
    "in_person": Concept("http://data.europa.eu/snb/learning-assessment/9191af2ed9",
                         MODE_SCHEME, "Presential"),
}
# Learning setting -> ELM `learningSetting`.
SETTINGS = {
    "non_formal": Concept("http://data.europa.eu/snb/learning-setting/e207a81fc7",
                          SETTING_SCHEME, "non-formal learning"),  # sample
    # Not in the sample; the list as an ELM implementation ships it (both concepts).
    "formal": Concept("http://data.europa.eu/snb/learning-setting/6fd4685715", SETTING_SCHEME,
                      "formal learning"),
}
# Supervision and identity verification -> ELM `idVerification`. Only the sample's concept
# could be checked; the other Annex I cases are the tool's own concepts until their EU IRIs
# are confirmed against the published list.
SUPERVISION = {
    "unsupervised_no_id": Concept(
        "http://data.europa.eu/snb/supervision-verification/c598449d64", SUPERVISION_SCHEME,
        "Unsupervised without ID Verification"),  # sample
    "supervised_no_id": Concept(VOCAB + "supervised-no-id", TOOL_SCHEME,
                                "Supervised without ID verification", eu_checked=False),
    "supervised_online_id": Concept(VOCAB + "supervised-online-id", TOOL_SCHEME,
                                    "Supervised online with ID verification", eu_checked=False),
    "supervised_onsite_id": Concept(VOCAB + "supervised-onsite-id", TOOL_SCHEME,
                                    "Supervised onsite with ID verification", eu_checked=False),
}
QF_EHEA = {
    "short": Concept(VOCAB + "qf-ehea-short-cycle", TOOL_SCHEME, "QF-EHEA short cycle",
                     eu_checked=False),
    "first": Concept(VOCAB + "qf-ehea-first-cycle", TOOL_SCHEME, "QF-EHEA first cycle",
                     eu_checked=False),
    "second": Concept(VOCAB + "qf-ehea-second-cycle", TOOL_SCHEME, "QF-EHEA second cycle",
                      eu_checked=False),
    "third": Concept(VOCAB + "qf-ehea-third-cycle", TOOL_SCHEME, "QF-EHEA third cycle",
                     eu_checked=False),
}
# ISO 639-1 (the plan's language) -> the EU language authority's code (ISO 639-2/B).
LANGUAGES = {"en": ("ENG", "English"), "tr": ("TUR", "Turkish"), "de": ("DEU", "German"),
             "fr": ("FRA", "French"), "es": ("SPA", "Spanish"), "it": ("ITA", "Italian"),
             "ar": ("ARA", "Arabic"), "ru": ("RUS", "Russian")}


def concept_by_iri(iri: str) -> tuple[str, str] | None:
    """(table name, code) of a concept IRI the tool uses, for showing codes as names."""
    for name, table in (("participation", MODES), ("learning_setting", SETTINGS),
                        ("supervision", SUPERVISION), ("qf_ehea_cycle", QF_EHEA)):
        for code, concept in table.items():
            if concept.iri == iri:
                return name, code
    return None
