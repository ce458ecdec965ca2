"""In a real browser, against the live server with a real Celery worker on the suite's broker:

- a student hands in a short answer on the assessment page, the worker's model grader scores it
  and sends it to the grading queue, the teacher accepts it there, and the student sees the
  released score among their results;
- a teacher starts a training run on the models page and watches its progress bar reach done.
"""

from __future__ import annotations

import pytest

from edu_dl.ml.grading.pipeline import train_grader
from edu_dl.models import Enrollment, Response, TrainingRun
from tests.browser.conftest import FACTORY_PASSWORD, sign_in
from tests.grading_data import (
    PHOTOSYNTHESIS_QUESTION,
    PHOTOSYNTHESIS_REFERENCE,
    activate_grader,
    make_quiz,
    new_student,
    photosynthesis_answers,
)
from tests.integration.conftest import wait_for
from tests.kt_data import make_kt_course

pytestmark = pytest.mark.integration

GOOD_ANSWER = "Plants use sunlight, carbon dioxide and water to make glucose and oxygen."


def test_a_short_answer_handed_in_is_accepted_in_the_queue_and_released_to_the_student(
    live_server, page, screenshot, celery_worker_process
):
    # Given an item whose grader is trained but not trusted enough to release on its own
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
        slug="plants",
        items=[
            {
                "prompt": PHOTOSYNTHESIS_QUESTION,
                "reference_answer": PHOTOSYNTHESIS_REFERENCE,
                "release_min_qwk": 1.0,
                "release_min_confidence": 1.0,
            }
        ],
    )
    activate_grader(grader, item=quiz.items[0])
    student = new_student(quiz.course, 0)

    # When the student answers on the assessment page and hands it in
    sign_in(page, live_server, student.username)
    page.goto(f"{live_server.url}/courses/plants/")
    screenshot("student-course-home")
    page.get_by_role("link", name="Start").click()
    assert page.get_by_text(PHOTOSYNTHESIS_QUESTION).count() == 1
    page.get_by_label(quiz.items[0].title).fill(GOOD_ANSWER)
    screenshot("student-assessment-take")
    page.get_by_role("button", name="Hand in").click()
    page.wait_for_load_state()

    # Then the real worker grades it and, the item's release bar being out of reach, it waits
    response = Response.objects.get(submission__student=student)
    assert response.answer == GOOD_ANSWER
    wait_for(
        lambda: Response.objects.get(pk=response.pk).status == "needs_review",
        timeout=120,
        what="the worker to grade the answer and send it to the queue",
    )
    response.refresh_from_db()
    assert (response.grade_source, response.released) == ("model", False)
    suggested = f"{response.score:g}"
    page.goto(f"{live_server.url}/courses/plants/results/")
    assert page.get_by_text("Waiting for the teacher").count() >= 1
    screenshot("student-results-waiting")

    # When the teacher accepts the suggestion in the grading queue
    page.context.clear_cookies()
    sign_in(page, live_server, quiz.teacher.username)
    page.goto(f"{live_server.url}/courses/plants/review/")
    page.get_by_role("button", name=f"Accept {suggested}").first.click()
    page.locator(f"#review-row-{response.pk}").get_by_text("Done").wait_for()

    # Then the student sees the released score among their results
    response.refresh_from_db()
    assert (response.status, response.released, response.reviewed_by) == (
        "graded",
        True,
        quiz.teacher,
    )
    page.context.clear_cookies()
    sign_in(page, live_server, student.username)
    page.goto(f"{live_server.url}/courses/plants/results/")
    assert page.get_by_text(f"{suggested} of 1").count() >= 1
    assert page.get_by_text("Waiting for the teacher").count() == 0
    screenshot("student-results-released")


def test_a_teacher_starts_training_and_watches_the_progress_bar_reach_done(
    live_server, page, screenshot, celery_worker_process, settings
):
    # Given a course with enough answer history to train knowledge tracing on
    course = make_kt_course(students=60, answers=40)
    teacher = Enrollment.objects.get(course=course, role="teacher").user
    teacher.set_password(FACTORY_PASSWORD)
    teacher.save()

    # When the teacher asks for a run on the models page
    sign_in(page, live_server, teacher.username)
    page.goto(f"{live_server.url}/courses/{course.slug}/models/")
    page.get_by_label("Model to train").select_option("kt")
    page.get_by_role("button", name="Retrain now").click()
    page.wait_for_load_state()
    run = TrainingRun.objects.get(course=course)
    progress = page.locator(f"#run-progress-{run.pk}")
    screenshot("teacher-models-training")

    # Then the page, polling on its own, shows the bar filling and finally "done"
    seen = set()

    def bar_done() -> bool:
        seen.add(progress.locator("progress").get_attribute("value"))
        return "done" in progress.inner_text()

    wait_for(bar_done, timeout=180, interval=0.25, what="the progress bar to reach done")
    assert progress.locator("progress").get_attribute("value") == "100"
    assert progress.get_attribute("hx-trigger") is None  # polling stopped
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert len(seen) >= 2, seen  # it moved while the teacher watched, no reload needed
    screenshot("teacher-models-done")
    page.goto(f"{live_server.url}/courses/{course.slug}/models/runs/{run.pk}/")
    screenshot("teacher-training-run")
