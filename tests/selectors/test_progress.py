"""Progress reads: a student's mastery with its trend and what needs attention, who may see it,
and the course heatmap in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from edu_dl.models import Course, Enrollment, Item, MasteryEstimate, Skill
from edu_dl.selectors.progress import (
    MasteryCell,
    MatrixLabel,
    course_mastery_matrix,
    student_progress,
)
from edu_dl.services.courses import (
    course_create,
    enrollment_create,
    item_create,
    skill_create,
)
from edu_dl.services.errors import NotFound, ValidationFailed
from edu_dl.services.interactions import InteractionRecord, interactions_record
from edu_dl.services.mastery import mastery_refresh_course, mastery_update_for_student
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def smoothed(correct: int, answers: int, prior: float) -> float:
    return (correct + 4 * prior) / (answers + 4)


def answer(course: Course, user, skill: Skill, results: list[bool], *, days_ago: float = 0):
    item = Item.objects.filter(course=course, skills=skill).first()
    start = timezone.now() - timedelta(days=days_ago)
    interactions_record(
        course=course,
        records=[
            InteractionRecord(
                student_id=user.pk,
                item_id=item.pk,
                skill_ids=(skill.pk,),
                correct=correct,
                timestamp=start + timedelta(seconds=position),
            )
            for position, correct in enumerate(results)
        ],
    )


def estimated_days_ago(user, days: int) -> None:
    """Make the user's estimates look as if they had been computed ``days`` ago."""
    MasteryEstimate.objects.filter(student=user).update(as_of=timezone.now() - timedelta(days=days))


@pytest.fixture
def school(monkeypatch):
    """Algebra: a teacher, an assistant, students Alice and Bob, skills Adding, Brackets and
    Counting with one item each. Biology: its own teacher and student. A stranger and an admin.
    """
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: None)
    algebra = course_create(slug="algebra", title="Algebra")
    biology = course_create(slug="biology", title="Biology")
    people = {}
    for name, course, role in [
        ("teacher", algebra, "teacher"),
        ("assistant", algebra, "assistant"),
        ("alice", algebra, "student"),
        ("bob", algebra, "student"),
        ("bio_teacher", biology, "teacher"),
        ("bio_student", biology, "student"),
        ("stranger", None, None),
        ("admin", None, None),
    ]:
        people[name] = User.objects.create_user(username=name, is_superuser=name == "admin")
        if course is not None:
            enrollment_create(user=people[name], course=course, role=role)
    skills = {}
    for name in ("Adding", "Brackets", "Counting"):
        skills[name] = skill_create(course=algebra, name=name)
        item_create(
            course=algebra, kind=Item.Kind.NUMERIC, title=name, answer_key=1, skills=[skills[name]]
        )
    return {"algebra": algebra, "biology": biology, **people, **skills}


@pytest.fixture
def history(school):
    """Three weeks ago Alice was good at Adding (4 right), poor at Brackets (4 wrong), had one
    wrong answer in Counting; Bob had 2 wrong in Adding and 2 right in Brackets. Their mastery
    was estimated then. Since, Alice got Adding wrong 4 times and her mastery was updated."""
    algebra, alice, bob = school["algebra"], school["alice"], school["bob"]
    answer(algebra, alice, school["Adding"], [True] * 4, days_ago=21)
    answer(algebra, alice, school["Brackets"], [False] * 4, days_ago=21)
    answer(algebra, alice, school["Counting"], [False], days_ago=21)
    answer(algebra, bob, school["Adding"], [False] * 2, days_ago=21)
    answer(algebra, bob, school["Brackets"], [True] * 2, days_ago=21)
    mastery_refresh_course(course=algebra)
    estimated_days_ago(alice, 20)
    estimated_days_ago(bob, 20)
    answer(algebra, alice, school["Adding"], [False] * 4, days_ago=1)
    mastery_update_for_student(student=alice, course=algebra)
    return school


# --- student_progress: values --------------------------------------------------------------------


