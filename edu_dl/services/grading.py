"""Model grading of short answers and essays, in a worker (never imported by a web process).

The flow of :func:`responses_grade_by_model`, per item of the responses it is given::

    the item's active grader (scope item)                      ─┐
    or else, when the item has a reference answer,              ├─► one prediction per answer
      the active cold-start reference grader (scope global)    ─┘   (score, confidence, why)
      (also while the item's own grader learnt from fewer than
      EDU_DL GRADING_COLD_START_UNTIL teacher scores)
    neither, or it cannot run here ─► needs_review ("no trained grader for this item yet" ...)

    release policy (edu_dl.ml.grading.policy.release_gate: the version's release curve, how
    well its grades at each confidence and above agreed with teachers, and this prediction's
    confidence, against the item's thresholds or the EDU_DL settings; an answer of the item's
    random check, EDU_DL GRADING_AUDIT_SHARE, is never released)
        ├── allowed ─► graded, released ─► Interaction ─► on commit: the student's mastery update
        │                                  ─► grade.released webhooks of the course
        └── refused ─► needs_review, hidden from the student, with a priority for the review
                       queue and the reason, numbers included

Every prediction is kept (score, confidence, model version, explanation) and appended to the
grade history as one ResponseGrade row "model", released or not. Only responses still
``pending`` are touched, under a row lock, so a message delivered twice grades once. A failure
on one item is logged and sends its answers to the teacher; it never stops the other items
and never leaves an answer pending because of a model problem.

:func:`responses_rescore_waiting` runs the same path when an item's grader changes (a grader
trained at last, a better one, a rollback): the item's answers waiting for the teacher whose
grade no teacher gave are scored again by the grader now serving, under the same release
policy, and one ResponseGrade row "regrade" is appended per answer. Answers it cannot score
keep what they had: they are with the teacher already.

Torch and the model code are imported inside the functions that run a model.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.db import OperationalError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from edu_dl.conf import edu_settings
from edu_dl.models import Item, ModelKind, ModelVersion, Response, ResponseGrade, Submission
from edu_dl.selectors.grading import (
    item_grader_yields_to_cold_start,
    item_teacher_scores,
    release_thresholds,
    responses_rescorable,
)
from edu_dl.services.errors import ApplicationError
from edu_dl.services.mastery import interaction_record_from_response, mastery_update_enqueue
from edu_dl.services.model_versions import (
    ModelUnavailable,
    active_model_load,
    model_version_active,
)
from edu_dl.services.releases import grades_released
from edu_dl.services.submissions import GRADE_RESPONSES_TASK_NAME, submission_status_refresh

if TYPE_CHECKING:
    from edu_dl.ml.grading.policy import ReleaseGate

logger = logging.getLogger(__name__)

SWEEP_PENDING_TASK_NAME = "edu_dl.grading.sweep_pending"
# A pending answer older than this is sent to the grader again (its message may have been lost:
# the broker was down when the student submitted, or a worker died holding it).
SWEEP_PENDING_AFTER = timedelta(minutes=5)
# At most this many answers per sweep, in messages of SWEEP_CHUNK: a long broker outage is
# caught up over several sweeps rather than flooding the grading queue at once.
SWEEP_MAX_RESPONSES = 2000
SWEEP_CHUNK = 100
# Answers re-scored per transaction when a grader changes: a long review queue is worked through
# in short transactions, so no row stays locked long against a teacher reviewing it.
RESCORE_CHUNK = 200

GLOBAL_SCOPE_KEY = "global"
REASON_NO_GRADER = "no trained grader for this item yet"
REASON_UNREADABLE = "grader file could not be read"
REASON_FAILED = "the grader failed on this answer (see the worker log)"
# EDU_DL GRADING_AUDIT_SHARE of the answers; the teacher reads this in the queue.
REASON_AUDIT = (
    "random check: a random sample of answers always comes to the teacher, so that the "
    "grader's agreement with you is measured fairly"
)
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

    @property
    def release_curve(self) -> list[dict[str, Any]]:
        from edu_dl.ml.grading.policy import release_curve_of

        return release_curve_of(self.version.metrics)

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


@dataclass(frozen=True)
class _Pass:
    """Which answers a grading pass may write, and how it records them.

    The first grading writes answers still pending; an answer it cannot score goes to the
    teacher. A re-score writes answers waiting for the teacher whose grade no teacher gave
    and that the serving grader version has not scored yet (so a message delivered twice
    re-scores once); an answer it cannot score keeps what it had.
    """

    action: str  # of the ResponseGrade rows it appends
    rescore: bool

    def writable(
        self, responses: QuerySet[Response], *, version: ModelVersion | None = None
    ) -> QuerySet[Response]:
        if not self.rescore:
            return responses.filter(status=Response.Status.PENDING)
        waiting = responses_rescorable(responses)
        return waiting if version is None else waiting.exclude(model_version=version)


_FIRST_GRADING = _Pass(action=ResponseGrade.Action.MODEL, rescore=False)
_RESCORE = _Pass(action=ResponseGrade.Action.REGRADE, rescore=True)


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
    """The grader that scores ``item``'s answers here, or :class:`_CannotGrade`: the item's
    own grader, or the cold-start grader while the item's own is missing or has learnt from
    too few teacher scores (EDU_DL GRADING_COLD_START_UNTIL) and the item has a model answer."""
    scope_key = f"item:{item.pk}"
    own = model_version_active(kind=ModelKind.GRADER, scope_key=scope_key)
    cold_start = (
        bool(item.reference_answer.strip())
        and model_version_active(kind=ModelKind.GRADER, scope_key=GLOBAL_SCOPE_KEY) is not None
    )
    if own is not None and not item_grader_yields_to_cold_start(
        own=own, item=item, cold_start_available=cold_start
    ):
        return _item_grader(scope_key)
    if not cold_start:
        raise _CannotGrade(REASON_NO_GRADER)
    return _cold_start_grader(item)


def _item_grader(scope_key: str) -> _Grader:
    version, grader = _load(scope_key, "item grader")
    encoder = _encoder_for(grader)
    return _Grader(
        version=version,
        label="item grader",
        predict=lambda texts: grader.grade(texts, encoder=encoder, explain=True),
    )


def _cold_start_grader(item: Item) -> _Grader:
    from edu_dl.ml.grading.pipeline import score_levels
    from edu_dl.ml.grading.reference import Exemplar

    version, grader = _load(GLOBAL_SCOPE_KEY, "cold-start reference grader")
    encoder = _encoder_for(grader)
    scored = item_teacher_scores(item_id=item.pk)
    # The item's scale as its teachers use it (half points ...), as the reference grader's
    # training codes it.
    levels = score_levels(item.min_score, item.max_score, scored.scores)
    # The item's teacher-scored answers so far: the grader weighs what the most similar of
    # them earned (a grader trained before it read them ignores them).
    exemplars = [
        Exemplar(key=answer.response_id, text=answer.text, score=answer.score)
        for answer in scored.answers
    ]
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
            exemplars=exemplars,
        ),
    )


@contextmanager
def _failures_as_cannot_grade(item: Item) -> Iterator[None]:
    """Turn a grader that cannot load or run here into :class:`_CannotGrade`, with the reason
    its answers go to the teacher instead."""
    from edu_dl.ml.grading.encoder import EncoderUnavailable
    from edu_dl.ml.grading.pipeline import GraderUnavailable

    try:
        yield
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


def _ready_grader(item: Item) -> _Grader:
    """The grader of ``item``, loaded, or :class:`_CannotGrade`."""
    with _failures_as_cannot_grade(item):
        return _grader_for(item)


def _predict(item: Item, grader: _Grader, texts: list[str]) -> list[Any]:
    """The grader's predictions for ``texts``, one per text, or :class:`_CannotGrade`."""
    with _failures_as_cannot_grade(item):
        predictions = grader.predict(texts)
    if len(predictions) != len(texts):
        logger.error(
            "item %s: %d predictions for %d answers", item.pk, len(predictions), len(texts)
        )
        raise _CannotGrade(REASON_FAILED)
    return predictions


