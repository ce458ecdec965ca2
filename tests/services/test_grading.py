"""Model grading in the worker: a real grader, trained here on made-up answers, scores what
students submit; the release policy decides who sees the score first, the student or the
teacher."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from edu_dl.ml.grading.pipeline import TrainedGrader, train_grader
from edu_dl.ml.grading.policy import AUDIT_PRIORITY, review_priority
from edu_dl.ml.grading.reference import (
    Exemplar,
    ReferenceConfig,
    ReferenceExample,
    TrainedReferenceGrader,
    train_reference_grader,
)
from edu_dl.models import Interaction, Item, Response, ResponseGrade, Submission
from edu_dl.selectors.submissions import response_visible_score
from edu_dl.services.artifacts import artifact_storage
from edu_dl.services.grading import (
    REASON_AUDIT,
    responses_grade_by_model,
    responses_pending_sweep,
    responses_rescore_waiting,
)
from edu_dl.services.model_versions import model_version_rollback
from edu_dl.services.review import response_override
from edu_dl.services.submissions import GRADE_RESPONSES_TASK_NAME
from edu_dl.tasks.grading import grade_responses_task, rescore_waiting_task
from tests.grading_data import (
    EVAPORATION_QUESTION,
    EVAPORATION_REFERENCE,
    PHOTOSYNTHESIS_QUESTION,
    PHOTOSYNTHESIS_REFERENCE,
    activate_grader,
    evaporation_answers,
    make_quiz,
    new_student,
    photosynthesis_answers,
    submit,
    teacher_scored,
)

pytestmark = pytest.mark.django_db

MASTERY_TASK = "edu_dl.mastery.update_student"
RESCORE_TASK = "edu_dl.grading.rescore_waiting"
GOOD_ANSWER = "Plants use sunlight and carbon dioxide and water to make glucose and oxygen."
# The grader's validated QWK on photosynthesis_answers (deterministic).
VALIDATED_QWK = 0.8
SMALL_REFERENCE = ReferenceConfig(
    hidden_sizes=(16, 8), epochs=120, patience=30, n_buckets=2**14, seed=3
)


@pytest.fixture(scope="module")
def grader() -> TrainedGrader:
    texts, scores = photosynthesis_answers()
    return train_grader(
        texts,
        scores,
        list(range(len(texts))),
        min_score=0.0,
        max_score=1.0,
        reference_answer=PHOTOSYNTHESIS_REFERENCE,
    )


@pytest.fixture(scope="module")
def reference_grader() -> TrainedReferenceGrader:
    """The cold-start grader, learnt on two other items with reference answers."""
    return train_reference_grader(reference_examples(), config=SMALL_REFERENCE)


def reference_examples() -> list[ReferenceExample]:
    examples = []
    for key, question, reference, (texts, scores) in (
        ("p", PHOTOSYNTHESIS_QUESTION, PHOTOSYNTHESIS_REFERENCE, photosynthesis_answers()),
        ("e", EVAPORATION_QUESTION, EVAPORATION_REFERENCE, evaporation_answers()),
    ):
        examples += [
            ReferenceExample(key, question, reference, text, score, 0.0, 1.0, 2)
            for text, score in zip(texts, scores, strict=True)
        ]
    return examples


def photosynthesis_quiz(**item):
    spec = {
        "title": "Photosynthesis",
        "prompt": PHOTOSYNTHESIS_QUESTION,
        "reference_answer": PHOTOSYNTHESIS_REFERENCE,
        **item,
    }
    return make_quiz(items=[spec])


def submitted(quiz, text: str = GOOD_ANSWER, number: int = 0) -> tuple[object, Response]:
    student = new_student(quiz.course, number)
    (response,) = submit(quiz, student, {quiz.items[0]: text})
    return student, response


def grade(response_ids, capture) -> list[Response]:
    with capture(execute=True):
        return responses_grade_by_model(response_ids=response_ids)


def test_a_confident_grade_of_a_validated_grader_is_released_and_feeds_knowledge_tracing(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.5)
    version = activate_grader(grader, item=quiz.items[0])
    student, response = submitted(quiz)
    expected = grader.grade([GOOD_ANSWER])[0]
    sent.clear()

    changed = grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert [r.pk for r in changed] == [response.pk]
    assert (response.status, response.grade_source, response.released) == ("graded", "model", True)
    assert response.score == expected.score == 1.0
    assert response.confidence == pytest.approx(expected.confidence)
    assert response.model_version == version
    assert (response.review_reason, response.review_priority) == ("", None)
    assert response.graded_at is not None
    assert response.explanation["similar"] == expected.similar
    assert response.explanation["phrases"] == expected.phrases
    assert response.explanation["model"] == {
        "kind": "item grader",
        "version_id": version.pk,
        "version": 1,
        "scope": f"item:{quiz.items[0].pk}",
        "architecture": version.architecture,
        "validated_qwk": VALIDATED_QWK,
    }
    history = ResponseGrade.objects.get(response=response)
    assert (history.action, history.grade_source, history.score, history.released) == (
        "model",
        "model",
        1.0,
        True,
    )
    assert history.model_version == version
    assert history.confidence == pytest.approx(expected.confidence)
    assert Interaction.objects.get(response=response).correct is True
    assert sent == [(MASTERY_TASK, [student.pk, quiz.course.pk])]
    assert Submission.objects.get().status == "graded"
    assert response_visible_score(response=response, viewer=student) == 1.0


def test_an_unsure_grade_waits_for_the_teacher_and_the_student_never_sees_it(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.99)
    version = activate_grader(grader, item=quiz.items[0])
    student, response = submitted(quiz)
    expected = grader.grade([GOOD_ANSWER])[0]
    sent.clear()

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.grade_source, response.released) == (
        "needs_review",
        "model",
        False,
    )
    assert response.score == expected.score
    assert response.model_version == version
    assert (
        response.review_reason == f"confidence {expected.confidence:.2f} is below the item's 0.99"
    )
    assert response.review_priority == review_priority(
        confidence=response.confidence, nearest_similarity=expected.similar[0]["similarity"]
    )
    assert response_visible_score(response=response, viewer=student) is None
    assert response_visible_score(response=response, viewer=quiz.teacher) == expected.score
    assert list(ResponseGrade.objects.values_list("action", "released")) == [("model", False)]
    assert not Interaction.objects.exists()
    assert sent == []
    assert Submission.objects.get().status == "needs_review"


def test_a_grader_whose_validated_qwk_is_below_the_items_bar_releases_nothing(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.95, release_min_confidence=0.5)
    activate_grader(grader, item=quiz.items[0])
    student, response = submitted(quiz)

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.released) == ("needs_review", False)
    assert response.review_reason == "the grader's validated QWK 0.80 is below 0.95"
    assert response_visible_score(response=response, viewer=student) is None


def curved(grader: TrainedGrader, surest: float) -> TrainedGrader:
    """``grader`` with a release curve: over all its grades QWK 0.80 (at least 0.70), its
    surest 40 %, from confidence ``surest`` on, 0.95 (at least 0.90)."""
    curve = [
        {"confidence": surest, "qwk": 0.95, "qwk_low": 0.9, "share": 0.4, "answers": 12},
        {"confidence": 0.1, "qwk": 0.8, "qwk_low": 0.7, "share": 1.0, "answers": 30},
    ]
    return dataclasses.replace(grader, metrics={**grader.metrics, "release_curve": curve})


def test_a_fair_grader_releases_the_grades_as_sure_as_those_that_proved_themselves(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.85, release_min_confidence=0.5)
    expected = grader.grade([GOOD_ANSWER])[0]
    surest = round(expected.confidence - 0.015, 2)
    activate_grader(curved(grader, surest), item=quiz.items[0])
    student, response = submitted(quiz)

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.released) == ("graded", True)
    assert response.explanation["release"]["confidence_needed"] == surest
    (note,) = ResponseGrade.objects.values_list("note", flat=True)
    assert note.endswith(
        f"released: confidence {expected.confidence:.2f} >= {surest:.2f}; "
        "its 40% most confident grades agreed with the teacher at validated QWK 0.95 "
        "(at least 0.90 >= 0.85)"
    )
    assert response_visible_score(response=response, viewer=student) == expected.score


def test_a_fair_graders_grade_less_sure_than_those_that_proved_themselves_waits(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.85, release_min_confidence=0.5)
    expected = grader.grade([GOOD_ANSWER])[0]
    surest = round(expected.confidence + 0.01, 2)
    activate_grader(curved(grader, surest), item=quiz.items[0])
    student, response = submitted(quiz)

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.released) == ("needs_review", False)
    assert response.review_reason == (
        f"confidence {expected.confidence:.2f} is below {surest:.2f}, from which the grader's "
        "grades agreed with the teacher at QWK 0.90 >= 0.85"
    )
    assert response_visible_score(response=response, viewer=student) is None
    # Where not even its surest grades reached the bar, none is released.
    quiz.items[0].release_min_qwk = 0.95
    quiz.items[0].save(update_fields=["release_min_qwk"])
    _, other = submitted(quiz, number=1)
    grade([other.pk], django_capture_on_commit_callbacks)
    other.refresh_from_db()
    assert other.review_reason == (
        "the grader's validated QWK 0.80 is below 0.95, on its most confident grades too"
    )
    # A retrained grader's curve counts what the graders before it released.
    retrained = curved(grader, surest)
    retrained = dataclasses.replace(
        retrained, metrics={**retrained.metrics, "released_before_answers": 14}
    )
    activate_grader(retrained, item=quiz.items[0])
    _, third = submitted(quiz, number=2)
    grade([third.pk], django_capture_on_commit_callbacks)
    third.refresh_from_db()
    assert (third.status, third.review_reason) == (
        "needs_review",
        "with the grades released before (a sample of 14), not even this grader's surest "
        "would keep the item at QWK 0.95; its validated QWK is 0.80",
    )
    # A grader not yet measured on the random check releases nothing, and says so.
    waits = "measured on 30 answers that are not a random check: its grades are released once"
    waiting = dataclasses.replace(
        grader, metrics={**grader.metrics, "release_curve": [], "release_waits": waits}
    )
    activate_grader(waiting, item=quiz.items[0])
    _, fourth = submitted(quiz, number=3)
    grade([fourth.pk], django_capture_on_commit_callbacks)
    fourth.refresh_from_db()
    assert (fourth.status, fourth.review_reason) == ("needs_review", f"the grader is {waits}")


def test_an_answer_of_the_random_check_goes_to_the_teacher_first_however_sure_the_grader(
    grader, sent, settings, django_capture_on_commit_callbacks
):
    # Nearly every answer is in the check: this one is, whatever id the database gave it.
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_AUDIT_SHARE": 0.999999}
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.5)
    activate_grader(grader, item=quiz.items[0])
    student, response = submitted(quiz)
    expected = grader.grade([GOOD_ANSWER])[0]

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.released) == ("needs_review", False)
    assert response.score == expected.score  # the suggestion the teacher sees
    assert response.review_reason == REASON_AUDIT
    assert response.review_priority == AUDIT_PRIORITY
    assert response.explanation["release"]["random_check"] is True
    assert response_visible_score(response=response, viewer=student) is None
    assert not Interaction.objects.exists()


def test_the_site_settings_apply_where_the_item_sets_no_bar(
    grader, sent, settings, django_capture_on_commit_callbacks
):
    settings.EDU_DL = {
        **settings.EDU_DL,
        "GRADING_RELEASE_MIN_QWK": 0.85,
        "GRADING_RELEASE_MIN_CONFIDENCE": 0.999,
    }
    quiz = photosynthesis_quiz()
    activate_grader(grader, item=quiz.items[0])
    _, response = submitted(quiz)
    confidence = grader.grade([GOOD_ANSWER])[0].confidence

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert response.review_reason == (
        "the grader's validated QWK 0.80 is below 0.85; "
        f"confidence {confidence:.3f} is below the item's 0.999"
    )


@pytest.mark.parametrize(
    "reference_answer", ["", PHOTOSYNTHESIS_REFERENCE], ids=["no-reference", "no-cold-start"]
)
def test_without_a_grader_the_answers_wait_for_the_teacher(
    sent, django_capture_on_commit_callbacks, reference_answer
):
    quiz = photosynthesis_quiz(reference_answer=reference_answer)
    student, response = submitted(quiz)

    changed = grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert [r.pk for r in changed] == [response.pk]
    assert (response.status, response.score, response.released) == ("needs_review", None, False)
    assert response.review_reason == "no trained grader for this item yet"
    assert response.review_priority == 1.0
    assert not ResponseGrade.objects.exists()
    assert Submission.objects.get().status == "needs_review"
    assert response_visible_score(response=response, viewer=student) is None


def test_a_corrupt_grader_file_sends_the_answers_to_the_teacher(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.0, release_min_confidence=0.0)
    version = activate_grader(grader, item=quiz.items[0])
    with open(artifact_storage().path(version.artifact_path), "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00garbage\x00")
    _, response = submitted(quiz)

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.score, response.model_version) == (
        "needs_review",
        None,
        None,
    )
    assert response.review_reason == "grader file could not be read"
    assert not ResponseGrade.objects.exists()


def test_a_grader_whose_encoder_is_missing_here_sends_the_answers_to_the_teacher(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.0, release_min_confidence=0.0)
    activate_grader(
        dataclasses.replace(grader, encoder_name="/no/such/encoder"), item=quiz.items[0]
    )
    _, response = submitted(quiz)

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert response.status == "needs_review"
    assert response.review_reason == (
        "the grader's sentence encoder is not available here: "
        "encoder path '/no/such/encoder' is not a directory"
    )


def test_grading_twice_changes_nothing_and_a_teachers_grade_is_never_touched(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.5)
    activate_grader(grader, item=quiz.items[0])
    _, first = submitted(quiz, number=0)
    grade([first.pk], django_capture_on_commit_callbacks)
    first.refresh_from_db()
    before = (first.status, first.score, first.confidence, first.graded_at, first.explanation)
    sent.clear()

    again = grade([first.pk], django_capture_on_commit_callbacks)

    first.refresh_from_db()
    assert again == []
    assert (first.status, first.score, first.confidence, first.graded_at, first.explanation) == (
        before
    )
    assert ResponseGrade.objects.filter(response=first).count() == 1
    assert Interaction.objects.count() == 1
    assert sent == []


def test_answers_to_several_items_are_graded_each_by_its_own_grader_or_sent_to_review(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = make_quiz(
        items=[
            {
                "prompt": PHOTOSYNTHESIS_QUESTION,
                "reference_answer": PHOTOSYNTHESIS_REFERENCE,
                "release_min_qwk": 0.5,
                "release_min_confidence": 0.5,
            },
            {"prompt": "Why do leaves change colour?", "reference_answer": ""},
        ]
    )
    with_grader, without = quiz.items
    activate_grader(grader, item=with_grader)
    student = new_student(quiz.course, 0)
    responses = submit(quiz, student, {with_grader: GOOD_ANSWER, without: "Less sunlight."})

    changed = grade([r.pk for r in responses], django_capture_on_commit_callbacks)

    statuses = dict(Response.objects.values_list("item_id", "status"))
    assert sorted(r.pk for r in changed) == sorted(r.pk for r in responses)
    assert statuses == {with_grader.pk: "graded", without.pk: "needs_review"}
    assert Submission.objects.get().status == "needs_review"


def test_the_cold_start_reference_grader_scores_an_item_without_its_own_grader(
    reference_grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(
        prompt="Why do puddles dry in the sun?",
        reference_answer="The sun heats the water and it evaporates into water vapour.",
        max_score=2.0,
        release_min_qwk=0.0,
        release_min_confidence=0.0,
    )
    version = activate_grader(reference_grader)
    student, response = submitted(quiz, text="The sun heats the water into vapour.")
    (expected,) = reference_grader.grade(
        question="Why do puddles dry in the sun?",
        reference_answer="The sun heats the water and it evaporates into water vapour.",
        texts=["The sun heats the water into vapour."],
        min_score=0.0,
        max_score=2.0,
        n_levels=3,
    )

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert (response.status, response.released, response.model_version) == (
        "graded",
        True,
        version,
    )
    assert version.scope_key == "global"
    assert response.score == expected.score
    assert response.confidence == pytest.approx(expected.confidence)
    assert response.explanation["model"]["kind"] == "cold-start reference grader"
    assert response.explanation["phrases"] == expected.phrases
    assert ResponseGrade.objects.get(response=response).model_version == version
    assert response_visible_score(response=response, viewer=student) == expected.score


def test_the_cold_start_grader_reads_the_items_teacher_scored_answers(
    sent, django_capture_on_commit_callbacks
):
    reading = train_reference_grader(
        reference_examples(), config=dataclasses.replace(SMALL_REFERENCE, use_exemplars=True)
    )
    quiz = photosynthesis_quiz(release_min_qwk=0.0, release_min_confidence=0.0)
    item = quiz.items[0]
    texts, scores = photosynthesis_answers()
    scored = teacher_scored(quiz, item, texts[:4], scores[:4], first_student=10)
    activate_grader(reading)
    _, response = submitted(quiz)
    (expected,) = reading.grade(
        question=item.prompt,
        reference_answer=item.reference_answer,
        texts=[GOOD_ANSWER],
        min_score=0.0,
        max_score=1.0,
        n_levels=2,
        exemplars=[Exemplar(r.pk, text, r.score) for r, text in zip(scored, texts, strict=False)],
    )

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert response.explanation["model"]["kind"] == "cold-start reference grader"
    assert response.score == expected.score
    assert response.confidence == pytest.approx(expected.confidence)
    # The explanation shows the item's teacher-scored answers most like this one.
    assert response.explanation["similar"] == expected.similar
    assert len(expected.similar) == 3
    assert {s["key"] for s in expected.similar} <= {r.pk for r in scored}


@pytest.mark.parametrize(
    ("until", "reference_answer", "expected"),
    [
        # 30 teacher scores: too few for the item's own grader while a model answer exists.
        (50, PHOTOSYNTHESIS_REFERENCE, "cold-start reference grader"),
        (30, PHOTOSYNTHESIS_REFERENCE, "item grader"),
        (0, PHOTOSYNTHESIS_REFERENCE, "item grader"),
        # Without a model answer the cold-start grader has nothing to compare with.
        (50, "", "item grader"),
    ],
)
def test_an_item_grader_learnt_from_few_scores_gives_way_to_the_cold_start_grader(
    grader,
    reference_grader,
    sent,
    settings,
    django_capture_on_commit_callbacks,
    until,
    reference_answer,
    expected,
):
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_COLD_START_UNTIL": until}
    quiz = photosynthesis_quiz(reference_answer=reference_answer)
    own = activate_grader(grader, item=quiz.items[0])
    cold = activate_grader(reference_grader)
    assert own.metrics["n_train"] == 30
    _, response = submitted(quiz)

    grade([response.pk], django_capture_on_commit_callbacks)

    response.refresh_from_db()
    assert response.explanation["model"]["kind"] == expected
    assert response.model_version == (cold if expected.startswith("cold") else own)
    assert ResponseGrade.objects.get(response=response).model_version == response.model_version


def test_the_task_grades_through_the_service(grader, sent, django_capture_on_commit_callbacks):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.5)
    activate_grader(grader, item=quiz.items[0])
    _, response = submitted(quiz)

    with django_capture_on_commit_callbacks(execute=True):
        count = grade_responses_task(response_ids=[response.pk])

    response.refresh_from_db()
    assert (count, response.status) == (1, "graded")


def test_the_sweep_sends_again_the_answers_pending_for_minutes(sent):
    quiz = photosynthesis_quiz()
    _, response = submitted(quiz)
    sent.clear()

    soon = responses_pending_sweep(now=timezone.now() + timedelta(minutes=1))
    later = responses_pending_sweep(now=timezone.now() + timedelta(minutes=6))

    assert (soon, later) == (0, 1)
    assert sent == [(GRADE_RESPONSES_TASK_NAME, [[response.pk]])]


# --- Re-scoring the answers waiting for the teacher when a grader starts serving ---------------

GRADE_FIELDS = (
    "status",
    "score",
    "grade_source",
    "confidence",
    "model_version_id",
    "explanation",
    "graded_at",
    "released",
    "review_priority",
    "review_reason",
)


def grade_fields(response: Response) -> tuple:
    response.refresh_from_db()
    return tuple(getattr(response, name) for name in GRADE_FIELDS)


def rescore(item, capture) -> int:
    with capture(execute=True):
        return responses_rescore_waiting(item_id=item.pk)


def history(response: Response) -> list[tuple]:
    return list(
        ResponseGrade.objects.filter(response=response)
        .order_by("pk")
        .values_list("action", "released", "model_version_id")
    )


def waiting_for_want_of_a_grader(quiz, capture, text: str = GOOD_ANSWER, number: int = 0):
    student, response = submitted(quiz, text=text, number=number)
    grade([response.pk], capture)
    response.refresh_from_db()
    assert (response.status, response.score, response.review_reason) == (
        "needs_review",
        None,
        "no trained grader for this item yet",
    )
    return student, response


def test_an_answer_waiting_for_want_of_a_grader_gets_the_new_graders_suggestion(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.99)
    item = quiz.items[0]
    student, waiting = waiting_for_want_of_a_grader(quiz, django_capture_on_commit_callbacks)
    _, by_teacher = waiting_for_want_of_a_grader(
        quiz, django_capture_on_commit_callbacks, text="Plants eat soil.", number=1
    )
    response_override(response=by_teacher, actor=quiz.teacher, score=0.0)
    teacher_grade = grade_fields(by_teacher)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        version = activate_grader(grader, item=item)
    assert sent == [(RESCORE_TASK, [item.pk])]
    sent.clear()
    count = rescore(item, django_capture_on_commit_callbacks)

    expected = grader.grade([GOOD_ANSWER])[0]
    waiting.refresh_from_db()
    assert count == 1
    assert (waiting.status, waiting.grade_source, waiting.released) == (
        "needs_review",
        "model",
        False,
    )
    assert (waiting.score, waiting.model_version) == (expected.score, version)
    assert waiting.confidence == pytest.approx(expected.confidence)
    assert waiting.review_reason == f"confidence {expected.confidence:.2f} is below the item's 0.99"
    assert waiting.review_priority == review_priority(
        confidence=waiting.confidence, nearest_similarity=expected.similar[0]["similarity"]
    )
    assert waiting.explanation["model"]["kind"] == "item grader"
    assert waiting.explanation["phrases"] == expected.phrases
    assert waiting.explanation["release"]["released"] is False
    assert history(waiting) == [("regrade", False, version.pk)]
    assert response_visible_score(response=waiting, viewer=student) is None
    assert grade_fields(by_teacher) == teacher_grade
    assert history(by_teacher) == [("override", True, None)]
    assert not Interaction.objects.filter(response=waiting).exists()
    assert sent == []
    assert waiting.submission.status == "needs_review"


def test_an_answer_waiting_for_want_of_a_grader_is_released_when_the_thresholds_allow(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.5)
    item = quiz.items[0]
    student, waiting = waiting_for_want_of_a_grader(quiz, django_capture_on_commit_callbacks)
    version = activate_grader(grader, item=item)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        count = rescore_waiting_task(item.pk)

    waiting.refresh_from_db()
    assert count == 1
    assert (waiting.status, waiting.grade_source, waiting.released, waiting.score) == (
        "graded",
        "model",
        True,
        1.0,
    )
    assert (waiting.review_reason, waiting.review_priority) == ("", None)
    assert waiting.model_version == version
    assert history(waiting) == [("regrade", True, version.pk)]
    assert Interaction.objects.get(response=waiting).correct is True
    assert sent == [(MASTERY_TASK, [student.pk, quiz.course.pk])]
    assert Submission.objects.get(pk=waiting.submission_id).status == "graded"
    assert response_visible_score(response=waiting, viewer=student) == 1.0


def test_rescoring_twice_changes_nothing(grader, sent, django_capture_on_commit_callbacks):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.99)
    item = quiz.items[0]
    _, waiting = waiting_for_want_of_a_grader(quiz, django_capture_on_commit_callbacks)
    activate_grader(grader, item=item)
    first = rescore(item, django_capture_on_commit_callbacks)
    before = grade_fields(waiting)
    sent.clear()

    again = rescore(item, django_capture_on_commit_callbacks)

    assert (first, again) == (1, 0)
    assert grade_fields(waiting) == before
    assert ResponseGrade.objects.filter(response=waiting).count() == 1
    assert sent == []


def test_a_new_grader_rescores_the_suggestions_of_the_old_one_and_leaves_released_answers(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.5)
    item = quiz.items[0]
    old = activate_grader(grader, item=item)
    _, released = submitted(quiz, number=0)
    grade([released.pk], django_capture_on_commit_callbacks)
    Item.objects.filter(pk=item.pk).update(release_min_confidence=0.99)
    student, waiting = submitted(quiz, number=1)
    grade([waiting.pk], django_capture_on_commit_callbacks)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.model_version) == ("needs_review", old)
    released_grade = grade_fields(released)
    assert released_grade[0:3] == ("graded", 1.0, "model")
    # The teacher lowers the item's bar; the better grader trained since may now release.
    Item.objects.filter(pk=item.pk).update(release_min_confidence=0.5)
    new = activate_grader(grader, item=item)
    sent.clear()

    count = rescore(item, django_capture_on_commit_callbacks)

    waiting.refresh_from_db()
    assert count == 1
    assert (waiting.status, waiting.released, waiting.model_version) == ("graded", True, new)
    assert history(waiting) == [("model", False, old.pk), ("regrade", True, new.pk)]
    assert grade_fields(released) == released_grade
    assert history(released) == [("model", True, old.pk)]
    assert sent == [(MASTERY_TASK, [student.pk, quiz.course.pk])]
    assert Interaction.objects.count() == 2


def test_a_rollback_of_an_items_grader_sends_its_waiting_answers_to_be_rescored(
    grader, sent, django_capture_on_commit_callbacks
):
    quiz = photosynthesis_quiz()
    item = quiz.items[0]
    activate_grader(grader, item=item)
    activate_grader(grader, item=item)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        model_version_rollback(kind="grader", scope_key=f"item:{item.pk}")

    assert sent == [(RESCORE_TASK, [item.pk])]


@pytest.mark.parametrize("own_grader_established", [True, False])
def test_the_cold_start_grader_rescores_the_waiting_answers_of_the_items_it_grades(
    grader,
    reference_grader,
    sent,
    settings,
    django_capture_on_commit_callbacks,
    own_grader_established,
):
    # The item grader below learnt from 30 teacher scores: established when the setting asks
    # for 30, and otherwise still behind the cold-start grader, which then rescores its item too.
    until = 30 if own_grader_established else 50
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_COLD_START_UNTIL": until}
    quiz = make_quiz(
        items=[
            {
                "prompt": "Why do puddles dry in the sun?",
                "reference_answer": "The sun heats the water and it evaporates into water vapour.",
                "max_score": 2.0,
                "release_min_qwk": 0.0,
                "release_min_confidence": 0.0,
            },
            {"prompt": "Why do leaves change colour?", "reference_answer": "  "},
            {
                "prompt": PHOTOSYNTHESIS_QUESTION,
                "reference_answer": PHOTOSYNTHESIS_REFERENCE,
                "release_min_qwk": 0.5,
                "release_min_confidence": 0.99,
            },
            {"prompt": "What is a leaf?", "reference_answer": "The food factory of a plant."},
        ]
    )
    cold_start, no_reference, own_grader, teacher_only = quiz.items
    activate_grader(grader, item=own_grader)
    student = new_student(quiz.course, 0)
    responses = submit(
        quiz,
        student,
        {
            cold_start: "The sun heats the water into vapour.",
            no_reference: "Less sunlight.",
            own_grader: GOOD_ANSWER,
            teacher_only: "It makes food.",
        },
    )
    grade([r.pk for r in responses], django_capture_on_commit_callbacks)
    waiting, _, _, by_teacher = responses
    response_override(response=by_teacher, actor=quiz.teacher, score=1.0)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        version = activate_grader(reference_grader)
    rescored = [cold_start] if own_grader_established else [cold_start, own_grader]
    assert sent == [(RESCORE_TASK, [item.pk]) for item in rescored]
    sent.clear()
    count = rescore(cold_start, django_capture_on_commit_callbacks)

    (expected,) = reference_grader.grade(
        question="Why do puddles dry in the sun?",
        reference_answer="The sun heats the water and it evaporates into water vapour.",
        texts=["The sun heats the water into vapour."],
        min_score=0.0,
        max_score=2.0,
        n_levels=3,
    )
    waiting.refresh_from_db()
    assert count == 1
    assert (waiting.status, waiting.grade_source, waiting.released, waiting.model_version) == (
        "graded",
        "model",
        True,
        version,
    )
    assert waiting.score == expected.score
    assert waiting.explanation["model"]["kind"] == "cold-start reference grader"
    assert history(waiting) == [("regrade", True, version.pk)]
    assert sent == [(MASTERY_TASK, [student.pk, quiz.course.pk])]


def test_rescoring_works_through_a_long_queue_in_chunks_oldest_first_up_to_the_limit(
    grader, sent, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("edu_dl.services.grading.RESCORE_CHUNK", 2)
    quiz = photosynthesis_quiz(release_min_qwk=0.5, release_min_confidence=0.99)
    item = quiz.items[0]
    waiting = [
        waiting_for_want_of_a_grader(quiz, django_capture_on_commit_callbacks, number=n)[1]
        for n in range(3)
    ]
    activate_grader(grader, item=item)

    with django_capture_on_commit_callbacks(execute=True):
        first = responses_rescore_waiting(item_id=item.pk, limit=2)
    scored_first = [r.pk for r in waiting if ResponseGrade.objects.filter(response=r).exists()]
    rest = rescore(item, django_capture_on_commit_callbacks)

    assert (first, rest) == (2, 1)
    assert scored_first == [waiting[0].pk, waiting[1].pk]
    assert [len(history(r)) for r in waiting] == [1, 1, 1]
