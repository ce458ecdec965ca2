"""Scheduled retraining: a course's KT model is retrained once enough new answers arrived."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from edu_dl.models import Course, Skill, TrainingRun
from edu_dl.services.interactions import InteractionRecord, interactions_record
from edu_dl.services.retraining import kt_retrain_due_courses
from edu_dl.services.training import training_request, training_run_cancel, training_run_execute
from edu_dl.tasks.mastery import kt_retrain_due_task
from tests.kt_data import make_kt_course

pytestmark = pytest.mark.django_db

FAST = {"train_config": {"epochs": 1, "batch_size": 16}}
NEEDED = 30


@pytest.fixture(autouse=True)
def sent(sent, settings):
    settings.EDU_DL = {**settings.EDU_DL, "KT_RETRAIN_MIN_NEW_INTERACTIONS": NEEDED}
    return sent


@pytest.fixture
def course() -> Course:
    return make_kt_course(students=10, answers=10)  # 100 answers


def new_answers(course: Course, count: int) -> None:
    """``count`` more answers by the course's first student."""
    user = get_user_model().objects.get(username=f"{course.slug}-student-0")
    skill = Skill.objects.filter(course=course).first()
    start = timezone.now()
    interactions_record(
        course=course,
        records=[
            InteractionRecord(
                student_id=user.pk,
                skill_ids=(skill.pk,),
                correct=True,
                timestamp=start + timedelta(seconds=n),
            )
            for n in range(count)
        ],
    )


def finished_run(course: Course, *, failing: bool = False) -> TrainingRun:
    params = {"model_config": {"hidden": 3}} if failing else FAST
    run = training_request(kind="kt", course=course, params=params)
    return training_run_execute(run_id=run.pk)


def test_a_course_that_never_trained_is_trained_once_it_has_enough_answers(course):
    # Given a course with 100 answers and no run (30 needed)
    # When the schedule runs
    runs = kt_retrain_due_courses()

    # Then one queued run is requested for it, by nobody in particular
    run = TrainingRun.objects.get()
    assert runs == [run]
    assert (run.kind, run.course, run.status, run.requested_by) == ("kt", course, "queued", None)


def test_answers_from_before_the_last_run_do_not_count(course):
    # Given a run that trained on the course's answers, and 29 answers since
    finished_run(course)
    new_answers(course, NEEDED - 1)

    # When the schedule runs
    runs = kt_retrain_due_courses()

    # Then nothing is requested
    assert runs == []
    assert TrainingRun.objects.count() == 1


def test_enough_new_answers_since_the_last_run_request_a_new_one(course):
    last = finished_run(course)
    new_answers(course, NEEDED)

    runs = kt_retrain_due_courses()

    assert len(runs) == 1
    assert runs[0].pk != last.pk
    assert runs[0].status == "queued"
    assert list(TrainingRun.objects.values_list("status", flat=True)) == ["queued", "succeeded"]


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_failed_or_cancelled_run_also_waits_for_new_answers(course, ending):
    # Given a run that failed, or that a teacher cancelled, after all the answers arrived
    if ending == "failed":
        run = finished_run(course, failing=True)
    else:
        run = training_run_cancel(run=training_request(kind="kt", course=course))
    assert run.status == ending

    runs = kt_retrain_due_courses()

    # Then the schedule does not try again until enough new answers arrive
    assert runs == []
    assert TrainingRun.objects.count() == 1
    new_answers(course, NEEDED)
    assert len(kt_retrain_due_courses()) == 1


def test_a_course_with_a_run_queued_is_left_alone(course):
    queued = training_request(kind="kt", course=course)
    new_answers(course, NEEDED)

    runs = kt_retrain_due_courses()

    assert runs == []
    assert list(TrainingRun.objects.values_list("pk", flat=True)) == [queued.pk]


def test_inactive_and_quiet_courses_are_left_alone(course):
    Course.objects.filter(pk=course.pk).update(is_active=False)
    make_kt_course(slug="quiet", students=2, answers=10)  # 20 answers: fewer than 30

    runs = kt_retrain_due_courses()

    assert runs == []
    assert TrainingRun.objects.count() == 0


def test_each_due_course_gets_its_own_run(course):
    other = make_kt_course(slug="other", students=6, answers=10)

    runs = kt_retrain_due_courses()

    assert sorted(run.course_id for run in runs) == sorted([course.pk, other.pk])


def test_a_course_below_the_training_minimum_is_skipped_and_the_others_still_run(course, caplog):
    # Given 40 new answers in "small": enough for the schedule (30), too few to train (50)
    make_kt_course(slug="small", students=4, answers=10)

    runs = kt_retrain_due_courses()

    assert [run.course_id for run in runs] == [course.pk]
    assert TrainingRun.objects.count() == 1
    assert "scheduled retraining of small refused: course 'small' has 40 interactions" in (
        caplog.text
    )


def test_the_beat_task_requests_the_due_runs_every_quarter_hour(course):
    counts = kt_retrain_due_task()

    assert counts == {"requested": 1}
    assert TrainingRun.objects.get().status == "queued"
    schedule = {e["task"]: e for e in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["edu_dl.tracing.retrain_due"]["schedule"] == 900.0
