"""OIDC login and resource-link launches from the simulated platform, and the launches the tool
refuses (with nothing created)."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.urls import reverse

from edu_dl.lti.models import Context, LtiUser, ResourceLink
from edu_dl.lti.services.launches import lti_role_of
from edu_dl.models import Course, Enrollment
from tests.factories import AssessmentFactory, CourseFactory, EnrollmentFactory, ItemFactory
from tests.lti.simulator import (
    INSTITUTION_ADMINISTRATOR,
    INSTRUCTOR,
    LEARNER,
    MENTOR,
    SYSTEM_USER,
    TEACHING_ASSISTANT,
    LaunchSpec,
    Person,
    rsa_private_pem,
)

User = get_user_model()

pytestmark = pytest.mark.django_db

ALICE = Person(
    sub="a7c3-learner",
    roles=[LEARNER],
    given_name="Alice",
    family_name="Lee",
    email="alice@school.example",
)
TARA = Person(sub="t-1", roles=[INSTRUCTOR], given_name="Tara", family_name="Ng")


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "lti_users": LtiUser.objects.count(),
        "courses": Course.objects.count(),
        "contexts": Context.objects.count(),
        "enrollments": Enrollment.objects.count(),
        "links": ResourceLink.objects.count(),
    }


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == status
    return body


# --- launches that succeed ------------------------------------------------------------------


def test_a_learners_first_launch_makes_user_course_and_enrollment_and_signs_them_in(
    browser, simulator, platform, client
):
    response = browser.launch(LaunchSpec(person=ALICE))

    identity = LtiUser.objects.select_related("user").get()
    user = identity.user
    course = Course.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("edu_dl:course_detail", kwargs={"slug": course.slug})
    assert (identity.platform, identity.sub) == (platform, "a7c3-learner")
    assert (user.username, user.first_name, user.last_name, user.email) == (
        f"lti{platform.pk}-a7c3-learner",
        "Alice",
        "Lee",
        "alice@school.example",
    )
    assert not user.has_usable_password()
    assert (course.slug, course.title) == ("bio101", "Biology 101")
    context = Context.objects.get()
    assert (context.platform, context.context_id, context.course) == (platform, "bio-101", course)
    assert context.memberships_url == simulator.memberships_url("bio-101")
    enrollment = Enrollment.objects.get()
    assert (enrollment.user, enrollment.course, enrollment.role, enrollment.external_id) == (
        user,
        course,
        Enrollment.Role.STUDENT,
        "a7c3-learner",
    )
    link = ResourceLink.objects.get()
    assert (link.resource_link_id, link.course, link.context, link.assessment) == (
        "quiz-link-1",
        course,
        context,
        None,
    )
    assert link.lineitem_url == simulator.line_item_of("quiz-link-1")["id"]
    assert link.accepts_scores is True
    assert int(client.session[SESSION_KEY]) == user.pk
    assert client.get(response["Location"]).status_code == 200


def test_a_second_launch_finds_the_same_user_and_course_and_follows_the_lms_name(browser):
    browser.launch(LaunchSpec(person=ALICE))
    renamed = Person(**{**ALICE.__dict__, "family_name": "Lee-Park"})

    response = browser.launch(LaunchSpec(person=renamed, resource_link_id="quiz-link-2"))

    assert response.status_code == 302
    assert counts() == {
        "users": 1,
        "lti_users": 1,
        "courses": 1,
        "contexts": 1,
        "enrollments": 1,
        "links": 2,
    }
    assert User.objects.get().last_name == "Lee-Park"


def test_an_instructor_launch_makes_a_teacher_and_lands_on_the_course_page(browser, client):
    response = browser.launch(LaunchSpec(person=TARA))

    course = Course.objects.get()
    enrollment = Enrollment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("edu_dl:course_detail", kwargs={"slug": course.slug})
    assert enrollment.role == Enrollment.Role.TEACHER
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["is_course_staff"] is True


def test_the_platforms_key_set_is_cached_and_fetched_again_when_it_rotates_its_key(
    browser, simulator
):
    assert browser.launch(LaunchSpec(person=ALICE)).status_code == 302
    assert browser.launch(LaunchSpec(person=ALICE)).status_code == 302
    assert simulator.key_set_requests == 1
    simulator.rotate_key()

    response = browser.launch(LaunchSpec(person=ALICE))

    assert response.status_code == 302
    assert simulator.key_set_requests == 2


def test_a_link_made_by_deep_linking_opens_its_assessment(browser):
    course = CourseFactory(slug="bio101", title="Biology 101")
    quiz = AssessmentFactory(course=course, items=[ItemFactory(course=course, single_choice=True)])
    browser.launch(LaunchSpec(person=TARA))  # the context's first launch maps it to a course
    Context.objects.update(course=course)

    response = browser.launch(
        LaunchSpec(
            person=ALICE, resource_link_id="new-link", custom={"assessment_id": str(quiz.pk)}
        )
    )

    assert response.status_code == 302
    assert ResourceLink.objects.get(resource_link_id="new-link").assessment == quiz


def test_a_link_naming_an_assessment_of_another_course_opens_none(browser):
    elsewhere = AssessmentFactory()

    browser.launch(LaunchSpec(person=ALICE, custom={"assessment_id": str(elsewhere.pk)}))

    assert ResourceLink.objects.get().assessment is None


def test_a_launch_without_context_lands_in_the_platforms_default_course(browser, platform):
    platform.course = CourseFactory()
    platform.save()

    response = browser.launch(LaunchSpec(person=ALICE, context_id=None))

    assert response.status_code == 302
    assert Enrollment.objects.get().course == platform.course
    assert Context.objects.count() == 0


def test_a_new_context_lands_in_the_default_course_when_there_is_one(browser, platform):
    platform.course = CourseFactory()
    platform.save()

    browser.launch(LaunchSpec(person=ALICE))

    assert Context.objects.get().course == platform.course
    assert Course.objects.count() == 1


def test_a_hand_made_enrollment_keeps_its_role_when_the_lms_says_otherwise(browser):
    browser.launch(LaunchSpec(person=ALICE))
    enrollment = Enrollment.objects.get()
    enrollment.external_id = ""  # as if a teacher had enrolled her here
    enrollment.role = Enrollment.Role.ASSISTANT
    enrollment.save()

    browser.launch(LaunchSpec(person=ALICE))

    assert Enrollment.objects.get().role == Enrollment.Role.ASSISTANT


def test_an_lms_enrollment_follows_the_lms_role(browser):
    browser.launch(LaunchSpec(person=ALICE))

    browser.launch(LaunchSpec(person=Person(**{**ALICE.__dict__, "roles": [TEACHING_ASSISTANT]})))

    assert Enrollment.objects.get().role == Enrollment.Role.ASSISTANT


def test_an_lms_account_is_never_joined_to_a_local_account_of_the_same_email(browser):
    local = EnrollmentFactory(user__email="alice@school.example").user

    browser.launch(LaunchSpec(person=ALICE))

    assert LtiUser.objects.get().user != local


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([LEARNER], "student"),
        (["Learner"], "student"),
        ([INSTRUCTOR], "teacher"),
        ([LEARNER.replace("Learner", "Administrator")], "teacher"),
        ([INSTRUCTOR, TEACHING_ASSISTANT], "assistant"),
        ([TEACHING_ASSISTANT], "assistant"),
        ([SYSTEM_USER, INSTITUTION_ADMINISTRATOR, LEARNER], "student"),
        ([SYSTEM_USER, INSTITUTION_ADMINISTRATOR], None),
        ([MENTOR], None),
        ([], None),
    ],
)
def test_lis_roles_map_to_enrollment_roles(roles, expected):
    assert lti_role_of(roles) == expected


# --- launches that are refused --------------------------------------------------------------


def test_a_token_signed_by_another_key_is_refused(browser):
    before = counts()

    response = browser.launch(LaunchSpec(person=ALICE, signing_key_pem=rsa_private_pem()))

    body = assert_problem(response, 403)
    assert "Signature verification failed" in body["detail"]
    assert counts() == before
    assert SESSION_KEY not in browser.client.session


def test_an_expired_token_is_refused(browser):
    before = counts()

    response = browser.launch(LaunchSpec(person=ALICE, expires_in=-600))

    body = assert_problem(response, 403)
    assert "expired" in body["detail"]
    assert counts() == before


def test_a_token_for_another_audience_is_refused(browser):
    before = counts()

    response = browser.launch(
        LaunchSpec(person=ALICE, audience="another-tool", authorized_party="another-tool")
    )

    body = assert_problem(response, 403)
    assert "Registration not found" in body["detail"]
    assert counts() == before


def test_a_token_for_several_audiences_authorised_for_another_party_is_refused(browser, simulator):
    before = counts()

    response = browser.launch(
        LaunchSpec(
            person=ALICE,
            audience=[simulator.client_id, "another-tool"],
            authorized_party="another-tool",
        )
    )

    body = assert_problem(response, 403)
    assert "azp" in body["detail"]
    assert counts() == before


def test_a_token_from_another_issuer_than_its_registration_is_refused(browser, simulator):
    before = counts()

    response = browser.launch(LaunchSpec(person=ALICE, issuer="https://lms.attacker.example"))

    body = assert_problem(response, 403)
    assert "Registration not found" in body["detail"]
    assert counts() == before


def test_a_replayed_launch_is_refused_even_from_the_browser_it_was_made_for(browser):
    form = browser.launch_form(LaunchSpec(person=ALICE))
    assert browser.post(form).status_code == 302
    before = counts()

    response = browser.post(form)  # same cookies, same state, same id token

    body = assert_problem(response, 403)
    assert "nonce already used" in body["detail"]
    assert counts() == before


def test_a_replayed_launch_for_another_person_does_not_sign_them_in(browser, client):
    form = browser.launch_form(LaunchSpec(person=ALICE))
    assert browser.post(form).status_code == 302
    browser.launch(LaunchSpec(person=TARA))
    tara = LtiUser.objects.get(sub=TARA.sub).user

    response = browser.post(form)

    assert_problem(response, 403)
    assert int(client.session[SESSION_KEY]) == tara.pk


def test_a_token_with_a_nonce_the_tool_never_issued_is_refused(browser, client):
    form = browser.launch_form(LaunchSpec(person=ALICE))
    client.cookies.clear()  # another browser: neither our state cookie nor our nonce
    before = counts()

    response = browser.post(form)

    assert_problem(response, 403)
    assert counts() == before


def test_a_login_from_an_unknown_issuer_is_refused(client, db):
    response = client.get(
        "/lti/login/",
        {"iss": "https://unknown.example", "login_hint": "x", "target_link_uri": "x"},
        secure=True,
    )

    body = assert_problem(response, 403)
    assert "https://unknown.example" in body["detail"]
    assert counts() == dict.fromkeys(counts(), 0)


def test_a_login_from_an_inactive_platform_is_refused(browser, platform):
    platform.is_active = False
    platform.save()

    response = browser.login(LaunchSpec(person=ALICE))

    assert_problem(response, 403)


def test_a_launch_from_an_unregistered_deployment_is_refused(browser):
    before = counts()

    response = browser.launch(LaunchSpec(person=ALICE, deployment_id="deployment-9"))

    body = assert_problem(response, 403)
    assert "deployment" in body["detail"]
    assert counts() == before


def test_a_person_without_a_course_role_is_refused(browser):
    before = counts()

    response = browser.launch(LaunchSpec(person=Person(sub="m-1", roles=[MENTOR])))

    assert_problem(response, 403)
    assert counts() == before


def test_a_launch_without_context_or_default_course_is_refused(browser):
    before = counts()

    response = browser.launch(LaunchSpec(person=ALICE, context_id=None))

    assert_problem(response, 400)
    assert counts() == before


def test_a_launch_without_token_is_a_bad_request(client, db):
    assert_problem(client.post("/lti/launch/", {"state": "s"}, secure=True), 400)


def test_a_deactivated_account_is_refused(browser):
    browser.launch(LaunchSpec(person=ALICE))
    User.objects.update(is_active=False)
    browser.client.logout()

    response = browser.launch(LaunchSpec(person=ALICE))

    assert_problem(response, 403)
    assert SESSION_KEY not in browser.client.session
