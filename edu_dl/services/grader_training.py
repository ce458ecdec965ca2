"""Graders: training an item's grader or the cold-start reference grader from teacher scores,
and asking for a retraining once teachers scored enough new answers.

Two scopes (see :mod:`edu_dl.services.scopes`):

* ``item``: one item's grader, learnt from its teacher-scored responses
  (:func:`edu_dl.ml.grading.pipeline.train_grader`);
* ``global``: the cold-start reference grader, learnt across every item that has a reference
  answer (:func:`edu_dl.ml.grading.reference.train_reference_grader`); it grades items that
  have no grader of their own yet.

:func:`grader_retrain_if_due` runs in the web process (the review service calls it after each
teacher score): this module imports no torch at import time; :func:`grader_train`, which only
workers call, imports it inside.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from edu_dl.conf import edu_settings
from edu_dl.models import Item, ModelKind, ModelVersion, ResponseGrade, ScopeType, TrainingRun
from edu_dl.selectors.grading import (
    TeacherScores,
    item_teacher_score_count,
    item_teacher_scores,
    model_grades_of_versions,
    reference_items_with_teacher_scores,
    release_thresholds,
    teacher_scores_by_item,
    teacher_scores_fingerprint,
)
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.model_versions import model_version_active
from edu_dl.services.scopes import Scope

logger = logging.getLogger(__name__)

# The least data each grader trains on. The same numbers as edu_dl.ml.grading
# (pipeline.MIN_SCORED_RESPONSES, reference.MIN_ITEMS / MIN_EXAMPLES; a test keeps them equal),
# repeated here so that the web process can check a request without importing torch.
MIN_TEACHER_SCORES = 10
REFERENCE_MIN_ITEMS = 2
REFERENCE_MIN_TEACHER_SCORES = 20

TEACHER_ACTIONS = (ResponseGrade.Action.ACCEPT, ResponseGrade.Action.OVERRIDE)
GLOBAL_SCOPE_KEY = "global"


# --- Checks (web process) ------------------------------------------------------------------------


def _item_check(item: Item, count: int) -> None:
    if count < MIN_TEACHER_SCORES:
        raise ValidationFailed(
            f"item {item.pk} ({item}) has {count} teacher-scored responses; "
            f"a grader needs at least {MIN_TEACHER_SCORES} to train",
            field="item",
        )


def _reference_check(items: int, scores: int) -> None:
    if items < REFERENCE_MIN_ITEMS or scores < REFERENCE_MIN_TEACHER_SCORES:
        raise ValidationFailed(
            f"the cold-start grader learns across items with a reference answer: it needs at "
            f"least {REFERENCE_MIN_ITEMS} such items and {REFERENCE_MIN_TEACHER_SCORES} "
            f"teacher-scored responses, and there are {items} items with {scores}",
            field="scope",
        )


def grader_training_data_check(*, scope: Scope) -> None:
    """Refuse (:class:`ValidationFailed`) a grader training request without enough teacher
    scores to learn from; called by ``training_request`` before anything is written."""
    if scope.scope_type == ScopeType.ITEM:
        _item_check(scope.item, item_teacher_score_count(item_id=scope.item.pk))
    else:
        items = reference_items_with_teacher_scores()
        _reference_check(len(items), sum(item.teacher_scores for item in items))


# --- Retraining after teacher scores (web process) -----------------------------------------------


def _teacher_scores_since_last_run(*, item_ids: list[int], scope_key: str) -> int:
    """Accepts and overrides of the items' responses since the scope's newest grader run was
    created (all of them when it never trained)."""
    scores = ResponseGrade.objects.filter(
        response__item_id__in=item_ids, action__in=TEACHER_ACTIONS
    )
    last = (
        TrainingRun.objects.filter(kind=ModelKind.GRADER, scope_key=scope_key)
        .order_by("-created_at", "-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    if last is not None:
        scores = scores.filter(created_at__gt=last)
    return scores.count()


def _has_open_run(scope_key: str) -> bool:
    return TrainingRun.objects.filter(
        kind=ModelKind.GRADER, scope_key=scope_key, status__in=TrainingRun.OPEN_STATUSES
    ).exists()


def _reference_retrain_if_due(*, requested_by: AbstractBaseUser | None) -> TrainingRun | None:
    """Ask for the cold-start grader when none serves yet and the reference-answer items hold
    enough teacher scores; after a run that did not give one, only once as many new teacher
    scores arrived as an item's retraining waits for (a failing run is not retried at every
    score)."""
    from edu_dl.services.training import training_request

    if model_version_active(kind=ModelKind.GRADER, scope_key=GLOBAL_SCOPE_KEY) is not None:
        return None
    if _has_open_run(GLOBAL_SCOPE_KEY):
        return None
    items = reference_items_with_teacher_scores()
    scores = sum(item.teacher_scores for item in items)
    if len(items) < REFERENCE_MIN_ITEMS or scores < REFERENCE_MIN_TEACHER_SCORES:
        return None
    tried = TrainingRun.objects.filter(kind=ModelKind.GRADER, scope_key=GLOBAL_SCOPE_KEY)
    if tried.exists():
        new = _teacher_scores_since_last_run(
            item_ids=[item.pk for item in items], scope_key=GLOBAL_SCOPE_KEY
        )
        if new < edu_settings.GRADING_RETRAIN_AFTER_TEACHER_SCORES:
            return None
    run = training_request(kind=ModelKind.GRADER, requested_by=requested_by)
    logger.info(
        "cold-start grader requested: run %s (%d items, %d scores)", run.pk, len(items), scores
    )
    return run


def grader_retrain_if_due(
    *, item: Item, requested_by: AbstractBaseUser | None = None
) -> TrainingRun | None:
    """Ask for a new grader of ``item`` once teachers accepted or overrode
    ``EDU_DL['GRADING_RETRAIN_AFTER_TEACHER_SCORES']`` of its responses since its last grader
    run was created (or ever, when it never trained), and it has at least
    :data:`MIN_TEACHER_SCORES` teacher-scored responses. Returns the item's run (an open one
    is returned as it is), or None when it is not due.

    Also asks for the cold-start reference grader when none serves and enough items with a
    reference answer carry teacher scores. Called by the review service after every teacher
    score; cheap (a few counts) and torch-free. A refused request is logged, never raised:
    the teacher's score is saved whatever happens here.
    """
    if item.kind not in Item.MODEL_GRADED_KINDS:
        return None
    if item.reference_answer.strip():
        try:
            _reference_retrain_if_due(requested_by=requested_by)
        except ValidationFailed as error:
            logger.warning("cold-start grader not requested: %s", error.message)
    scope_key = f"item:{item.pk}"
    from edu_dl.services.training import training_request

    open_run = TrainingRun.objects.filter(
        kind=ModelKind.GRADER, scope_key=scope_key, status__in=TrainingRun.OPEN_STATUSES
    ).first()
    if open_run is not None:
        return open_run
    new = _teacher_scores_since_last_run(item_ids=[item.pk], scope_key=scope_key)
    if new < edu_settings.GRADING_RETRAIN_AFTER_TEACHER_SCORES:
        return None
    if item_teacher_score_count(item_id=item.pk) < MIN_TEACHER_SCORES:
        return None
    try:
        run = training_request(kind=ModelKind.GRADER, item=item, requested_by=requested_by)
    except ValidationFailed as error:
        logger.warning("grader of item %s not requested: %s", item.pk, error.message)
        return None
    logger.info("grader of item %s requested after %d teacher scores: run %s", item.pk, new, run.pk)
    return run


# --- Training (worker) ---------------------------------------------------------------------------


def encoder_setting(*, essays: bool) -> str:
    """The encoder setting that applies to essays or to short answers: essays go without one
    unless ``EDU_DL['GRADING_ENCODER_ESSAYS']`` (it would read only their opening words)."""
    if essays and not edu_settings.GRADING_ENCODER_ESSAYS:
        return ""
    return edu_settings.GRADING_ENCODER


def _encoder(item: Item | None = None) -> Any:
    """The sentence encoder named by ``EDU_DL['GRADING_ENCODER']`` (None for "", or for
    "auto" without the ``encoder`` extra); a missing one fails the run with the reason, rather
    than training a grader without it. An essay ``item`` gets none unless
    ``EDU_DL['GRADING_ENCODER_ESSAYS']``: the encoder would read only its opening words."""
    from edu_dl.ml.grading.encoder import EncoderUnavailable, load_encoder
    from edu_dl.services.runtime import torch_device

    name = encoder_setting(essays=item is not None and item.kind == Item.Kind.ESSAY)
    try:
        return load_encoder(name, device=str(torch_device()))
    except EncoderUnavailable as error:
        raise ValidationFailed(
            f"the sentence encoder EDU_DL['GRADING_ENCODER'] = {name!r} is not available in "
            f"this worker: {error}",
            field="GRADING_ENCODER",
        ) from error


def tune_config(
    layers: int | None = None, epochs: int | None = None, retune_growth: float | None = None
) -> Any:
    """How graders tune the encoder's top layers: ``EDU_DL['GRADING_ENCODER_TUNE_LAYERS']``
    (or ``layers``), ``['GRADING_ENCODER_TUNE_EPOCHS']`` (or ``epochs``),
    ``['GRADING_ENCODER_TUNE_MIN_ANSWERS']`` and ``['GRADING_ENCODER_RETUNE_GROWTH']`` (or
    ``retune_growth``)."""
    from edu_dl.ml.grading.tuned import TuneConfig

    return TuneConfig(
        layers=edu_settings.GRADING_ENCODER_TUNE_LAYERS if layers is None else layers,
        epochs=edu_settings.GRADING_ENCODER_TUNE_EPOCHS if epochs is None else epochs,
        min_responses=edu_settings.GRADING_ENCODER_TUNE_MIN_ANSWERS,
        retune_growth=float(
            edu_settings.GRADING_ENCODER_RETUNE_GROWTH if retune_growth is None else retune_growth
        ),
    )


def _qwk(gold: list[float], predicted: list[float], *, item: Item, n_levels: int) -> float:
    from edu_dl.ml.grading.pipeline import qwk_on_scale

    return qwk_on_scale(
        gold, predicted, min_score=item.min_score, max_score=item.max_score, n_levels=n_levels
    )


def _active_item_grader(item: Item, version: ModelVersion | None) -> Any:
    """The item's active grader from its active ``version``, or None where it has none or its
    file cannot be read (then the new grader starts afresh: logged, never an error)."""
    from edu_dl.ml.checkpoint import CheckpointError
    from edu_dl.ml.grading.pipeline import GraderUnavailable, TrainedGrader
    from edu_dl.services.artifacts import ArtifactIntegrityError, artifact_read_verified

    if version is None:
        return None
    try:
        return TrainedGrader.from_bytes(artifact_read_verified(version=version))
    except (ArtifactIntegrityError, CheckpointError, GraderUnavailable) as error:
        logger.warning("item %s: its active grader %s is not reused: %s", item.pk, version, error)
        return None


def _served_graders(
    item: Item, data: TeacherScores, audit: list[bool]
) -> list[tuple[dict[str, Any], list[tuple]]]:
    """Every grader that has served ``item`` (oldest first), each with the teacher-scored
    answers of the random check it scored while they waited: ``(metrics, [(response id,
    teacher's level, its level, its confidence)])``, what
    :func:`edu_dl.ml.grading.policy.released_by_graders` reads. ``data``: the item's teacher
    scores; ``audit``: which of them are in the random check."""
    from edu_dl.ml.grading.pipeline import score_levels
    from edu_dl.ml.grading.scorer import levels_of

    versions = list(
        ModelVersion.objects.filter(
            kind=ModelKind.GRADER, scope_key=f"item:{item.pk}", activated_at__isnull=False
        )
        .order_by("version")
        .only("pk", "metrics")
    )
    checked = [rid for rid, audited in zip(data.response_ids, audit, strict=True) if audited]
    grades = (
        model_grades_of_versions(version_ids=[v.pk for v in versions], response_ids=checked)
        if versions and checked
        else {}
    )
    scale = {
        "min_score": item.min_score,
        "max_score": item.max_score,
        "n_levels": score_levels(item.min_score, item.max_score, list(data.scores)),
    }
    teacher = dict(zip(data.response_ids, levels_of(data.scores, **scale).tolist(), strict=True))
    served = []
    for version in versions:
        given = grades.get(version.pk, [])
        levels = levels_of([score for _, score, _ in given], **scale).tolist() if given else []
        served.append(
            (
                version.metrics or {},
                [
                    (rid, teacher[rid], level, confidence)
                    for (rid, _, confidence), level in zip(given, levels, strict=True)
                ],
            )
        )
    return served


def _item_grader_train(*, run: TrainingRun, reporter: Any) -> Any:
    from edu_dl.ml.config import config_to_dict
    from edu_dl.ml.grading.pipeline import (
        MIN_SCORED_RESPONSES,
        GraderUnavailable,
        TrainedGrader,
        train_grader,
    )
    from edu_dl.ml.grading.policy import in_audit_sample, released_by_graders
    from edu_dl.services.training import TrainingOutcome

    item = run.item
    reporter.stage("reading the teacher's scores", 3)
    data = item_teacher_scores(item_id=item.pk)
    count = len(data.answers)
    if count < MIN_SCORED_RESPONSES:
        raise ValidationFailed(
            f"item {item.pk} ({item}) has {count} teacher-scored answers; a grader needs at "
            f"least {MIN_SCORED_RESPONSES} to train",
            field="item",
        )
    reporter.stage("loading the sentence encoder", 6)
    encoder = _encoder(item)
    # Its tuned encoder layers may serve again (tuned.retune_reason decides).
    tunes = encoder is not None and count >= edu_settings.GRADING_ENCODER_TUNE_MIN_ANSWERS
    active = model_version_active(kind=ModelKind.GRADER, scope_key=f"item:{item.pk}")
    previous = _active_item_grader(item, active) if tunes else None
    reporter.stage(f"training on {count} teacher-scored answers", 10)
    # What the graders so far released (every one that served the item, so that one rolled
    # back still counts): the new one's gate vouches for that and its own releases together
    # (policy.released_by_graders).
    min_qwk, min_confidence = release_thresholds(item=item)
    audit = [
        in_audit_sample(response_id, edu_settings.GRADING_AUDIT_SHARE)
        for response_id in data.response_ids
    ]
    served = _served_graders(item, data, audit)
    started = time.perf_counter()
    try:
        trained = train_grader(
            data.texts,
            data.scores,
            data.response_ids,
            min_score=item.min_score,
            max_score=item.max_score,
            reference_answer=item.reference_answer,
            encoder=encoder,
            audit=audit,
            tune=tune_config(),
            previous=previous,
            random_check=edu_settings.GRADING_AUDIT_SHARE > 0,
            released_before=released_by_graders(
                served, min_qwk=min_qwk, min_confidence=min_confidence
            ),
            # Tuning the encoder takes minutes: each epoch is a heartbeat (and a cancel point).
            progress=lambda epoch, epochs: reporter.stage(
                f"tuning the sentence encoder on the item: epoch {epoch} of {epochs}",
                10 + 80 * epoch // epochs,
            ),
        )
    except ValueError as error:
        raise ValidationFailed(str(error)) from error
    seconds = time.perf_counter() - started
    n_levels = int(trained.metrics["n_levels"])

    def score_other(artifact: bytes) -> float:
        """The other version's QWK on this run's teacher-scored answers that it did not learn
        from (NaN when there are too few of those to measure it fairly, or when it cannot
        grade here): a version is never measured on its own training answers."""
        try:
            other = TrainedGrader.from_bytes(artifact)
            seen = set(other.keys)
            unseen = [answer for answer in data.answers if answer.response_id not in seen]
            if len(unseen) < MIN_SCORED_RESPONSES:
                logger.info(
                    "gate of run %s: %d answers the active grader did not learn from; "
                    "too few to measure it",
                    run.pk,
                    len(unseen),
                )
                return float("nan")
            other_encoder = encoder if other.encoder_name == getattr(encoder, "name", "") else None
            predictions = other.grade(
                [answer.text for answer in unseen], encoder=other_encoder, explain=False
            )
        except GraderUnavailable as error:
            logger.warning("gate of run %s: the active grader cannot grade here: %s", run.pk, error)
            return float("nan")
        return _qwk(
            [answer.score for answer in unseen],
            [prediction.score for prediction in predictions],
            item=item,
            n_levels=n_levels,
        )

    metrics = {
        **trained.metrics,
        "teacher_scored_answers": count,
        "encoder": getattr(encoder, "name", ""),
        "train_seconds": round(seconds, 2),
    }
    reporter.stage("saving the grader", 92)
    return TrainingOutcome(
        architecture=trained.scorer.registered_name,
        config={"model": config_to_dict(trained.scorer.config), "encoder": trained.encoder_name},
        artifact=trained.to_bytes(),
        metrics=metrics,
        gate_metric="validated_qwk",
        data_fingerprint=teacher_scores_fingerprint([data]),
        score_other=score_other,
        held_out="the teacher-scored answers the active version did not learn from",
    )


def _reference_examples(scores: dict[int, TeacherScores], items: list[Item]) -> list[Any]:
    from edu_dl.ml.grading.pipeline import score_levels
    from edu_dl.ml.grading.reference import ReferenceExample

    examples = []
    for item in items:
        answers = scores[item.pk]
        levels = score_levels(item.min_score, item.max_score, answers.scores)
        examples.extend(
            ReferenceExample(
                item_key=str(item.pk),
                question=item.prompt,
                reference_answer=item.reference_answer,
                response=answer.text,
                score=answer.score,
                min_score=item.min_score,
                max_score=item.max_score,
                n_levels=levels,
            )
            for answer in answers.answers
        )
    return examples


def _reference_grader_train(*, run: TrainingRun, reporter: Any) -> Any:
    import numpy as np

    from edu_dl.ml.config import config_to_dict
    from edu_dl.ml.grading.pipeline import GraderUnavailable, qwk_on_scale
    from edu_dl.ml.grading.reference import TrainedReferenceGrader, train_reference_grader
    from edu_dl.services.runtime import torch_device
    from edu_dl.services.training import TrainingOutcome

    reporter.stage("reading the teacher's scores of items with a reference answer", 3)
    items = reference_items_with_teacher_scores()
    scores = teacher_scores_by_item(item_ids=[item.pk for item in items])
    items = [item for item in items if scores[item.pk].answers]
    examples = _reference_examples(scores, items)
    _reference_check(len(items), len(examples))
    reporter.stage("loading the sentence encoder", 6)
    encoder = _encoder()
    device = torch_device()
    reporter.stage(f"training on {len(examples)} answers to {len(items)} items", 10)
    started = time.perf_counter()
    try:
        trained = train_reference_grader(examples, encoder=encoder, device=device)
    except ValueError as error:
        raise ValidationFailed(str(error)) from error
    seconds = time.perf_counter() - started
    held_out_keys = list(trained.metrics.get("validated_item_keys", []))

    def score_other(artifact: bytes) -> float:
        """The other version's mean per-item QWK on the items this run held out."""
        try:
            other = TrainedReferenceGrader.from_bytes(artifact)
            other_encoder = encoder if other.encoder_name == getattr(encoder, "name", "") else None
            per_item = []
            for key in held_out_keys:
                group = [example for example in examples if example.item_key == key]
                if not group:
                    continue
                first = group[0]
                predictions = other.grade(
                    question=first.question,
                    reference_answer=first.reference_answer,
                    texts=[example.response for example in group],
                    min_score=first.min_score,
                    max_score=first.max_score,
                    n_levels=first.n_levels,
                    encoder=other_encoder,
                    explain=False,
                )
                per_item.append(
                    qwk_on_scale(
                        [example.score for example in group],
                        [prediction.score for prediction in predictions],
                        min_score=first.min_score,
                        max_score=first.max_score,
                        n_levels=first.n_levels,
                    )
                )
        except GraderUnavailable as error:
            logger.warning("gate of run %s: the active grader cannot grade here: %s", run.pk, error)
            return float("nan")
        return float(np.mean(per_item)) if per_item else float("nan")

    metrics = {
        **trained.metrics,
        "teacher_scored_answers": len(examples),
        "encoder": getattr(encoder, "name", ""),
        "train_seconds": round(seconds, 2),
        "device": str(device),
    }
    reporter.stage("saving the grader", 92)
    return TrainingOutcome(
        architecture=trained.scorer.registered_name,
        config={"model": config_to_dict(trained.scorer.config), "encoder": trained.encoder_name},
        artifact=trained.to_bytes(),
        metrics=metrics,
        gate_metric="validated_qwk",
        data_fingerprint=teacher_scores_fingerprint(scores[item.pk] for item in items),
        score_other=score_other,
        held_out=f"the {len(held_out_keys)} items this run held out",
    )


def grader_train(*, run: TrainingRun, reporter: Any) -> Any:
    """Train the run's grader (an item's, or the cold-start reference grader) and return a
    ``TrainingOutcome`` for the evaluation gate, which compares the two on ``validated_qwk``.

    Refused (:class:`ValidationFailed`, the run fails with the message): too few teacher
    scores, or the configured sentence encoder missing in this worker.
    """
    if run.scope_type == ScopeType.ITEM:
        return _item_grader_train(run=run, reporter=reporter)
    return _reference_grader_train(run=run, reporter=reporter)
