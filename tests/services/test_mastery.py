"""Mastery: interactions from graded responses, per-student updates, course-wide refreshes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from edu_dl.models import (
    Course,
    Enrollment,
    Interaction,
    Item,
    MasteryEstimate,
    ModelVersion,
    Response,
    Skill,
    Submission,
)
from edu_dl.selectors.mastery import student_answer_history
from edu_dl.services.courses import assessment_create, item_create, skill_create
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.interactions import InteractionRecord, interactions_record
from edu_dl.services.mastery import (
    MasteryEstimator,
    interaction_record_from_response,
    mastery_refresh_course,
    mastery_update_for_student,
)
from edu_dl.services.model_versions import model_version_rollback
from edu_dl.services.training import training_request, training_run_execute
from edu_dl.tasks.mastery import mastery_refresh_task, mastery_update_task
from tests.kt_data import make_kt_course

# KT_MODEL "auto" trains the attention model when answers name their items, as here.
DEFAULT_KT_MODEL = "akt"

pytestmark = pytest.mark.django_db

User = get_user_model()
FAST = {"train_config": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01}}


@pytest.fixture
def course(sent) -> Course:
    return make_kt_course(students=24, answers=20)


def train(course: Course) -> ModelVersion:
    run = training_request(kind="kt", course=course, params=FAST)
    training_run_execute(run_id=run.pk)
    return ModelVersion.objects.get(training_run=run)


def student(number: int = 0):
    return User.objects.get(username=f"kt-course-student-{number}")


def answers_of(user, course) -> list[Interaction]:
    return list(Interaction.objects.filter(student=user, course=course).order_by("timestamp", "id"))


def record_answer(course: Course, user, skill: Skill, *, correct: bool, minutes_ago: int = 0):
    item = Item.objects.filter(course=course, skills=skill).order_by("pk").first()
    interactions_record(
        course=course,
        records=[
            InteractionRecord(
                student_id=user.pk,
                item_id=item.pk,
                skill_ids=(skill.pk,),
                correct=correct,
                timestamp=timezone.now() - timedelta(minutes=minutes_ago),
            )
        ],
    )


def expected_smoothed(course: Course, user, skill: Skill) -> float:
    everyone = Interaction.objects.filter(course=course)
    prior = (everyone.filter(correct=True).count() + 1) / (everyone.count() + 2)
    mine = [a for a in answers_of(user, course) if skill.pk in a.skill_ids]
    return (sum(a.correct for a in mine) + 4 * prior) / (len(mine) + 4)


# --- Per-student update --------------------------------------------------------------------------


def test_without_a_model_every_skill_gets_a_smoothed_success_rate(course):
    # Given a course with answers and no trained model
    alice = student(0)
    skills = list(Skill.objects.filter(course=course).order_by("pk"))

    # When her mastery is updated
    rows = mastery_update_for_student(student=alice, course=course)

    # Then each skill has one current row: the Beta-smoothed success rate, no model version
    assert [row.skill_id for row in rows] == [skill.pk for skill in skills]
    for row, skill in zip(rows, skills, strict=True):
        mine = [a for a in answers_of(alice, course) if skill.pk in a.skill_ids]
        assert row.probability == pytest.approx(expected_smoothed(course, alice, skill))
        assert (row.evidence_count, row.model_version_id, row.is_current) == (len(mine), None, True)
    assert MasteryEstimate.objects.count() == 4


def test_with_an_active_model_the_estimates_are_the_models(course):
    # Given a course whose KT model is trained and active
    version = train(course)
    alice = student(1)

    # When her mastery is updated
    rows = mastery_update_for_student(student=alice, course=course)

    # Then every skill is estimated by that model version, as the model itself answers
    from edu_dl.ml.kt.inference import mastery

    estimator = MasteryEstimator.for_course(course)
    history = estimator.sequence(student_answer_history(course_id=course.pk, student_id=alice.pk))
    direct = mastery(estimator.model, history, estimator.skill_index_count, device="cpu")
    assert {row.model_version_id for row in rows} == {version.pk}
    for row in rows:
        assert row.probability == pytest.approx(direct[estimator.skill_index(row.skill_id)])
        assert row.evidence_count == sum(
            row.skill_id in a.skill_ids for a in answers_of(alice, course)
        )


def test_updating_again_without_new_answers_writes_nothing(course):
    alice = student(0)
    first = mastery_update_for_student(student=alice, course=course)

    again = mastery_update_for_student(student=alice, course=course)

    assert [row.pk for row in again] == [row.pk for row in first]
    assert MasteryEstimate.objects.count() == 4


def test_a_new_answer_appends_rows_and_retires_the_previous_current_ones(course):
    # Given current estimates for Alice
    alice = student(0)
    skill = Skill.objects.filter(course=course).order_by("pk").first()
    before = {row.skill_id: row for row in mastery_update_for_student(student=alice, course=course)}

    # When she answers an item of one skill correctly and her mastery is updated
    record_answer(course, alice, skill, correct=True)
    after = {row.skill_id: row for row in mastery_update_for_student(student=alice, course=course)}

    # Then that skill has a new current row with one more answer behind it, the old row is kept
    # as history, and every skill still has exactly one current row
    assert after[skill.pk].pk != before[skill.pk].pk
    assert after[skill.pk].evidence_count == before[skill.pk].evidence_count + 1
    assert after[skill.pk].probability > before[skill.pk].probability
    assert MasteryEstimate.objects.get(pk=before[skill.pk].pk).is_current is False
    assert MasteryEstimate.objects.filter(student=alice, is_current=True).count() == 4
    assert MasteryEstimate.objects.filter(student=alice, skill=skill).count() == 2


def test_a_skill_the_model_never_saw_falls_back_to_the_smoothed_rate(course):
    # Given an active model, and a skill added to the course after it was trained
    version = train(course)
    new_skill = skill_create(course=course, name="Skill added later")
    alice = student(2)

    rows = {row.skill_id: row for row in mastery_update_for_student(student=alice, course=course)}

    assert rows[new_skill.pk].model_version_id is None
    assert rows[new_skill.pk].probability == pytest.approx(
        expected_smoothed(course, alice, new_skill)
    )
    assert {rows[s].model_version_id for s in rows if s != new_skill.pk} == {version.pk}


def test_updating_someone_who_is_not_a_student_is_refused_and_writes_nothing(course):
    teacher = User.objects.get(username="kt-course-teacher")

    with pytest.raises(ValidationFailed, match="is not a student of 'kt-course'"):
        mastery_update_for_student(student=teacher, course=course)

    assert MasteryEstimate.objects.count() == 0


# --- Course-wide refresh -------------------------------------------------------------------------


def test_the_refresh_gives_every_student_what_a_single_update_would(course):
    # Given an active model and a student enrolled who has not answered yet
    version = train(course)
    newcomer = User.objects.create_user(username="newcomer")
    Enrollment.objects.create(user=newcomer, course=course, role=Enrollment.Role.STUDENT)

    # When the course is refreshed
    summary = mastery_refresh_course(course=course, students_per_chunk=10)

    # Then all 25 students x 4 skills have a current estimate from the model, and updating each
    # student alone finds nothing to change
    assert summary == {
        "students": 25,
        "estimates_written": 100,
        "recomputed": 0,
        "method": f"model v1 ({DEFAULT_KT_MODEL})",
    }
    assert set(
        MasteryEstimate.objects.filter(is_current=True).values_list("model_version", flat=True)
    ) == {version.pk}
    for user in User.objects.filter(
        edu_enrollments__role="student", edu_enrollments__course=course
    ):
        mastery_update_for_student(student=user, course=course)
    assert MasteryEstimate.objects.count() == 100


def test_the_refresh_recomputes_a_student_who_answered_while_it_ran(course, monkeypatch):
    # Given a refresh that read Alice's history before her newest answer arrived
    from edu_dl.services import mastery as service

    alice = student(0)
    skill = Skill.objects.filter(course=course).order_by("pk").first()
    real_read = service.students_answer_histories

    def read_then_answer(**kwargs):
        histories = real_read(**kwargs)
        if alice.pk in histories:
            record_answer(course, alice, skill, correct=True)
        return histories

    monkeypatch.setattr(service, "students_answer_histories", read_then_answer)

    summary = mastery_refresh_course(course=course)

    # Then her estimate counts the answer that arrived meanwhile
    current = MasteryEstimate.objects.get(student=alice, skill=skill, is_current=True)
    assert summary["recomputed"] == 1
    assert current.evidence_count == sum(skill.pk in a.skill_ids for a in answers_of(alice, course))


def test_activating_or_rolling_back_a_kt_model_sends_a_refresh_after_commit(
    course, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = train(course)
    with django_capture_on_commit_callbacks(execute=True):
        train(course)
    sent_by_training = list(sent)
    with django_capture_on_commit_callbacks(execute=True):
        model_version_rollback(kind="kt", scope_key=first.scope_key)

    refreshes = [message for message in sent if message[0] == "edu_dl.mastery.refresh_course"]
    assert refreshes == [("edu_dl.mastery.refresh_course", [course.pk])] * 3
    assert sent[len(sent_by_training) :] == [("edu_dl.mastery.refresh_course", [course.pk])]


def test_the_refresh_task_takes_a_course_id(course):
    mastery_refresh_task(course.pk)
    mastery_refresh_task(course.pk + 1000)  # gone: nothing to do

    assert MasteryEstimate.objects.filter(is_current=True).count() == 24 * 4


def test_the_update_task_skips_people_who_are_not_students(course):
    teacher = User.objects.get(username="kt-course-teacher")

    mastery_update_task(teacher.pk, course.pk)
    mastery_update_task(student(0).pk, course.pk)

    assert MasteryEstimate.objects.filter(student=teacher).count() == 0
    assert MasteryEstimate.objects.filter(student=student(0)).count() == 4


# --- Interactions from graded responses ----------------------------------------------------------


@pytest.fixture
def quiz(course):
    skill = Skill.objects.filter(course=course).order_by("pk").first()
    item = item_create(
        course=course,
        kind=Item.Kind.SHORT_ANSWER,
        title="Explain",
        max_score=4,
        skills=[skill],
    )
    return assessment_create(course=course, title="Quiz", items=[item]), item, skill


def graded(user, quiz, *, score: float | None, status: str = Response.Status.GRADED) -> Response:
    assessment, item, _ = quiz
    submission = Submission.objects.create(
        student=user,
        assessment=assessment,
        status=Submission.Status.GRADED,
        submitted_at=timezone.now() - timedelta(hours=1),
    )
    return Response.objects.create(
        submission=submission,
        item=item,
        answer="Because.",
        status=status,
        score=score,
        grade_source=Response.GradeSource.MODEL if score is not None else "",
        graded_at=timezone.now(),
    )


def test_a_graded_response_becomes_one_interaction_and_sends_a_mastery_update(
    course, quiz, sent, django_capture_on_commit_callbacks
):
    alice = student(0)
    response = graded(alice, quiz, score=3)

    with django_capture_on_commit_callbacks(execute=True):
        interaction = interaction_record_from_response(response=response)

    _, item, skill = quiz
    assert (interaction.student, interaction.course, interaction.item) == (alice, course, item)
    assert (interaction.correct, interaction.skill_ids, interaction.source) == (
        True,
        [skill.pk],
        "response",
    )
    assert interaction.timestamp == response.submission.submitted_at
    assert (interaction.response, interaction.external_id) == (response, f"response:{response.pk}")
    assert sent == [("edu_dl.mastery.update_student", [alice.pk, course.pk])]


def test_recording_a_response_twice_keeps_one_interaction_and_sends_nothing_more(
    course, quiz, sent, django_capture_on_commit_callbacks
):
    response = graded(student(0), quiz, score=3)
    first = interaction_record_from_response(response=response)

    with django_capture_on_commit_callbacks(execute=True):
        again = interaction_record_from_response(response=response)

    assert again.pk == first.pk
    assert Interaction.objects.filter(response=response).count() == 1
    assert sent == []


def test_an_overridden_grade_corrects_the_interaction(
    course, quiz, sent, django_capture_on_commit_callbacks
):
    response = graded(student(0), quiz, score=4)
    first = interaction_record_from_response(response=response)
    Response.objects.filter(pk=response.pk).update(score=0, grade_source="teacher")

    with django_capture_on_commit_callbacks(execute=True):
        corrected = interaction_record_from_response(response=response)

    assert (corrected.pk, corrected.correct, first.correct) == (first.pk, False, True)
    assert sent == [("edu_dl.mastery.update_student", [student(0).pk, course.pk])]


def test_a_grade_that_loses_the_race_to_create_the_interaction_still_corrects_it(
    course, quiz, sent, monkeypatch, django_capture_on_commit_callbacks
):
    # Given the model's grade (right) recorded by a concurrent call that our read did not see
    response = graded(student(0), quiz, score=4)
    first = interaction_record_from_response(response=response, update_mastery=False)
    Response.objects.filter(pk=response.pk).update(score=0, grade_source="teacher")
    manager = Interaction.objects
    real_select_for_update = manager.select_for_update
    reads = []

    def select_for_update_missing_the_first_read(*args, **kwargs):
        reads.append(1)
        if len(reads) == 1:
            return manager.none()
        return real_select_for_update(*args, **kwargs)

    monkeypatch.setattr(manager, "select_for_update", select_for_update_missing_the_first_read)

    # When the teacher's grade (wrong) is recorded and its insert hits the unique constraint
    with django_capture_on_commit_callbacks(execute=True):
        corrected = interaction_record_from_response(response=response)

    # Then the one interaction is corrected, not returned as the other call left it
    assert Interaction.objects.filter(response=response).count() == 1
    assert (corrected.pk, corrected.correct) == (first.pk, False)
    assert Interaction.objects.get(pk=first.pk).correct is False
    assert sent == [("edu_dl.mastery.update_student", [student(0).pk, course.pk])]


@pytest.mark.parametrize(
    ("fraction", "score", "correct"),
    [(0.5, 2, True), (0.5, 1.9, False), (0.75, 2, False), (0.75, 3, True), (1.0, 4, True)],
)
def test_correct_means_reaching_the_configured_share_of_the_score_range(
    course, quiz, settings, fraction, score, correct
):
    settings.EDU_DL = {**settings.EDU_DL, "MASTERY_CORRECT_FRACTION": fraction}
    response = graded(student(0), quiz, score=score)

    interaction = interaction_record_from_response(response=response, update_mastery=False)

    assert interaction.correct is correct


def test_an_ungraded_response_is_refused_and_nothing_is_recorded(course, quiz, sent):
    response = graded(student(0), quiz, score=None, status=Response.Status.PENDING)
    waiting = graded(student(1), quiz, score=2, status=Response.Status.NEEDS_REVIEW)
    count = Interaction.objects.count()

    with pytest.raises(ValidationFailed, match="is not graded yet"):
        interaction_record_from_response(response=response)
    with pytest.raises(ValidationFailed, match="is not graded yet"):
        interaction_record_from_response(response=waiting)

    assert Interaction.objects.count() == count
    assert sent == []


def test_a_teachers_own_response_is_refused_and_nothing_is_recorded(course, quiz, sent):
    teacher = User.objects.get(username="kt-course-teacher")
    response = graded(teacher, quiz, score=4)
    count = Interaction.objects.count()

    with pytest.raises(ValidationFailed, match="is not a student of its course"):
        interaction_record_from_response(response=response)

    assert Interaction.objects.count() == count
