"""A seeded calendar year (2025, with 2024 before it) for the report's tests and the demo.

Rows are written with the models, as the other areas' services leave them: three
micro-credentials (one small enough that its answers are withheld), four offerings, learners
in every decision status, credentials accepted and shared, survey answers and skips, follow-ups,
stakeholder feedback, a reflection, approval events and improvement actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from lti_tool.store.models.badges import Credential, StatusList
from lti_tool.store.models.catalogue import (
    ApprovalEvent,
    LearningOutcome,
    MicroCredential,
    MicroCredentialVersion,
    Offering,
)
from lti_tool.store.models.core import AuditEntry, Context, Membership, Person, Platform
from lti_tool.store.models.evaluation import Decision
from lti_tool.store.models.reports import (
    FollowUp,
    ImprovementAction,
    InstructorReflection,
    StakeholderFeedback,
    SurveyComment,
    SurveyResponse,
)
from testkit.institutions import institution_for_new_platform
from testkit.seed import LEVELS, THRESHOLD

YEAR = 2025


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


@dataclass
class SeededYear:
    platform_id: int
    institution_id: int
    mcs: dict[str, int] = field(default_factory=dict)
    offerings: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)


# (status, passed_via, reevaluations_used, LO attained flags)
P = ("passed", "evaluation", 0, (True, True))
PR = ("passed", "evaluation", 1, (True, True))
PL = ("passed", "prior_learning", 0, (None, None))
F = ("failed", None, 0, (True, False))
FF = ("failed_final", None, 1, (False, False))
RG = ("reevaluation_granted", None, 1, (True, False))
IP = ("in_progress", None, 0, (True, None))
NONE = None  # enrolled, no decision

PLAN = {
    # key: (mc code, closes, learners)
    "A": ("DATA-101", at(YEAR, 6, 30), [P] * 6 + [PR, PL, F, FF, IP, NONE]),
    "B": ("PY-201", at(YEAR, 11, 15), [P] * 4 + [F, RG, IP, NONE]),
    "C": ("ETH-301", at(YEAR, 5, 2), [P, P, F]),
    "D": ("DATA-101", at(YEAR - 1, 6, 30), [P] * 6 + [F, F, FF, NONE]),
}
MCS = {
    "DATA-101": ("Data Literacy Basics", "embedded", "online"),
    "PY-201": ("Programming with Python", "course", "blended"),
    "ETH-301": ("Research Ethics", "embedded", "in_person"),
}


def seed_year(db, *, issuer: str = "https://lms.invalid", tag: str = "") -> SeededYear:
    """The seeded year on a new registration (the test institution for the first one, a new
    institution for each further one); `tag` keeps globally unique ids apart."""
    platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                        issuer=issuer, client_id="client-1", name="Example LMS",
                        lms_kind="moodle", auth_login_url=f"{issuer}/auth",
                        auth_token_url=f"{issuer}/token", key_set_url=f"{issuer}/jwks")
    db.add(platform)
    db.flush()
    seeded = SeededYear(platform.id, platform.institution_id)
    iid = platform.institution_id
    status_list = StatusList(public_id=f"list-1{tag}", size=8, bits=b"\0" * 8,
                             institution_id=iid)
    db.add(status_list)
    office = Person(platform_id=platform.id, sub="office", name="Office Example")
    teacher = Person(platform_id=platform.id, sub="teacher", name="Teacher Example")
    db.add_all([office, teacher])
    db.flush()
    seeded.people.update(office=office.id, teacher=teacher.id)
    versions = {}
    for code, (title, kind, form) in MCS.items():
        mc = MicroCredential(platform_id=platform.id, institution_id=platform.institution_id,
                             code=code, created_at=at(YEAR - 2, 1, 5))
        db.add(mc)
        db.flush()
        version = MicroCredentialVersion(
            platform_id=platform.id, institution_id=mc.institution_id,
            micro_credential_id=mc.id, version=1, status="approved",
            title=title, kind=kind, participation_form=form, tqf_level=6, eqf_level=6,
            workload_hours=Decimal(25 if kind == "course" else 40), ects=Decimal(1),
            approved_at=at(YEAR - 2, 2, 1),
            revalidation_due=at(YEAR, 9, 1) if code == "PY-201" else at(YEAR + 2, 3, 1))
        db.add(version)
        db.flush()
        for position, lo in enumerate(("LO1", "LO2")):
            db.add(LearningOutcome(platform_id=platform.id, version_id=version.id,
                                   position=position, code=lo, statement=f"{code} {lo}",
                                   domain="skill", levels=LEVELS, threshold=THRESHOLD))
        seeded.mcs[code] = mc.id
        versions[code] = version
    db.add(ApprovalEvent(platform_id=platform.id, version_id=versions["DATA-101"].id,
                         action="revalidate", from_status="approved", to_status="approved",
                         actor_label="Office Example", at=at(YEAR, 3, 1)))
    index = 0
    for key, (code, closes, learners) in PLAN.items():
        context = Context(platform_id=platform.id, context_id=f"course-{key}", title=key)
        db.add(context)
        db.flush()
        offering = Offering(platform_id=platform.id, context_id=context.id,
                            mc_version_id=versions[code].id, window_closes_at=closes,
                            created_at=at(closes.year, 1, 10))
        db.add(offering)
        db.flush()
        seeded.offerings[key] = offering.id
        db.add(Membership(context_id=context.id, person_id=teacher.id, role="instructor"))
        for number, plan in enumerate(learners, start=1):
            index += 1
            person = Person(platform_id=platform.id, sub=f"{key}-{number}",
                            name=f"Learner {key}{number}", email=f"l{key}{number}@example.edu")
            db.add(person)
            db.flush()
            seeded.people[f"{key}{number}"] = person.id
            db.add(Membership(context_id=context.id, person_id=person.id, role="learner"))
            if plan is None:
                continue
            status, via, reevals, flags = plan
            db.add(Decision(
                platform_id=platform.id, offering_id=offering.id, person_id=person.id,
                status=status, passed_via=via, reevaluations_used=reevals,
                outcomes={lo: {"status": "not_yet_assessed" if flag is None else
                               ("attained" if flag else "not_attained")}
                          for lo, flag in zip(("LO1", "LO2"), flags, strict=True)},
                passed_at=closes if status == "passed" else None))
            if status == "passed":
                credential = Credential(
                    public_id=f"cred-{key}{number}{tag}", platform_id=platform.id,
                    person_id=person.id, mc_version_id=versions[code].id,
                    offering_id=offering.id, passed_at=closes, issued_at=closes,
                    status_list_id=status_list.id, status_index=index)
                if key == "A" and number == 2:
                    credential.status, credential.revoked_at = "revoked", at(YEAR, 8, 1)
                    credential.revoked_reason = "Academic misconduct"
                db.add(credential)
                db.flush()
                if number <= 5:
                    db.add(AuditEntry(platform_id=platform.id, institution_id=iid,
                                      actor_person_id=person.id, action="credential.accepted",
                                      target=credential.public_id, at=closes))
                if number <= 3:
                    db.add(AuditEntry(platform_id=platform.id, institution_id=iid,
                                      actor_person_id=person.id, action="credential.shared",
                                      target=credential.public_id, at=closes))
                if key == "D":
                    answered = number <= 5
                    db.add(FollowUp(
                        institution_id=iid, platform_id=platform.id, credential_id=credential.id,
                        person_id=person.id, micro_credential_id=seeded.mcs[code], months=12,
                        due_at=at(YEAR, 6, 30), nonce=f"nonce-{key}{number}{tag}",
                        answered_at=at(YEAR, 7, 2) if answered else None,
                        outcomes=[] if not answered else
                        (["not_yet"] if number == 5 else
                         ["new_job", "recognised_credit"] if number <= 2 else ["promotion"])))
    db.flush()
    _answers(db, seeded)
    db.commit()
    return seeded


SURVEYS = {
    # offering: [(learner number, ratings or None for a skip, comment)]
    "A": [(1, {"q1": 5, "q2": 4, "q3": 4, "q4": 5}, "More worked examples, please."),
          (2, {"q1": 4, "q2": 4, "q3": 3, "q4": 4}, ""),
          (3, {"q1": 5, "q2": 5, "q3": 2, "q4": 5}, "The workload was higher than announced."),
          (4, {"q1": 3, "q2": 4, "q3": 3, "q4": 4}, ""),
          (5, {"q1": 4, "q2": 3, "q3": 4, "q4": 4}, ""),
          (6, {"q1": 5, "q2": 4, "q3": 4}, ""),
          (9, {"q1": 2, "q2": 2, "q3": 2, "q4": 2}, "Feedback on the assignments came late."),
          (10, None, "")],
    "B": [(1, {"q1": 4, "q2": 4, "q3": 4, "q4": 4}, "Great exercises."),
          (2, {"q1": 5, "q2": 5, "q3": 5, "q4": 5}, ""),
          (3, {"q1": 3, "q2": 4, "q3": 3, "q4": 3}, "")],
    "C": [(1, {"q1": 5, "q2": 5, "q3": 5, "q4": 5}, "Very useful."),
          (2, {"q1": 4, "q2": 4, "q3": 4, "q4": 4}, "")],
    "D": [(1, {"q1": 4, "q2": 4, "q3": 4, "q4": 4}, ""),
          (2, {"q1": 3, "q2": 3, "q3": 3, "q4": 3}, ""),
          (3, {"q1": 4, "q2": 4, "q3": 4, "q4": 4}, ""),
          (4, {"q1": 4, "q2": 4, "q3": 4, "q4": 4}, ""),
          (5, {"q1": 5, "q2": 4, "q3": 4, "q4": 4}, "")],
}


def _answers(db, seeded: SeededYear) -> None:
    scope = {"institution_id": seeded.institution_id, "platform_id": seeded.platform_id}
    for key, rows in SURVEYS.items():
        code, closes, _learners = PLAN[key]
        for number, ratings, comment in rows:
            db.add(SurveyResponse(**scope, offering_id=seeded.offerings[key],
                                  person_id=seeded.people[f"{key}{number}"],
                                  trigger="claimed" if number <= 6 else "not_passed",
                                  skipped=ratings is None, ratings=ratings or {},
                                  created_at=closes))
            if comment:
                db.add(SurveyComment(**scope, micro_credential_id=seeded.mcs[code],
                                     year=closes.year, text=comment))
    for number in range(6):
        db.add(StakeholderFeedback(
            **scope, micro_credential_id=seeded.mcs["DATA-101"],
            role="employer" if number < 4 else "graduate",
            themes=["relevance"] if number < 3 else ["skills_gap", "workload"],
            rating=4 if number < 4 else 3,
            text="Graduates clean data well." if number == 0 else "", created_at=at(YEAR, 9, 1)))
    db.add(StakeholderFeedback(**scope, micro_credential_id=seeded.mcs["PY-201"],
                               role="partner", themes=["recognition"], rating=5,
                               text="Please map to our internal training catalogue.",
                               created_at=at(YEAR, 10, 1)))
    db.add(InstructorReflection(**scope, offering_id=seeded.offerings["A"],
                                person_id=seeded.people["teacher"],
                                worked="Weekly data clinics.",
                                change="Publish the rubric earlier."))
    db.add(ImprovementAction(
        **scope, year=YEAR - 1, micro_credential_id=seeded.mcs["DATA-101"],
        finding="Pass rate 60% in 2024", action="Add a practice data set before the assessment",
        owner="DATA-101 coordinator", due_on=at(YEAR, 3, 31), status="done",
        result="Pass rate rose in 2025", created_at=at(YEAR - 1, 12, 1),
        updated_at=at(YEAR, 4, 2)))
    db.add(ImprovementAction(
        **scope, year=YEAR, micro_credential_id=seeded.mcs["PY-201"],
        finding="Revalidation overdue", action="Complete the revalidation review",
        owner="Office", due_on=at(YEAR + 1, 2, 28), status="planned",
        created_at=at(YEAR, 12, 1), updated_at=at(YEAR, 12, 1)))
