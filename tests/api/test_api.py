"""The API's own behaviour: submissions with idempotency and a status URL, OAuth scopes and
course limits, and bad input answered with problem details that change nothing."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse
from oauth2_provider.models import Application
from rest_framework.test import APIClient

from edu_dl.models import ApiClient, Resource, Submission
from tests.api.test_permission_matrix import snapshot
from tests.factories import AssessmentFactory, ItemFactory, UserFactory
from tests.review_data import patch_grader_retraining, review_course

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: type("R", (), {"id": ""})())
    patch_grader_retraining(monkeypatch)
    built = review_course()
    course = built["course"]
    built["numeric"] = ItemFactory(course=course, numeric=True, skills=[built["optics"]])
    built["short"] = ItemFactory(course=course, title="Explain", skills=[built["optics"]])
    built["open_quiz"] = AssessmentFactory(
        course=course, title="Open", items=[built["numeric"], built["short"]]
    )
    return built


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def submit_url(data) -> str:
    return reverse(
        "edu_dl_api:submission_create",
        kwargs={"slug": data["course"].slug, "assessment_id": data["open_quiz"].pk},
    )


def test_a_submission_returns_rule_scores_at_once_and_a_status_url(data):
    client = as_user(data["alice"])
    body = {"answers": {str(data["numeric"].pk): 42, str(data["short"].pk): "Because."}}

    response = client.post(submit_url(data), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 201
    answer = response.json()
    assert answer["status"] == "pending"
    scores = {r["item"]: (r["status"], r["score"]) for r in answer["responses"]}
    assert scores[data["numeric"].pk] == ("graded", data["numeric"].max_score)
    assert scores[data["short"].pk] == ("pending", None)
    status = client.get(answer["status_url"])
    assert status.status_code == 200
    assert status.json()["id"] == answer["id"]


def test_a_retried_submission_returns_the_first_one(data):
    client = as_user(data["alice"])
    body = {"answers": {str(data["numeric"].pk): 41}}
    first = client.post(submit_url(data), body, format="json", HTTP_IDEMPOTENCY_KEY="same")

    again = client.post(submit_url(data), body, format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Submission.objects.filter(assessment=data["open_quiz"]).count() == 1


@pytest.mark.parametrize(
    "body, content_type, field",
    [
        ('{"answers": {', "application/json", None),
        ('{"answers": 5}', "application/json", "answers"),
        ('{"answers": {}, "extra": 1}', "application/json", "extra"),
        ('{"answers": {"abc": 1}}', "application/json", "answers"),
        ('{"answers": {"999999": 1}}', "application/json", None),
        ("answers=1", "application/x-www-form-urlencoded", None),
    ],
    ids=["malformed", "wrong-type", "unknown-field", "bad-key", "unknown-item", "not-json"],
)
def test_bad_submissions_are_problems_and_change_nothing(data, body, content_type, field):
    client = as_user(data["alice"])
    before = snapshot()

    response = client.post(submit_url(data), body, content_type=content_type)

    assert 400 <= response.status_code < 500
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == response.status_code and problem["detail"]
    if field:
        assert field in problem["errors"]
    assert snapshot() == before


def test_a_regex_key_the_grading_engine_cannot_read_is_a_problem_naming_the_field(data):
    client = as_user(data["teacher"])
    url = reverse("edu_dl_api:item_list", kwargs={"slug": data["course"].slug})
    body = {"kind": "exact_text", "text_match": "regex", "answer_key": "[a-"}
    before = snapshot()

    response = client.post(url, body, format="json")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"] == {
        "answer_key": [
            "answer_key is not a valid regular expression: unterminated character set at position 3"
        ]
    }
    assert snapshot() == before


def test_an_answer_a_regex_key_times_out_on_is_taken_and_waits_for_the_teacher(data):
    # given an open quiz of a regex item whose key backtracks for ever on a run of "a"s
    pattern = ItemFactory(
        course=data["course"], exact_text=True, text_match="regex", answer_key=r"(a|aa)+b"
    )
    quiz = AssessmentFactory(course=data["course"], title="Patterns", items=[pattern])
    url = reverse(
        "edu_dl_api:submission_create",
        kwargs={"slug": data["course"].slug, "assessment_id": quiz.pk},
    )

    # when alice submits a long answer
    response = as_user(data["alice"]).post(
        url, {"answers": {str(pattern.pk): "a" * 5000}}, format="json"
    )

    # then the submission is taken and the answer waits for the teacher
    assert response.status_code == 201
    answer = response.json()
    assert answer["status"] == "needs-review"
    assert [(r["item"], r["status"], r["score"]) for r in answer["responses"]] == [
        (pattern.pk, "needs-review", None)
    ]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_an_oversized_body_is_refused_with_413(data):
    client = as_user(data["teacher"])
    url = reverse("edu_dl_api:resource_list", kwargs={"slug": data["course"].slug})

    response = client.post(url, {"title": "x", "body": "y" * 5000}, format="json")

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")
    assert not Resource.objects.filter(title="x").exists()


def test_an_unknown_api_address_is_a_problem(data):
    response = as_user(data["teacher"]).get("/api/v1/courses/science/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def oauth_token(client: APIClient, application: Application, secret: str, scope: str) -> str:
    answer = client.post(
        "/o/token/",
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_id": application.client_id,
            "client_secret": secret,
        },
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["access_token"]


@pytest.fixture
def integration(data):
    application = Application.objects.create(
        name="Moodle",
        user=data["teacher"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="a-client-secret",
    )
    ApiClient.objects.create(application=application)
    return application


def test_an_oauth_client_acts_as_its_owner_within_its_scopes(data, integration):
    client = APIClient()
    token = oauth_token(client, integration, "a-client-secret", "read")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = reverse("edu_dl_api:resource_list", kwargs={"slug": data["course"].slug})

    assert client.get(url).status_code == 200
    refused = client.post(url, {"title": "Prisms"}, format="json")
    assert refused.status_code == 403
    assert not Resource.objects.filter(title="Prisms").exists()

    token = oauth_token(client, integration, "a-client-secret", "read write")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.post(url, {"title": "Prisms"}, format="json").status_code == 201


def test_an_oauth_client_limited_to_a_course_never_reaches_another(data, integration):
    other = data["other_course"]
    from edu_dl.models import Enrollment
    from edu_dl.services.courses import enrollment_create

    enrollment_create(user=data["teacher"], course=other, role=Enrollment.Role.TEACHER)
    integration.edu_dl_client.courses.set([data["course"]])
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {oauth_token(client, integration, 'a-client-secret', 'read')}"
    )

    listed = client.get(reverse("edu_dl_api:course_list")).json()
    assert [c["slug"] for c in listed["results"]] == [data["course"].slug]
    assert client.get(f"/api/v1/courses/{other.slug}/").status_code == 404


def test_a_bad_or_missing_token_is_401_with_a_challenge(data):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.get(reverse("edu_dl_api:course_list"))

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    assert "Bearer" in response["WWW-Authenticate"]


def test_an_application_without_an_owner_is_refused(data):
    application = Application.objects.create(
        name="Orphan",
        user=None,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="s3cret",
    )
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {oauth_token(client, application, 's3cret', 'read')}"
    )

    response = client.get(reverse("edu_dl_api:course_list"))

    assert response.status_code == 401
    assert "owner" in response.json()["detail"]


def test_a_student_sees_only_released_scores_of_their_own_work(data):
    alice = as_user(data["alice"])
    submission = data["submissions"]["alice"]
    url = reverse(
        "edu_dl_api:submission_detail",
        kwargs={"slug": data["course"].slug, "submission_id": submission.pk},
    )

    body = alice.get(url).json()

    assert {r["status"] for r in body["responses"]} >= {"pending"}
    assert all(r["score"] is None for r in body["responses"] if r["status"] != "graded")
    assert as_user(UserFactory()).get(url).status_code == 404


def test_a_nul_character_is_a_bad_request_not_a_server_error(data):
    client = as_user(data["teacher"])
    url = reverse("edu_dl_api:recommendation_list", kwargs={"slug": data["course"].slug})

    response = client.get(url + "?student=%12%00")

    assert response.status_code in (400, 404)
    assert response["Content-Type"].startswith("application/problem+json")