# --- The release policy --------------------------------------------------------------------------


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
    *,
    gate: ReleaseGate,
    grader: _Grader,
    confidence: float,
    min_qwk: float,
    min_confidence: float,
    audited: bool = False,
) -> _Decision:
    """Release or not, by ``gate`` (the grader's under the item's thresholds), with the reason
    in words and numbers."""
    from edu_dl.ml.grading.policy import point_agreement

    if audited:
        return _Decision(released=False, reason=REASON_AUDIT, note=REASON_AUDIT)
    point = gate.point
    if gate.allows(confidence):
        assert point is not None and gate.confidence is not None
        note = _released_note(point, confidence, gate.confidence, min_qwk)
        return _Decision(released=True, reason="", note=note)
    failed = []
    if point is None:
        failed.append(_no_point_reason(grader, min_qwk))
    if math.isnan(confidence):
        failed.append("the grader gave no confidence")
    elif not confidence >= min_confidence:
        sure, sure_needed = _shown(confidence, min_confidence)
        failed.append(f"confidence {sure} is below the item's {sure_needed}")
    elif point is not None:
        sure, sure_needed = _shown(confidence, float(point["confidence"]))
        qwk, qwk_needed = _shown(point_agreement(point), min_qwk)
        failed.append(
            f"confidence {sure} is below {sure_needed}, from which the grader's grades "
            f"agreed with the teacher at QWK {qwk} >= {qwk_needed}"
        )
    reason = "; ".join(failed) or "the release policy refused it"
    return _Decision(released=False, reason=reason[:REVIEW_REASON_MAX_LENGTH], note=reason)


