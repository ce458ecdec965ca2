"""Grader training runs (an item's grader and the cold-start reference grader) and the
retraining that teachers' scores set off."""

from __future__ import annotations

import pytest
import torch

from edu_dl.ml.grading.pipeline import MIN_SCORED_RESPONSES, TrainedGrader
from edu_dl.ml.grading.policy import release_curve_of, release_gate, released_sample
from edu_dl.ml.grading.reference import MIN_EXAMPLES, MIN_ITEMS
from edu_dl.models import ModelVersion, TrainingRun
from edu_dl.services.artifacts import artifact_read_verified
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.grader_training import (
    MIN_TEACHER_SCORES,
    REFERENCE_MIN_ITEMS,
    REFERENCE_MIN_TEACHER_SCORES,
    grader_retrain_if_due,
)
from edu_dl.services.grading import responses_grade_by_model
from edu_dl.services.model_versions import model_version_activate, model_version_rollback
from edu_dl.services.review import response_override
from edu_dl.services.training import training_request, training_run_cancel, training_run_execute
from tests.factories import TrainingRunFactory
from tests.grading_data import (
    EVAPORATION_QUESTION,
    EVAPORATION_REFERENCE,
    PHOTOSYNTHESIS_QUESTION,
    PHOTOSYNTHESIS_REFERENCE,
    evaporation_answers,
    make_quiz,
    new_student,
    photosynthesis_answers,
    submit,
    teacher_scored,
)
from tests.tiny_encoder import TunableEncoder

# No message reaches a broker: the shared ``sent`` fixture records them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]

PHOTOSYNTHESIS = {
    "title": "Photosynthesis",
    "prompt": PHOTOSYNTHESIS_QUESTION,
    "reference_answer": PHOTOSYNTHESIS_REFERENCE,
}
EVAPORATION = {
    "title": "Evaporation",
    "prompt": EVAPORATION_QUESTION,
    "reference_answer": EVAPORATION_REFERENCE,
}


def interleaved() -> tuple[list[str], list[float]]:
    """The photosynthesis answers, right and wrong ones in turn: any first part holds both."""
    texts, scores = photosynthesis_answers()
    order = [index for pair in zip(range(15), range(15, 30), strict=True) for index in pair]
    return [texts[i] for i in order], [scores[i] for i in order]


def test_the_ml_minimums_are_the_ones_the_web_process_checks():
    assert MIN_TEACHER_SCORES == MIN_SCORED_RESPONSES
    assert (REFERENCE_MIN_ITEMS, REFERENCE_MIN_TEACHER_SCORES) == (MIN_ITEMS, MIN_EXAMPLES)


def test_a_grader_run_learns_the_items_teacher_scores_and_serves_them():
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = photosynthesis_answers()
    scored = teacher_scored(quiz, item, texts, scores)
    run = training_request(kind="grader", item=item, requested_by=quiz.teacher)

    training_run_execute(run_id=run.pk, task_id="t1", worker="w1")

    run.refresh_from_db()
    version = ModelVersion.objects.get()
    grader = TrainedGrader.from_bytes(artifact_read_verified(version=version))
    assert (run.status, run.progress, run.stage, run.error) == ("succeeded", 100, "done", "")
    assert (version.kind, version.scope_type, version.scope_key, version.item) == (
        "grader",
        "item",
        f"item:{item.pk}",
        item,
    )
    assert (version.status, version.version, version.training_run) == ("active", 1, run)
    assert version.architecture == "item-scorer"
    assert version.metrics["validated_qwk"] == 0.8
    assert (version.metrics["n_train"], version.metrics["teacher_scored_answers"]) == (30, 30)
    assert version.gate_reason == "activated: first version (validated_qwk 0.8000)"
    assert len(version.data_fingerprint) == 64
    assert grader.keys == [response.pk for response in scored]
    assert grader.validated_qwk == 0.8


def test_the_grader_is_validated_on_the_random_check_of_the_items_answers(settings):
    # Every answer in the check (the tests keep it off otherwise), 60 of them: enough.
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_AUDIT_SHARE": 0.999999}
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = photosynthesis_answers()
    teacher_scored(quiz, item, texts * 2, scores * 2)
    run = training_request(kind="grader", item=item, requested_by=quiz.teacher)

    training_run_execute(run_id=run.pk, task_id="t1", worker="w1")

    metrics = ModelVersion.objects.get().metrics
    assert (metrics["validated_on"], metrics["validated_answers"]) == ("random check", 60)
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_AUDIT_SHARE": 0.0}
    run = training_request(kind="grader", item=item, requested_by=quiz.teacher)
    training_run_execute(run_id=run.pk, task_id="t2", worker="w1")
    latest = ModelVersion.objects.latest("version").metrics
    assert (latest["validated_on"], latest["validated_answers"]) == ("all teacher scores", 60)


