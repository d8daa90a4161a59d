"""Benchmark: credentials built, signed and stored per second per proof format, verification
per second, next to the bare Ed25519 signing rate measured in the same run; pyld against
pyoxigraph for RDFC-1.0 canonicalization, with and without pyld's processed-context cache.

    python bench/issue.py [--n 200] [--rounds 5]

A SQLite file, or the PostgreSQL that LTI_TOOL_BENCH_DATABASE_URL names (its tables are dropped
and re-created). Prints a table; never fails on timings.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jwcrypto import jws
from pyld import jsonld as pyld_jsonld

import lti_tool.store.models  # noqa: F401
from lti_tool.badges import builder, dataintegrity, fastcanon, issuance, jsonld, statuslist, vcjwt
from lti_tool.badges.facts import achievement_facts, recipient_facts
from lti_tool.badges.signing import Signer, ed25519_resolver, issuer_facts, jwk_resolver
from lti_tool.badges.status import list_url, open_list
from lti_tool.badges.verify import Verifier
from lti_tool.settings import load_settings
from lti_tool.store.db import Base, make_engine, make_session_factory, utcnow
from lti_tool.store.models.badges import Credential
from lti_tool.store.models.catalogue import (
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
)
from lti_tool.store.models.core import Institution, Person, Platform

LEVELS = [{"code": "b", "label": "Beginning", "lower_bound": "0"},
          {"code": "d", "label": "Developing", "lower_bound": "50"},
          {"code": "p", "label": "Proficient", "lower_bound": "70"},
          {"code": "e", "label": "Exemplary", "lower_bound": "90"}]


ROUNDS = 5
Job = tuple[str, int, Callable[[int], object]]


def measure(jobs: list[Job], rounds: int = ROUNDS) -> list[tuple[str, float, float]]:
    """Run the jobs interleaved in rounds; per job, the median per-operation time of its rounds.

    On a shared machine the load drifts; interleaving gives every job the same drift, so the
    ratios between rows (the point of this table) hold even when absolute rates wander.
    """
    for _label, _n, work in jobs:
        work(0)  # warm-up (keys, contexts, caches)
    per_op: dict[str, list[float]] = {label: [] for label, _n, _w in jobs}
    for _round in range(rounds):
        for label, n, work in jobs:
            count = max(1, n // rounds)
            start = time.perf_counter()
            for i in range(count):
                work(i + 1)
            per_op[label].append((time.perf_counter() - start) / count)
    rows = []
    for label, _n, _w in jobs:
        seconds = statistics.median(per_op[label])
        rows.append((label, 1 / seconds, 1000 * seconds))
    return rows


def seed(db, n: int):
    platform = Platform(institution_id=_bench_institution(db).id, status="active",
                        issuer="https://lms.example", client_id="bench",
                        auth_login_url="https://lms.example/a", auth_token_url="https://lms.example/t")
    db.add(platform)
    db.flush()
    mc = MicroCredential(platform_id=platform.id, institution_id=db.get(Platform,
                         platform.id).institution_id, code="BENCH-1")
    version = MicroCredentialVersion(
        # The mandatory EU micro-credential (Annex I) elements a credential states.
        participation_form="online", quality_assurance="Annual review by the Office",
        platform_id=platform.id, institution_id=mc.institution_id, micro_credential=mc, version=1,
        status="approved",
        title="Benchmark micro-credential", description="Four outcomes, four levels each.",
        kind="course", language="en", tqf_level=5, eqf_level=5, workload_hours=Decimal(28),
        ects=Decimal(1), assessment_methods=["Project"], teaching_methods=["Online"])
    for index in range(4):
        version.outcomes.append(LearningOutcome(
            platform_id=platform.id, position=index, code=f"LO{index + 1}",
            statement=f"Outcome {index + 1}.", domain="skill", levels=LEVELS, threshold="p"))
    db.add(version)
    people = [Person(platform_id=platform.id, sub=f"s{i}", name=f"Learner {i}",
                     email=f"l{i}@example.edu") for i in range(n * 4 + 8)]
    db.add_all(people)
    db.flush()
    return version, people


VECTOR = Path(__file__).resolve().parents[2] / "shared/spec/openbadges/test-vectors" \
    / "eddsa-rdfc-2022-ob3.json"


def oxigraph_only(document: dict, loader: jsonld.StaticLoader) -> str:
    """Canonical N-Quads with pyoxigraph alone: it loads no remote contexts, so inline them."""
    import pyoxigraph as ox

    inlined = {**document, "@context": [loader(url)["document"]["@context"]
                                        for url in document["@context"]]}
    dataset = ox.Dataset(ox.parse(json.dumps(inlined), format=ox.RdfFormat.JSON_LD))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return "".join(sorted(f"{quad} .\n" for quad in dataset))


NODE_DIR = Path(__file__).resolve().parents[1] / "tests" / "node"
CONTEXTS = Path(__file__).resolve().parents[2] / "shared/spec/openbadges/contexts"


def node_verify_ms(settings, signed: dict, n: int) -> float | None:
    """ms per eddsa-rdfc-2022 verification by @digitalbazaar/vc (tests/node/verify.mjs).

    The documents the verifier dereferences (issuer profile with the key, status list, the
    tool's extension context) come from the tool's own routes, as in test_node_verifiers. Two
    runs, 1 and n+1 copies of the credential; the difference excludes Node's start-up.
    """
    import shutil
    import subprocess

    if shutil.which("node") is None or not (NODE_DIR / "node_modules").is_dir():
        return None
    from lti_tool.runtime import build_runtime
    from lti_tool.web import create_app

    client = create_app(runtime=build_runtime(settings)).test_client()
    base = settings.base_url
    urls = {signed["issuer"]["id"], signed["credentialStatus"]["statusListCredential"],
            jsonld.extension_url(base)}
    documents = {url: json.loads(client.get(url.replace(base, "")).get_data(as_text=True))
                 for url in urls}
    # the stable extension context (not served under the deployment's URL): the shipped copy
    documents[jsonld.EXTENSION_V2] = jsonld.extension_v2_context()

    def run(copies: int) -> float:
        bundle = {"documents": documents, "contextDir": str(CONTEXTS), "jwksUrl": "",
                  "cases": [{"name": f"c{i}", "kind": "di", "credential": signed}
                            for i in range(copies)]}
        path = Path(settings.data_dir) / "node-bundle.json"
        path.write_text(json.dumps(bundle))
        started = time.perf_counter()
        done = subprocess.run(["node", "verify.mjs", str(path)], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        results = json.loads(done.stdout)
        if not all(r["verified"] for r in results):
            raise SystemExit(f"the Node verifier rejected the credential: {results[0]}")
        return elapsed

    one = min(run(1) for _ in range(2))
    many = min(run(n + 1) for _ in range(2))
    return (many - one) / n * 1000


def statements_per_call(engine, work: Callable[[int], object]) -> int:
    """SQL statements one call of `work` sends, warm (before_cursor_execute; a commit is not
    one)."""
    from sqlalchemy import event

    count = [0]

    def counted(*_args) -> None:
        count[0] += 1

    work(0)  # warm: keys parsed and cached, list cached
    event.listen(engine, "before_cursor_execute", counted)
    try:
        work(0)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count[0]


def cpu_ms_per_op(work: Callable[[int], object], count: int) -> float:
    """Median process CPU time of `work` (ms): what it costs here, whatever else runs."""
    times = []
    for i in range(count):
        start = time.process_time()
        work(i)
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="interleaved rounds (more steady the median on a busy machine)")
    arguments = parser.parse_args()
    n, rounds = arguments.n, arguments.rounds
    workdir = Path(tempfile.mkdtemp(prefix="lti-bench-"))
    url = os.environ.get("LTI_TOOL_BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.db'}"
    settings = load_settings(overrides={"database_url": url,
                                        "data_dir": str(workdir), "testing": True}, environ={})
    engine = make_engine(settings.database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    print(f"database: {engine.dialect.name}")
    db = make_session_factory(engine)()
    version, people = seed(db, n)
    institution = db.get(Institution, version.institution_id)
    signer = Signer.load(db, settings, institution)
    status_list = open_list(db, settings, signer)
    db.commit()
    loader = jsonld.loader_for(settings.base_url)
    facts, issuer = achievement_facts(db, version), issuer_facts(settings, institution)
    image = issuance.default_image(settings, version.id)
    next_person = iter(people)

    def unsigned() -> dict:
        award = builder.AwardFacts(
            credential_id=settings.url(f"/credentials/{uuid.uuid4()}"),
            subject_id=f"urn:uuid:{uuid.uuid4()}", issued_at=utcnow(),
            passed_at=datetime(2026, 1, 1, tzinfo=UTC),
            outcome_levels={"LO1": "e", "LO2": "p", "LO3": "p", "LO4": "e"},
            salt=secrets.token_hex(8), status_entry=statuslist.entry(
                list_url(settings, status_list.public_id), statuslist.random_index()))
        return builder.credential(facts, issuer, recipient_facts(people[0]), award,
                                  settings.base_url, image)

    taken: set[int] = set()

    def free_index() -> int:
        """A random index not yet used, by `store` or `issue_on_pass` (which itself retries on
        the constraint instead)."""
        index = statuslist.random_index()
        while index in taken:
            index = statuslist.random_index()
        taken.add(index)
        return index

    def store(document: dict | None, token: str) -> None:
        person = next(next_person)
        db.add(Credential(public_id=str(uuid.uuid4()), platform_id=version.platform_id,
                          person_id=person.id, mc_version_id=version.id, passed_at=utcnow(),
                          status_list_id=status_list.id,
                          status_index=free_index(),
                          document=json.dumps(document) if document else "", jwt=token))
        db.commit()

    message = secrets.token_bytes(64)

    def bare_rs256(_i: int) -> str:
        token = jws.JWS(message)
        token.add_signature(signer.jwt_key, alg="RS256", protected={"alg": "RS256"})
        return token.serialize(compact=True)

    rsa_private = signer.jwt_key.get_op_key("sign")

    def bare_rs256_direct(_i: int) -> bytes:
        return rsa_private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    sample = unsigned()
    assert oxigraph_only(sample, loader) == jsonld.canonicalize(sample, loader)
    assert jsonld.canonicalize_oxigraph(sample, loader) == jsonld.canonicalize(sample, loader)
    assert jsonld.canonicalize_plain(sample, loader) == jsonld.canonicalize(sample, loader)
    # the fast path itself (not its pyld fallback) gives the same bytes
    assert fastcanon.canonical_nquads(fastcanon.to_quads(sample, loader)) \
        == jsonld.canonicalize_plain(sample, loader)

    def cold(_i: int) -> str:
        pyld_jsonld._resolved_context_cache.clear()
        return jsonld.canonicalize_plain(sample, loader)

    def sign_with(canonicalize) -> Callable[[int], dict]:
        def run(_i: int) -> dict:
            return dataintegrity.sign(sample, signer.ed25519, verification_method=signer.method,
                                      created="2026-01-01T00:00:00Z", loader=loader,
                                      canonicalize=canonicalize)
        return run

    def cold_plain(document: dict, loader_: jsonld.DocumentLoader) -> str:
        pyld_jsonld._resolved_context_cache.clear()
        return jsonld.canonicalize_plain(document, loader_)

    def full(_i: int) -> None:
        issued = issuance.issue_on_pass(
            db, settings, person_id=next(next_person).id, mc_version_id=version.id,
            offering_id=None, outcome_levels={"LO1": "e", "LO2": "p", "LO3": "p", "LO4": "e"},
            passed_at=utcnow())
        db.commit()
        if issued is not None:
            taken.add(issued.status_index)  # so that `store` does not draw it

    signed = signer.data_integrity(unsigned())
    token = signer.jwt(signed)
    resolve_ed = ed25519_resolver(db, settings, institution)
    resolve_jwk = jwk_resolver(db, settings, institution)
    verifier = Verifier(db, settings)
    vector = json.loads(VECTOR.read_text()) if VECTOR.is_file() else None
    jobs: list[Job] = [
        ("bare Ed25519 signature (64 bytes)", n * 20, lambda _i: signer.ed25519.sign(message)),
        ("bare RS256 signature (jwcrypto, the VC-JWT key)", n * 2, bare_rs256),
        ("bare RS256 signature (cryptography alone, same key)", n * 2, bare_rs256_direct),
        ("RDFC-1.0 canonicalization, pyld, no context cache", max(n // 4, rounds), cold),
        ("RDFC-1.0 canonicalization, pyld as shipped (contexts cached by URL)", n,
         lambda _i: jsonld.canonicalize_plain(sample, loader)),
        ("RDFC-1.0 canonicalization, pyld + type-scoped context cache (used)", n,
         lambda _i: jsonld.canonicalize(sample, loader)),
        ("RDFC-1.0 canonicalization, fastcanon (used)", n,
         lambda _i: fastcanon.canonicalize(sample, loader)),
        ("eddsa-rdfc-2022 sign, plain pyld (no context cache)", max(n // 4, rounds),
         sign_with(cold_plain)),
        ("eddsa-rdfc-2022 sign, pyld + caches (before)", n, sign_with(jsonld.canonicalize)),
        ("eddsa-rdfc-2022 sign, fastcanon (used)", n, sign_with(fastcanon.canonicalize)),
        ("  of which JSON-LD to RDF (no canonicalization)", n,
         lambda _i: jsonld.to_nquads(sample, loader)),
        ("RDFC-1.0, JSON-LD to RDF as used + pyoxigraph canonicalization", n,
         lambda _i: jsonld.canonicalize_oxigraph(sample, loader)),
        ("RDFC-1.0, pyoxigraph JSON-LD parser (contexts inlined) + RDFC", n,
         lambda _i: oxigraph_only(sample, loader)),
        ("issue: build + eddsa-rdfc-2022 + store", n,
         lambda _i: store(signer.data_integrity(unsigned()), "")),
        ("issue: build + VC-JWT RS256 + store", n, lambda _i: store(None, signer.jwt(unsigned()))),
        ("issue_on_pass: both proofs, status index, store", n, full),
        ("verify eddsa-rdfc-2022 proof", n,
         lambda _i: dataintegrity.verify(signed, resolve_ed, loader, verifier.canonicalize)),
        ("verify eddsa-rdfc-2022 proof, pyld + caches (before)", n,
         lambda _i: dataintegrity.verify(signed, resolve_ed, loader)),
        ("verify VC-JWT RS256 + OB 3.0 claims", n, lambda _i: vcjwt.verify(token, resolve_jwk)),
        ("full /verify report of a JWT (schema, both proofs, dates, status)", n,
         lambda _i: verifier.verify_bytes(token.encode())),
    ]
    labels = [label for label, _n, _w in jobs]
    if vector is not None:
        options = vector["proofOptions"]
        jobs.append(("eddsa-rdfc-2022 sign of 1EdTech's small vector credential", n,
                     lambda _i: dataintegrity.sign(
                         vector["unsignedCredential"], signer.ed25519, loader=loader,
                         verification_method=options["verificationMethod"],
                         created=options["created"])))
    statements = statements_per_call(engine, full)
    cpu_ms = cpu_ms_per_op(full, max(n // 5, 10))
    verify_di = jobs[labels.index("verify eddsa-rdfc-2022 proof")][2]
    verify_jwt = jobs[labels.index("verify VC-JWT RS256 + OB 3.0 claims")][2]
    verify_statements = (statements_per_call(engine, verify_di),
                         statements_per_call(engine, verify_jwt))
    verify_cpu = (cpu_ms_per_op(verify_di, n), cpu_ms_per_op(verify_jwt, n))
    rows = measure(jobs, rounds)
    ed_rate = rows[0][1]
    width = max(len(label) for label, _r, _m in rows)
    print(f"{'measurement':<{width}}  {'per second':>11}  {'ms each':>8}  {'x Ed25519':>9}")
    for label, per_second, ms in rows:
        print(f"{label:<{width}}  {per_second:>11.1f}  {ms:>8.3f}  {ed_rate / per_second:>9.0f}")
    ms = {label: each for label, _r, each in rows}
    node_ms = node_verify_ms(settings, signed, max(n // 4, 20))
    plain_ms = ms["RDFC-1.0 canonicalization, pyld, no context cache"]
    print("\nIssue 19 rows, against the reference measured in this run:")
    print(f"{'row':<44} {'ours ms':>8} {'ref ms':>8} {'ratio':>8}  goal")
    ratios = [
        ("eddsa-rdfc-2022 signing vs signing w/ plain pyld",
         ms["eddsa-rdfc-2022 sign, fastcanon (used)"],
         ms["eddsa-rdfc-2022 sign, plain pyld (no context cache)"], ">= 5x faster"),
        ("issue (build+DI sign+store) vs plain pyld canon.",
         ms["issue: build + eddsa-rdfc-2022 + store"], plain_ms, ">= 5x faster"),
        ("VC-JWT RS256 issue vs bare RS256 signing", ms["issue: build + VC-JWT RS256 + store"],
         ms["bare RS256 signature (jwcrypto, the VC-JWT key)"], ">= 25 % of the bare rate"),
        ("  same vs bare RS256, cryptography alone", ms["issue: build + VC-JWT RS256 + store"],
         ms["bare RS256 signature (cryptography alone, same key)"], "(stricter floor)"),
    ]
    ratios.append(("issue_on_pass (both proofs) vs goal 200/s",
                   ms["issue_on_pass: both proofs, status index, store"], 5.0, ">= 200/s (5 ms)"))
    if node_ms is not None:
        ratios.append(("verify eddsa-rdfc-2022 vs @digitalbazaar/vc",
                       ms["verify eddsa-rdfc-2022 proof"], node_ms, "faster than Node"))
    for label, ours, ref, goal in ratios:
        print(f"{label:<44} {ours:>8.3f} {ref:>8.3f} {ref / ours:>7.2f}x  {goal}")
    print("(ratio = reference time / our time: above 1 means ours is faster; for VC-JWT the "
          "ratio is our rate as a share of the bare signing rate)")
    if node_ms is None:
        print("(Node verifier skipped: run `npm ci` in tests/node)")
    outcomes = len(sample["credentialSubject"]["achievement"]["resultDescription"])
    quads = jsonld.canonicalize(sample, loader).count("\n")
    print(f"({engine.dialect.name}: issue_on_pass runs {statements} SQL statements, then the "
          f"commit; it takes {cpu_ms:.2f} ms of this process's CPU time, the database server's "
          "not counted: on a shared machine, less load-dependent than its wall time)")
    print(f"({engine.dialect.name}: a verification sends {verify_statements[0]} (eddsa-rdfc-2022) "
          f"/ {verify_statements[1]} (VC-JWT) SQL statements to resolve its key and takes "
          f"{verify_cpu[0]:.2f} / {verify_cpu[1]:.2f} ms of this process's CPU time)")
    print(f"(median of {rounds} interleaved rounds; {outcomes} outcomes with 4 rubric levels, "
          f"{quads} quads per credential)")
    db.close()
    engine.dispose()


def _bench_institution(db):
    """The benchmark's institution (created once per database)."""
    from lti_tool.store.institutions import InstitutionSpec, create_institution, find_institution

    return find_institution(db, "bench") or create_institution(
        db, InstitutionSpec(slug="bench", name="Bench University", country="TR"))


if __name__ == "__main__":
    main()

