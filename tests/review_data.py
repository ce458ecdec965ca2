"""A course whose short answers wait for review, built through the services, and the one step
that they cannot take here: the model grader's suggestion, written as the grader writes it."""

from __future__ import annotations

import importlib
import sys
import types
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from edu_dl.models import Response, ResponseGrade
from edu_dl.services.submissions import submission_create
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    SkillFactory,
    UserFactory,
)

OPENS = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE = OPENS + timedelta(days=7)
SUBMITTED = OPENS + timedelta(hours=1)
GRADER_TRAINING_MODULE = "edu_dl.services.grader_training"


def model_suggests(
    response: Response,
    *,
    score: float | None,
    confidence: float | None = 0.6,
    priority: float | None = None,
    reason: str = "low confidence",
    explanation: dict[str, Any] | None = None,
) -> Response:
    """Send ``response`` to the review queue with the model's suggested ``score`` (None: no
    suggestion), and its "model" history row when it has a score: what the model grader (a
    piece of its own, tested on its own) writes for a grade it may not release."""
    response.status = Response.Status.NEEDS_REVIEW
    response.score = score
    response.grade_source = Response.GradeSource.MODEL if score is not None else ""
    response.confidence = confidence if score is not None else None
    response.review_priority = priority
    response.review_reason = reason
    response.explanation = explanation or {}
    response.released = False
    response.graded_at = timezone.now() if score is not None else None
    response.save()
    if score is not None:
        ResponseGrade.objects.create(
            response=response,
            score=score,
            grade_source=Response.GradeSource.MODEL,
            confidence=confidence,
            action=ResponseGrade.Action.MODEL,
            released=False,
        )
    return response


def review_course(*, slug: str = "science", prefix: str = "") -> dict[str, Any]:
    """A course with a teacher, an assistant, students alice and bob, a quiz of a choice item
    and a short answer "Why blue" (0 to 4) of skill Optics, both handed in (the short answers
    pending), and beside it a course with its own teacher and student. Usernames start with
    ``prefix`` (for a second such course). The broker must be patched by the caller
    (submissions send the grader's task on commit)."""
    course = CourseFactory(slug=slug, title=slug.title())
    optics = SkillFactory(course=course, name="Optics")
    people = {
        "teacher": EnrollmentFactory(
            course=course, user=UserFactory(username=f"{prefix}teacher"), role="teacher"
        ).user,
        "assistant": EnrollmentFactory(
            course=course, user=UserFactory(username=f"{prefix}assistant"), role="assistant"
        ).user,
        "alice": EnrollmentFactory(
            course=course, user=UserFactory(username=f"{prefix}alice", first_name="Alice")
        ).user,
        "bob": EnrollmentFactory(course=course, user=UserFactory(username=f"{prefix}bob")).user,
    }
    other = CourseFactory(slug=f"{slug}-other", title="Other")
    people["other_teacher"] = EnrollmentFactory(
        course=other, user=UserFactory(username=f"{prefix}other_teacher"), role="teacher"
    ).user
    people["other_student"] = EnrollmentFactory(
        course=other, user=UserFactory(username=f"{prefix}other_student")
    ).user
    people["stranger"] = UserFactory(username=f"{prefix}stranger")
    choice = ItemFactory(course=course, single_choice=True, title="Sky colour", skills=[optics])
    why = ItemFactory(course=course, title="Why blue", max_score=4, skills=[optics])
    quiz = AssessmentFactory(
        course=course, title="Quiz 1", items=[choice, why], opens_at=OPENS, due_at=DUE
    )
    answers = {
        "alice": {choice.pk: "a", why.pk: "Rayleigh scattering of sunlight."},
        "bob": {choice.pk: "b", why.pk: "Because the sea reflects."},
    }
    submissions = {
        name: submission_create(
            student=people[name], assessment=quiz, answers=answers[name], now=SUBMITTED
        )
        for name in answers
    }
    return {
        "course": course,
        "other_course": other,
        "optics": optics,
        "choice": choice,
        "why": why,
        "quiz": quiz,
        "submissions": submissions,
        **people,
    }


def response_of(data: dict[str, Any], student: str, item: str = "why") -> Response:
    return data["submissions"][student].responses.get(item=data[item])


def patch_grader_retraining(monkeypatch) -> list[tuple[Any, Any]]:
    """Replace ``grader_retrain_if_due`` by a recorder; returns its calls as (item, requested_by).

    The grader's retraining module is written beside the review service; where it is not
    installed, a stand-in module takes its place for the test.
    """
    calls: list[tuple[Any, Any]] = []

    def grader_retrain_if_due(*, item, requested_by=None):
        calls.append((item, requested_by))

    try:
        module = importlib.import_module(GRADER_TRAINING_MODULE)
    except ModuleNotFoundError:
        module = types.ModuleType(GRADER_TRAINING_MODULE)
        monkeypatch.setitem(sys.modules, GRADER_TRAINING_MODULE, module)
    monkeypatch.setattr(module, "grader_retrain_if_due", grader_retrain_if_due, raising=False)
    return calls
