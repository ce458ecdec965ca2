"""Model grading end to end: a student submits a short answer -> broker -> a real worker loads
the item's active grader from the artifact store -> the response is graded and released."""

from __future__ import annotations

import pytest

from edu_dl.ml.grading.pipeline import train_grader
from edu_dl.models import Response, ResponseGrade, Submission
from edu_dl.services.submissions import submission_create
from tests.grading_data import (
    PHOTOSYNTHESIS_QUESTION,
    PHOTOSYNTHESIS_REFERENCE,
    activate_grader,
    make_quiz,
    new_student,
    photosynthesis_answers,
)
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

GOOD_ANSWER = "Plants use sunlight and carbon dioxide and water to make glucose and oxygen."


def test_a_submitted_short_answer_is_graded_by_a_real_worker(celery_worker_process):
    texts, scores = photosynthesis_answers()
    grader = train_grader(
        texts,
        scores,
        list(range(len(texts))),
        min_score=0.0,
        max_score=1.0,
        reference_answer=PHOTOSYNTHESIS_REFERENCE,
    )
    quiz = make_quiz(
        items=[
            {
                "prompt": PHOTOSYNTHESIS_QUESTION,
                "reference_answer": PHOTOSYNTHESIS_REFERENCE,
                "release_min_qwk": 0.5,
                "release_min_confidence": 0.5,
            }
        ]
    )
    item = quiz.items[0]
    version = activate_grader(grader, item=item)
    student = new_student(quiz.course, 0)

    submission = submission_create(
        student=student, assessment=quiz.assessment, answers={item.pk: GOOD_ANSWER}
    )
    response = submission.responses.get()
    wait_for(
        lambda: Response.objects.get(pk=response.pk).status != "pending",
        timeout=120,
        what="the worker to grade the answer",
    )

    response.refresh_from_db()
    log = celery_worker_process.log()[-3000:]
    assert (response.status, response.grade_source, response.released) == (
        "graded",
        "model",
        True,
    ), response.review_reason + log
    assert response.model_version_id == version.pk
    assert response.score == grader.grade([GOOD_ANSWER])[0].score == 1.0
    assert ResponseGrade.objects.get(response=response).action == "model"
    assert Submission.objects.get(pk=submission.pk).status == "graded"
