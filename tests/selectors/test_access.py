"""Who may see what: course roles, course lookups, students and grades."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Enrollment,
    Item,
    Response,
    Skill,
    Submission,
    TrainingRun,
)
from edu_dl.selectors import (
    active_model_version,
    assessments_visible,
    course_get_for_user,
    course_is_staff,
    course_role,
    courses_for_user,
    items_visible,
    resources_visible,
    responses_visible,
    skills_visible,
    student_record_visible,
    students_visible,
    training_runs_visible,
)
from edu_dl.services.errors import NotFound
from tests.factories import ModelVersionFactory, TrainingRunFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


# --- Local helpers -------------------------------------------------------------------------------


def make_user(username: str, **fields):
    return User.objects.create_user(username=username, **fields)


def make_course(slug: str) -> Course:
    return Course.objects.create(slug=slug, title=slug.replace("-", " ").title())


def enroll(user, course: Course, role: str = Enrollment.Role.STUDENT) -> Enrollment:
    return Enrollment.objects.create(user=user, course=course, role=role)


def fresh(user):
    """The user read again, so that no role cached on the object answers for the database."""
    return User.objects.get(pk=user.pk)


@pytest.fixture
def school():
    """Two courses: algebra (a teacher, an assistant, two students) and biology (its own two)."""
    algebra = make_course("algebra")
    biology = make_course("biology")
    people = {
        "teacher": make_user("teacher"),
        "assistant": make_user("assistant"),
        "alice": make_user("alice"),
        "bob": make_user("bob"),
        "bio_teacher": make_user("bio_teacher"),
        "bio_student": make_user("bio_student"),
        "stranger": make_user("stranger"),
        "admin": make_user("admin", is_superuser=True, is_staff=True),
        "staff_only": make_user("staff_only", is_staff=True),
    }
    enroll(people["teacher"], algebra, Enrollment.Role.TEACHER)
    enroll(people["assistant"], algebra, Enrollment.Role.ASSISTANT)
    enroll(people["alice"], algebra)
    enroll(people["bob"], algebra)
    enroll(people["bio_teacher"], biology, Enrollment.Role.TEACHER)
    enroll(people["bio_student"], biology)
    return {"algebra": algebra, "biology": biology, **people}


def make_response(*, student, assessment: Assessment, item: Item, **fields) -> Response:
    submission, _ = Submission.objects.get_or_create(
        student=student,
        assessment=assessment,
        defaults={"status": Submission.Status.GRADED, "submitted_at": timezone.now()},
    )
    return Response.objects.create(submission=submission, item=item, **fields)


# --- course_role ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        ("teacher", "teacher"),
        ("assistant", "assistant"),
        ("alice", "student"),
        ("bio_teacher", None),
        ("bio_student", None),
        ("stranger", None),
        ("admin", None),
    ],
)
def test_course_role_is_the_enrollment_role_or_none(school, person, expected):
    # Given a course with people in several roles
    # When each asks for their role in algebra
    role = course_role(user=school[person], course=school["algebra"])
    # Then it is their enrollment's role, and None for people not enrolled (superusers included)
    assert role == expected


def test_course_role_of_anonymous_is_none(school):
    assert course_role(user=AnonymousUser(), course=school["algebra"]) is None


def test_course_role_of_an_inactive_user_is_none(school):
    # Given a teacher whose account is deactivated
    teacher = school["teacher"]
    teacher.is_active = False
    teacher.save()
    # Then they have no role left
    assert course_role(user=fresh(teacher), course=school["algebra"]) is None


# --- courses_for_user / course_get_for_user ------------------------------------------------------


def test_courses_for_user_lists_the_enrolled_courses_with_the_role(school):
    # Given a third course that the teacher takes as a student
    chemistry = make_course("chemistry")
    enroll(school["teacher"], chemistry)
    # When the teacher's courses are listed
    courses = courses_for_user(user=school["teacher"])
    # Then they are the two enrolled courses, by title, each with the teacher's role in it
    assert [(course.slug, course.user_role) for course in courses] == [
        ("algebra", "teacher"),
        ("chemistry", "student"),
    ]


def test_courses_for_user_of_a_superuser_is_every_course(school):
    # Given a superuser enrolled nowhere
    # When their courses are listed
    courses = courses_for_user(user=school["admin"])
    # Then every course is there, with no role
    assert [(course.slug, course.user_role) for course in courses] == [
        ("algebra", None),
        ("biology", None),
    ]


@pytest.mark.parametrize("person", ["stranger", "staff_only"])
def test_courses_for_user_without_enrollments_is_empty(school, person):
    # is_staff (the admin site) grants no course access: only roles and superuser status do
    assert list(courses_for_user(user=school[person])) == []


def test_courses_for_anonymous_is_empty(school):
    assert list(courses_for_user(user=AnonymousUser())) == []


@pytest.mark.parametrize("person", ["teacher", "assistant", "alice", "admin"])
def test_course_get_for_user_returns_the_course_to_people_with_access(school, person):
    course = course_get_for_user(user=school[person], slug="algebra")
    assert course == school["algebra"]


@pytest.mark.parametrize("person", ["bio_teacher", "bio_student", "stranger", "staff_only"])
def test_course_get_for_user_hides_an_existing_course_from_people_without_a_role(school, person):
    # When someone with no role in algebra asks for it
    with pytest.raises(NotFound) as existing:
        course_get_for_user(user=school[person], slug="algebra")
    # Then the answer is the same as for a course that does not exist
    with pytest.raises(NotFound) as missing:
        course_get_for_user(user=school[person], slug="no-such-course")
    assert existing.value.message == missing.value.message == "No such course."


def test_course_get_for_anonymous_is_not_found(school):
    with pytest.raises(NotFound):
        course_get_for_user(user=AnonymousUser(), slug="algebra")


# --- course_is_staff -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        ("teacher", True),
        ("assistant", True),
        ("admin", True),
        ("alice", False),
        ("bio_teacher", False),
        ("bio_student", False),
        ("stranger", False),
        ("staff_only", False),
    ],
)
def test_course_is_staff(school, person, expected):
    assert course_is_staff(user=school[person], course=school["algebra"]) is expected


def test_course_is_staff_of_anonymous_is_false(school):
    assert course_is_staff(user=AnonymousUser(), course=school["algebra"]) is False


def test_a_role_change_is_seen_by_a_fresh_user_object(school):
    # Given an assistant whose role was checked (and cached on the request's user object)
    assistant = school["assistant"]
    assert course_is_staff(user=assistant, course=school["algebra"]) is True
    # When they are made a student
    Enrollment.objects.filter(user=assistant).update(role=Enrollment.Role.STUDENT)
    # Then the next request (a new user object) sees the new role
    assert course_is_staff(user=fresh(assistant), course=school["algebra"]) is False


# --- students_visible / student_record_visible ---------------------------------------------------


@pytest.mark.parametrize("person", ["teacher", "assistant", "admin"])
def test_course_staff_see_every_student_and_no_staff(school, person):
    students = students_visible(user=school[person], course=school["algebra"])
    assert [student.username for student in students] == ["alice", "bob"]


def test_a_student_sees_only_themself(school):
    students = students_visible(user=school["alice"], course=school["algebra"])
    assert [student.username for student in students] == ["alice"]


@pytest.mark.parametrize("person", ["bio_teacher", "bio_student", "stranger", "staff_only"])
def test_people_of_other_courses_see_no_students(school, person):
    assert list(students_visible(user=school[person], course=school["algebra"])) == []


def test_anonymous_sees_no_students(school):
    assert list(students_visible(user=AnonymousUser(), course=school["algebra"])) == []


@pytest.mark.parametrize(
    ("viewer", "student", "expected"),
    [
        ("teacher", "alice", True),
        ("assistant", "bob", True),
        ("admin", "alice", True),
        ("alice", "alice", True),
        ("alice", "bob", False),
        ("bio_teacher", "alice", False),
        ("bio_student", "alice", False),
        ("stranger", "alice", False),
        # Only students have records: staff and outsiders have none in the course.
        ("teacher", "assistant", False),
        ("admin", "bio_student", False),
        ("teacher", "teacher", False),
    ],
)
def test_student_record_visible(school, viewer, student, expected):
    visible = student_record_visible(
        viewer=school[viewer], student=school[student], course=school["algebra"]
    )
    assert visible is expected


def test_student_record_of_anonymous_viewer_is_not_visible(school):
    visible = student_record_visible(
        viewer=AnonymousUser(), student=school["alice"], course=school["algebra"]
    )
    assert visible is False


# --- Course content ------------------------------------------------------------------------------


def test_students_see_published_assessments_with_their_own_submission_status(school):
    # Given a published and a draft assessment, and a submission by alice and another by bob
    algebra = school["algebra"]
    item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="2+2")
    quiz = Assessment.objects.create(course=algebra, title="Quiz")
    AssessmentItem.objects.create(assessment=quiz, item=item, position=1)
    Assessment.objects.create(course=algebra, title="Draft", is_published=False)
    Submission.objects.create(
        student=school["bob"], assessment=quiz, status=Submission.Status.GRADED
    )
    mine = Submission.objects.create(
        student=school["alice"], assessment=quiz, status=Submission.Status.SUBMITTED
    )
    # When alice, the teacher and a stranger list the assessments
    for_alice = assessments_visible(user=school["alice"], course=algebra)
    for_teacher = assessments_visible(user=school["teacher"], course=algebra)
    for_stranger = assessments_visible(user=school["bio_student"], course=algebra)
    # Then alice sees the published one with her own status, staff see both, a stranger none
    assert [
        (a.title, a.item_count, a.my_submission_status, a.my_submission_id) for a in for_alice
    ] == [("Quiz", 1, "submitted", mine.pk)]
    assert sorted(a.title for a in for_teacher) == ["Draft", "Quiz"]
    assert list(for_stranger) == []


def test_a_student_sees_only_their_own_released_scores(school):
    # Given responses of alice (released, unreleased) and bob (released)
    algebra = school["algebra"]
    item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="2+2")
    other = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="3+3")
    quiz = Assessment.objects.create(course=algebra, title="Quiz")
    released = make_response(
        student=school["alice"], assessment=quiz, item=item, score=1, released=True
    )
    unreleased = make_response(
        student=school["alice"], assessment=quiz, item=other, score=0, released=False
    )
    bobs = make_response(student=school["bob"], assessment=quiz, item=item, score=1, released=True)
    # When each person lists the responses they may see
    for_alice = responses_visible(user=school["alice"], course=algebra)
    for_teacher = responses_visible(user=school["teacher"], course=algebra)
    for_outsider = responses_visible(user=school["bio_teacher"], course=algebra)
    # Then alice sees her released one only; the teacher all three; an outsider none
    assert list(for_alice) == [released]
    assert set(for_teacher) == {released, unreleased, bobs}
    assert list(for_outsider) == []


def test_scores_held_until_the_due_date_are_hidden_from_the_student_until_then(school):
    # Given released scores in an assessment that holds grades until a future due date
    algebra = school["algebra"]
    item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="2+2")
    held = Assessment.objects.create(
        course=algebra,
        title="Held",
        hold_grades_until_due=True,
        due_at=timezone.now() + timedelta(days=1),
    )
    past = Assessment.objects.create(
        course=algebra,
        title="Past",
        hold_grades_until_due=True,
        due_at=timezone.now() - timedelta(days=1),
    )
    make_response(student=school["alice"], assessment=held, item=item, score=1, released=True)
    shown = make_response(
        student=school["alice"], assessment=past, item=item, score=1, released=True
    )
    # When alice lists her scores
    responses = responses_visible(user=school["alice"], course=algebra)
    # Then only the one whose due date has passed is there
    assert list(responses) == [shown]


def test_skills_items_resources_training_and_models_are_for_course_staff_only(school):
    # Given a course with a skill, an item, a training run and an active model
    algebra = school["algebra"]
    skill = Skill.objects.create(course=algebra, name="Addition")
    item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="2+2")
    item.skills.add(skill)
    run = TrainingRunFactory(course=algebra)
    version = ModelVersionFactory(course=algebra)
    # When the teacher and a student ask
    teacher, alice = school["teacher"], school["alice"]
    # Then the teacher sees them and the student sees nothing
    assert list(skills_visible(user=teacher, course=algebra)) == [skill]
    assert list(items_visible(user=teacher, course=algebra)) == [item]
    assert list(training_runs_visible(user=teacher, course=algebra)) == [run]
    assert active_model_version(user=teacher, course=algebra) == version
    assert list(skills_visible(user=alice, course=algebra)) == []
    assert list(items_visible(user=alice, course=algebra)) == []
    assert list(resources_visible(user=alice, course=algebra)) == []
    assert list(training_runs_visible(user=alice, course=algebra)) == []
    assert active_model_version(user=alice, course=algebra) is None


def test_training_runs_of_other_scopes_are_not_listed(school):
    # Given runs for algebra, for biology and for one of algebra's items
    algebra, biology = school["algebra"], school["biology"]
    item = Item.objects.create(course=algebra, kind=Item.Kind.ESSAY, title="Essay")
    mine = TrainingRun.objects.create(
        kind="kt",
        scope_type="course",
        course=algebra,
        scope_key=f"course:{algebra.pk}",
        idempotency_key="a",
    )
    TrainingRun.objects.create(
        kind="kt",
        scope_type="course",
        course=biology,
        scope_key=f"course:{biology.pk}",
        idempotency_key="b",
    )
    TrainingRun.objects.create(
        kind="grader",
        scope_type="item",
        course=algebra,
        item=item,
        scope_key=f"item:{item.pk}",
        idempotency_key="c",
    )
    # When the teacher lists algebra's runs
    runs = training_runs_visible(user=school["teacher"], course=algebra)
    # Then only the course-wide run of algebra is there
    assert list(runs) == [mine]
