"""Catalogue pages: who may open what, inline validation, workflow actions, offerings."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime

import pytest
import yaml
from sqlalchemy import func, select

from lti_tool.catalogue import importexport, placement, service
from lti_tool.domain.actors import Actor
from lti_tool.errors import BadRequest, Forbidden, NotFound
from lti_tool.store.models.catalogue import MicroCredential, Offering
from lti_tool.store.models.core import Context, Platform
from tests.catalogue.conftest import EXAMPLES, Caller, make_context
from tests.catalogue.forms import fill, page_form, plan_form
from tests.conftest import institution_for_new_platform

EMBEDDED = "technical-report-writing-embedded.yaml"


def plan_from(name: str = "data-literacy-for-engineers.yaml", **changes):
    text = (EXAMPLES / name).read_text()
    return dataclasses.replace(importexport.parse_plan(importexport.load_text(text)), **changes)


@dataclasses.dataclass
class World:
    """Platform A with an approved embedded MC placed in a course, and sessions of each role;
    platform B with its own Office and instructor."""

    office: Caller
    instructor: Caller
    learner: Caller
    other_office: Caller
    other_instructor: Caller
    same_platform_instructor: Caller
    mc_id: int
    version_id: int
    offering_id: int


@pytest.fixture
def world(db, people) -> World:
    platform = Platform(institution_id=institution_for_new_platform(db).id, status="active",
                        issuer="https://moodle.ieu.example.edu", client_id="c1",
                        auth_login_url="https://moodle.ieu.example.edu/auth",
                        auth_token_url="https://moodle.ieu.example.edu/token")
    db.add(platform)
    db.flush()
    course = make_context(db, platform, "IE310")
    office = people.session("admin", platform=platform)
    by = Actor(person_id=office.person_id, role="admin")
    version = service.create(db, platform.id, plan_from(EMBEDDED), by)
    service.act(db, platform.id, version.id, "submit", by)
    service.act(db, platform.id, version.id, "approve", by)
    offering = service.place(db, platform.id, course.id, version.id, by)
    db.commit()
    other = people.session("admin")
    other_platform = db.get(Platform, other.platform_id)
    return World(
        office=office,
        instructor=people.session("instructor", platform=platform, context=course),
        learner=people.session("learner", platform=platform, context=course),
        other_office=other,
        other_instructor=people.session("instructor", platform=other_platform),
        same_platform_instructor=people.session("instructor", platform=platform),
        mc_id=version.micro_credential_id, version_id=version.id, offering_id=offering.id)


def catalogue_routes(app) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """(rule, method, roles) for every route of the catalogue blueprint."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("catalogue.") and rule.endpoint != "catalogue.static":
            roles = getattr(app.view_functions[rule.endpoint], "required_roles", None)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((rule, method, roles))
    return found


def build(app, rule, world: World) -> str:
    values = {"mc_id": world.mc_id, "version_id": world.version_id, "action": "retire",
              "offering_id": world.offering_id}
    with app.test_request_context():
        return app.url_map.bind("localhost").build(
            rule.endpoint, {k: v for k, v in values.items() if k in rule.arguments})


def test_authorization_matrix_over_every_catalogue_route(app, client, world) -> None:
    """No session -> 401, a role not allowed -> 403, the allowed role gets through."""
    routes = catalogue_routes(app)
    assert len(routes) >= 11
    callers = {"learner": world.learner, "instructor": world.instructor, "admin": world.office}
    for rule, method, roles in routes:
        path = build(app, rule, world)
        anonymous = client.open(path, method=method)
        if roles is None:
            assert rule.rule == importexport.SCHEMA_URL_PATH
            assert anonymous.status_code == 200
            continue
        assert anonymous.status_code == 401, (method, path)
        for role, caller in callers.items():
            reply = caller.post(path) if method == "POST" else caller.get(path)
            where = (method, path, role, reply.status_code)
            if role in roles:
                assert reply.status_code < 500 and reply.status_code not in (401, 403), where
                if method == "GET":
                    assert reply.status_code == 200, where
            else:
                assert reply.status_code == 403, where


