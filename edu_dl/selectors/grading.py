"""Teacher-scored answers as plain data for the graders (no torch here).

A response counts as teacher-scored when its current grade came from a teacher (accepted or
overridden in the review queue): those scores are what the graders learn from and are measured
against. Blank answers are left out: the model never grades them (the item's
empty_answer_policy does), so they teach it nothing about the answers it will see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet

from edu_dl.conf import edu_settings
from edu_dl.models import Item, ModelKind, ModelVersion, Response, ResponseGrade, ScopeType


@dataclass(frozen=True)
class ScoredAnswer:
    response_id: int
    text: str
    score: float


@dataclass
class TeacherScores:
    """One item's teacher-scored answers, in response order."""

    item_id: int
    answers: list[ScoredAnswer] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [answer.text for answer in self.answers]

    @property
    def scores(self) -> list[float]:
        return [answer.score for answer in self.answers]

    @property
    def response_ids(self) -> list[int]:
        return [answer.response_id for answer in self.answers]


def _teacher_scored(item_ids: Iterable[int] | None = None):
    rows = Response.objects.filter(
        grade_source=Response.GradeSource.TEACHER,
        status=Response.Status.GRADED,
        score__isnull=False,
    )
    if item_ids is not None:
        rows = rows.filter(item_id__in=list(item_ids))
    return rows


def teacher_scores_by_item(*, item_ids: Iterable[int]) -> dict[int, TeacherScores]:
    """Every listed item's teacher-scored answers (an item without any gets an empty entry)."""
    wanted = list(item_ids)
    result = {item_id: TeacherScores(item_id) for item_id in wanted}
    rows = (
        _teacher_scored(wanted)
        .order_by("item_id", "id")
        .values_list("item_id", "id", "answer", "score")
        .iterator(chunk_size=5_000)
    )
    for item_id, response_id, answer, score in rows:
        if isinstance(answer, str) and answer.strip():
            result[item_id].answers.append(ScoredAnswer(response_id, answer, float(score)))
    return result


def item_teacher_scores(*, item_id: int) -> TeacherScores:
    """The item's teacher-scored answers."""
    return teacher_scores_by_item(item_ids=[item_id])[item_id]


def model_grades_of_versions(
    *, version_ids: list[int], response_ids: list[int]
) -> dict[int, list[tuple[int, float, float | None]]]:
    """Per grader version, the first score it gave each of ``response_ids`` (from the grade
    history, which keeps every model grade): ``version id -> [(response id, score,
    confidence)]``. The grader run reads what its earlier graders made of the answers of the
    random check while those waited for the teacher."""
    grades: dict[int, list[tuple[int, float, float | None]]] = {}
    seen: set[tuple[int, int]] = set()
    rows = (
        ResponseGrade.objects.filter(
            grade_source=Response.GradeSource.MODEL,
            model_version_id__in=version_ids,
            response_id__in=response_ids,
        )
        .order_by("created_at", "pk")
        .values_list("model_version_id", "response_id", "score", "confidence")
    )
    for version_id, response_id, score, confidence in rows:
        if (version_id, response_id) not in seen:
            seen.add((version_id, response_id))
            grades.setdefault(version_id, []).append((response_id, score, confidence))
    return grades


def item_teacher_score_count(*, item_id: int) -> int:
    """How many of the item's non-empty responses carry a teacher's score: a count in the
    database, for deciding in the web process whether training is worth asking for."""
    return _teacher_scored([item_id]).exclude(answer__isnull=True).exclude(answer="").count()


def reference_items_with_teacher_scores() -> list[Item]:
    """Items of any course that have a reference answer and teacher-scored responses: what the
    cold-start reference grader learns from. Annotated with ``teacher_scores`` (a count)."""
    items = (
        Item.objects.filter(kind__in=sorted(Item.MODEL_GRADED_KINDS))
        .exclude(reference_answer="")
        .annotate(
            teacher_scores=Count(
                "responses",
                filter=Q(
                    responses__grade_source=Response.GradeSource.TEACHER,
                    responses__status=Response.Status.GRADED,
                    responses__score__isnull=False,
                ),
            )
        )
        .filter(teacher_scores__gt=0)
        .order_by("pk")
    )
    return [item for item in items if item.reference_answer.strip()]