def _released_note(point: dict[str, Any], confidence: float, needed: float, min_qwk: float) -> str:
    from edu_dl.ml.grading.policy import point_agreement

    sure, sure_needed = _shown(confidence, needed)
    qwk, qwk_needed = _shown(point_agreement(point), min_qwk)
    share = point.get("share")
    if "qwk_low" in point:
        qwk = f"{float(point['qwk']):.2f} (at least {qwk} >= {qwk_needed})"
    else:
        qwk = f"{qwk} >= {qwk_needed}"
    of = (
        "all its grades"
        if share is None or share >= 1
        else f"its {float(share):.0%} most confident grades"
    )
    return (
        f"released: confidence {sure} >= {sure_needed}; {of} agreed with the teacher "
        f"at validated QWK {qwk}"
    )


def _no_point_reason(grader: _Grader, min_qwk: float) -> str:
    if grader.validated_qwk is None:
        return "the grader's validated QWK is unknown"
    waits = grader.version.metrics.get("release_waits")
    if isinstance(waits, str) and waits:
        return f"the grader is {waits}"
    qwk, qwk_needed = _shown(grader.validated_qwk, min_qwk)
    earlier = grader.version.metrics.get("released_before_answers")
    if earlier:
        # Its curve counts what earlier graders released (policy.released_sample).
        return (
            f"with the grades released before (a sample of {earlier}), not even this grader's "
            f"surest would keep the item at QWK {qwk_needed}; its validated QWK is {qwk}"
        )
    reason = f"the grader's validated QWK {qwk} is below {qwk_needed}"
    if any(point.get("share", 1) < 1 for point in grader.release_curve):
        reason += ", on its most confident grades too"
    return reason


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


def _locked(
    response_ids: list[int], *, grading: _Pass, version: ModelVersion | None = None
) -> list[Response]:
    """The listed responses that ``grading`` may still write, locked, in id order."""
    responses = Response.objects.select_for_update().filter(pk__in=response_ids)
    return list(grading.writable(responses, version=version).order_by("pk"))


def _write_for_review(*, response_ids: list[int], reason: str) -> _ItemResult:
    """No grade to give: the answers wait for the teacher, first in the queue among equals."""
    from edu_dl.ml.grading.policy import review_priority

    priority = review_priority(confidence=None, nearest_similarity=None)
    locked = _locked(response_ids, grading=_FIRST_GRADING)
    for response in locked:
        response.status = Response.Status.NEEDS_REVIEW
        response.review_reason = reason[:REVIEW_REASON_MAX_LENGTH]
        response.review_priority = priority
        response.released = False
        response.save(update_fields=["status", "review_reason", "review_priority", "released"])
    return _ItemResult(responses=locked, released=[])


