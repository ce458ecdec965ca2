"""Progress that needs the model itself: a student's predicted chance on each item of an
assessment, and which of their answers moved a skill's estimate most.

Design: mastery numbers are precomputed into MasteryEstimate rows, so pages read them without a
model (:mod:`edu_dl.selectors.progress`). A forecast or an explanation depends on the exact
items or skill asked about, so it is computed on demand here, with the course's active model -
which means torch, which web processes never import. These functions are therefore called by
workers and CLI commands only; the REST API will reach them through a small task that calls one
of them and stores its ``as_dict()`` (JSON-ready) under a key of student, target, model version
and newest interaction id, which stays valid until one of those changes.

Without an active model (cold start), or for skills the model was not trained on, both fall back
to the smoothed success rate of :mod:`edu_dl.services.mastery`, and say so in ``method``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from edu_dl.models import Assessment, AssessmentItem, Item, Skill
from edu_dl.selectors.access import UserLike, course_is_staff, student_record_visible
from edu_dl.selectors.mastery import AnswerHistory, student_answer_history
from edu_dl.selectors.progress import SMOOTHED_METHOD
from edu_dl.services.errors import NotFound, ValidationFailed
from edu_dl.services.mastery import MasteryEstimator, skill_counts

EXPLANATION_WINDOW = 50
EXPLANATION_TOP = 5


# --- Forecast of an assessment -------------------------------------------------------------------


@dataclass(frozen=True)
class ItemForecast:
    item_id: int
    position: int
    title: str
    skill_ids: tuple[int, ...]
    probability: float  # of a correct answer, if the student answered it now
    method: str


@dataclass(frozen=True)
class AssessmentForecast:
    student_id: int
    assessment_id: int
    items: list[ItemForecast]  # in the assessment's order
    expected_correct: float  # the sum of the items' probabilities
    model_version: int | None  # the model behind the forecasts that used one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def assessment_forecast(
    *, viewer: UserLike, student: Any, assessment: Assessment
) -> AssessmentForecast:
    """The probability that ``student`` answers each item of ``assessment`` correctly, if they
    answered it now (an upcoming assessment, typically; any assessment is accepted).

    The model is asked about each item through its skills and the item itself (models that
    know items use it); an item whose skills the model does not know, or that has none, gets
    the smoothed success rate of its skills (of all the student's answers when it has none).
    A student sees their own forecast of published assessments; staff any. Worker or CLI only.
    """
    course = assessment.course
    if not student_record_visible(viewer=viewer, student=student, course=course):
        raise NotFound("No such student.")
    if not assessment.is_published and not course_is_staff(user=viewer, course=course):
        raise NotFound("No such assessment.")
    entries = list(
        AssessmentItem.objects.filter(assessment=assessment)
        .select_related("item")
        .prefetch_related("item__skills")
        .order_by("position")
    )
    estimator = MasteryEstimator.for_course(course)
    history = student_answer_history(course_id=course.pk, student_id=student.pk)
    model_probabilities = _model_item_probabilities(estimator, history, entries)
    answers, correct = skill_counts(history)
    items = []
    for entry in entries:
        item = entry.item
        skill_ids = tuple(sorted(skill.pk for skill in item.skills.all()))
        if entry.item_id in model_probabilities:
            probability, method = model_probabilities[entry.item_id], estimator.method
        elif skill_ids:
            rates = [
                estimator.smoothed(correct=correct.get(s, 0), answers=answers.get(s, 0))
                for s in skill_ids
            ]
            probability, method = sum(rates) / len(rates), SMOOTHED_METHOD
        else:
            probability = estimator.smoothed(correct=sum(history.correct), answers=len(history))
            method = f"{SMOOTHED_METHOD} (all answers: the item has no skill)"
        items.append(
            ItemForecast(
                item_id=item.pk,
                position=entry.position,
                title=str(item),
                skill_ids=skill_ids,
                probability=probability,
                method=method,
            )
        )
    return AssessmentForecast(
        student_id=student.pk,
        assessment_id=assessment.pk,
        items=items,
        expected_correct=sum(item.probability for item in items),
        model_version=estimator.cached.version_number if model_probabilities else None,
    )


def _model_item_probabilities(
    estimator: MasteryEstimator, history: AnswerHistory, entries: list[AssessmentItem]
) -> dict[int, float]:
    """The model's probability for each item whose skills it knows (by item id)."""
    queries: list[tuple[tuple[int, ...], int]] = []
    item_ids: list[int] = []
    for entry in entries:
        known = tuple(
            index
            for index in (estimator.skill_index(skill.pk) for skill in entry.item.skills.all())
            if index is not None
        )
        if known:
            queries.append((known, estimator.item_index(entry.item_id)))
            item_ids.append(entry.item_id)
    if not queries:
        return {}
    from edu_dl.ml.kt.inference import predict_next
    from edu_dl.services.runtime import torch_device

    probabilities = predict_next(
        estimator.model,
        estimator.sequence(history),
        queries,
        device=torch_device(),
        max_length=estimator.max_length,
    )
    return {item_id: float(p) for item_id, p in zip(item_ids, probabilities, strict=True)}


# --- Explanation of a skill's estimate -----------------------------------------------------------


@dataclass(frozen=True)
class AnswerInfluence:
    interaction_id: int
    item_id: int | None
    item_title: str
    correct: bool
    timestamp: datetime
    change: float  # the estimate with this answer minus the estimate without it


@dataclass(frozen=True)
class SkillExplanation:
    student_id: int
    skill_id: int
    skill_name: str
    probability: float  # the estimate with every answer
    evidence_count: int
    method: str  # "leave-one-out over the last 50 answers, model v3 (dkt)" ...
    influences: list[AnswerInfluence]  # largest absolute change first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def skill_explanation(
    *,
    viewer: UserLike,
    student: Any,
    skill: Skill,
    window: int = EXPLANATION_WINDOW,
    top: int = EXPLANATION_TOP,
) -> SkillExplanation:
    """Which of the student's last ``window`` answers moved their estimate of ``skill`` most.

    Leave-one-out: the estimate is computed again with each of those answers left out; an
    answer's change is the estimate with it minus the estimate without it. With a model, every
    answer may move every skill (the model links skills); with the smoothed success rate only
    the skill's own answers do (the course prior held fixed). Worker or CLI only.
    """
    course = skill.course
    if not student_record_visible(viewer=viewer, student=student, course=course):
        raise NotFound("No such student.")
    for name, value in (("window", window), ("top", top)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationFailed(f"{name} must be a whole number from 1", field=name)
    estimator = MasteryEstimator.for_course(course)
    history = student_answer_history(course_id=course.pk, student_id=student.pk)
    answers, _ = skill_counts(history)
    index = estimator.skill_index(skill.pk)
    if index is not None:
        probability, changes = _model_leave_one_out(estimator, history, index, window, top)
        method = estimator.method
    else:
        probability, changes = _smoothed_leave_one_out(estimator, history, skill.pk, window, top)
        method = SMOOTHED_METHOD
    titles = {
        item.pk: str(item)
        for item in Item.objects.filter(pk__in={history.item_ids[p] for p, _ in changes} - {None})
    }
    influences = [
        AnswerInfluence(
            interaction_id=history.interaction_ids[position],
            item_id=history.item_ids[position],
            item_title=titles.get(history.item_ids[position], ""),
            correct=bool(history.correct[position]),
            timestamp=history.timestamps[position],
            change=change,
        )
        for position, change in changes
    ]
    return SkillExplanation(
        student_id=student.pk,
        skill_id=skill.pk,
        skill_name=skill.name,
        probability=probability,
        evidence_count=answers.get(skill.pk, 0),
        method=f"leave-one-out over the last {window} answers, {method}",
        influences=influences,
    )


def _model_leave_one_out(
    estimator: MasteryEstimator, history: AnswerHistory, index: int, window: int, top: int
) -> tuple[float, list[tuple[int, float]]]:
    from edu_dl.ml.kt.data import UNKNOWN
    from edu_dl.ml.kt.inference import explain_skill, predict_next
    from edu_dl.services.runtime import torch_device

    device = torch_device()
    sequence = estimator.sequence(history)
    common = {"device": device, "max_length": estimator.max_length}
    probability = float(predict_next(estimator.model, sequence, [((index,), UNKNOWN)], **common)[0])
    influences = explain_skill(estimator.model, sequence, index, top_k=top, window=window, **common)
    return probability, [(influence.position, influence.change) for influence in influences]


def _smoothed_leave_one_out(
    estimator: MasteryEstimator, history: AnswerHistory, skill_id: int, window: int, top: int
) -> tuple[float, list[tuple[int, float]]]:
    answers, correct = skill_counts(history)
    answered, right = answers.get(skill_id, 0), correct.get(skill_id, 0)
    probability = estimator.smoothed(correct=right, answers=answered)
    changes = []
    for position in range(max(0, len(history) - window), len(history)):
        if skill_id not in history.skill_ids[position]:
            continue
        without = estimator.smoothed(
            correct=right - history.correct[position], answers=answered - 1
        )
        changes.append((position, probability - without))
    # Largest change first; among equal changes, the most recent answer first.
    changes.sort(key=lambda change: (-abs(change[1]), -change[0]))
    return probability, changes[:top]
