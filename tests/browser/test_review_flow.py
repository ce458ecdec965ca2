"""In a real browser: the teacher accepts a model's suggestion in the review queue, and the
student then sees the released score on their submission page."""

from __future__ import annotations

import pytest

from edu_dl.models import Response
from tests.browser.conftest import sign_in
from tests.review_data import model_suggests, patch_grader_retraining, response_of, review_course

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def course_with_a_suggestion(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: type("R", (), {"id": ""})())
    patch_grader_retraining(monkeypatch)
    data = review_course(slug="browser")
    response = response_of(data, "alice")
    model_suggests(response, score=3, confidence=0.6)
    return data, response


def test_the_teacher_accepts_in_the_queue_and_the_student_sees_the_score(
    live_server, page, screenshot, course_with_a_suggestion
):
    data, response = course_with_a_suggestion
    sign_in(page, live_server, "teacher")
    page.goto(f"{live_server.url}/courses/browser/review/")
    screenshot("review-queue")
    page.get_by_role("link", name="Review").first.click()
    page.wait_for_load_state()
    screenshot("review-detail")

    page.get_by_role("button", name="Accept 3").click()
    page.wait_for_load_state()

    response.refresh_from_db()
    assert (response.status, response.score, response.released) == ("graded", 3.0, True)
    page.context.clear_cookies()
    sign_in(page, live_server, "alice")
    submission = data["submissions"]["alice"]
    page.goto(f"{live_server.url}/courses/browser/submissions/{submission.pk}/")
    screenshot("student-submission")
    assert page.get_by_text("3 of 4").count() >= 1
    assert Response.objects.get(pk=response.pk).released