def test_a_retrained_graders_release_curve_counts_what_the_active_one_released(settings, client):
    # Every answer in the check: 60 of them, validated on out of sample.
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_AUDIT_SHARE": 0.999999}
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    # Each half of this check is graded by settings chosen on the other half alone (30 answers):
    # a low bar, for the gate to let some grades through.
    item.release_min_qwk, item.release_min_confidence = 0.45, 0.0
    item.save()
    texts, scores = photosynthesis_answers()
    # The answers twice, the second time in other words and with a fifth of the scores turned
    # round: a grader sure of some answers and not of others.
    texts = texts + [text + " maybe" for text in texts]
    scores = scores + [s if i % 5 else 1.0 - s for i, s in enumerate(scores)]
    scored = teacher_scored(quiz, item, texts, scores)
    training_run_execute(run_id=training_request(kind="grader", item=item).pk)
    first = ModelVersion.objects.get()
    ids = [response.pk for response in scored]
    assert [row[0] for row in first.metrics["validation_grades"]] == ids
    assert "released_before" not in first.metrics
    expected = released_sample(first.metrics, min_qwk=0.45, min_confidence=0.0).grades
    assert 0 < len(expected) < 60  # its gate let some of its grades through

    training_run_execute(run_id=training_request(kind="grader", item=item).pk)

    second = ModelVersion.objects.latest("version")
    assert second.metrics["released_before_answers"] == len(expected)
    assert {row[0]: (row[1], row[2]) for row in second.metrics["released_before"]} == expected
    curve = second.metrics["release_curve"]
    assert curve[-1]["answers"] == 60 - len(expected)
    # The API shows the figures, not the grades of single answers.
    client.force_login(quiz.teacher)
    listed = client.get(f"/api/v1/courses/{quiz.course.slug}/models/").json()
    shown = {row["version"]: row["metrics"] for row in listed["results"]}
    assert shown[2]["released_before_answers"] == len(expected)
    assert not {"validation_grades", "released_before"} & (set(shown[1]) | set(shown[2]))


def checked_item(settings, *, min_qwk: float):
    """A question whose 60 teacher-scored answers are all in the random check (60: enough to
    measure a grader on), with the bar ``min_qwk`` and no least confidence."""
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_AUDIT_SHARE": 0.999999}
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    item.release_min_qwk, item.release_min_confidence = min_qwk, 0.0
    item.save()
    texts, scores = photosynthesis_answers()
    teacher_scored(quiz, item, texts * 2, scores * 2)
    return quiz, item


def test_releases_of_a_grader_rolled_back_still_count_for_the_next_one(settings):
    _, item = checked_item(settings, min_qwk=0.6)
    scope = f"item:{item.pk}"
    training_run_execute(run_id=training_request(kind="grader", item=item).pk)
    training_run_execute(run_id=training_request(kind="grader", item=item).pk)
    first, second = ModelVersion.objects.order_by("version")
    # The first grader released nothing; the second every answer of its random check while it
    # served...
    first.metrics = {**first.metrics, "release_curve": []}
    first.save(update_fields=["metrics"])
    second.metrics = {
        **second.metrics,
        "release_curve": [{"confidence": 0.0, "qwk": 0.99, "qwk_low": 0.95, "share": 1.0}],
    }
    second.save(update_fields=["metrics"])
    model_version_activate(version=second)
    released = released_sample(second.metrics, min_qwk=0.6, min_confidence=0.0).grades
    assert len(released) == 60
    # ... and was rolled back: the first serves again, and knows nothing of those releases.
    assert model_version_rollback(kind="grader", scope_key=scope) == first
    assert released_sample(first.metrics, min_qwk=0.6, min_confidence=0.0).grades == {}

    training_run_execute(run_id=training_request(kind="grader", item=item).pk)

    third = ModelVersion.objects.latest("version")
    assert {row[0]: (row[1], row[2]) for row in third.metrics["released_before"]} == released
    # Nothing of the random check is left unreleased to measure a curve on.
    assert third.metrics["release_curve"] == []


