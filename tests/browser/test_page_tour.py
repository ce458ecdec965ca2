"""Every main page in a real browser, as the teacher and as a student: each loads without a
script error, passes the accessibility basics that can be checked mechanically (one h1, the
page's language, a name for every control, unique ids, no image without a text), and is
saved as a screenshot under var/screenshots/. One tour is in Simplified Chinese."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from edu_dl.models import MasteryEstimate, Recommendation, SkillPrerequisite, TrainingRun
from tests.browser.conftest import sign_in
from tests.factories import ModelVersionFactory, ResourceFactory, SkillFactory, TrainingRunFactory
from tests.review_data import model_suggests, patch_grader_retraining, response_of, review_course

pytestmark = pytest.mark.django_db(transaction=True)

# What a page must not have: each entry a JavaScript expression returning a list of offenders.
CHECKS = {
    "controls without a name": """
        [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
          .filter(e => e.offsetParent !== null)
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.getAttribute('aria-labelledby') && !e.textContent.trim()
                       && !(e.type === 'submit' && e.value))
          .map(e => e.outerHTML.slice(0, 120))""",
    "repeated ids": """
        Object.entries([...document.querySelectorAll('[id]')].reduce(
          (seen, e) => (seen[e.id] = (seen[e.id] || 0) + 1, seen), {}))
          .filter(([, count]) => count > 1).map(([id]) => id)""",
    "images without a text": """
        [...document.querySelectorAll('img')].filter(e => !e.hasAttribute('alt'))
          .map(e => e.src)""",
    "links without a text": """
        [...document.querySelectorAll('a[href]')].filter(e => e.offsetParent !== null)
          .filter(e => !e.textContent.trim() && !e.getAttribute('aria-label'))
          .map(e => e.outerHTML.slice(0, 120))""",
}


@pytest.fixture
def school(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: type("R", (), {"id": ""})())
    patch_grader_retraining(monkeypatch)
    data = review_course(slug="tour")
    course = data["course"]
    model_suggests(
        response_of(data, "alice"),
        score=3,
        confidence=0.72,
        explanation={
            "phrases": [{"text": "scattering", "weight": 0.8}],
            "similar": [],
        },
    )
    colour = SkillFactory(course=course, name="Colour")
    SkillPrerequisite.objects.create(skill=colour, prerequisite=data["optics"])
    now = timezone.now()
    for days, (optics, hue) in enumerate([(0.3, 0.2), (0.45, 0.3), (0.6, 0.55)]):
        for skill, value in ((data["optics"], optics), (colour, hue)):
            for student, shift in ((data["alice"], 0.0), (data["bob"], 0.2)):
                MasteryEstimate.objects.create(
                    student=student,
                    skill=skill,
                    probability=min(1.0, value + shift),
                    evidence_count=4 + days * 3,
                    as_of=now - timedelta(days=20 - days * 9),
                    is_current=days == 2,
                )
    video = ResourceFactory(course=course, title="Why the sky is blue", skills=[data["optics"]])
    Recommendation.objects.create(
        student=data["alice"],
        course=course,
        resource=video,
        rank=1,
        score=0.9,
        reason="Optics is at 60% and you have mastered its prerequisites.",
    )
    run = TrainingRunFactory(
        course=course,
        status=TrainingRun.Status.SUCCEEDED,
        progress=100,
        stage="done",
        epoch_metrics=[
            {"epoch": epoch, "train_loss": 0.7 - 0.05 * epoch, "val_auc": 0.6 + 0.03 * epoch}
            for epoch in range(1, 8)
        ],
    )
    version = ModelVersionFactory(course=course, status="active", training_run=run)
    return {**data, "run": run, "version": version}


def _check(page, name: str) -> None:
    problems = {what: page.evaluate(f"() => {script}") for what, script in CHECKS.items()}
    assert {what: found for what, found in problems.items() if found} == {}, name
    assert page.locator("h1").count() == 1, name
    assert page.evaluate("document.documentElement.lang") in ("en", "zh-hans"), name


def _tour(page, live_server, screenshot, pages: list[tuple[str, str]], errors: list[str]) -> None:
    for name, path in pages:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, (name, response.status)
        page.wait_for_load_state("load")
        _check(page, name)
        screenshot(name)
    assert errors == []


def test_the_teachers_pages(live_server, page, screenshot, school):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "teacher")
    base = "/courses/tour"
    response = response_of(school, "alice")
    _tour(
        page,
        live_server,
        screenshot,
        [
            ("teacher-home", "/"),
            ("teacher-course-overview", f"{base}/"),
            ("teacher-grading-queue", f"{base}/review/"),
            ("teacher-review-detail", f"{base}/review/{response.pk}/"),
            ("teacher-students", f"{base}/students/"),
            ("teacher-student-page", f"{base}/students/{school['alice'].pk}/"),
            ("teacher-models", f"{base}/models/"),
            ("teacher-training-run-metrics", f"{base}/models/runs/{school['run'].pk}/"),
            ("teacher-model-card", f"{base}/models/versions/{school['version'].pk}/"),
            ("teacher-content", f"{base}/content/"),
            ("teacher-content-items", f"{base}/content/items/"),
            ("teacher-content-item", f"{base}/content/items/{school['why'].pk}/"),
            ("teacher-content-assessments", f"{base}/content/assessments/"),
            ("teacher-content-resources", f"{base}/content/resources/"),
            ("teacher-skill-graph", f"{base}/content/skills/"),
            ("teacher-content-import", f"{base}/content/import/"),
        ],
        errors,
    )
    # the heatmap's cells lead to the student's page for that skill
    page.goto(f"{live_server.url}{base}/")
    page.locator("td a[href*='?skill=']").first.click()
    page.wait_for_load_state("load")
    assert "/students/" in page.url and "skill=" in page.url


def test_the_students_pages(live_server, page, screenshot, school):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "alice")
    base = "/courses/tour"
    _tour(
        page,
        live_server,
        screenshot,
        [
            ("student-home", "/"),
            ("student-course", f"{base}/"),
            ("student-results", f"{base}/results/"),
            ("student-progress", f"{base}/progress/"),
            ("student-suggestions", f"{base}/next/"),
        ],
        errors,
    )
    # marking a suggestion helpful works in place (htmx) and is stored
    page.get_by_role("button", name="Helpful").first.click()
    page.locator(".confirmation[role=status]").first.wait_for(timeout=5000)
    assert Recommendation.objects.get(student=school["alice"]).feedback == "helpful"
    screenshot("student-suggestions-after-feedback")


def test_a_student_tours_in_chinese(live_server, page, screenshot, school):
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/courses/tour/")
    page.get_by_label("Language").select_option("zh-hans")
    page.get_by_role("button", name="Change language").click()
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    assert page.get_by_role("link", name="我的成绩").count() == 1
    _check(page, "student-course-zh-hans")
    screenshot("student-course-zh-hans")
    page.goto(f"{live_server.url}/courses/tour/progress/")
    _check(page, "student-progress-zh-hans")
    screenshot("student-progress-zh-hans")
