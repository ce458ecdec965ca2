"""Model grading of short answers and essays, in a worker (never imported by a web process).

The flow of :func:`responses_grade_by_model`, per item of the responses it is given::

    the item's active grader (scope item)                      ─┐
    or else, when the item has a reference answer,              ├─► one prediction per answer
      the active cold-start reference grader (scope global)    ─┘   (score, confidence, why)
    neither, or it cannot run here ─► needs_review ("no trained grader for this item yet" ...)

    release policy (edu_dl.ml.grading.policy.release_allowed: the version's validated QWK and
    this prediction's confidence against the item's thresholds or the EDU_DL settings)
        ├── allowed ─► graded, released ─► Interaction ─► on commit: the student's mastery update
        └── refused ─► needs_review, hidden from the student, with a priority for the review
                       queue and the reason, numbers included

Every prediction is kept (score, confidence, model version, explanation) and appended to the
grade history as one ResponseGrade row "model", released or not. Only responses still
``pending`` are touched, under a row lock, so a message delivered twice grades once. A failure
on one item is logged and sends its answers to the teacher; it never stops the other items
and never leaves an answer pending because of a model problem.

Torch and the model code are imported inside the functions that run a model.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import OperationalError, transaction
from django.utils import timezone

from edu_dl.conf import edu_settings
from edu_dl.models import Item, ModelKind, ModelVersion, Response, ResponseGrade, Submission
from edu_dl.selectors.grading import item_teacher_scores
from edu_dl.services.errors import ApplicationError
from edu_dl.services.mastery import interaction_record_from_response, mastery_update_enqueue
from edu_dl.services.model_versions import (
    ModelUnavailable,
    active_model_load,
    model_version_active,
)
from edu_dl.services.submissions import GRADE_RESPONSES_TASK_NAME, submission_status_refresh

logger = logging.getLogger(__name__)

SWEEP_PENDING_TASK_NAME = "edu_dl.grading.sweep_pending"
# A pending answer older than this is sent to the grader again (its message may have been lost:
# the broker was down when the student submitted, or a worker died holding it).
SWEEP_PENDING_AFTER = timedelta(minutes=5)
# At most this many answers per sweep, in messages of SWEEP_CHUNK: a long broker outage is
# caught up over several sweeps rather than flooding the grading queue at once.
SWEEP_MAX_RESPONSES = 2000
SWEEP_CHUNK = 100

GLOBAL_SCOPE_KEY = "global"
REASON_NO_GRADER = "no trained grader for this item yet"
REASON_UNREADABLE = "grader file could not be read"
REASON_FAILED = "the grader failed on this answer (see the worker log)"
REVIEW_REASON_MAX_LENGTH = 200


class _CannotGrade(Exception):
    """The item's answers go to the teacher for ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:REVIEW_REASON_MAX_LENGTH]


@dataclass
class _Grader:
    """An item's grader, ready to score its answers."""

    version: ModelVersion
    label: str  # "item grader" or "cold-start reference grader", for people to read
    predict: Callable[[list[str]], list[Any]]  # texts -> list[GradePrediction]

    @property
    def validated_qwk(self) -> float | None:
        value = self.version.metrics.get("validated_qwk")
        if not isinstance(value, int | float) or math.isnan(value):
            return None
        return float(value)

    def description(self) -> dict[str, Any]:
        return {
            "kind": self.label,
            "version_id": self.version.pk,
            "version": self.version.version,
            "scope": self.version.scope_key,
            "architecture": self.version.architecture,
            "validated_qwk": self.validated_qwk,
        }


@dataclass(frozen=True)
class _Decision:
    released: bool
    reason: str  # why it waits for the teacher; "" when released
    note: str  # for the grade history


# --- Finding and running the grader --------------------------------------------------------------


def _trained_grader(loaded: Any) -> Any:
    """The grader object of a loaded checkpoint (the worker cache keeps checkpoints)."""
    from edu_dl.ml.grading.pipeline import GraderUnavailable, TrainedGrader
    from edu_dl.ml.grading.reference import ReferenceScorer, TrainedReferenceGrader
    from edu_dl.ml.grading.scorer import ItemScorer

    encoder_name = str(loaded.extra.get("encoder", ""))
    if isinstance(loaded.model, ItemScorer):
        return TrainedGrader.from_checkpoint(loaded)
    if isinstance(loaded.model, ReferenceScorer):
        return TrainedReferenceGrader(
            scorer=loaded.model, encoder_name=encoder_name, metrics=dict(loaded.metrics)
        )
    raise GraderUnavailable(f"the file holds a {loaded.name!r} model, not a grader")


def _encoder_for(grader: Any) -> Any:
    """The sentence encoder the grader was trained with (None when it needs none)."""
    if not grader.encoder_name:
        return None
    from edu_dl.ml.grading.encoder import load_encoder
    from edu_dl.services.runtime import torch_device

    return load_encoder(grader.encoder_name, device=str(torch_device()))


