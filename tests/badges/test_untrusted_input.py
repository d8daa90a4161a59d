"""Property tests for the parsers of untrusted input: baked images and POST /verify.

Whatever bytes arrive, the answer is a clear 4xx or a report with failed checks, never a 500,
and extraction either returns the baked text or raises BakingError.
"""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from lti_tool.badges import baking, images
from lti_tool.badges.verify import Verifier

MEDAL = images.medal_png("hypothesis", 16)
SVG = images.medal_svg("hypothesis", "Title", "CODE")
SLOW = hyp_settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
texts = st.text(min_size=1, max_size=300).filter(lambda t: t.strip())


@hyp_settings(max_examples=80, deadline=None)
@given(texts)
def test_png_round_trip_of_any_text(text: str) -> None:
    assert baking.extract_png(baking.bake_png(MEDAL, text)) == text


@hyp_settings(max_examples=80, deadline=None)
@given(texts, st.booleans())
def test_svg_round_trip_of_any_text(text: str, is_jwt: bool) -> None:
    baked = baking.bake_svg(SVG, text, is_jwt=is_jwt)
    assert baking.extract_svg(baked) == text
    assert baking.extract_svg(baking.bake_svg(baked, "second", is_jwt=False)) == "second"


@hyp_settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_png_extraction_of_damaged_bytes_fails_cleanly(tail: bytes) -> None:
    for data in (baking.PNG_SIGNATURE + tail, MEDAL[:len(tail)] + tail):
        with contextlib.suppress(baking.BakingError):
            baking.extract_png(data)


@hyp_settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_svg_extraction_of_any_text_fails_cleanly(noise: str) -> None:
    for data in (noise, f"<svg>{noise}</svg>",
                 f'<svg xmlns:openbadges="{baking.SVG_NAMESPACE}"><openbadges:credential'
                 f"{noise}"):
        with contextlib.suppress(baking.BakingError):
            baking.extract_svg(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=4),
    max_leaves=20)
credential_like = st.fixed_dictionaries({
    "@context": st.one_of(st.just(["https://www.w3.org/ns/credentials/v2",
                                   "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]),
                          json_values),
    "type": json_values, "issuer": json_values, "validFrom": json_values,
    "validUntil": json_values, "credentialSubject": json_values, "proof": json_values,
    "credentialStatus": json_values,
})


@SLOW
@given(st.one_of(st.binary(max_size=300), credential_like.map(lambda d: json.dumps(d).encode())))
def test_post_verify_never_fails_with_a_server_error(client, body: bytes) -> None:
    reply = client.post("/verify", data=body, content_type="application/octet-stream",
                        headers={"Accept": "application/json"})
    assert reply.status_code in (200, 400), reply.get_data(as_text=True)[:300]
    payload = reply.get_json()
    if reply.status_code == 200:
        assert payload["valid"] is False
        assert all(c["passed"] in (True, False, None) for c in payload["checks"])
    else:
        assert payload["message"]


@SLOW
@given(credential_like)
def test_verifier_reports_failed_checks_for_any_credential_shape(db, settings, doc) -> None:
    report = Verifier(db, settings).verify(doc, None, "json")
    assert not report.valid
    assert report.to_dict()["checks"]


def _leaves(value, path=()):
    """Every (path, leaf) of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


@SLOW
@given(data=st.data())
def test_no_single_changed_field_verifies(world, data) -> None:
    """Change any one value of a real credential: the tool's own verifier must refuse it."""
    from tests.badges.conftest import PASSED_AT

    if not hasattr(world, "issued"):
        from lti_tool.badges import issuance

        person, version = world.person(), world.micro_credential()
        world.issued = issuance.issue_on_pass(
            world.db, world.settings, person_id=person.id, mc_version_id=version.id,
            offering_id=None, outcome_levels={"LO1": "proficient", "LO2": "exemplary"},
            passed_at=PASSED_AT)
    document = json.loads(world.issued.document)
    leaves = [(p, v) for p, v in _leaves(document) if p[0] not in ("@context",)]
    path, old = data.draw(st.sampled_from(leaves))
    new = data.draw(st.one_of(st.text(max_size=12), st.integers(), st.booleans())
                    .filter(lambda v: v != old))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    report = Verifier(world.db, world.settings).verify(document, None, "json")
    assert not report.valid, (path, old, new)
