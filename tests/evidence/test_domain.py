"""The pure chain rules: any single change to a sealed chain is found, and named."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from lti_tool.domain.evidence import (
    GENESIS_HASH,
    Checkpoint,
    Link,
    body_hash,
    canonical_json,
    check_chain,
    compact_ranges,
    content_hash,
    link_hash,
    statement_hash,
)


def signature_ok(_cp: Checkpoint) -> None:
    return None  # the signature rule is tested against real keys in test_tampering


def build(payloads: list[dict], seal_at: list[int]) -> tuple[list[Link], list[Checkpoint]]:
    links, prev = [], GENESIS_HASH
    for seq, payload in enumerate(payloads, start=1):
        text = canonical_json(payload)
        content = content_hash(text)
        digest = link_hash(prev, seq, body_hash("passed", seq % 3, 7, content))
        links.append(Link(seq * 10, seq, prev, digest, "passed", seq % 3, 7, content, text))
        prev = digest
    checkpoints, previous = [], GENESIS_HASH
    for number, seq in enumerate(seal_at, start=1):
        head = links[seq - 1].hash if seq else GENESIS_HASH
        statement = canonical_json({"type": "lti-tool/evidence-checkpoint", "number": number,
                                    "seq": seq, "head": head, "previous": previous, "kid": "k"})
        checkpoints.append(Checkpoint(number, number, seq, head, statement,
                                      statement_hash(statement), "jws", "k"))
        previous = statement_hash(statement)
    return links, checkpoints


chains = st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.lists(st.dictionaries(st.sampled_from("abc"), st.integers(0, 9)), min_size=n,
             max_size=n),
    st.lists(st.integers(1, n - 1), max_size=3).map(lambda s: sorted(set(s)) + [n])))


@hyp_settings(deadline=None)  # pure and fast; no deadline on a shared machine
@given(chains)
def test_a_sealed_chain_verifies(chain) -> None:
    links, checkpoints = build(*chain)
    report = check_chain(links, checkpoints, signature_ok)
    assert report.problem is None and report.records == len(links)


@hyp_settings(deadline=None)  # pure and fast; no deadline on a shared machine
@given(chains, st.data())
def test_any_edit_with_or_without_recomputed_hashes_is_found(chain, data) -> None:
    links, checkpoints = build(*chain)
    index = data.draw(st.integers(0, len(links) - 1))
    target = links[index]
    text = canonical_json({**json.loads(target.payload), "forged": True})
    edited = list(links)
    edited[index] = replace(target, payload=text)
    problem = check_chain(edited, checkpoints, signature_ok).problem
    assert problem is not None and (problem.what, problem.seq) == ("record", target.seq)
    # The attacker recomputes every hash from there on: the first checkpoint at or after the
    # edit no longer matches.
    prev = links[index - 1].hash if index else GENESIS_HASH
    for i in range(index, len(links)):
        link = edited[i]
        content = content_hash(link.payload)
        digest = link_hash(prev, link.seq, body_hash(link.event, link.person_id,
                                                     link.offering_id, content))
        edited[i] = replace(link, prev_hash=prev, content_hash=content, hash=digest)
        prev = digest
    problem = check_chain(edited, checkpoints, signature_ok).problem
    first = next(cp for cp in checkpoints if cp.seq >= target.seq)
    assert problem is not None and (problem.what, problem.id) == ("checkpoint", first.number)


@hyp_settings(deadline=None)  # pure and fast; no deadline on a shared machine
@given(chains, st.data())
def test_a_removed_or_moved_record_is_found(chain, data) -> None:
    links, checkpoints = build(*chain)
    index = data.draw(st.integers(0, len(links) - 2))
    removed = links[:index] + links[index + 1:]
    problem = check_chain(removed, checkpoints, signature_ok).problem
    assert problem is not None and problem.what == "record"
    swapped = list(links)
    swapped[index], swapped[index + 1] = replace(links[index + 1], seq=links[index].seq), \
        replace(links[index], seq=links[index + 1].seq)
    problem = check_chain(swapped, checkpoints, signature_ok).problem
    assert problem is not None and problem.seq == links[index].seq


@hyp_settings(deadline=None)  # pure and fast; no deadline on a shared machine
@given(chains, st.data())
def test_a_removed_checkpoint_is_a_gap(chain, data) -> None:
    links, checkpoints = build(*chain)
    if len(checkpoints) < 2:
        return
    index = data.draw(st.integers(0, len(checkpoints) - 2))
    problem = check_chain(links, checkpoints[:index] + checkpoints[index + 1:],
                          signature_ok).problem
    assert problem is not None and problem.what == "checkpoint"
    assert f"checkpoint #{index + 1} is missing" in problem.reason


def test_an_unsealed_end_is_reported() -> None:
    links, checkpoints = build([{"a": 1}, {"a": 2}, {"a": 3}], [2])
    problem = check_chain(links, checkpoints, signature_ok).problem
    assert problem is not None and problem.what == "unsealed"
    assert "records seq 3 to 3 are not covered by a signed checkpoint" in str(problem)


def test_a_bad_signature_is_reported() -> None:
    links, checkpoints = build([{"a": 1}], [1])
    problem = check_chain(links, checkpoints, lambda cp: "bad signature").problem
    assert problem is not None and str(problem) == "checkpoint #1 (seq 1): bad signature"


@hyp_settings(deadline=None)  # pure and fast; no deadline on a shared machine
@given(st.sets(st.integers(1, 60)))
def test_compact_ranges_cover_exactly_the_seqs(seqs) -> None:
    ranges = compact_ranges(seqs)
    assert {s for low, high in ranges for s in range(low, high + 1)} == seqs
    assert all(b[0] > a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))