def test_answers_of_the_random_check_a_grader_scored_while_they_waited_count_as_released(
    settings,
):
    quiz, item = checked_item(settings, min_qwk=0.0)
    texts, scores = photosynthesis_answers()
    training_run_execute(run_id=training_request(kind="grader", item=item).pk)
    first = ModelVersion.objects.get()
    # New answers, all in the random check: the grader scores them, nothing is released...
    new = [
        submit(quiz, new_student(quiz.course, 100 + i), {item: text})[0]
        for i, text in enumerate(text + " indeed" for text in texts)
    ]
    graded = responses_grade_by_model(response_ids=[r.pk for r in new])
    assert {r.status for r in graded} == {"needs_review"} and not any(r.released for r in graded)
    # ... until the teacher scores them.
    for response, score in zip(new, scores, strict=True):
        response_override(response=response, actor=quiz.teacher, score=score)
    gate = release_gate(release_curve_of(first.metrics), min_qwk=0.0, min_confidence=0.0)
    by_id = {r.pk: r for r in graded}
    would = {
        r.pk: (int(score), int(by_id[r.pk].score))
        for r, score in zip(new, scores, strict=True)
        if gate.allows(by_id[r.pk].confidence)
    }
    assert would  # its gate would have released some of them

    training_run_execute(run_id=training_request(kind="grader", item=item).pk)

    second = ModelVersion.objects.latest("version")
    earlier = {row[0]: (row[1], row[2]) for row in second.metrics["released_before"]}
    assert {k: earlier[k] for k in would} == would
    assert not set(earlier) & ({r.pk for r in new} - set(would))


def test_a_new_grader_is_gated_on_the_answers_the_active_one_never_learnt_from():
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = interleaved()
    teacher_scored(quiz, item, texts[:20], scores[:20])
    first = training_request(kind="grader", item=item)
    training_run_execute(run_id=first.pk)
    teacher_scored(quiz, item, texts[20:], scores[20:], first_student=20)
    second = training_request(kind="grader", item=item)

    training_run_execute(run_id=second.pk)

    old, new = ModelVersion.objects.order_by("version")
    assert TrainingRun.objects.get(pk=second.pk).status == "succeeded"
    # The first grader learnt from none of the last ten answers and scores all ten right; the
    # new one's validated QWK, over all thirty with the three disputed ones, is 0.8.
    assert new.metrics["active_validated_qwk"] == 1.0
    assert new.gate_reason == (
        "not activated: validated_qwk 0.8000 is below active v1's 1.0000 on the "
        "teacher-scored answers the active version did not learn from"
    )
    assert (old.status, new.status) == ("active", "candidate")
    assert new.data_fingerprint != old.data_fingerprint


def test_too_few_teacher_scores_are_refused_and_nothing_is_created():
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = interleaved()
    teacher_scored(quiz, item, texts[:9], scores[:9])

    with pytest.raises(ValidationFailed, match="has 9 teacher-scored responses; a grader needs"):
        training_request(kind="grader", item=item)

    assert TrainingRun.objects.count() == 0
    assert ModelVersion.objects.count() == 0


def test_a_run_that_finds_too_few_teacher_scores_fails_with_the_count():
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = interleaved()
    teacher_scored(quiz, item, texts[:5], scores[:5])
    # Made as a row: the request itself refuses so little data (see the test above).
    run = TrainingRunFactory(
        kind="grader",
        scope_type="item",
        course=item.course,
        item=item,
        scope_key=f"item:{item.pk}",
        idempotency_key=f"grader:item:{item.pk}",
    )

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == (
        f"ValidationFailed: item {item.pk} (Photosynthesis) has 5 teacher-scored answers; "
        "a grader needs at least 10 to train"
    )
    assert ModelVersion.objects.count() == 0


def test_a_missing_sentence_encoder_fails_the_run_with_the_setting_named(settings):
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_ENCODER": "/no/such/encoder"}
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = interleaved()
    teacher_scored(quiz, item, texts[:10], scores[:10])
    run = training_request(kind="grader", item=item)

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == (
        "ValidationFailed: the sentence encoder EDU_DL['GRADING_ENCODER'] = '/no/such/encoder' "
        "is not available in this worker: encoder path '/no/such/encoder' is not a directory"
    )
    assert ModelVersion.objects.count() == 0