def test_another_platforms_ids_answer_404(app, world) -> None:
    for rule, method, roles in catalogue_routes(app):
        if roles is None or not rule.arguments:
            continue
        caller = world.other_office if "admin" in roles else world.other_instructor
        path = build(app, rule, world)
        reply = caller.post(path) if method == "POST" else caller.get(path)
        assert reply.status_code == 404, (method, path, reply.status_code)
    # An instructor of another course of the same platform does not see the offering either.
    path = f"/instructor/offerings/{world.offering_id}"
    assert world.same_platform_instructor.get(path).status_code == 404
    assert world.same_platform_instructor.post(path, {"reevaluation_policy": "automatic",
                                                      "reevaluation_window_days": "3"}
                                               ).status_code == 404


def test_the_schema_is_published(client) -> None:
    reply = client.get(importexport.SCHEMA_URL_PATH)
    assert reply.status_code == 200
    assert reply.mimetype == "application/schema+json"
    assert json.loads(reply.data) == importexport.schema()


def test_the_office_list_shows_status_and_revalidation_due(world) -> None:
    page = world.office.get("/admin/microcredentials").get_data(True)
    assert "TRW-IE310" in page and "Technical Report Writing" in page
    assert "approved" in page
    assert "Data Literacy" not in world.other_office.get("/admin/microcredentials").get_data(True)


def test_creating_with_problems_shows_every_one_next_to_its_field(db, world) -> None:
    form = dict(plan_form(plan_from()))
    form.update({"workload_hours": "45", "tqf_level": "nine",
                 "outcomes[2].rubric.threshold": "expert", "title": ""})
    reply = world.office.post("/admin/microcredentials/new", list(form.items()))
    assert reply.status_code == 422
    page = reply.get_data(True)
    assert "4 problems to fix" in page
    for field in ("f-workload_hours-problems", "f-tqf_level-problems", "f-title-problems",
                  "f-outcomes-2-rubric-threshold-problems"):
        assert f'id="{field}"' in page
    assert "&#39;expert&#39; is not one of the levels" in page
    assert 'value="45"' in page  # what was typed stays
    # the summary names fields by their labels, selects show words, not codes
    summary = page[page.index('class="error-summary"'):page.index("</ul>", page.index(
        'class="error-summary"'))]
    assert "Learning outcome 3 › Threshold level" in summary and "outcomes[2]" not in summary
    assert ">embedded in a course</option>" in page and ">skill</option>" in page
    assert ">Turkish</option>" in page
    assert db.scalar(select(func.count()).select_from(MicroCredential)) == 1


def test_the_form_asks_for_field_of_study_and_participation_form(db, world) -> None:
    page = world.office.get("/admin/microcredentials/new").get_data(True)
    assert 'name="field_of_study"' in page and 'name="isced_f_code"' in page
    assert '<option value="in_person">in person (face-to-face)</option>' in page
    form = dict(plan_form(plan_from()))
    form.update({"field_of_study": "", "participation_form": "", "isced_f_code": "6x"})
    reply = world.office.post("/admin/microcredentials/new", list(form.items()))
    assert reply.status_code == 422
    page = reply.get_data(True)
    for field in ("field_of_study", "participation_form", "isced_f_code"):
        assert f'id="f-{field}-problems"' in page
    assert db.scalar(select(func.count()).select_from(MicroCredential)) == 1
    reply = world.office.post("/admin/microcredentials/new", plan_form(plan_from()))
    assert reply.status_code == 303
    mc = db.scalar(select(MicroCredential).where(MicroCredential.code == "DLE-101"))
    assert (mc.head.field_of_study, mc.head.isced_f_code, mc.head.participation_form) == (
        "Statistics and data analysis for engineering", "0542", "blended")
    detail = world.office.get(f"/admin/microcredentials/{mc.id}").get_data(True)
    assert "(ISCED-F 0542)" in detail and "blended (online and in person)" in detail


