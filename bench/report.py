"""Benchmark: the Annual Quality Assurance Report of a big year.

    python bench/report.py [--mcs 50] [--offerings 200] [--learners 20000] [--pdf]

A SQLite file (or the PostgreSQL that LTI_TOOL_BENCH_DATABASE_URL names; its tables are
dropped and re-created) with one calendar year and the year before: `--mcs` micro-credentials,
`--offerings` offerings in each year, `--learners` learners each year spread over them, with
decisions in every status, credentials (accepted, shared, revoked), satisfaction answers,
follow-ups and stakeholder feedback. Measures `build_report` (both years' figures, suppression,
year-on-year) and each rendering, against references measured in the same run on the same rows:
a bare `SELECT count(*)` over the decisions, and fetching every decision row with its outcomes.
Prints a table; never fails on timings.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

import lti_tool.store.models  # noqa: F401
from lti_tool.reports.render import render_csv, render_html, render_json, render_pdf
from lti_tool.reports.service import build_report
from lti_tool.settings import load_settings
from lti_tool.store.db import Base, make_engine, make_session_factory
from lti_tool.store.models.badges import Credential, StatusList
from lti_tool.store.models.catalogue import (
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    Offering,
)
from lti_tool.store.models.core import (
    AuditEntry,
    Context,
    Institution,
    Membership,
    Person,
    Platform,
)
from lti_tool.store.models.evaluation import Decision
from lti_tool.store.models.reports import (
    FollowUp,
    StakeholderFeedback,
    SurveyResponse,
)

YEAR = 2025
LOS = ("LO1", "LO2", "LO3", "LO4")
LEVELS = [{"code": c, "label": c, "descriptor": c, "lower_bound": b}
          for c, b in (("novice", "0"), ("developing", "50"), ("proficient", "70"))]
STATUSES = ("passed",) * 6 + ("failed", "failed_final", "reevaluation_granted", "in_progress")


def seed(db, mcs: int, offerings: int, learners: int) -> int:
    """The institution's year and the year before; returns the institution's id."""
    rnd = random.Random(17)
    institution = Institution(slug="bench", name="Bench University", country="TR")
    db.add(institution)
    db.flush()
    iid = institution.id
    platform = Platform(institution_id=iid, status="active", issuer="https://lms.invalid",
                        client_id="c", auth_login_url="x", auth_token_url="y")
    db.add(platform)
    db.flush()
    pid = platform.id
    status_list = StatusList(public_id="bench", size=1 << 20, bits=b"\0" * 8,
                             institution_id=iid)
    db.add(status_list)
    versions = []
    for i in range(mcs):
        mc = MicroCredential(institution_id=iid, platform_id=pid, code=f"MC-{i:03d}")
        db.add(mc)
        db.flush()
        version = MicroCredentialVersion(
            institution_id=iid, platform_id=pid, micro_credential_id=mc.id, version=1,
            status="approved",
            title=f"Micro-credential {i}", kind=("course", "embedded")[i % 2],
            participation_form=("online", "blended", "in_person")[i % 3], tqf_level=6,
            eqf_level=6, workload_hours=Decimal(25), ects=Decimal(1))
        db.add(version)
        db.flush()
        db.execute(insert(LearningOutcome), [
            {"platform_id": pid, "version_id": version.id, "position": n, "code": lo,
             "statement": lo, "domain": "skill", "levels": LEVELS, "threshold": "proficient"}
            for n, lo in enumerate(LOS)])
        versions.append((mc.id, version.id))
    index = 0
    for year in (YEAR - 1, YEAR):
        per_offering = learners // offerings
        for o in range(offerings):
            mc_id, version_id = versions[o % mcs]
            context = Context(platform_id=pid, context_id=f"{year}-{o}")
            db.add(context)
            db.flush()
            closes = datetime(year, 1 + o % 12, 15, tzinfo=UTC)
            offering = Offering(platform_id=pid, context_id=context.id,
                                mc_version_id=version_id, window_closes_at=closes)
            db.add(offering)
            db.flush()
            first = db.scalar(select(func.coalesce(func.max(Person.id), 0))) + 1
            db.execute(insert(Person), [{"platform_id": pid, "sub": f"{year}-{o}-{n}"}
                                        for n in range(per_offering)])
            people = range(first, first + per_offering)
            db.execute(insert(Membership), [{"context_id": context.id, "person_id": p,
                                             "role": "learner"} for p in people])
            decisions, credentials, audit, answers, follow_ups = [], [], [], [], []
            for p in people:
                status = rnd.choice(STATUSES)
                decisions.append({
                    "platform_id": pid, "offering_id": offering.id, "person_id": p,
                    "status": status, "reevaluations_used": int(status in (
                        "failed_final", "reevaluation_granted")),
                    "passed_via": "evaluation" if status == "passed" else None,
                    "outcomes": {lo: {"status": "attained" if status == "passed" or
                                      rnd.random() < .6 else "not_attained"} for lo in LOS}})
                if status == "passed":
                    index += 1
                    public_id = f"c-{index}"
                    credentials.append({
                        "public_id": public_id, "platform_id": pid, "person_id": p,
                        "mc_version_id": version_id, "offering_id": offering.id,
                        "passed_at": closes, "issued_at": closes, "status_list_id": 1,
                        "status_index": index, "status": "active"})
                    if rnd.random() < .7:
                        audit.append({"platform_id": pid, "institution_id": iid,
                                      "actor_person_id": p,
                                      "action": "credential.accepted", "target": public_id})
                if rnd.random() < .35:
                    answers.append({"institution_id": iid, "platform_id": pid,
                                    "offering_id": offering.id,
                                    "person_id": p, "trigger": "claimed", "skipped": False,
                                    "ratings": {f"q{n}": rnd.randint(1, 5)
                                                for n in range(1, 5)}})
            db.execute(insert(Decision), decisions)
            if credentials:
                db.execute(insert(Credential), credentials)
            if audit:
                db.execute(insert(AuditEntry), audit)
            if answers:
                db.execute(insert(SurveyResponse), answers)
            if year == YEAR - 1:
                ids = db.scalars(select(Credential.id).where(
                    Credential.offering_id == offering.id)).all()
                for n, cid in enumerate(ids):
                    follow_ups.append({
                        "institution_id": iid, "platform_id": pid, "credential_id": cid,
                        "person_id": people[0],
                        "micro_credential_id": mc_id, "months": 12,
                        "due_at": closes + timedelta(days=366), "nonce": f"n-{cid}",
                        "answered_at": closes + timedelta(days=370) if n % 2 else None,
                        "outcomes": ["new_job"] if n % 2 else []})
                if follow_ups:
                    db.execute(insert(FollowUp), follow_ups)
            db.execute(insert(StakeholderFeedback), [
                {"institution_id": iid, "platform_id": pid, "micro_credential_id": mc_id,
                 "role": "employer",
                 "themes": ["relevance"], "rating": 4, "text": "",
                 "created_at": closes} for _ in range(3)])
    db.commit()
    return iid


def timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mcs", type=int, default=50)
    parser.add_argument("--offerings", type=int, default=200)
    parser.add_argument("--learners", type=int, default=20000)
    parser.add_argument("--pdf", action="store_true", help="also time the PDF (slow)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the rows of an earlier run with --reuse (same sizes) instead "
                             "of seeding again (with LTI_TOOL_BENCH_DATABASE_URL)")
    parser.add_argument("--profile", action="store_true",
                        help="also print where build_report spends its time (cProfile)")
    args = parser.parse_args()
    url = os.environ.get("LTI_TOOL_BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    url = url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    settings = load_settings(overrides={"database_url": url, "testing": True,
                                        "secret_key": "bench"}, environ={})
    start = time.perf_counter()
    iid = None
    if args.reuse:
        Base.metadata.create_all(engine)
        with sessions() as db:
            iid = db.scalar(select(Institution.id).where(Institution.slug == "bench"))
    if iid is None:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with sessions() as db:
            iid = seed(db, args.mcs, args.offerings, args.learners)
    seeded = time.perf_counter() - start
    with sessions() as db:
        rows = db.scalar(select(func.count()).select_from(Decision))
        count_s, _ = timed(lambda: db.scalar(select(func.count()).select_from(Decision)))
        fetch_s, _ = timed(lambda: db.execute(select(Decision.offering_id, Decision.person_id,
                                                     Decision.status, Decision.outcomes)).all())
        build_s, report = timed(lambda: build_report(db, settings, institution_id=iid,
                                                     year=YEAR))
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(build_report, db, settings, institution_id=iid, year=YEAR)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    json_s, _ = timed(lambda: render_json(report))
    csv_s, _ = timed(lambda: render_csv(report))
    html_s, _ = timed(lambda: render_html(report, "en"), repeat=1)
    lines = [("SELECT count(*) over the decisions (reference)", count_s),
             ("fetch every decision with outcomes (reference)", fetch_s),
             ("build_report (2 years, suppression, year-on-year)", build_s),
             ("render JSON", json_s), ("render CSV", csv_s),
             ("render HTML with 3 matplotlib SVG charts", html_s)]
    if args.pdf:
        pdf_s, _ = timed(lambda: render_pdf(report, "en"), repeat=1)
        lines.append(("render PDF (WeasyPrint)", pdf_s))
    print(f"{engine.dialect.name}: {args.mcs} MCs, {args.offerings} offerings/year, "
          f"{rows} decisions in 2 years (seeded in {seeded:.1f} s)")
    print(f"{'step':<52} {'seconds':>9} {'x count(*)':>11} {'x fetch':>9}")
    for name, seconds in lines:
        print(f"{name:<52} {seconds:>9.3f} {seconds / count_s:>11.0f} {seconds / fetch_s:>9.1f}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
