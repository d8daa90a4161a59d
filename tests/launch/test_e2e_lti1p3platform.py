"""End to end with an LTI platform we did not write: PyPI `lti1p3platform` as the LMS.

It signs the id_token with its own RS256 key (published over a real loopback JWKS URL) and
builds its launch from the tool's real authentication request; the tool is driven through its
HTTP interface only. What it sends back it checks little, so the deep-linking response is
verified here by hand as well as by its own validator.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lti_tool.store.models.catalogue import Offering
from lti_tool.store.models.core import Context, Membership, Person, ResourceLink
from testkit.lti import (
    LTI,
    FormReader,
    JwksServer,
    Lti1p3Platform,
    auto_submit_form,
    platform_key,
    query_of,
    register_platform,
)
from tests.launch.test_deep_linking import approved_mc, csrf_of, verify_response

ISSUER = "https://platform.example"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@pytest.fixture
def lms(db):
    key = platform_key("lti1p3platform")
    platform = Lti1p3Platform(issuer=ISSUER, client_id="tool-client", deployment_id="dep-1",
                              key=key)
    with JwksServer(platform.jwks) as server:
        registration = register_platform(db, issuer=ISSUER, client_id="tool-client",
                                         key_set_url=server.url, deployments=("dep-1",))
        yield platform, registration


def _path(url: str) -> str:
    return url.split("127.0.0.1:8000", 1)[1]


def run_launch(client, platform: Lti1p3Platform, user_id: str, roles: list[str], **kwargs):
    """Browser steps: platform login URL -> tool login -> platform auth -> auto-submitted form."""
    login = client.get(_path(platform.login_url(user_id)))
    assert login.status_code == 302, login.get_data(as_text=True)
    auth_params = query_of(login.headers["Location"])
    assert auth_params["lti_message_hint"] == "resource-link-1"
    answer = platform.launch_form(auth_params, user_id=user_id, roles=roles, **kwargs)
    form = FormReader(auto_submit_form(answer["launch_url"], {
        "id_token": answer["id_token"], "state": answer["state"]}))
    assert form.action == "http://127.0.0.1:8000/lti/launch"
    return client.post(_path(form.action), data=form.fields)


@pytest.mark.parametrize(("roles", "role"), [([INSTRUCTOR], "instructor"),
                                              ([LEARNER], "learner")])
def test_resource_link_launch_from_lti1p3platform(client, db, lms, roles, role):
    platform, registration = lms
    response = run_launch(client, platform, "user-42", roles,
                          custom={"offering_id": "7"})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"].startswith(f"/{role}/")
    person = db.scalar(select(Person))
    assert (person.platform_id, person.sub, person.email) == (registration.id, "user-42",
                                                              "user-42@platform.example")
    context = db.scalar(select(Context))
    assert (context.context_id, context.title) == ("course-7", "Course Seven")
    assert context.ags_lineitems_url == "https://platform.example/ags/lineitems"
    assert context.nrps_url == "https://platform.example/nrps/memberships"
    link = db.scalar(select(ResourceLink))
    assert link.resource_link_id == "rl-1" and link.custom == {"offering_id": "7"}
    assert db.scalar(select(Membership.role)) == role


def test_deep_linking_round_trip_with_lti1p3platform(client, db, lms):
    platform, registration = lms
    version = approved_mc(db, registration.id)
    response = run_launch(client, platform, "teacher-1", [INSTRUCTOR], resource_link=None,
                          deep_link_return="https://platform.example/deep_link_return")
    assert response.status_code == 303, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    returned = client.post("/lti/deep-link", data={"csrf_token": csrf_of(page),
                                                   "item": str(version.id)})
    form = FormReader(returned.get_data(as_text=True))
    assert form.action == "https://platform.example/deep_link_return"
    claims = verify_response(client, form.fields["JWT"])
    assert claims["iss"] == "tool-client" and claims["aud"] == ISSUER
    assert claims[LTI + "deployment_id"] == "dep-1"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == {"token": "dl-data-1"}
    offering = db.scalar(select(Offering))
    # The platform's own validator accepts it too (given the tool's JWKS).
    platform.registration.set_tool_key_set(client.get("/lti/jwks").json)
    items = platform.conf.validate_deeplinking_resp({"JWT": form.fields["JWT"]})
    assert [(i["type"], i["title"], i["url"], i["custom"]) for i in items] == [
        ("ltiResourceLink", version.title, "http://127.0.0.1:8000/lti/launch",
         {"offering_id": str(offering.id)})]


def test_lti1p3platform_launch_cannot_be_replayed(client, db, lms):
    platform, _ = lms
    login = client.get(_path(platform.login_url("user-9")))
    answer = platform.launch_form(query_of(login.headers["Location"]), user_id="user-9",
                                  roles=[LEARNER])
    data = {"id_token": answer["id_token"], "state": answer["state"]}
    assert client.post("/lti/launch", data=data).status_code == 303
    assert client.post("/lti/launch", data=data).status_code == 400