def _write_predictions(
    *,
    item: Item,
    grader: _Grader,
    predictions: dict[int, Any],
    now: datetime,
    grading: _Pass,
) -> _ItemResult:
    from edu_dl.ml.grading.policy import in_audit_sample, release_gate, review_priority

    min_qwk, min_confidence = release_thresholds(item=item)
    audit_share = edu_settings.GRADING_AUDIT_SHARE
    gate = release_gate(grader.release_curve, min_qwk=min_qwk, min_confidence=min_confidence)
    model = grader.description()
    locked = _locked(list(predictions), grading=grading, version=grader.version)
    history = []
    released = []
    for response in locked:
        prediction = predictions[response.pk]
        confidence = float(prediction.confidence)
        if not math.isnan(confidence):
            confidence = min(1.0, max(0.0, confidence))
        audited = in_audit_sample(response.pk, audit_share)
        decision = _decide(
            gate=gate,
            grader=grader,
            confidence=confidence,
            min_qwk=min_qwk,
            min_confidence=min_confidence,
            audited=audited,
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
                    # The least confidence released for this grader (None: none is).
                    "confidence_needed": gate.confidence,
                    "random_check": audited,
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
                confidence=response.confidence, nearest_similarity=nearest, audited=audited
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
                action=grading.action,
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
    grades_released(response_ids=[response.pk for response in released])
    return _ItemResult(responses=locked, released=released)


def _send_to_review(*, item: Item, responses: list[Response], reason: str) -> _ItemResult:
    logger.info("item %s: %d answers to the teacher: %s", item.pk, len(responses), reason)
    with transaction.atomic():
        result = _write_for_review(response_ids=[r.pk for r in responses], reason=reason)
        _refresh_submissions(result.responses)
    return result


def _grade_item(
    *,
    item: Item,
    responses: list[Response],
    grading: _Pass = _FIRST_GRADING,
    grader: _Grader | None = None,
) -> _ItemResult:
    """Score ``responses`` (all of ``item``) and write what ``grading`` may write, in one
    transaction; ``grader`` is the item's grader when the caller has loaded it already."""
    texts = [response.answer if isinstance(response.answer, str) else "" for response in responses]
    try:
        grader = _ready_grader(item) if grader is None else grader
        predictions = _predict(item, grader, texts)
    except _CannotGrade as cannot:
        if grading.rescore:
            logger.warning(
                "item %s: %d waiting answers not re-scored: %s", item.pk, len(texts), cannot.reason
            )
            return _ItemResult(responses=[], released=[])
        return _send_to_review(item=item, responses=responses, reason=cannot.reason)
    try:
        with transaction.atomic():
            result = _write_predictions(
                item=item,
                grader=grader,
                predictions={r.pk: p for r, p in zip(responses, predictions, strict=True)},
                now=timezone.now(),
                grading=grading,
            )
            _refresh_submissions(result.responses)
    except OperationalError:
        raise  # the database is unreachable: nothing can be written; the sweep retries
    except Exception:
        logger.exception(
            "item %s: the predictions of the %s could not be saved", item.pk, grader.label
        )
        if grading.rescore:
            return _ItemResult(responses=[], released=[])
        return _send_to_review(item=item, responses=responses, reason=REASON_FAILED)
    logger.info(
        "item %s: %d answers %s by the %s v%s, %d released",
        item.pk,
        len(result.responses),
        "re-scored" if grading.rescore else "graded",
        grader.label,
        grader.version.version,
        len(result.released),
    )
    return result


def _refresh_submissions(responses: list[Response]) -> None:
    submission_ids = sorted({response.submission_id for response in responses})
    for submission in Submission.objects.filter(pk__in=submission_ids).order_by("pk"):
        submission_status_refresh(submission=submission)


def _mastery_updates(
    *, item: Item, responses: list[Response], result: _ItemResult
) -> set[tuple[int, int]]:
    """(student, course) of every answer ``result`` released: their mastery changed."""
    students = {response.pk: response.submission.student_id for response in responses}
    return {(students[response.pk], item.course_id) for response in result.released}


def _mastery_updates_enqueue(updates: set[tuple[int, int]]) -> None:
    for student_id, course_id in sorted(updates):
        mastery_update_enqueue(student_id=student_id, course_id=course_id)


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
        mastery_updates |= _mastery_updates(item=item, responses=responses, result=result)
    _mastery_updates_enqueue(mastery_updates)
    return changed


# --- Re-scoring the answers waiting for the teacher ----------------------------------------------


def responses_rescore_waiting(*, item_id: int, limit: int | None = None) -> int:
    """Score again, with the grader now serving item ``item_id``, its answers waiting for the
    teacher whose grade no teacher gave (at most ``limit``, oldest first); returns how many
    were re-scored.

    Run when a grader of the item starts serving (activated or rolled back to), so answers
    sent to the teacher for want of a grader get a suggestion, and a better grader's
    suggestion replaces a worse one's. Each answer goes through the first grading's release
    policy: released, it is graded and feeds knowledge tracing; refused, it keeps waiting with
    the new suggestion, priority and reason. One ResponseGrade row "regrade" per answer.

    Never touches a teacher's grade or a released answer. Safe to run twice: an answer the
    serving version has already scored is skipped. Runs in transactions of
    :data:`RESCORE_CHUNK` answers, so a long queue holds no lock for long; an answer a teacher
    grades meanwhile is skipped under its row lock. When the grader cannot load or run here,
    the answers keep what they had (they are with the teacher already) and 0 is returned.
    """
    item = Item.objects.filter(pk=item_id).first()
    if item is None or item.kind not in Item.MODEL_GRADED_KINDS:
        logger.info("item %s: no model-graded item to re-score", item_id)
        return 0
    if not _RESCORE.writable(Response.objects.filter(item=item)).exists():
        return 0  # nothing waits: the grader is not loaded for nothing
    try:
        grader = _ready_grader(item)
    except _CannotGrade as cannot:
        logger.warning("item %s: waiting answers not re-scored: %s", item.pk, cannot.reason)
        return 0
    waiting = _RESCORE.writable(Response.objects.filter(item=item), version=grader.version)
    ids = list(waiting.order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
    rescored = 0
    for start in range(0, len(ids), RESCORE_CHUNK):
        responses = list(
            Response.objects.filter(pk__in=ids[start : start + RESCORE_CHUNK])
            .select_related("submission")
            .order_by("pk")
        )
        result = _grade_item(item=item, responses=responses, grading=_RESCORE, grader=grader)
        rescored += len(result.responses)
        # After each chunk's commit: a later chunk that fails cannot lose these updates.
        _mastery_updates_enqueue(_mastery_updates(item=item, responses=responses, result=result))
    return rescored


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