def _slots(fields: list[tuple[str, str]]) -> list[str]:
    """The outcome slot prefixes on a page, in order (`outcomes[0]`, ...)."""
    return [name.removesuffix(".code") for name, _ in fields
            if re.fullmatch(r"outcomes\[\d+\]\.code", name)]


def _level_slots(fields: list[tuple[str, str]], slot: int) -> int:
    prefix = f"outcomes[{slot}].rubric.levels["
    return sum(1 for name, _ in fields if name.startswith(prefix) and name.endswith("].code"))


def _mc_count(db) -> int:
    return db.scalar(select(func.count()).select_from(MicroCredential))


def test_add_another_outcome_re_renders_with_one_more_slot_and_stores_nothing(db, world) -> None:
    new = "/admin/microcredentials/new"
    form = page_form(world.office.get(new).get_data(True))
    assert _slots(form.fields) == ["outcomes[0]"]
    assert ("add_outcome", "1") in form.buttons and ("add_level", "0") in form.buttons
    typed = fill(form.fields, {"code": "NEW-1", "title": "Typed <title> & more",
                               "outcomes[0].code": "LO1", "outcomes[0].statement": "First",
                               "outcomes[0].rubric.levels[0].code": "low",
                               "outcomes[0].rubric.levels[0].lower_bound": "0"})
    reply = world.office.post(new, typed + [("add_outcome", "1")])
    assert reply.status_code == 200
    page = reply.get_data(True)
    assert "problems to fix" not in page and "field-problems" not in page
    again = page_form(page)
    assert _slots(again.fields) == ["outcomes[0]", "outcomes[1]"]
    values = dict(again.fields)
    assert (values["code"], values["title"], values["outcomes[0].code"]) == (
        "NEW-1", "Typed <title> & more", "LO1")
    assert values["outcomes[0].statement"].strip() == "First"
    assert values["outcomes[0].rubric.levels[0].code"] == "low"
    assert values["outcomes[1].code"] == ""
    # every input has a label, and ids (so label `for`s) are unique per slot
    assert len(again.ids) == len(set(again.ids)) and set(again.ids) <= set(again.label_fors)
    assert any(name == "csrf_token" or "csrf" in name for name, _ in again.fields)
    # the empty slot is kept: one more again; and one more level for the first outcome
    third = page_form(world.office.post(new, again.fields + [("add_outcome", "1")]).get_data(True))
    assert _slots(third.fields) == ["outcomes[0]", "outcomes[1]", "outcomes[2]"]
    assert _level_slots(third.fields, 0) == 4
    reply = world.office.post(new, third.fields + [("add_level", "0")])
    assert reply.status_code == 200
    levels = page_form(reply.get_data(True))
    assert _level_slots(levels.fields, 0) == 5 and _level_slots(levels.fields, 1) == 4
    assert dict(levels.fields)["outcomes[0].rubric.levels[0].code"] == "low"
    assert len(_slots(levels.fields)) == 3
    assert _mc_count(db) == 1  # nothing stored
    # the edit page has the same buttons and stores nothing either
    edit = f"/admin/microcredentials/{world.mc_id}/edit"
    fields = page_form(world.office.get(edit).get_data(True)).fields
    slots = len(_slots(fields))
    reply = world.office.post(edit, fill(fields, {"title": "Not saved"}) + [("add_outcome", "1")])
    assert reply.status_code == 200 and len(_slots(page_form(reply.get_data(True)).fields)) == (
        slots + 1)
    db.expire_all()
    assert db.get(MicroCredential, world.mc_id).head.version == 1
    assert db.get(MicroCredential, world.mc_id).head.title != "Not saved"


