"""NRPS: the roster, paged with a well-formed Link header, short role names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lti_tool.lms.nrps import Member, NrpsClient, short_role
from tests.conftest import load_fixture

NRPS = load_fixture("moodle", "nrps_membership.json")


def test_fixture_members_with_short_role_names() -> None:
    members = [Member.from_json(m) for m in NRPS["nrps"]["body"]["members"]]
    assert [(m.user_id, m.role, m.active) for m in members] == [
        ("4", "learner", True), ("5", "learner", True), ("6", "learner", True),
        ("3", "instructor", True)]
    assert members[0].email == "student1@example.com" and members[0].lis_person_sourcedid is None


def test_short_names_and_uris_map_alike() -> None:
    assert short_role(["Learner"]) == short_role(
        ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]) == "learner"
    assert short_role(["Instructor"]) == "instructor"
    assert short_role(["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"]
                      ) == "admin"


def test_every_page_is_read(moodle) -> None:
    moodle.fake.nrps_page = 2
    pages = list(NrpsClient(moodle.bearer).member_pages(moodle.fake.memberships_url))
    assert [[m.user_id for m in page] for page in pages] == [["4", "5"], ["6", "3"]]
    assert moodle.fake.count("/memberships") == 2


def test_inactive_members_are_reported(moodle) -> None:
    moodle.fake.course.members[1]["status"] = "Inactive"
    members = {m.user_id: m for m in NrpsClient(moodle.bearer).members(moodle.fake.memberships_url)}
    assert members["5"].active is False and members["4"].active is True


@given(st.dictionaries(st.sampled_from(["user_id", "roles", "status", "name", "email"]),
                       st.none() | st.text(max_size=10) | st.lists(st.text(max_size=10))
                       | st.integers()))
def test_member_of_any_shape_never_raises(value: dict) -> None:
    Member.from_json(value)
