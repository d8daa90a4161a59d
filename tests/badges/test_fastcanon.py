"""The fast canonicaliser (lti_tool.badges.fastcanon) gives pyld's canonical N-Quads byte for
byte: on generated credentials of every shape the builder makes (names, unicode, optional and
EU elements, evidence, several results, co-awarding bodies, status entries), on the proof
options, on status list credentials, on 1EdTech's official vector, and (its RDFC-1.0 step) on
generated blank-node graphs against pyld's URDNA2015. Anything else goes to pyld."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld as pyld

from lti_tool.badges import builder, dataintegrity, fastcanon, jsonld, statuslist, vocabularies
from lti_tool.badges.builder import (
    AchievementFacts,
    AwardFacts,
    BodyFacts,
    IssuerFacts,
    LevelFacts,
    OutcomeFacts,
    RecipientFacts,
)
from lti_tool.domain.catalogue import OVERALL_RESULTS
from tests.badges.samples import AWARD, BASE, FACTS, ISSUER, RECIPIENT
from tests.conftest import SPEC

LOADER = jsonld.loader_for(BASE)
VECTOR = json.loads((SPEC / "openbadges/test-vectors/eddsa-rdfc-2022-ob3.json").read_text())

# Text as people type it: any letters, marks, digits, punctuation, spaces, newlines, tabs,
# quotes and backslashes (no lone surrogates: JSON cannot carry them).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    str.strip)
SHORT = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=8)


def fast(document: dict) -> str:
    """The fast path itself (no fallback), so a test cannot pass by falling back to pyld."""
    return fastcanon.canonical_nquads(fastcanon.to_quads(document, LOADER))


def plain(document: dict) -> str:
    return jsonld.canonicalize_plain(document, LOADER)


@st.composite
def levels(draw) -> tuple[LevelFacts, ...]:
    codes = draw(st.lists(SHORT, min_size=1, max_size=4, unique=True))
    # labels repeat across outcomes (the same scale) or not: both shapes happen
    labels = draw(st.sampled_from(["scale", "own"]))
    return tuple(LevelFacts(code, code.title() if labels == "scale" else draw(TEXT),
                            Decimal(25 * index), draw(st.sampled_from(["", "Meets it"])))
                 for index, code in enumerate(codes))


@st.composite
def outcomes(draw) -> tuple[OutcomeFacts, ...]:
    shared = draw(levels())
    found = []
    for index in range(draw(st.integers(1, 4))):
        scale = shared if draw(st.booleans()) else draw(levels())
        found.append(OutcomeFacts(
            code=f"LO{index + 1}", statement=draw(TEXT), levels=scale,
            threshold=draw(st.sampled_from([level.code for level in scale])),
            domain=draw(st.sampled_from(["knowledge", "skill", "competence"])),
            required=draw(st.booleans())))
    return tuple(found)


def optional(strategy):
    return st.one_of(st.just(""), strategy)


@st.composite
def achievement_facts(draw) -> AchievementFacts:
    return AchievementFacts(
        key=draw(SHORT), code=draw(SHORT), version=draw(st.integers(1, 50)),
        title=draw(TEXT), description=draw(optional(TEXT)),
        language=draw(st.sampled_from(["en", "tr", "de"])),
        eqf_level=draw(st.integers(1, 8)), tqf_level=draw(st.integers(1, 8)),
        workload_hours=draw(st.decimals(1, 900, places=1)), outcomes=draw(outcomes()),
        ects=draw(st.one_of(st.none(), st.decimals(0, 60, places=2))),
        field_of_study=draw(optional(TEXT)),
        isced_f_code=draw(optional(st.sampled_from(["0542", "0688", "003"]))),
        assessment_methods=tuple(draw(st.lists(TEXT, min_size=1, max_size=3))),
        participation_form=draw(st.sampled_from(sorted(vocabularies.MODES))),
        quality_assurance=draw(TEXT), stackability=draw(optional(TEXT)),
        image_url=draw(optional(st.just("https://img.example.edu/badge.png"))),
        pathway_of=tuple(draw(st.lists(TEXT, max_size=2))),
        recognition=draw(optional(TEXT)), prerequisites=draw(optional(TEXT)),
        supervision=draw(optional(st.sampled_from(sorted(vocabularies.SUPERVISION)))),
        qf_ehea_cycle=draw(optional(st.sampled_from(sorted(vocabularies.QF_EHEA)))),
        learning_setting=draw(optional(st.sampled_from(sorted(vocabularies.SETTINGS)))),
        region=draw(optional(TEXT)),
        co_awarding_bodies=tuple(draw(st.lists(st.builds(
            BodyFacts, name=TEXT, country=st.sampled_from(["DE", "TR", "FR"]),
            legal_identifier=SHORT, url=optional(st.just("https://partner.example.eu"))),
            max_size=2))),
        further_information=draw(optional(TEXT)),
        overall_result=draw(optional(st.sampled_from(OVERALL_RESULTS))))


@st.composite
def credentials(draw) -> dict:
    facts = draw(achievement_facts())
    issuer = IssuerFacts(
        id=f"{BASE}/issuers/{draw(SHORT)}", name=draw(TEXT), url="https://www.example.edu",
        country=draw(st.sampled_from(["TR", "DE"])), email=draw(optional(st.emails())),
        image_url=draw(optional(st.just("https://www.example.edu/logo.png"))),
        region=draw(optional(TEXT)), legal_identifier=draw(optional(SHORT)))
    recipient = RecipientFacts(name=draw(optional(TEXT)), email=draw(optional(st.emails())),
                               sourced_id=draw(optional(SHORT)))
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**8)))
    levels_reached = {o.code: draw(st.sampled_from([level.code for level in o.levels] + [""]))
                      for o in facts.outcomes}
    award = AwardFacts(
        credential_id=f"{BASE}/credentials/{draw(SHORT)}", subject_id=f"urn:uuid:{draw(SHORT)}",
        issued_at=moment, passed_at=moment - timedelta(days=1), outcome_levels=levels_reached,
        salt=draw(SHORT),
        valid_until=draw(st.one_of(st.none(), st.just(moment + timedelta(days=900)))),
        status_entry=draw(st.one_of(st.none(), st.builds(
            statuslist.entry, st.just(f"{BASE}/status/1"), st.integers(0, 131071)))),
        evidence_narrative=draw(optional(TEXT)), via_pathway=draw(st.booleans()))
    return builder.credential(facts, issuer, recipient, award, BASE, f"{BASE}/static/mc.png")


CHECKS = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@CHECKS
@given(credentials())
def test_generated_credentials_canonicalise_exactly_as_pyld(document):
    assert fastcanon.is_own_shape(document)
    assert fast(document) == plain(document)


@CHECKS
@given(credentials(), st.sampled_from(["2026-01-01T00:00:00Z", "2030-12-31T23:59:59Z"]))
def test_proof_options_canonicalise_exactly_as_pyld(document, created):
    options = dataintegrity.proof_options(f"{BASE}/issuers/x#z6MkTest", created)
    options["@context"] = document["@context"]
    assert fast(options) == plain(options)


def test_the_sample_credential_and_its_achievement_document():
    document = builder.credential(FACTS, ISSUER, RECIPIENT, AWARD, BASE, f"{BASE}/i.png")
    assert fast(document) == plain(document)
    achievement = builder.achievement_document(FACTS, ISSUER, BASE, f"{BASE}/i.png")
    assert fast(achievement) == plain(achievement)


def test_status_list_credentials():
    document = statuslist.list_credential(f"{BASE}/status/1", f"{BASE}/issuers/x",
                                          statuslist.empty_bits(), "2026-01-01T00:00:00Z")
    assert fastcanon.is_own_shape(document)
    assert fast(document) == plain(document)


def test_official_vector_both_canonical_forms_and_the_proof_value():
    expected = VECTOR["expected"]
    unsigned = VECTOR["unsignedCredential"]
    options = {**VECTOR["proofOptions"], "@context": unsigned["@context"]}
    options.pop("proofValue", None)
    assert fast(unsigned) == expected["documentCanonical"]
    assert fast(options) == expected["proofCanonical"]
    key = jsonld_vector_key()
    signed = dataintegrity.sign(
        unsigned, key, verification_method=VECTOR["proofOptions"]["verificationMethod"],
        created=VECTOR["proofOptions"]["created"], loader=LOADER,
        canonicalize=lambda doc, loader: fast(doc))
    assert signed["proof"][-1]["proofValue"] == expected["proofValue"]
    data = dataintegrity.hash_data(unsigned, VECTOR["proofOptions"], LOADER,
                                   lambda doc, loader: fast(doc))
    assert data.document_hash.hex() == expected["documentHashHex"]
    assert data.proof_hash.hex() == expected["proofHashHex"]


def jsonld_vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["key"]["privateKeySeedHex"]))


def test_an_undefined_property_still_raises_pyld_safe_mode_error():
    document = builder.credential(FACTS, ISSUER, RECIPIENT, AWARD, BASE, f"{BASE}/i.png")
    document["credentialSubject"]["favouriteColour"] = "blue"
    with pytest.raises(fastcanon.Unsupported):
        fastcanon.to_quads(document, LOADER)
    with pytest.raises(jsonld.DroppedProperty):
        fastcanon.canonicalize(document, LOADER)


def test_foreign_shapes_go_to_pyld(monkeypatch):
    calls = []
    original = jsonld.canonicalize

    def spy(document, loader, limits=None):
        calls.append(document)
        return original(document, loader, limits)

    monkeypatch.setattr(jsonld, "canonicalize", spy)
    foreign = VECTOR["unsignedCredential"]  # another issuer's context list
    assert not fastcanon.is_own_shape(foreign)
    assert fastcanon.canonicalize(foreign, LOADER) == VECTOR["expected"]["documentCanonical"]
    own = builder.credential(FACTS, ISSUER, RECIPIENT, AWARD, BASE, f"{BASE}/i.png")
    embedded = {**own, "credentialSubject": {**own["credentialSubject"],
                                             "@context": {"x": "urn:x"}}}
    assert fastcanon.canonicalize(embedded, LOADER) == plain(embedded)
    assert fastcanon.canonicalize(own, LOADER) == plain(own)
    assert calls == [foreign, embedded]  # the own shape never reached pyld


def test_the_limits_apply_to_the_fast_path_too():
    document = builder.credential(FACTS, ISSUER, RECIPIENT, AWARD, BASE, f"{BASE}/i.png")
    small = jsonld.CanonicalizationLimits(max_quads=20)
    with pytest.raises(jsonld.CanonicalizationRefused) as err:
        fastcanon.canonicalize(document, LOADER, small)
    assert err.value.limit == "quads"
    bounded = jsonld.CanonicalizationLimits()
    assert fastcanon.canonicalize(document, LOADER, bounded) == plain(document)


def test_edits_that_change_meaning_change_the_canonical_form():
    document = builder.credential(FACTS, ISSUER, RECIPIENT, AWARD, BASE, f"{BASE}/i.png")
    changed = replace(FACTS, title=FACTS.title + "!")
    other = builder.credential(changed, ISSUER, RECIPIENT, AWARD, BASE, f"{BASE}/i.png")
    assert fast(document) != fast(other)


# --- RDFC-1.0 alone, against pyld's URDNA2015, on graphs built to have alike blank nodes ---

@st.composite
def blank_graphs(draw) -> set[tuple[str, str, str]]:
    nodes = [f"_:n{i}" for i in range(draw(st.integers(1, 7)))]
    predicates = ["<urn:p:knows>", "<urn:p:likes>"]
    objects = st.one_of(st.sampled_from(nodes), st.sampled_from(['"a"', '"b"', "<urn:x>"]))
    return set(draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(predicates),
                                       objects), min_size=1, max_size=16)))


@settings(max_examples=300, deadline=None)
@given(blank_graphs())
def test_rdfc_equals_pyld_urdna2015_on_graphs_with_alike_blank_nodes(quads):
    text = "".join(f"{s} {p} {o} .\n" for s, p, o in sorted(quads))
    expected = pyld.normalize(text, {"algorithm": "URDNA2015",
                                     "inputFormat": "application/n-quads",
                                     "format": "application/n-quads"})
    assert fastcanon.canonical_nquads(quads) == expected