def test_saving_three_typed_outcomes_with_a_trailing_empty_slot_stores_three(db, world) -> None:
    new = "/admin/microcredentials/new"
    fields = page_form(world.office.get(new).get_data(True)).fields
    for _ in range(3):
        fields = page_form(world.office.post(new, fields + [("add_outcome", "1")]
                                             ).get_data(True)).fields
    assert len(_slots(fields)) == 4
    wanted = {name: value for name, value in plan_form(plan_from())
              if name in dict(fields) and not name.startswith("outcomes[3]")}
    assert {f"outcomes[{i}].statement" for i in range(3)} <= set(wanted)
    typed = fill(fields, wanted)
    broken = fill(typed, {"title": "", "outcomes[1].rubric.threshold": "expert"})
    reply = world.office.post(new, broken)  # the save button: every problem, 422, nothing stored
    assert reply.status_code == 422
    page = reply.get_data(True)
    assert 'id="f-title-problems"' in page
    assert 'id="f-outcomes-1-rubric-threshold-problems"' in page
    assert _mc_count(db) == 1
    reply = world.office.post(new, typed)
    assert reply.status_code == 303, reply.get_data(True)
    mc = db.scalar(select(MicroCredential).where(MicroCredential.code == "DLE-101"))
    assert [o.code for o in mc.head.outcomes] == ["LO1", "LO2", "LO3"]


def test_the_office_creates_submits_approves_and_edits_into_a_new_version(db, world) -> None:
    reply = world.office.post("/admin/microcredentials/new", plan_form(plan_from()))
    assert reply.status_code == 303
    mc = db.scalar(select(MicroCredential).where(MicroCredential.code == "DLE-101"))
    head = mc.head
    base = f"/admin/microcredentials/{mc.id}/versions/{head.id}"
    assert world.office.post(base + "/approve").status_code == 409  # a draft is not approved
    assert world.office.post(base + "/submit").status_code == 303
    approve = world.office.post(base + "/approve", {"revalidation_due": "2027-01-31",
                                                    "note": "Senate decision 2026/14"})
    assert approve.status_code == 303
    db.expire_all()
    assert head.status == "approved"
    assert head.revalidation_due == datetime(2027, 1, 31, 23, 59, tzinfo=UTC)
    edited = plan_form(plan_from(title="Data Literacy for Engineers, 2nd edition"))
    assert world.office.post(f"/admin/microcredentials/{mc.id}/edit", edited).status_code == 303
    db.expire_all()
    assert [(v.version, v.status) for v in mc.versions] == [(1, "approved"), (2, "draft")]
    page = world.office.get(f"/admin/microcredentials/{mc.id}").get_data(True)
    assert "2nd edition" in page and "Senate decision 2026/14" in page
    assert "Admin Example" in page  # who approved, by name
    audit = world.office.get("/admin/audit").get_data(True)  # the workflow is in the audit log
    assert "approved a micro-credential" in audit and "submitted a micro-credential" in audit
    old = world.office.get(f"/admin/microcredentials/{mc.id}?version=1").get_data(True)
    assert "older version" in old
    assert world.office.get(f"/admin/microcredentials/{mc.id}?version=7").status_code == 404


def test_bad_workflow_input_is_a_clear_4xx_without_change(db, world) -> None:
    base = f"/admin/microcredentials/{world.mc_id}/versions/{world.version_id}"
    assert world.office.post(base + "/revalidate",
                             {"revalidation_due": "31/01/2027"}).status_code == 400
    assert world.office.post(base + "/revalidate",
                             {"revalidation_due": "2040-01-01"}).status_code == 400
    assert world.office.post(base + "/submit").status_code == 409
    assert world.office.post(base + "/publish").status_code == 404
    forged = dataclasses.replace(world.office, csrf="forged")
    assert forged.post(base + "/retire").status_code == 403
    db.expire_all()
    mc = db.get(MicroCredential, world.mc_id)
    assert mc.head.status == "approved" and len(mc.head.events) == 3


