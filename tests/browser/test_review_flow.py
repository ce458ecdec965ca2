"""In a real browser: the teacher accepts a model's suggestion in the review queue, and the
student then sees the released score on their submission page; the teacher grades from the
queue itself with the keyboard shortcuts (htmx rows, out-of-band counts, focus moving on)."""

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


def test_the_teacher_grades_from_the_queue_with_the_keyboard(
    live_server, page, screenshot, course_with_a_suggestion
):
    # given alice's answer (suggestion 3, 60%) and bob's (suggestion 1) in review
    data, alice = course_with_a_suggestion
    bob = model_suggests(response_of(data, "bob"), score=1, confidence=0.5)
    sign_in(page, live_server, "teacher")
    page.goto(f"{live_server.url}/courses/browser/review/")
    page.wait_for_load_state("load")
    remaining = page.locator("#review-remaining .lead")
    assert remaining.inner_text() == "2 answers wait for you."

    # when the teacher goes to the first answer (j) and accepts it (a)
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent").startswith("Review")
    page.keyboard.press("a")

    # then its row says so and the count falls, without leaving the page
    done = page.locator(f"#review-row-{alice.pk}")
    done.get_by_text("Done: suggestion accepted and released").wait_for()
    assert remaining.inner_text() == "1 answer waits for you."
    assert page.url == f"{live_server.url}/courses/browser/review/"
    # the per-item counts were swapped in their own place, not parsed into the queue's table
    assert page.locator("#review-waiting-per-item tbody td").inner_text() == "1"
    assert page.locator(".review-table tbody > tr").count() == 2
    screenshot("review-queue-inline-accept")
    # and the focus moved on to bob's row, where s focuses the score field without typing "s"
    page.keyboard.press("s")
    score = page.locator(f"#review-score-{bob.pk}")
    assert page.evaluate("document.activeElement.id") == f"review-score-{bob.pk}"
    assert score.input_value() == ""
    # typing in it fires no shortcut: "a" is refused by the number field, no accept is sent
    page.keyboard.type("2")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    page.locator(f"#review-row-{bob.pk}").get_by_text(
        "Done: your score saved and released"
    ).wait_for()
    assert remaining.inner_text() == "0 answers wait for you."

    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.status, alice.score, alice.grade_source) == ("graded", 3.0, "teacher")
    assert (bob.status, bob.score, bob.grade_source) == ("graded", 2.0, "teacher")


def test_question_mark_shows_the_shortcuts_on_the_review_page(
    live_server, page, course_with_a_suggestion
):
    _, response = course_with_a_suggestion
    sign_in(page, live_server, "teacher")
    page.goto(f"{live_server.url}/courses/browser/review/{response.pk}/")
    page.wait_for_load_state("load")

    page.keyboard.press("?")
    assert page.evaluate("document.activeElement.id") == "shortcuts-heading"
    page.keyboard.press("o")
    assert page.evaluate("document.activeElement.id") == "id_score"
    page.keyboard.type("a")  # typed into the field (refused by a number field): no accept
    page.keyboard.press("Escape")
    assert Response.objects.get(pk=response.pk).status == "needs_review"


def _tab_to(page, wanted: str, *, limit: int = 80) -> int:
    """Press Tab until the focused element's text (or value) starts with ``wanted``; returns
    how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(document.activeElement.innerText || document.activeElement.value || '').trim()"
        )
        if focused.startswith(wanted):
            return presses
    raise AssertionError(f"{wanted!r} was not reached with {limit} presses of Tab")


def test_the_grading_queue_with_tab_and_enter_only(live_server, page, course_with_a_suggestion):
    # given alice's and bob's answers waiting, and the teacher signed in with the keyboard
    data, alice = course_with_a_suggestion
    bob = model_suggests(response_of(data, "bob"), score=1, confidence=0.5)
    page.goto(f"{live_server.url}/accounts/login/?next=/courses/browser/review/")
    _tab_to(page, "")  # the first focusable element
    page.get_by_label("Username").focus()
    page.keyboard.type("teacher")
    page.keyboard.press("Tab")
    page.keyboard.type("a-test-password")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/courses/browser/review/")

    # the first Tab reaches the skip link, and Enter on it lands in the main content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # Tab reaches the first row's accept button in order, Enter accepts it in place
    _tab_to(page, "Accept 3")
    page.keyboard.press("Enter")
    page.locator(f"#review-row-{alice.pk}").get_by_text("Done").wait_for()

    # Tab goes on to bob's answer: open it, and accept its suggestion on its own page
    _tab_to(page, "Review")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/courses/browser/review/{bob.pk}/**")
    _tab_to(page, "Accept 1")
    page.keyboard.press("Enter")
    # the queue is empty now: back to it, with the message that the score was saved
    page.wait_for_url(f"{live_server.url}/courses/browser/review/")
    assert page.get_by_text("Saved 1 of 4").count() == 1

    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.status, alice.score, bob.status, bob.score) == ("graded", 3.0, "graded", 1.0)