def responses_rescorable(responses: QuerySet[Response] | None = None) -> QuerySet[Response]:
    """Of ``responses`` (all by default), those a newly serving grader may score again: waiting
    for the teacher, never released, and whose grade (if any) no teacher gave."""
    responses = Response.objects.all() if responses is None else responses
    return responses.filter(status=Response.Status.NEEDS_REVIEW, released=False).exclude(
        grade_source=Response.GradeSource.TEACHER
    )


def item_grader_yields_to_cold_start(
    *, own: ModelVersion, item: Item, cold_start_available: bool
) -> bool:
    """Whether ``item``'s answers go to the cold-start grader although ``own``, the item's
    active grader, exists: it learnt from fewer than EDU_DL GRADING_COLD_START_UNTIL teacher
    scores, the item has a model answer and a cold-start grader is active. A grader that does
    not say how many scores it learnt from keeps its item."""
    from edu_dl.ml.grading.policy import cold_start_preferred

    trained_on = own.metrics.get("n_train")
    return isinstance(trained_on, int) and cold_start_preferred(
        item_scored=trained_on,
        has_reference=bool(item.reference_answer.strip()),
        cold_start_available=cold_start_available,
        until=edu_settings.GRADING_COLD_START_UNTIL,
    )


def cold_start_items_with_rescorable_answers(*, limit: int) -> list[int]:
    """Ids of the items that the cold-start reference grader scores (model-graded, with a
    reference answer, and no active grader of their own or one learnt from fewer than
    EDU_DL GRADING_COLD_START_UNTIL teacher scores) and that have rescorable answers (see
    :func:`responses_rescorable`); the items whose answers have waited longest first, at most
    ``limit``."""
    own_grader = ModelVersion.objects.filter(
        Q(metrics__n_train__isnull=True)
        | Q(metrics__n_train__gte=edu_settings.GRADING_COLD_START_UNTIL),
        kind=ModelKind.GRADER,
        scope_type=ScopeType.ITEM,
        status=ModelVersion.Status.ACTIVE,
        item_id=OuterRef("item_id"),
    )
    rows = (
        responses_rescorable()
        .filter(
            item__kind__in=sorted(Item.MODEL_GRADED_KINDS),
            item__reference_answer__regex=r"\S",  # not blank
        )
        .exclude(Exists(own_grader))
        .values("item_id")
        .annotate(oldest=Min("created_at"))
        .order_by("oldest", "item_id")
        .values_list("item_id", flat=True)[:limit]
    )
    return list(rows)


def teacher_scores_fingerprint(scores: Iterable[TeacherScores]) -> str:
    """sha256 over every (item, response, score, text): two trainings with the same fingerprint
    learnt from the same teacher scores."""
    digest = hashlib.sha256()
    for item in scores:
        for answer in item.answers:
            digest.update(f"{item.item_id}|{answer.response_id}|{answer.score!r}|".encode())
            digest.update(hashlib.sha256(answer.text.encode()).digest())
    return digest.hexdigest()


def release_thresholds(*, item: Item) -> tuple[float, float]:
    """(minimum validated QWK, minimum confidence) for releasing a model grade of ``item``:
    the item's own, or the EDU_DL settings where it sets none. Torch-free, so the pages that
    show the policy read the same rule the grader applies."""
    min_qwk = item.release_min_qwk
    min_confidence = item.release_min_confidence
    return (
        edu_settings.GRADING_RELEASE_MIN_QWK if min_qwk is None else min_qwk,
        edu_settings.GRADING_RELEASE_MIN_CONFIDENCE if min_confidence is None else min_confidence,
    )