def _load(scope_key: str, label: str) -> tuple[ModelVersion, Any]:
    """The active grader version of ``scope_key`` and its grader object; :class:`_CannotGrade`
    when its artifact is missing, corrupt or not a grader."""
    from edu_dl.ml.grading.pipeline import GraderUnavailable

    try:
        cached = active_model_load(kind=ModelKind.GRADER, scope_key=scope_key)
        grader = _trained_grader(cached.loaded)
    except (ModelUnavailable, GraderUnavailable) as error:
        message = getattr(error, "message", str(error))
        logger.error("the %s for %s could not be read: %s", label, scope_key, message)
        raise _CannotGrade(REASON_UNREADABLE) from error
    # The cache may serve the version it already held when the newest one failed to load.
    version = ModelVersion.objects.get(pk=cached.version_id)
    return version, grader


def _grader_for(item: Item) -> _Grader:
    """The grader that scores ``item``'s answers here, or :class:`_CannotGrade`."""
    scope_key = f"item:{item.pk}"
    if model_version_active(kind=ModelKind.GRADER, scope_key=scope_key) is not None:
        version, grader = _load(scope_key, "item grader")
        encoder = _encoder_for(grader)
        return _Grader(
            version=version,
            label="item grader",
            predict=lambda texts: grader.grade(texts, encoder=encoder, explain=True),
        )
    reference_answer = item.reference_answer.strip()
    if not reference_answer or (
        model_version_active(kind=ModelKind.GRADER, scope_key=GLOBAL_SCOPE_KEY) is None
    ):
        raise _CannotGrade(REASON_NO_GRADER)
    from edu_dl.ml.grading.pipeline import score_levels

    version, grader = _load(GLOBAL_SCOPE_KEY, "cold-start reference grader")
    encoder = _encoder_for(grader)
    # The item's scale as its teachers use it (half points ...), as the reference grader's
    # training codes it.
    levels = score_levels(
        item.min_score, item.max_score, item_teacher_scores(item_id=item.pk).scores
    )
    return _Grader(
        version=version,
        label="cold-start reference grader",
        predict=lambda texts: grader.grade(
            question=item.prompt,
            reference_answer=item.reference_answer,
            texts=texts,
            min_score=item.min_score,
            max_score=item.max_score,
            n_levels=levels,
            encoder=encoder,
            explain=True,
        ),
    )


def _predictions(item: Item, texts: list[str]) -> tuple[_Grader, list[Any]]:
    """The grader and its predictions for ``texts``, or :class:`_CannotGrade` with the reason
    the answers go to the teacher instead."""
    from edu_dl.ml.grading.encoder import EncoderUnavailable
    from edu_dl.ml.grading.pipeline import GraderUnavailable

    try:
        grader = _grader_for(item)
        predictions = grader.predict(texts)
    except _CannotGrade:
        raise
    except EncoderUnavailable as error:
        logger.error("item %s: the grader's encoder is not available: %s", item.pk, error)
        raise _CannotGrade(
            f"the grader's sentence encoder is not available here: {error}"
        ) from error
    except GraderUnavailable as error:
        logger.error("item %s: the grader cannot run here: %s", item.pk, error)
        raise _CannotGrade(f"the grader cannot run here: {error}") from error
    except Exception as error:
        logger.exception("item %s: the grader failed", item.pk)
        raise _CannotGrade(REASON_FAILED) from error
    if len(predictions) != len(texts):
        logger.error(
            "item %s: %d predictions for %d answers", item.pk, len(predictions), len(texts)
        )
        raise _CannotGrade(REASON_FAILED)
    return grader, predictions


# --- The release policy --------------------------------------------------------------------------


def release_thresholds(*, item: Item) -> tuple[float, float]:
    """(minimum validated QWK, minimum confidence) for releasing a model grade of ``item``:
    the item's own, or the EDU_DL settings where it sets none."""
    min_qwk = item.release_min_qwk
    min_confidence = item.release_min_confidence
    return (
        edu_settings.GRADING_RELEASE_MIN_QWK if min_qwk is None else min_qwk,
        edu_settings.GRADING_RELEASE_MIN_CONFIDENCE if min_confidence is None else min_confidence,
    )


def _shown(value: float, threshold: float) -> tuple[str, str]:
    """Both numbers with as many decimals as the threshold is written with (2 to 4) and as
    tell them apart: "0.62 is below 0.85", "0.866 is below 0.999", and 0.849 against 0.85
    reads "0.849 is below 0.850", not "0.85 is below 0.85"."""
    digits = next((d for d in (2, 3) if round(threshold, d) == round(threshold, 4)), 4)
    for more in range(digits, 7):
        left, right = f"{value:.{more}f}", f"{threshold:.{more}f}"
        if left != right:
            break
    return left, right


