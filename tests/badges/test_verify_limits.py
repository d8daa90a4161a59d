"""POST /verify bounds the canonicalisation work an upload may cost (issue 11): a blank-node
clique whose proof names the institution's real key is refused with a 422 by the work
counter, never by a clock; honest credentials canonicalise exactly as before."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from lti_tool.badges import jsonld
from lti_tool.badges.verify import Verifier
from lti_tool.settings import Settings
from tests.badges.test_routes import _issued, _verify


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The time cap backs the work counter up; set far off here so that only the counter (a
    count, not a clock) decides, however loaded the machine."""
    return dataclasses.replace(settings, verify_timeout_seconds=3600)


POISON_CONTEXT = {"knows": {"@id": "urn:poison:knows", "@type": "@id"}}


def poisoned(document: dict, nodes: int) -> dict:
    """The signed credential plus a clique of `nodes` blank nodes, its proof left as issued."""
    bad = copy.deepcopy(document)
    bad["@context"] = [*bad["@context"], POISON_CONTEXT]
    bad["knows"] = [{"@id": f"_:n{i}", "knows": [f"_:n{j}" for j in range(nodes) if j != i]}
                    for i in range(nodes)]
    return bad


@pytest.mark.parametrize("nodes", [7, 8])
def test_a_blank_node_clique_is_refused_by_the_work_counter(world, client, nodes, monkeypatch):
    document = json.loads(_issued(world).document)
    proof = document["proof"][0] if isinstance(document["proof"], list) else document["proof"]
    assert proof["verificationMethod"].startswith(world.settings.url("/issuers/"))  # real key
    calls = []
    original = jsonld._BoundedURDNA2015.hash_n_degree_quads

    def counted(self, id_, issuer):
        calls.append(self.work)
        return original(self, id_, issuer)

    monkeypatch.setattr(jsonld._BoundedURDNA2015, "hash_n_degree_quads", counted)
    body = json.dumps(poisoned(document, nodes)).encode()
    reply = _verify(client, body, "application/json")
    assert reply.status_code == 422, reply.get_data(as_text=True)
    answer = reply.get_json()
    assert answer["error"] == "credential_too_complex"
    assert answer["details"] == {"limit": "work"}
    assert len(calls) == world.settings.verify_max_work + 1  # stopped at the cap, not later


def test_too_many_blank_nodes_or_statements_are_refused_before_hashing(world):
    document = json.loads(_issued(world).document)
    bad = copy.deepcopy(document)
    bad["@context"] = [*bad["@context"], POISON_CONTEXT]
    bad["knows"] = [{"@id": f"_:m{i}"} | {"knows": [f"_:m{i + 1}"]} for i in range(300)]
    with pytest.raises(jsonld.CanonicalizationRefused) as err:
        Verifier(world.db, world.settings).verify(bad, None, "json")
    assert err.value.limit in ("blank_nodes", "quads")


def test_bounded_canonicalisation_is_the_same_rdfc_output(world):
    document = json.loads(_issued(world).document)
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    loader = jsonld.loader_for(world.settings.base_url)
    bounded = jsonld.canonicalize(unsigned, loader, jsonld.CanonicalizationLimits())
    assert bounded == jsonld.canonicalize_plain(unsigned, loader)
    assert bounded == jsonld.canonicalize(unsigned, loader)


def test_an_honest_credential_still_verifies(world, client):
    reply = _verify(client, _issued(world).document.encode(), "application/json")
    assert reply.status_code == 200
    checks = {c["name"]: c["passed"] for c in reply.get_json()["checks"]}
    assert checks["proof"] is True