def test_a_refused_approval_date_is_shown_at_its_form_with_what_was_typed(db, world) -> None:
    """A date beyond three years: the page again (400), the message at the Revalidate form,
    the date and note kept, the input bounded by `max`; nothing stored."""
    base = f"/admin/microcredentials/{world.mc_id}/versions/{world.version_id}"
    reply = world.office.post(base + "/revalidate", {"revalidation_due": "2040-01-01",
                                                     "note": "Senate 2026/99"})
    assert reply.status_code == 400
    page = reply.get_data(True)
    assert 'id="error-revalidate"' in page and "at most three years" in page
    assert 'value="2040-01-01"' in page and "Senate 2026/99</textarea>" in page
    limit = re.search(r'id="due-revalidate" name="revalidation_due" min="[-0-9]+" max="([-0-9]+)"',
                      page)
    assert limit and int(limit.group(1)[:4]) == datetime.now(UTC).year + 3
    db.expire_all()
    assert len(db.get(MicroCredential, world.mc_id).head.events) == 3


def test_retiring_without_the_confirmation_is_refused_at_its_form(db, world) -> None:
    """The confirmation box is required in the page; a POST without it (an old page, a
    script) is refused with the message at the Retire form, the note kept, nothing changed."""
    base = f"/admin/microcredentials/{world.mc_id}/versions/{world.version_id}"
    for form in ({"note": "Replaced by v2"}, {"note": "Replaced by v2", "confirm": "yes"}):
        reply = world.office.post(base + "/retire", form)
        assert reply.status_code == 400
        page = reply.get_data(True)
        assert 'id="error-retire"' in page and "confirm the retirement" in page
        assert "Replaced by v2</textarea>" in page
        db.expire_all()
        mc = db.get(MicroCredential, world.mc_id)
        assert mc.head.status == "approved" and len(mc.head.events) == 3
    reply = world.office.post(base + "/retire", {"note": "Replaced by v2", "confirm": "1"})
    assert reply.status_code == 303
    db.expire_all()
    assert db.get(MicroCredential, world.mc_id).head.status == "retired"


def test_export_from_the_office_page_round_trips(world) -> None:
    reply = world.office.get(f"/admin/microcredentials/{world.mc_id}/export?format=yaml")
    assert reply.status_code == 200
    assert importexport.parse_plan(yaml.safe_load(reply.data)) == plan_from(EMBEDDED)
    assert world.office.get(f"/admin/microcredentials/{world.mc_id}/export?format=xml"
                            ).status_code == 400


def test_the_due_list_shows_what_is_due_within_90_days(db, world) -> None:
    assert "TRW-IE310" not in world.office.get("/admin/microcredentials/due").get_data(True)
    version = service.get_version(db, world.office.platform_id, world.version_id)
    version.revalidation_due = datetime.now(UTC).replace(microsecond=0) + \
        (datetime(2026, 3, 1, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC))
    db.commit()
    assert "TRW-IE310" in world.office.get("/admin/microcredentials/due").get_data(True)


# --- instructor -----------------------------------------------------------------------------


def test_instructor_sets_window_policy_and_gradebook_items(db, world) -> None:
    from lti_tool.store.models.grades import GradeItem

    offering = db.get(Offering, world.offering_id)
    items = [GradeItem(context_id=offering.context_id, source="ags", external_id=f"li-{n}",
                       label=label) for n, label in enumerate(("Proposal", "Final report"))]
    db.add_all(items)
    db.commit()
    path = f"/instructor/offerings/{world.offering_id}"
    page = world.instructor.get(path).get_data(True)
    assert "Proposal" in page and "Final report" in page
    assert "Technical Report Writing" in world.instructor.get("/instructor/offerings"
                                                              ).get_data(True)
    bad = world.instructor.post(path, {"window_closes_at": "soon",
                                       "reevaluation_policy": "whenever",
                                       "reevaluation_window_days": "0",
                                       "grade_item_ids": ["99999"]})
    assert bad.status_code == 422
    text = bad.get_data(True)
    assert 'id="f-window_closes_at-problems"' in text
    db.expire_all()
    assert db.get(Offering, world.offering_id).reevaluation_policy == "instructor"
    bad_items = world.instructor.post(path, {"reevaluation_policy": "automatic",
                                             "reevaluation_window_days": "7",
                                             "grade_item_ids": [str(items[0].id), "99999"]})
    assert bad_items.status_code == 422 and "not a gradebook item" in bad_items.get_data(True)
    good = world.instructor.post(path, {"window_closes_at": "2026-06-12T17:00",
                                        "reevaluation_policy": "learner_request",
                                        "reevaluation_window_days": "10",
                                        "grade_item_ids": [str(i.id) for i in items]})
    assert good.status_code == 303
    db.expire_all()
    saved = db.get(Offering, world.offering_id)
    assert saved.window_closes_at == datetime(2026, 6, 12, 17, tzinfo=UTC)
    assert (saved.reevaluation_policy, saved.reevaluation_window_days) == ("learner_request", 10)
    assert sorted(saved.grade_item_ids) == sorted(i.id for i in items)