def _decide(
    *, validated_qwk: float | None, confidence: float, min_qwk: float, min_confidence: float
) -> _Decision:
    from edu_dl.ml.grading.policy import release_allowed

    if release_allowed(
        validated_qwk=validated_qwk,
        confidence=confidence,
        min_qwk=min_qwk,
        min_confidence=min_confidence,
    ):
        qwk, qwk_needed = _shown(validated_qwk, min_qwk)
        sure, sure_needed = _shown(confidence, min_confidence)
        note = f"released: validated QWK {qwk} >= {qwk_needed}, confidence {sure} >= {sure_needed}"
        return _Decision(released=True, reason="", note=note)
    failed = []
    if validated_qwk is None:
        failed.append("the grader's validated QWK is unknown")
    elif not validated_qwk >= min_qwk:
        qwk, qwk_needed = _shown(validated_qwk, min_qwk)
        failed.append(f"the grader's validated QWK {qwk} is below {qwk_needed}")
    if math.isnan(confidence):
        failed.append("the grader gave no confidence")
    elif not confidence >= min_confidence:
        sure, sure_needed = _shown(confidence, min_confidence)
        failed.append(f"confidence {sure} is below the item's {sure_needed}")
    reason = "; ".join(failed) or "the release policy refused it"
    return _Decision(released=False, reason=reason[:REVIEW_REASON_MAX_LENGTH], note=reason)


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None: PostgreSQL's jsonb refuses them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(inner) for inner in value]
    return value


# --- Writing -------------------------------------------------------------------------------------


@dataclass
class _ItemResult:
    responses: list[Response]
    released: list[Response]


def _locked_pending(response_ids: list[int]) -> list[Response]:
    return list(
        Response.objects.select_for_update()
        .filter(pk__in=response_ids, status=Response.Status.PENDING)
        .order_by("pk")
    )


def _write_for_review(*, response_ids: list[int], reason: str) -> _ItemResult:
    """No grade to give: the answers wait for the teacher, first in the queue among equals."""
    from edu_dl.ml.grading.policy import review_priority

    priority = review_priority(confidence=None, nearest_similarity=None)
    locked = _locked_pending(response_ids)
    for response in locked:
        response.status = Response.Status.NEEDS_REVIEW
        response.review_reason = reason[:REVIEW_REASON_MAX_LENGTH]
        response.review_priority = priority
        response.released = False
        response.save(update_fields=["status", "review_reason", "review_priority", "released"])
    return _ItemResult(responses=locked, released=[])


def _write_predictions(
    *, item: Item, grader: _Grader, predictions: dict[int, Any], now: datetime
) -> _ItemResult:
    from edu_dl.ml.grading.policy import review_priority

    min_qwk, min_confidence = release_thresholds(item=item)
    validated_qwk = grader.validated_qwk
    model = grader.description()
    locked = _locked_pending(list(predictions))
    history = []
    released = []
    for response in locked:
        prediction = predictions[response.pk]
        confidence = float(prediction.confidence)
        if not math.isnan(confidence):
            confidence = min(1.0, max(0.0, confidence))
        decision = _decide(
            validated_qwk=validated_qwk,
            confidence=confidence,
            min_qwk=min_qwk,
            min_confidence=min_confidence,
        )
        nearest = prediction.similar[0]["similarity"] if prediction.similar else None
        response.score = float(prediction.score)
        response.confidence = None if math.isnan(confidence) else confidence
        response.grade_source = Response.GradeSource.MODEL
        response.model_version = grader.version
        response.explanation = _json_safe(
            {
                **prediction.explanation(),
                "model": model,
                "release": {
                    "released": decision.released,
                    "min_qwk": min_qwk,
                    "min_confidence": min_confidence,
                },
            }
        )
        response.graded_at = now
        response.released = decision.released
        if decision.released:
            response.status = Response.Status.GRADED
            response.review_priority = None
            response.review_reason = ""
            released.append(response)
        else:
            response.status = Response.Status.NEEDS_REVIEW
            response.review_priority = review_priority(
                confidence=response.confidence, nearest_similarity=nearest
            )
            response.review_reason = decision.reason
        response.save(
            update_fields=[
                "status",
                "score",
                "grade_source",
                "confidence",
                "model_version",
                "explanation",
                "graded_at",
                "released",
                "review_priority",
                "review_reason",
            ]
        )
        history.append(
            ResponseGrade(
                response=response,
                score=response.score,
                grade_source=Response.GradeSource.MODEL,
                confidence=response.confidence,
                model_version=grader.version,
                action=ResponseGrade.Action.MODEL,
                released=decision.released,
                note=f"{grader.label} v{grader.version.version}: {decision.note}",
            )
        )
    ResponseGrade.objects.bulk_create(history)
    for response in released:
        try:
            interaction_record_from_response(response=response, update_mastery=False)
        except ApplicationError as error:  # e.g. the student left the course since
            logger.info("no interaction for response %s: %s", response.pk, error.message)
    return _ItemResult(responses=locked, released=released)


