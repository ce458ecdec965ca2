"""The class mastery summary: what it holds (the overview's totals and attention list), when
workers refresh it (after mastery changes, once per burst; hourly by beat), and its tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from edu_dl.models import Course, CourseMasterySummary, Enrollment, MasteryEstimate, Skill
from edu_dl.services.class_summary import (
    COUNTDOWN_S,
    REFRESH_TASK_NAME,
    course_mastery_summaries_refresh_due,
    course_mastery_summary_refresh,
    parse_requested_at,
)
from edu_dl.services.mastery import mastery_refresh_course, mastery_update_for_student
from edu_dl.tasks.mastery import refresh_class_summaries_due_task, refresh_class_summary_task
from tests.kt_data import make_kt_course

pytestmark = pytest.mark.django_db

User = get_user_model()
NOW = timezone.now()


# --- Local helpers -------------------------------------------------------------------------------


def estimate(student, skill: Skill, probability: float, *, evidence: int = 5, days_ago=0.1):
    """A current estimate (the older current one, if any, retired), ``days_ago`` old."""
    MasteryEstimate.objects.filter(student=student, skill=skill, is_current=True).update(
        is_current=False
    )
    MasteryEstimate.objects.create(
        student=student,
        skill=skill,
        probability=probability,
        evidence_count=evidence,
        as_of=NOW - timedelta(days=days_ago),
        is_current=True,
    )


def make_course(slug: str) -> tuple[Course, dict[str, Skill]]:
    course = Course.objects.create(slug=slug, title=slug.title())
    skills = {
        name: Skill.objects.create(course=course, name=name)
        for name in ("Adding", "Brackets", "Counting")
    }
    return course, skills


def enrolled(username: str, course: Course):
    user = User.objects.create_user(username=username)
    Enrollment.objects.create(user=user, course=course, role=Enrollment.Role.STUDENT)
    return user


@pytest.fixture
def algebra():
    """alice: Adding 90%, Brackets 30% (2 answers: too few to flag), Counting 70%; bob: Adding
    40% after 6 answers (low), Brackets 80% now and 95% three weeks ago (a drop of 15 points);
    carol: Adding 55% now, 60% three weeks ago (5 points: not a drop), 2 answers."""
    course, skills = make_course("algebra")
    alice, bob, carol = (enrolled(name, course) for name in ("alice", "bob", "carol"))
    estimate(alice, skills["Adding"], 0.9)
    estimate(alice, skills["Brackets"], 0.3, evidence=2)
    estimate(alice, skills["Counting"], 0.7)
    estimate(bob, skills["Adding"], 0.4, evidence=6)
    estimate(bob, skills["Brackets"], 0.95, days_ago=21)
    estimate(bob, skills["Brackets"], 0.8, evidence=9)
    estimate(carol, skills["Adding"], 0.6, days_ago=21)
    estimate(carol, skills["Adding"], 0.55, evidence=2)
    return {"course": course, "alice": alice, "bob": bob, "carol": carol, **skills}


@pytest.fixture
def sent_with_options(monkeypatch):
    """Messages sent to the broker, as (task name, args, options)."""
    messages = []

    def send_task(name, args=None, **options):
        messages.append((name, args, options))

    monkeypatch.setattr(current_app, "send_task", send_task)
    return messages


# --- What it holds -------------------------------------------------------------------------------


def test_the_summary_holds_each_students_totals_and_flagged_skills(algebra):
    course, alice, bob, carol = (algebra[k] for k in ("course", "alice", "bob", "carol"))

    summary = course_mastery_summary_refresh(course=course, now=NOW)

    stored = CourseMasterySummary.objects.get(course=course)
    assert (stored.window_days, stored.window_start) == (14, NOW - timedelta(days=14))
    assert stored.rule == {"below": 0.6, "min_evidence": 3, "drop": 0.1}
    assert stored.estimates_revision == MasteryEstimate.objects.order_by("-pk").first().pk
    assert stored.computed_at == summary.computed_at
    # bob's skills, lowest first: [skill, probability, answers, low, baseline of a drop]
    assert stored.students == {
        str(alice.pk): {
            "overall": pytest.approx((0.9 + 0.3 + 0.7) / 3),
            "estimates": 3,
            "flagged": 0,
            "lowest": None,
        },
        str(bob.pk): {
            "overall": pytest.approx(0.6),
            "estimates": 2,
            "flagged": 2,
            "lowest": 0.4,
            "skills": [
                [algebra["Adding"].pk, 0.4, 6, 1, None],
                [algebra["Brackets"].pk, 0.8, 9, 0, 0.95],
            ],
        },
        str(carol.pk): {"overall": 0.55, "estimates": 1, "flagged": 0, "lowest": None},
    }
    assert summary.students == stored.students


def test_the_summary_describes_the_first_students_needing_attention_and_their_ties(
    algebra, monkeypatch
):
    # Given dan and erin, tied on one low skill at 20%, behind bob (two flagged skills)
    course = algebra["course"]
    for name in ("dan", "erin"):
        estimate(enrolled(name, course), algebra["Counting"], 0.2, evidence=4)
    # When a summary describes two students
    monkeypatch.setattr("edu_dl.services.class_summary.DESCRIBED", 2)
    summary = course_mastery_summary_refresh(course=course, now=NOW)
    # Then bob and both tied students have their skills, the others only their counts
    described = {
        User.objects.get(pk=int(pk)).username
        for pk, row in summary.students.items()
        if "skills" in row
    }
    assert described == {"bob", "dan", "erin"}


def test_a_refresh_replaces_the_summary_of_the_course_only(algebra):
    course = algebra["course"]
    other, other_skills = make_course("biology")
    estimate(enrolled("dora", other), other_skills["Adding"], 0.2, evidence=4)
    course_mastery_summary_refresh(course=course, now=NOW)
    course_mastery_summary_refresh(course=other, now=NOW)
    # Given carol's Adding falls to 10% after 8 answers
    estimate(algebra["carol"], algebra["Adding"], 0.1, evidence=8)

    course_mastery_summary_refresh(course=course, now=NOW)

    assert CourseMasterySummary.objects.count() == 2
    summary = CourseMasterySummary.objects.get(course=course)
    assert summary.students[str(algebra["carol"].pk)] == {
        "overall": 0.1,
        "estimates": 1,
        "flagged": 1,
        "lowest": 0.1,
        "skills": [[algebra["Adding"].pk, 0.1, 8, 1, 0.6]],
    }
    assert list(CourseMasterySummary.objects.get(course=other).students) == [
        str(User.objects.get(username="dora").pk)
    ]


def test_a_refresh_never_replaces_a_summary_computed_after_it_started(algebra):
    course = algebra["course"]
    later = timezone.now() + timedelta(minutes=5)
    course_mastery_summary_refresh(course=course, now=NOW)
    CourseMasterySummary.objects.update(computed_at=later, students={})

    kept = course_mastery_summary_refresh(course=course, now=NOW)

    assert (kept.computed_at, kept.students) == (later, {})
    assert CourseMasterySummary.objects.get().students == {}


def test_a_course_without_estimates_gets_an_empty_summary():
    course, _ = make_course("empty")
    summary = course_mastery_summary_refresh(course=course)
    assert (summary.students, summary.estimates_revision) == ({}, 0)


# --- When workers refresh it ---------------------------------------------------------------------


def test_a_mastery_update_sends_one_refresh_a_few_seconds_after_commit(
    sent_with_options, django_capture_on_commit_callbacks
):
    # Given a course whose students answered (4 skills: a first update writes 4 estimates)
    course = make_kt_course(students=2, answers=10)
    student = User.objects.get(username="kt-course-student-0")

    with django_capture_on_commit_callbacks(execute=True):
        mastery_update_for_student(student=student, course=course)

    refreshes = [m for m in sent_with_options if m[0] == REFRESH_TASK_NAME]
    assert len(refreshes) == 1
    _, (course_id, requested_at), options = refreshes[0]
    assert (course_id, options) == (course.pk, {"countdown": COUNTDOWN_S})
    assert parse_requested_at(requested_at) <= timezone.now()
    assert COUNTDOWN_S == 5
    # And an update that writes nothing sends nothing
    sent_with_options.clear()
    with django_capture_on_commit_callbacks(execute=True):
        mastery_update_for_student(student=student, course=course)
    assert [m for m in sent_with_options if m[0] == REFRESH_TASK_NAME] == []


def test_a_course_wide_refresh_sends_one_summary_refresh(
    sent_with_options, django_capture_on_commit_callbacks
):
    course = make_kt_course(students=6, answers=10)

    with django_capture_on_commit_callbacks(execute=True):
        mastery_refresh_course(course=course, students_per_chunk=2)  # three transactions

    assert [(m[0], m[1][0]) for m in sent_with_options if m[0] == REFRESH_TASK_NAME] == [
        (REFRESH_TASK_NAME, course.pk)
    ]


def test_the_task_refreshes_unless_a_later_refresh_covered_the_request(algebra):
    course = algebra["course"]
    requested_at = timezone.now()

    assert refresh_class_summary_task(course.pk, requested_at.isoformat()) is True
    first = CourseMasterySummary.objects.get(course=course).computed_at
    # A message sent before that refresh started is covered by it: no second refresh
    assert refresh_class_summary_task(course.pk, requested_at.isoformat()) is False
    assert CourseMasterySummary.objects.get(course=course).computed_at == first
    # One sent later is not
    later = timezone.now().isoformat()
    assert refresh_class_summary_task(course.pk, later) is True
    assert CourseMasterySummary.objects.get(course=course).computed_at > first
    # Without a time, always; a course that is gone, never
    assert refresh_class_summary_task(course.pk) is True
    assert refresh_class_summary_task(course.pk + 1000) is False


def test_beat_refreshes_only_the_summaries_older_than_an_hour(algebra):
    # Given algebra refreshed just now, biology two hours ago, geometry never, and an empty course
    algebra_course = algebra["course"]
    biology, biology_skills = make_course("biology")
    estimate(enrolled("dora", biology), biology_skills["Adding"], 0.2, evidence=4)
    geometry, geometry_skills = make_course("geometry")
    estimate(enrolled("eve", geometry), geometry_skills["Counting"], 0.9)
    make_course("empty")
    course_mastery_summary_refresh(course=algebra_course)
    course_mastery_summary_refresh(course=biology)
    two_hours_ago = timezone.now() - timedelta(hours=2)
    CourseMasterySummary.objects.filter(course=biology).update(computed_at=two_hours_ago)
    fresh = CourseMasterySummary.objects.get(course=algebra_course).computed_at

    refreshed = course_mastery_summaries_refresh_due()

    assert refreshed == [biology.pk, geometry.pk]
    assert CourseMasterySummary.objects.get(course=algebra_course).computed_at == fresh
    assert CourseMasterySummary.objects.get(course=biology).computed_at > two_hours_ago
    assert CourseMasterySummary.objects.count() == 3  # the empty course has none
    # And the beat task runs it hourly, on the default queue
    assert refresh_class_summaries_due_task() == {"refreshed": 0}
    entry = django_settings.CELERY_BEAT_SCHEDULE["edu_dl-refresh-class-summaries"]
    assert entry == {
        "task": "edu_dl.mastery.refresh_class_summaries_due",
        "schedule": 3600.0,
        "options": {"queue": "default"},
    }
