"""The roster import endpoint: OneRoster CSV files uploaded (or sent as text), course staff only,
and garbage answered with problem details that change nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from edu_dl.models import Course, Enrollment
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory
from tests.services.test_roster import ENROLLMENTS, ENROLLMENTS_HEADER, USERS, roster, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def course() -> Course:
    return CourseFactory(slug="physics-a")


@pytest.fixture
def teacher(course):
    return EnrollmentFactory(course=course, role=Enrollment.Role.TEACHER).user


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(course: Course) -> str:
    return reverse("edu_dl_api:roster_import", kwargs={"slug": course.slug})


def upload(users: bytes | str = USERS, enrollments: bytes | str = ENROLLMENTS) -> dict:
    as_bytes = [text.encode() if isinstance(text, str) else text for text in (users, enrollments)]
    return {
        "users": SimpleUploadedFile("users.csv", as_bytes[0], content_type="text/csv"),
        "enrollments": SimpleUploadedFile("enrollments.csv", as_bytes[1], content_type="text/csv"),
    }


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body


def test_uploaded_files_enrol_the_class_and_answer_the_counts(course, teacher):
    response = as_user(teacher).post(url(course), upload(), format="multipart")

    assert response.status_code == 201, response.content[:500]
    assert response.json() == {
        "class_sourced_id": "physics-a",
        "users_created": 4,
        "users_matched": 0,
        "enrollments_created": 4,
        "enrollments_updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }
    assert roster(course)["carol"] == ("assistant", "a-203")


def test_the_files_text_may_be_sent_as_json_and_a_second_import_changes_nothing(course, teacher):
    client = as_user(teacher)
    body = {"users": USERS, "enrollments": ENROLLMENTS}
    client.post(url(course), body, format="json")
    before = state()

    response = client.post(url(course), body, format="json")

    assert response.status_code == 201
    assert (response.json()["unchanged"], response.json()["enrollments_created"]) == (4, 0)
    assert state()[:2] == before[:2]


def test_bad_rows_are_all_listed_and_nothing_changes(course, teacher):
    enrollments = ENROLLMENTS_HEADER + (
        "e-1,,,physics-a,school-1,t-100,teacher,,,\n"
        "e-2,,,physics-a,school-1,s-999,student,,,\n"
        "e-3,,,physics-a,school-1,p-300,guardian,,,\n"
    )
    users = USERS.replace("alice@school.example", "alice-at-school")
    before = state()

    response = as_user(teacher).post(url(course), upload(users, enrollments), format="multipart")

    body = assert_problem(response, 400)
    assert body["errors"] == {
        "users": ["users.csv line 3: email: 'alice-at-school' is not a valid email address"],
        "enrollments": [
            "enrollments.csv line 3: userSourcedId: 's-999' is not in users.csv",
            "enrollments.csv line 4: role: 'guardian' cannot take part in a course; only "
            "student, teacher, aide and proctor enrolments can be imported",
        ],
    }
    assert body["problem_count"] == 3
    assert body["detail"].startswith("3 problems in the roster files, nothing was imported: ")
    assert state() == before


@pytest.mark.parametrize("who, status", [("student", 403), ("other_teacher", 404)])
def test_a_student_or_another_courses_teacher_is_refused(course, who, status):
    if who == "student":
        user = EnrollmentFactory(course=course).user
    else:
        user = EnrollmentFactory(role=Enrollment.Role.TEACHER).user
    before = state()

    response = as_user(user).post(url(course), upload(), format="multipart")

    assert_problem(response, status)
    assert state() == before


def test_a_request_without_sign_in_is_refused(course):
    response = APIClient().post(url(course), upload(), format="multipart")

    assert_problem(response, 401)


@pytest.mark.parametrize(
    "body, format, field",
    [
        ({"users": SimpleUploadedFile("users.csv", USERS.encode())}, "multipart", "enrollments"),
        ({"users": USERS, "enrollments": 7}, "json", "enrollments"),
        ({"users": USERS, "enrollments": ENROLLMENTS, "classes": "x"}, "json", "classes"),
    ],
)
def test_a_missing_or_wrong_field_is_a_400_problem(course, teacher, body, format, field):
    before = state()

    response = as_user(teacher).post(url(course), body, format=format)

    assert field in assert_problem(response, 400)["errors"]
    assert state() == before


def test_binary_garbage_is_a_400_problem(course, teacher):
    garbage = bytes(range(256)) * 4
    before = state()

    response = as_user(teacher).post(url(course), upload(garbage, garbage), format="multipart")

    body = assert_problem(response, 400)
    assert body["errors"] == {
        "users": ["users.csv line 2: the file is not UTF-8 text"],
        "enrollments": ["enrollments.csv line 2: the file is not UTF-8 text"],
    }
    assert state() == before


def test_files_over_the_body_limit_are_a_413_problem(course, teacher, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = state()

    uploaded = as_user(teacher).post(url(course), upload(), format="multipart")
    as_text = as_user(teacher).post(
        url(course), {"users": USERS, "enrollments": ENROLLMENTS}, format="json"
    )

    assert "over the limit" in assert_problem(uploaded, 413)["detail"]
    assert_problem(as_text, 413)
    assert state() == before


def test_a_csv_body_is_an_unsupported_media_type(course, teacher):
    response = as_user(teacher).post(url(course), USERS, content_type="text/csv")

    assert_problem(response, 415)


def test_a_staff_user_of_the_course_other_than_a_teacher_may_import(course):
    assistant = EnrollmentFactory(course=course, role=Enrollment.Role.ASSISTANT).user
    admin = UserFactory(is_superuser=True)

    by_assistant = as_user(assistant).post(url(course), upload(), format="multipart")
    by_admin = as_user(admin).post(url(course), upload(), format="multipart")

    assert (by_assistant.status_code, by_admin.status_code) == (201, 201)
    assert by_admin.json()["unchanged"] == 4