def _send_to_review(*, item: Item, responses: list[Response], reason: str) -> _ItemResult:
    logger.info("item %s: %d answers to the teacher: %s", item.pk, len(responses), reason)
    with transaction.atomic():
        result = _write_for_review(response_ids=[r.pk for r in responses], reason=reason)
        _refresh_submissions(result.responses)
    return result


def _grade_item(*, item: Item, responses: list[Response]) -> _ItemResult:
    texts = [response.answer if isinstance(response.answer, str) else "" for response in responses]
    try:
        grader, predictions = _predictions(item, texts)
    except _CannotGrade as cannot:
        return _send_to_review(item=item, responses=responses, reason=cannot.reason)
    try:
        with transaction.atomic():
            result = _write_predictions(
                item=item,
                grader=grader,
                predictions={r.pk: p for r, p in zip(responses, predictions, strict=True)},
                now=timezone.now(),
            )
            _refresh_submissions(result.responses)
    except OperationalError:
        raise  # the database is unreachable: nothing can be written; the sweep retries
    except Exception:
        logger.exception(
            "item %s: the predictions of the %s could not be saved", item.pk, grader.label
        )
        return _send_to_review(item=item, responses=responses, reason=REASON_FAILED)
    logger.info(
        "item %s: %d answers graded by the %s v%s, %d released",
        item.pk,
        len(result.responses),
        grader.label,
        grader.version.version,
        len(result.released),
    )
    return result


def _refresh_submissions(responses: list[Response]) -> None:
    submission_ids = sorted({response.submission_id for response in responses})
    for submission in Submission.objects.filter(pk__in=submission_ids).order_by("pk"):
        submission_status_refresh(submission=submission)


def responses_grade_by_model(*, response_ids: list[int]) -> list[Response]:
    """Grade the listed responses that are still pending with their items' models; returns
    the responses this call changed (graded, or sent to the teacher).

    Safe to run twice and beside another worker: a response is written only while it is still
    pending, under a row lock. One transaction per item; a failure on one item is logged, and
    its answers stay pending for the sweep only when the database itself failed.
    """
    pending = (
        Response.objects.filter(pk__in=list(response_ids), status=Response.Status.PENDING)
        .select_related("item", "submission")
        .order_by("item_id", "pk")
    )
    by_item: dict[int, list[Response]] = defaultdict(list)
    items: dict[int, Item] = {}
    for response in pending:
        if response.item.kind not in Item.MODEL_GRADED_KINDS:
            logger.warning(
                "response %s is pending but its item %s is %s: not a model's to grade",
                response.pk,
                response.item_id,
                response.item.kind,
            )
            continue
        by_item[response.item_id].append(response)
        items[response.item_id] = response.item

    changed: list[Response] = []
    mastery_updates: set[tuple[int, int]] = set()
    for item_id, responses in by_item.items():
        item = items[item_id]
        try:
            result = _grade_item(item=item, responses=responses)
        except Exception:
            logger.exception(
                "model grading of item %s failed; its %d answers stay pending",
                item_id,
                len(responses),
            )
            continue
        changed.extend(result.responses)
        students = {r.pk: r.submission.student_id for r in responses}
        for response in result.released:
            mastery_updates.add((students[response.pk], item.course_id))
    for student_id, course_id in sorted(mastery_updates):
        mastery_update_enqueue(student_id=student_id, course_id=course_id)
    return changed


# --- The sweep -----------------------------------------------------------------------------------


def responses_pending_sweep(*, now: datetime | None = None) -> int:
    """Send to the grader again the short answers and essays still pending
    :data:`SWEEP_PENDING_AFTER` after they were submitted; returns how many were sent.

    Run by celery beat. Grading is idempotent, so an answer whose first message is merely
    slow is graded once whatever the number of messages.
    """
    now = timezone.now() if now is None else now
    ids = list(
        Response.objects.filter(
            status=Response.Status.PENDING,
            item__kind__in=sorted(Item.MODEL_GRADED_KINDS),
            created_at__lt=now - SWEEP_PENDING_AFTER,
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_MAX_RESPONSES]
    )
    for start in range(0, len(ids), SWEEP_CHUNK):
        current_app.send_task(GRADE_RESPONSES_TASK_NAME, args=[ids[start : start + SWEEP_CHUNK]])
    if ids:
        logger.warning("sweep: %d pending answers sent to the grader again", len(ids))
    return len(ids)