def test_a_grader_run_tunes_the_configured_encoder_and_grading_uses_the_blend(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    from edu_dl.ml.grading import encoder as encoder_module
    from edu_dl.services.grading import responses_grade_by_model

    monkeypatch.setitem(encoder_module._cache, ("tiny-bert", "cpu"), TunableEncoder())
    settings.EDU_DL = {
        **settings.EDU_DL,
        "GRADING_ENCODER": "tiny-bert",
        "GRADING_ENCODER_TUNE_MIN_ANSWERS": 40,
        "GRADING_ENCODER_TUNE_EPOCHS": 2,
    }
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = photosynthesis_answers()
    teacher_scored(quiz, item, texts * 2, scores * 2)
    run = training_request(kind="grader", item=item, requested_by=quiz.teacher)

    training_run_execute(run_id=run.pk, task_id="t1", worker="w1")

    run.refresh_from_db()
    version = ModelVersion.objects.get()
    grader = TrainedGrader.from_bytes(artifact_read_verified(version=version))
    assert run.status == "succeeded"
    assert grader.tuned is not None and grader.encoder_name == "tiny-bert"
    assert version.config["encoder"] == "tiny-bert"
    tuned = version.metrics["tuned"]
    assert (tuned["layers"], tuned["epochs"], tuned["trained_on"]) == (2, 2, 30)
    assert version.metrics["validated_on"] == "answers held out of tuning"
    assert version.metrics["validated_answers"] == 30

    (response,) = submit(quiz, new_student(quiz.course, 99), {item: texts[0]})
    with django_capture_on_commit_callbacks(execute=True):
        responses_grade_by_model(response_ids=[response.pk])

    response.refresh_from_db()
    assert response.status in ("graded", "needs_review")
    assert response.model_version == version
    assert response.explanation["similar"]


@pytest.mark.parametrize(("essays_too", "expected"), [(False, ""), (True, "tiny-bert")])
def test_an_essays_grader_uses_the_encoder_only_when_the_setting_says(
    settings, monkeypatch, essays_too, expected
):
    # The encoder reads an answer's opening words only: essays go without it by default.
    from edu_dl.ml.grading import encoder as encoder_module

    monkeypatch.setitem(encoder_module._cache, ("tiny-bert", "cpu"), TunableEncoder())
    settings.EDU_DL = {
        **settings.EDU_DL,
        "GRADING_ENCODER": "tiny-bert",
        "GRADING_ENCODER_ESSAYS": essays_too,
        "GRADING_ENCODER_TUNE_MIN_ANSWERS": 10_000,
    }
    quiz = make_quiz(items=[{**PHOTOSYNTHESIS, "kind": "essay", "max_score": 2}])
    item = quiz.items[0]
    texts, scores = photosynthesis_answers()
    teacher_scored(quiz, item, texts, scores)
    run = training_request(kind="grader", item=item, requested_by=quiz.teacher)

    training_run_execute(run_id=run.pk, task_id="t1", worker="w1")

    version = ModelVersion.objects.get()
    grader = TrainedGrader.from_bytes(artifact_read_verified(version=version))
    assert grader.encoder_name == expected
    assert version.metrics["encoder"] == expected


def test_a_retrain_keeps_the_active_graders_tuned_layers_until_enough_new_answers(
    settings, monkeypatch
):
    from edu_dl.ml.grading import encoder as encoder_module
    from edu_dl.ml.grading import policy
    from edu_dl.ml.grading.tuned import TuneConfig
    from edu_dl.services import grader_training

    monkeypatch.setitem(encoder_module._cache, ("tiny-bert", "cpu"), TunableEncoder())
    settings.EDU_DL = {
        **settings.EDU_DL,
        "GRADING_ENCODER": "tiny-bert",
        "GRADING_ENCODER_TUNE_MIN_ANSWERS": 40,
    }
    # A random check of every third answer, held out of tuning from 10 answers on.
    monkeypatch.setattr(policy, "in_audit_sample", lambda key, share: key % 3 == 0)
    monkeypatch.setattr(
        grader_training,
        "tune_config",
        lambda: TuneConfig(epochs=2, min_responses=40, min_validation=10, retune_growth=0.5),
    )
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    item = quiz.items[0]
    texts, scores = photosynthesis_answers()
    teacher_scored(quiz, item, texts * 2, scores * 2)
    training_run_execute(run_id=training_request(kind="grader", item=item).pk)
    first = ModelVersion.objects.get(status="active")
    teacher_scored(quiz, item, texts[:6], scores[:6], first_student=60)

    run = training_request(kind="grader", item=item)
    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    second = ModelVersion.objects.exclude(pk=first.pk).get()
    assert run.status == "succeeded", run.error
    assert first.metrics["tuned"]["tuned_because"] == "no earlier tuned layers"
    tuned = second.metrics["tuned"]
    assert tuned["layers_kept"] is True, tuned
    assert tuned["trained_on"] == first.metrics["tuned"]["trained_on"]
    assert second.metrics["validated_on"] == "random check"
    kept = TrainedGrader.from_bytes(artifact_read_verified(version=second)).tuned
    earlier = TrainedGrader.from_bytes(artifact_read_verified(version=first)).tuned
    assert all(
        torch.equal(earlier.state[key], kept.state[key])
        for key in earlier.state
        if key.startswith(("layers.", "head."))
    )


def test_the_cold_start_grader_learns_across_items_with_reference_answers():
    quiz = make_quiz(items=[PHOTOSYNTHESIS, EVAPORATION, {"reference_answer": ""}])
    photosynthesis, evaporation, without_reference = quiz.items
    teacher_scored(quiz, photosynthesis, *photosynthesis_answers())
    teacher_scored(quiz, evaporation, *evaporation_answers(), first_student=30)
    teacher_scored(quiz, without_reference, ["Less light."] * 3, [1.0] * 3, first_student=50)
    run = training_request(kind="grader")

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    version = ModelVersion.objects.get()
    assert run.status == "succeeded", run.error
    assert (version.scope_type, version.scope_key, version.item, version.status) == (
        "global",
        "global",
        None,
        "active",
    )
    assert version.architecture == "reference-scorer"
    assert (version.metrics["n_items"], version.metrics["teacher_scored_answers"]) == (2, 50)
    assert isinstance(version.metrics["validated_qwk"], float)


def test_the_cold_start_grader_needs_two_items_with_reference_answers():
    quiz = make_quiz(items=[PHOTOSYNTHESIS])
    teacher_scored(quiz, quiz.items[0], *photosynthesis_answers())

    with pytest.raises(ValidationFailed, match="there are 1 items with 30"):
        training_request(kind="grader")

    assert TrainingRun.objects.count() == 0


def test_the_items_grader_is_retrained_once_teachers_scored_enough_new_answers(settings):
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_RETRAIN_AFTER_TEACHER_SCORES": 4}
    quiz = make_quiz(items=[{**PHOTOSYNTHESIS, "reference_answer": ""}])
    item = quiz.items[0]
    texts, scores = interleaved()
    teacher_scored(quiz, item, texts[:9], scores[:9])

    too_few_in_all = grader_retrain_if_due(item=item, requested_by=quiz.teacher)
    teacher_scored(quiz, item, texts[9:10], scores[9:10], first_student=9)
    first = grader_retrain_if_due(item=item, requested_by=quiz.teacher)
    while_open = grader_retrain_if_due(item=item)
    training_run_execute(run_id=first.pk)
    teacher_scored(quiz, item, texts[10:13], scores[10:13], first_student=10)
    three_new = grader_retrain_if_due(item=item)
    teacher_scored(quiz, item, texts[13:14], scores[13:14], first_student=13)
    second = grader_retrain_if_due(item=item)

    assert too_few_in_all is None
    assert (first.kind, first.scope_key, first.requested_by) == (
        "grader",
        f"item:{item.pk}",
        quiz.teacher,
    )
    assert while_open.pk == first.pk
    assert three_new is None
    assert second.pk != first.pk
    assert second.status == "queued"
    assert list(TrainingRun.objects.values_list("scope_key", flat=True)) == [
        f"item:{item.pk}",
        f"item:{item.pk}",
    ]


def test_the_cold_start_grader_is_requested_once_reference_items_hold_enough_scores(settings):
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_RETRAIN_AFTER_TEACHER_SCORES": 50}
    quiz = make_quiz(items=[PHOTOSYNTHESIS, EVAPORATION])
    photosynthesis, evaporation = quiz.items
    texts, scores = interleaved()
    teacher_scored(quiz, photosynthesis, texts[:10], scores[:10])
    one_item = grader_retrain_if_due(item=photosynthesis)
    evaporation_texts, evaporation_scores = evaporation_answers()
    teacher_scored(quiz, evaporation, evaporation_texts, evaporation_scores, first_student=10)

    not_for_the_item = grader_retrain_if_due(item=evaporation)
    requested = TrainingRun.objects.get()
    training_run_cancel(run=requested)
    after_a_cancelled_run = grader_retrain_if_due(item=evaporation)

    assert (one_item, not_for_the_item, after_a_cancelled_run) == (None, None, None)
    assert (requested.scope_key, requested.item) == ("global", None)
    assert TrainingRun.objects.count() == 1