# --- deep linking ---------------------------------------------------------------------------


def actor_of(db, caller: Caller, role: str) -> Actor:
    return Actor(session_id=0, platform_id=caller.platform_id, person_id=caller.person_id,
                 context_id=caller.context_id, resource_link_id=None, role=role, locale="en",
                 message_type="LtiDeepLinkingRequest", csrf_secret="")


def test_deep_linking_lists_approved_mcs_of_the_platform_and_places_an_offering(db,
                                                                                world) -> None:
    by = Actor(person_id=world.office.person_id, role="admin")
    service.create(db, world.office.platform_id, plan_from(), by)  # a draft: not placeable
    db.commit()
    instructor = actor_of(db, world.same_platform_instructor, "instructor")
    items = placement.placeable_items(db, instructor)
    assert [(i.id, i.title) for i in items] == [(str(world.version_id),
                                                 "Technical Report Writing")]
    assert placement.placeable_items(db, actor_of(db, world.other_instructor,
                                                  "instructor")) == []
    placed = placement.place_item(db, instructor, items[0].id)
    offering = db.get(Offering, int(placed.custom["offering_id"]))
    assert offering.context_id == instructor.context_id
    assert offering.mc_version_id == world.version_id
    assert placement.place_item(db, instructor, items[0].id).custom == placed.custom
    with pytest.raises(Forbidden):
        placement.placeable_items(db, actor_of(db, world.learner, "learner"))
    with pytest.raises(BadRequest):
        placement.place_item(db, instructor, "../1")
    with pytest.raises(NotFound):
        placement.place_item(db, actor_of(db, world.other_instructor, "instructor"),
                             str(world.version_id))
    no_course = dataclasses.replace(instructor, context_id=None)
    with pytest.raises(BadRequest):
        placement.place_item(db, no_course, items[0].id)
    assert db.get(Context, instructor.context_id) is not None


def test_design_plan_problems_are_in_the_pages_language(db, world) -> None:
    """The domain's problem texts stay English for the CLI and JSON; the form words them in
    the page's language (issue 18: "must not be empty" on a Turkish page)."""
    form = dict(plan_form(plan_from()))
    form.update({"title": "", "eqf_level": "9"})
    reply = world.office.post("/admin/microcredentials/new?lang=tr", list(form.items()))
    assert reply.status_code == 422
    page = reply.get_data(True)
    assert "boş bırakılamaz" in page and "en çok 8 olmalı" in page
    assert "must not be empty" not in page and "must be at most 8" not in page
    english = world.office.post("/admin/microcredentials/new?lang=en", list(form.items()))
    assert "must not be empty" in english.get_data(True)
    assert db.scalar(select(func.count()).select_from(MicroCredential)) == 1


def test_a_course_of_its_own_reads_as_on_the_design_plan_form(db, world) -> None:
    """The Office's list and detail name the kind with the form's words (labels.KIND_MESSAGES),
    not a wording of their own."""
    from lti_tool.catalogue.labels import KIND_MESSAGES

    reply = world.office.post("/admin/microcredentials/new", plan_form(plan_from()))
    assert reply.status_code == 303
    mc = db.scalars(select(MicroCredential).order_by(MicroCredential.id.desc())).first()
    pages = [world.office.get("/admin/microcredentials").get_data(True),
             world.office.get(f"/admin/microcredentials/{mc.id}").get_data(True)]
    for page in pages:
        assert KIND_MESSAGES["course"] in page and "stand-alone course" not in page
