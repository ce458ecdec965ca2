"""The plain pages: login, my courses, a course's page and its "Retrain now" button."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Enrollment,
    Interaction,
    Item,
    Resource,
    ResourceSkill,
    Response,
    Skill,
    SkillPrerequisite,
    Submission,
    TrainingRun,
)
from edu_dl.services.class_summary import course_mastery_summary_refresh
from tests.factories import ModelVersionFactory, TrainingRunFactory
from tests.web.accounts import enroll, make_user
from tests.web.content import shown

pytestmark = pytest.mark.django_db

User = get_user_model()


# --- Local helpers -------------------------------------------------------------------------------


def add_students(course: Course, count: int, *, start: int = 0) -> None:
    for number in range(start, start + count):
        user = User.objects.create(username=f"student{number:03d}", first_name=f"Pupil{number:03d}")
        enroll(user, course)


def course_url(course: Course) -> str:
    return reverse("edu_dl:course_detail", kwargs={"slug": course.slug})


def models_url(course: Course) -> str:
    return reverse("edu_dl:models_page", kwargs={"slug": course.slug})


def training_url(course: Course) -> str:
    return reverse("edu_dl:course_training_request", kwargs={"slug": course.slug})


@pytest.fixture
def school():
    """Algebra, with content, a teacher, an assistant and two students; biology beside it."""
    algebra = Course.objects.create(slug="algebra", title="Algebra")
    biology = Course.objects.create(slug="biology", title="Biology")
    people = {
        "teacher": make_user("teacher"),
        "assistant": make_user("assistant"),
        "alice": make_user("alice", first_name="Alice", last_name="Able"),
        "bob": make_user("bob", first_name="Bob", last_name="Baker"),
        "bio_teacher": make_user("bio_teacher"),
        "bio_student": make_user("bio_student"),
        "stranger": make_user("stranger"),
        "admin": make_user("admin", is_superuser=True, is_staff=True),
    }
    enroll(people["teacher"], algebra, Enrollment.Role.TEACHER)
    enroll(people["assistant"], algebra, Enrollment.Role.ASSISTANT)
    enroll(people["alice"], algebra)
    enroll(people["bob"], algebra)
    enroll(people["bio_teacher"], biology, Enrollment.Role.TEACHER)
    enroll(people["bio_student"], biology)

    counting = Skill.objects.create(course=algebra, name="Counting")
    adding = Skill.objects.create(course=algebra, name="Adding")
    SkillPrerequisite.objects.create(skill=adding, prerequisite=counting)
    sum_item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="Two plus two")
    sum_item.skills.add(adding)
    essay = Item.objects.create(course=algebra, kind=Item.Kind.ESSAY, title="Why add")
    quiz = Assessment.objects.create(course=algebra, title="Quiz one")
    AssessmentItem.objects.create(assessment=quiz, item=sum_item, position=1)
    AssessmentItem.objects.create(assessment=quiz, item=essay, position=2)
    Assessment.objects.create(course=algebra, title="Unpublished exam", is_published=False)
    video = Resource.objects.create(course=algebra, title="Adding video", kind=Resource.Kind.VIDEO)
    ResourceSkill.objects.create(resource=video, skill=adding)
    TrainingRunFactory(
        course=algebra,
        status=TrainingRun.Status.RUNNING,
        progress=42,
        stage="training: epoch 3 of at most 30",
    )
    ModelVersionFactory(
        course=algebra,
        version=3,
        artifact_path="kt/algebra/3.pt",
        activated_at=datetime(2025, 1, 2, tzinfo=UTC),
    )

    def respond(student, item, **fields) -> Response:
        submission, _ = Submission.objects.get_or_create(
            student=student,
            assessment=quiz,
            defaults={"status": Submission.Status.GRADED, "submitted_at": timezone.now()},
        )
        return Response.objects.create(submission=submission, item=item, **fields)

    respond(people["alice"], sum_item, score=1, released=True, grade_source="rule", feedback="Yes")
    respond(people["alice"], essay, score=0.25, released=False, grade_source="model")
    respond(people["bob"], sum_item, score=0, released=True, grade_source="rule")
    return {"algebra": algebra, "biology": biology, **people}


# --- Login and anonymous visitors ----------------------------------------------------------------


def test_the_login_page_is_labelled_and_accessible(client):
    # When an anonymous visitor opens the login page
    response = client.get(reverse("login"))
    # Then it has a language, a skip link, labelled fields and the stylesheet
    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en"' in content
    assert '<a class="skip-link" href="#main">Skip to main content</a>' in content
    assert '<main id="main" tabindex="-1">' in content
    assert '<label for="id_username">Username</label>' in content
    assert '<label for="id_password">Password</label>' in content
    assert "edu_dl/site.css" in content


def test_signing_in_leads_to_my_courses(client, school):
    response = client.post(reverse("login"), {"username": "alice", "password": "pass-word-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("edu_dl:home")


def test_a_wrong_password_shows_an_error(client, school):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


@pytest.mark.parametrize("name", ["home", "course"])
def test_anonymous_visitors_are_sent_to_login(client, school, name):
    url = reverse("edu_dl:home") if name == "home" else course_url(school["algebra"])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


# --- My courses ----------------------------------------------------------------------------------


def test_home_lists_my_courses_with_my_role(client, school):
    # Given the teacher of algebra, who is also a student of biology
    enroll(school["teacher"], school["biology"])
    client.force_login(school["teacher"])
    # When they open the home page
    response = client.get(reverse("edu_dl:home"))
    # Then both courses are listed with the role in each
    assert [(entry["course"].slug, entry["role"]) for entry in response.context["courses"]] == [
        ("algebra", "Teacher"),
        ("biology", "Student"),
    ]
    content = response.content.decode()
    assert f'<a href="{course_url(school["algebra"])}">Algebra</a>' in content
    assert "<td>Teacher</td>" in content


def test_home_of_someone_without_courses_says_so(client, school):
    client.force_login(school["stranger"])
    response = client.get(reverse("edu_dl:home"))
    assert response.status_code == 200
    assert list(response.context["courses"]) == []
    assert "You are not enrolled in any course yet." in response.content.decode()


def test_home_of_a_superuser_lists_every_course(client, school):
    client.force_login(school["admin"])
    response = client.get(reverse("edu_dl:home"))
    assert [(entry["course"].slug, entry["role"]) for entry in response.context["courses"]] == [
        ("algebra", "Administrator"),
        ("biology", "Administrator"),
    ]


def test_the_admin_link_is_shown_only_to_staff_users(client, school):
    client.force_login(school["admin"])
    assert 'href="/admin/"' in client.get(reverse("edu_dl:home")).content.decode()
    client.force_login(school["teacher"])
    assert 'href="/admin/"' not in client.get(reverse("edu_dl:home")).content.decode()


# --- The course page: staff ----------------------------------------------------------------------


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_course_staff_see_the_class_overview(client, school, person):
    # Given a member of algebra's staff (or a superuser)
    client.force_login(school[person])
    # When they open the course page
    response = client.get(course_url(school["algebra"]))
    # Then they see the class overview: every student in the heatmap, the published
    # assessments' statistics, the grading queue and the active model (the students list, the
    # content and the training runs have their own pages: see the course's tabs)
    assert response.status_code == 200
    assert response.context["is_course_staff"] is True
    assert [row.username for row in response.context["mastery"].page.object_list] == [
        "alice",
        "bob",
    ]
    assert [skill.name for skill in response.context["mastery"].skills] == ["Adding", "Counting"]
    content = response.content.decode()
    assert '>Alice Able</a> <span class="detail">alice</span></th>' in content
    assert '>Bob Baker</a> <span class="detail">bob</span></th>' in content
    assert '<h3 id="assessment-' in content and ">Quiz one</h3>" in content
    assert "Unpublished exam" not in content  # statistics are of published assessments
    assert "Knowledge tracing: model version 3 (dkt) is active." in content
    queue = reverse("edu_dl:review_queue", kwargs={"slug": "algebra"})
    assert f'<a href="{queue}">Grading queue: 0 responses waiting</a>' in content
    assert f'<a href="{models_url(school["algebra"])}">Models and training</a>' in content


def test_the_student_list_has_fifty_students_a_page(client, school):
    # Given 55 students in all
    add_students(school["algebra"], 53)
    client.force_login(school["teacher"])
    url = reverse("edu_dl:student_list", kwargs={"slug": "algebra"})
    # When the teacher opens the first and the second page of the students list
    first = client.get(url)
    second = client.get(url, {"page": 2})
    # Then the first has 50 and the second the last 5
    assert len(first.context["students_page"]) == 50
    assert first.context["students_page"].paginator.num_pages == 2
    assert [user.username for user in second.context["students_page"]] == [
        "student048",
        "student049",
        "student050",
        "student051",
        "student052",
    ]
    assert "Page 2 of 2" in second.content.decode()


def test_the_course_page_query_count_does_not_grow_with_the_class(client, school):
    # Given the teacher's page with 3 students (alice, bob and one more), and the class
    # summary kept up to date as the worker keeps it
    algebra = school["algebra"]
    add_students(algebra, 1)
    client.force_login(school["teacher"])
    course_mastery_summary_refresh(course=algebra)
    with CaptureQueriesContext(connection) as small_class:
        small = client.get(course_url(algebra))
    # When the class grows to 30 students
    add_students(algebra, 27, start=1)
    course_mastery_summary_refresh(course=algebra)
    with CaptureQueriesContext(connection) as big_class:
        big = client.get(course_url(algebra))
    # Then the page lists them all with the same number of queries
    assert len(small.context["mastery"].page.object_list) == 3
    assert len(big.context["mastery"].page.object_list) == 30
    assert len(big_class.captured_queries) == len(small_class.captured_queries)


def test_a_student_page_query_count_does_not_grow_with_the_class(client, school):
    client.force_login(school["alice"])
    with CaptureQueriesContext(connection) as small_class:
        client.get(course_url(school["algebra"]))
    add_students(school["algebra"], 30)
    with CaptureQueriesContext(connection) as big_class:
        client.get(course_url(school["algebra"]))
    assert len(big_class.captured_queries) == len(small_class.captured_queries)


# --- The course page: students and outsiders -----------------------------------------------------


def test_a_student_sees_only_their_own_released_grades(client, school):
    # Given alice, a student with one released and one unreleased score, and a quiz not started
    Assessment.objects.create(course=school["algebra"], title="Quiz two")
    client.force_login(school["alice"])
    # When she opens the course page
    response = client.get(course_url(school["algebra"]))
    # Then she sees her published assessments and her released score only
    assert response.status_code == 200
    assert response.context["is_course_staff"] is False
    assert [a.title for a in response.context["assessments"]] == ["Quiz one", "Quiz two"]
    assert [(r.item.title, r.score) for r in response.context["responses"]] == [
        ("Two plus two", 1.0)
    ]
    content = response.content.decode()
    assert "<td>1 of 1</td>" in content
    assert "<td>Yes</td>" in content
    submission = Submission.objects.get(student=school["alice"])
    submission_url = reverse(
        "edu_dl:submission_detail",
        kwargs={"slug": "algebra", "submission_id": submission.pk},
    )
    # her submission's status, linked to her submission's page
    assert f'<td><a href="{submission_url}">Graded</a></td>' in content
    assert "<td>Not started</td>" in content
    # And nothing of anyone else, nor anything for staff only
    for hidden in [
        "bob",
        "Bob",
        "Why add",
        "0.25",
        "Unpublished exam",
        "Students",
        "Retrain now",
        "Counting",
        "Adding video",
        "dkt",
    ]:
        assert not shown(hidden, content), hidden
    assert "students_page" not in response.context


@pytest.mark.parametrize("person", ["bio_teacher", "bio_student", "stranger"])
def test_people_without_a_role_in_the_course_get_404(client, school, person):
    client.force_login(school[person])
    response = client.get(course_url(school["algebra"]))
    assert response.status_code == 404


def test_an_unknown_course_is_404(client, school):
    client.force_login(school["teacher"])
    response = client.get(reverse("edu_dl:course_detail", kwargs={"slug": "no-such-course"}))
    assert response.status_code == 404


# --- "Retrain now" -------------------------------------------------------------------------------


def give_interactions(course: Course, student, count: int) -> None:
    Interaction.objects.bulk_create(
        Interaction(course=course, student=student, correct=True, timestamp=timezone.now())
        for _ in range(count)
    )


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_course_staff_can_ask_for_training(client, school, settings, person):
    # Given a course with enough interactions to train on
    settings.EDU_DL = {**settings.EDU_DL, "KT_MIN_INTERACTIONS": 2}
    algebra = school["algebra"]
    TrainingRun.objects.all().delete()
    give_interactions(algebra, school["alice"], 2)
    client.force_login(school[person])
    # When they press "Retrain now"
    response = client.post(training_url(algebra), follow=True)
    # Then one queued knowledge-tracing run for the course exists, asked for by them,
    # and they are back on the models page with a message
    run = TrainingRun.objects.get()
    assert (run.kind, run.scope_key, run.status, run.requested_by) == (
        "kt",
        f"course:{algebra.pk}",
        "queued",
        school[person],
    )
    assert response.redirect_chain == [(models_url(algebra), 302)]
    assert [str(message) for message in response.context["messages"]] == [
        f"Training run #{run.pk} requested (status: Queued)."
    ]


def test_a_refused_training_request_shows_why_and_creates_nothing(client, school):
    # Given a course with too few interactions (the default minimum is 50)
    algebra = school["algebra"]
    TrainingRun.objects.all().delete()
    client.force_login(school["teacher"])
    # When the teacher presses "Retrain now"
    response = client.post(training_url(algebra), follow=True)
    # Then no run exists and the page says why
    assert TrainingRun.objects.count() == 0
    assert response.redirect_chain == [(models_url(algebra), 302)]
    assert [str(message) for message in response.context["messages"]] == [
        "Training was not started: course 'algebra' has 0 interactions; knowledge tracing "
        "needs at least 50 to train"
    ]


@pytest.mark.parametrize(
    ("person", "status"),
    [("alice", 403), ("bio_teacher", 404), ("bio_student", 404), ("stranger", 404)],
)
def test_only_course_staff_may_ask_for_training(client, school, settings, person, status):
    # Given a course with enough data to train and no open run (so a request would create one)
    settings.EDU_DL = {**settings.EDU_DL, "KT_MIN_INTERACTIONS": 1}
    give_interactions(school["algebra"], school["alice"], 1)
    TrainingRun.objects.all().delete()
    client.force_login(school[person])
    # When a student or an outsider posts the training request
    response = client.post(training_url(school["algebra"]))
    # Then it is refused and no run was created
    assert response.status_code == status
    assert TrainingRun.objects.count() == 0


def test_anonymous_training_request_is_sent_to_login_and_creates_nothing(client, school, settings):
    settings.EDU_DL = {**settings.EDU_DL, "KT_MIN_INTERACTIONS": 1}
    give_interactions(school["algebra"], school["alice"], 1)
    TrainingRun.objects.all().delete()
    url = training_url(school["algebra"])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"
    assert TrainingRun.objects.count() == 0


def test_training_cannot_be_requested_with_get(client, school):
    client.force_login(school["teacher"])
    response = client.get(training_url(school["algebra"]))
    assert response.status_code == 405
    assert TrainingRun.objects.count() == 1  # the fixture's run, nothing more