def test_progress_has_each_skills_mastery_evidence_change_and_method(history):
    # Given the history above (priors: 6 of 13 answers right then, 6 of 17 now)
    before, now = 7 / 15, 7 / 19

    # When the teacher reads Alice's progress over the default 14 days
    progress = student_progress(
        viewer=history["teacher"], student=history["alice"], course=history["algebra"]
    )

    # Then each skill, by name, has its smoothed estimate, answers and change since 14 days ago
    rows = {skill.skill_name: skill for skill in progress.skills}
    assert [skill.skill_name for skill in progress.skills] == ["Adding", "Brackets", "Counting"]
    assert rows["Adding"].probability == pytest.approx(smoothed(4, 8, now))
    assert rows["Adding"].change == pytest.approx(smoothed(4, 8, now) - smoothed(4, 4, before))
    assert rows["Brackets"].probability == pytest.approx(smoothed(0, 4, now))
    assert rows["Brackets"].change == pytest.approx(smoothed(0, 4, now) - smoothed(0, 4, before))
    assert rows["Counting"].change == pytest.approx(smoothed(0, 1, now) - smoothed(0, 1, before))
    assert [rows[name].evidence_count for name in ("Adding", "Brackets", "Counting")] == [8, 4, 1]
    assert {(skill.method, skill.model_version) for skill in progress.skills} == {
        ("smoothed success rate", None)
    }
    assert progress.methods == ["smoothed success rate"]
    assert (progress.student_id, progress.course_id, progress.window_days) == (
        history["alice"].pk,
        history["algebra"].pk,
        14,
    )


def test_skills_needing_attention_are_low_with_evidence_or_dropped(history):
    progress = student_progress(
        viewer=history["alice"], student=history["alice"], course=history["algebra"]
    )

    # Brackets: 18% after 4 answers (low). Adding: dropped 28 points and is now 46% after 8.
    # Counting: low, but one answer is not enough evidence, and it fell by less than 10 points.
    assert [skill.skill_name for skill in progress.needing_attention] == ["Brackets", "Adding"]
    reasons = {skill.skill_name: skill.attention_reasons for skill in progress.skills}
    assert reasons == {
        "Adding": (
            "mastery 46% is below 60% after 8 answers",
            "down 28 percentage points in 14 days",
        ),
        "Brackets": ("mastery 18% is below 60% after 4 answers",),
        "Counting": (),
    }
    assert progress.attention_rule == (
        "mastery below 60% after at least 3 answers, or a drop of at least 10 percentage "
        "points over the last 14 days"
    )


def test_the_attention_thresholds_come_from_the_settings(history, settings):
    settings.EDU_DL = {
        **settings.EDU_DL,
        "MASTERY_ATTENTION_BELOW": 0.2,
        "MASTERY_ATTENTION_MIN_EVIDENCE": 1,
        "MASTERY_ATTENTION_DROP": 0.5,
    }

    progress = student_progress(
        viewer=history["alice"], student=history["alice"], course=history["algebra"]
    )

    assert [skill.skill_name for skill in progress.needing_attention] == ["Brackets"]


def test_a_window_reaching_before_every_estimate_has_no_change(history):
    progress = student_progress(
        viewer=history["alice"],
        student=history["alice"],
        course=history["algebra"],
        window_days=30,
    )

    assert [skill.change for skill in progress.skills] == [None, None, None]
    assert [skill.skill_name for skill in progress.needing_attention] == ["Brackets", "Adding"]


def test_a_skill_without_an_estimate_says_so(history):
    skill_create(course=history["algebra"], name="Dividing")

    progress = student_progress(
        viewer=history["alice"], student=history["alice"], course=history["algebra"]
    )

    dividing = progress.skills[-1]
    assert (dividing.skill_name, dividing.probability, dividing.evidence_count) == (
        "Dividing",
        None,
        0,
    )
    assert (dividing.method, dividing.change, dividing.needs_attention) == (
        "no estimate yet",
        None,
        False,
    )


def test_estimates_from_a_model_name_its_version(history):
    # Given estimates made by an active model (a version set up by hand: only its name matters)
    version = ModelVersionFactory(course=history["algebra"], version=3)
    MasteryEstimate.objects.filter(student=history["alice"], is_current=True).update(
        model_version=version
    )

    progress = student_progress(
        viewer=history["alice"], student=history["alice"], course=history["algebra"]
    )

    assert {(skill.method, skill.model_version) for skill in progress.skills} == {
        ("model v3 (dkt)", 3)
    }


def test_a_window_of_no_days_is_refused(history):
    with pytest.raises(ValidationFailed, match="window_days"):
        student_progress(
            viewer=history["alice"],
            student=history["alice"],
            course=history["algebra"],
            window_days=0,
        )


def test_progress_reads_a_fixed_number_of_queries(history, django_assert_num_queries):
    alice = User.objects.get(pk=history["alice"].pk)

    # enrolment check, current estimates with their baselines, skills
    with django_assert_num_queries(3):
        student_progress(viewer=alice, student=alice, course=history["algebra"])


# --- student_progress: who may see ---------------------------------------------------------------


