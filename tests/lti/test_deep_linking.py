"""Deep linking: a teacher picks an assessment inside the LMS; the tool answers with a content
item signed by its key, which the platform checks against the tool's JWKS."""

from __future__ import annotations

import jwt
import pytest
import requests

from edu_dl.lti.models import Context
from tests.factories import AssessmentFactory, CourseFactory, ItemFactory
from tests.lti.conftest import form_of
from tests.lti.simulator import INSTRUCTOR, LEARNER, LaunchSpec, Person
from tests.lti.test_launch import assert_problem

pytestmark = pytest.mark.django_db

TARA = Person(sub="t-1", roles=[INSTRUCTOR], given_name="Tara", family_name="Ng")
DEEP_LINKING = "https://purl.imsglobal.org/spec/lti-dl/claim/"


@pytest.fixture
def course(browser):
    """The course the LMS context stands for, holding two assessments."""
    course = CourseFactory(slug="bio101", title="Biology 101")
    AssessmentFactory(
        course=course,
        title="Cells",
        items=[
            ItemFactory(course=course, single_choice=True),
            ItemFactory(course=course, numeric=True),
        ],
    )
    AssessmentFactory(course=course, title="Empty")
    return course


def picker(browser, course):
    """A teacher's deep-linking launch, from the context already mapped to ``course``."""
    browser.launch(LaunchSpec(person=TARA, resource_link_id="setup", ags=False))
    Context.objects.update(course=course)
    return browser.launch(LaunchSpec(person=TARA, deep_linking=True))


def test_a_teacher_picks_an_assessment_and_the_platform_gets_a_signed_resource_link(
    browser, simulator, course, client
):
    page = picker(browser, course)
    assert page.status_code == 200
    assert "frame-ancestors 'self' " + simulator.base_url in page["Content-Security-Policy"]
    cells = course.assessments.get(title="Cells")
    assert [a.title for a in page.context["assessments"]] == ["Cells", "Empty"]
    launch_id = page.context["launch_id"]

    answer = client.post(
        "/lti/deep-linking/", {"launch_id": launch_id, "assessment_id": cells.pk}, secure=True
    )

    assert answer.status_code == 200
    form = form_of(answer.content.decode())
    assert form.action == simulator.deep_linking_return_url
    token = form.fields["JWT"]
    tool_keys = client.get("/lti/jwks/").json()["keys"]
    header = jwt.get_unverified_header(token)
    key = next(jwt.PyJWK(k) for k in tool_keys if k["kid"] == header["kid"])
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=simulator.issuer)
    assert claims["iss"] == simulator.client_id
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == (
        "LtiDeepLinkingResponse"
    )
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == (
        simulator.deployment_id
    )
    assert claims[DEEP_LINKING + "data"] == "opaque-platform-data"
    assert claims[DEEP_LINKING + "content_items"] == [
        {
            "type": "ltiResourceLink",
            "title": "Cells",
            "url": "https://testserver/lti/launch/",
            "custom": {"assessment_id": str(cells.pk)},
            "lineItem": {
                "scoreMaximum": 2.0,
                "label": "Cells",
                "resourceId": f"assessment-{cells.pk}",
                "tag": "edu_dl",
            },
        }
    ]
    # The browser posts the form on to the platform, which checks it with the tool's JWKS.
    accepted = requests.post(form.action, data=form.fields, timeout=10)
    assert accepted.status_code == 200
    assert simulator.deep_linking_answers == [claims[DEEP_LINKING + "content_items"]]


def test_a_deep_linking_answer_is_given_once(browser, course, client):
    launch_id = picker(browser, course).context["launch_id"]
    cells = course.assessments.get(title="Cells")
    choice = {"launch_id": launch_id, "assessment_id": cells.pk}
    assert client.post("/lti/deep-linking/", choice, secure=True).status_code == 200

    assert_problem(client.post("/lti/deep-linking/", choice, secure=True), 409)


def test_an_assessment_without_items_cannot_be_linked(browser, course, client):
    launch_id = picker(browser, course).context["launch_id"]
    empty = course.assessments.get(title="Empty")

    response = client.post(
        "/lti/deep-linking/", {"launch_id": launch_id, "assessment_id": empty.pk}, secure=True
    )

    assert_problem(response, 409)


def test_an_assessment_of_another_course_cannot_be_linked(browser, course, client):
    launch_id = picker(browser, course).context["launch_id"]
    other = CourseFactory()
    elsewhere = AssessmentFactory(course=other, items=[ItemFactory(course=other, numeric=True)])

    response = client.post(
        "/lti/deep-linking/", {"launch_id": launch_id, "assessment_id": elsewhere.pk}, secure=True
    )

    assert_problem(response, 404)


def test_an_unknown_launch_id_is_refused(browser, course, client):
    cells = course.assessments.get(title="Cells")

    response = client.post(
        "/lti/deep-linking/",
        {"launch_id": "lti1p3-launch-00000000", "assessment_id": cells.pk},
        secure=True,
    )

    assert_problem(response, 403)


def test_a_learner_cannot_ask_to_add_content(browser, course):
    response = browser.launch(
        LaunchSpec(person=Person(sub="s-1", roles=[LEARNER]), deep_linking=True)
    )

    assert_problem(response, 403)