@pytest.mark.parametrize("viewer", ["alice", "teacher", "assistant", "admin"])
def test_a_student_themself_course_staff_and_superusers_see_the_progress(history, viewer):
    progress = student_progress(
        viewer=history[viewer], student=history["alice"], course=history["algebra"]
    )

    assert progress.student_id == history["alice"].pk


@pytest.mark.parametrize("viewer", ["bob", "bio_teacher", "bio_student", "stranger", "anonymous"])
def test_anyone_else_is_told_the_student_is_not_found(history, viewer):
    who = AnonymousUser() if viewer == "anonymous" else history[viewer]

    with pytest.raises(NotFound):
        student_progress(viewer=who, student=history["alice"], course=history["algebra"])


@pytest.mark.parametrize("viewer", ["teacher", "admin"])
def test_someone_who_is_not_a_student_of_the_course_has_no_progress(history, viewer):
    with pytest.raises(NotFound):
        student_progress(
            viewer=history[viewer], student=history["bio_student"], course=history["algebra"]
        )


def test_an_inactive_student_cannot_read_even_their_own_progress(history):
    alice = history["alice"]
    alice.is_active = False
    alice.save()

    with pytest.raises(NotFound):
        student_progress(viewer=alice, student=alice, course=history["algebra"])


# --- course_mastery_matrix -----------------------------------------------------------------------


def test_the_matrix_has_students_by_name_skills_by_name_and_current_estimates(history):
    skill_create(course=history["algebra"], name="Dividing")
    carol = User.objects.create_user(username="carol")
    enrollment_create(user=carol, course=history["algebra"])

    matrix = course_mastery_matrix(viewer=history["teacher"], course=history["algebra"])

    alice, bob = history["alice"], history["bob"]
    assert matrix.students == [
        MatrixLabel(alice.pk, "alice"),
        MatrixLabel(bob.pk, "bob"),
        MatrixLabel(carol.pk, "carol"),
    ]
    assert [label.name for label in matrix.skills] == ["Adding", "Brackets", "Counting", "Dividing"]
    current = {
        (row.student_id, row.skill.name): row
        for row in MasteryEstimate.objects.filter(is_current=True).select_related("skill")
    }
    for row, student in enumerate((alice, bob)):
        for column, skill in enumerate(("Adding", "Brackets", "Counting")):
            estimate = current[(student.pk, skill)]
            assert matrix.cells[row][column] == MasteryCell(
                estimate.probability, estimate.evidence_count, None
            )
    empty = MasteryCell(None, 0, None)
    assert [matrix.cells[0][3], matrix.cells[1][3]] == [empty, empty]
    assert matrix.cells[2] == [empty] * 4
    assert matrix.methods == {"smoothed success rate": 6}


@pytest.mark.parametrize("class_size", [3, 30])
def test_the_matrix_takes_the_same_queries_whatever_the_class_size(
    school, class_size, django_assert_num_queries
):
    # Given a class of `class_size` students, each with an estimate of every skill
    algebra = school["algebra"]
    for number in range(class_size - 2):
        extra = User.objects.create_user(username=f"student-{number:02}")
        enrollment_create(user=extra, course=algebra)
    answer(algebra, school["alice"], school["Adding"], [True, False])
    mastery_refresh_course(course=algebra)
    teacher = User.objects.get(pk=school["teacher"].pk)  # no role cached on the object

    # When the teacher reads the matrix: role, students, skills, estimates
    with django_assert_num_queries(4):
        matrix = course_mastery_matrix(viewer=teacher, course=algebra)

    assert len(matrix.students) == class_size
    assert sum(cell.probability is not None for row in matrix.cells for cell in row) == (
        class_size * 3
    )


@pytest.mark.parametrize("viewer", ["teacher", "assistant", "admin"])
def test_course_staff_and_superusers_see_the_matrix(history, viewer):
    matrix = course_mastery_matrix(viewer=history[viewer], course=history["algebra"])

    assert len(matrix.students) == 2


@pytest.mark.parametrize("viewer", ["alice", "bio_teacher", "stranger", "anonymous"])
def test_students_and_outsiders_do_not_see_the_matrix(history, viewer):
    who = AnonymousUser() if viewer == "anonymous" else history[viewer]

    with pytest.raises(NotFound):
        course_mastery_matrix(viewer=who, course=history["algebra"])


def test_a_former_student_leaves_the_matrix(history):
    Enrollment.objects.filter(user=history["bob"], course=history["algebra"]).delete()

    matrix = course_mastery_matrix(viewer=history["teacher"], course=history["algebra"])

    assert [label.name for label in matrix.students] == ["alice"]
    assert matrix.methods == {"smoothed success rate": 3}
