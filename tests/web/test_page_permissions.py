"""Every page of the site x GET and POST x every kind of requester, with the exact status
expected, and proof that a refused request changed nothing: the API's permission matrix
(tests/api/test_permission_matrix.py) extended to the page URLs.

The pages are read from the URL configuration of the ``edu_dl`` namespace: a page added later
without a line in POLICY makes ``test_every_page_has_a_policy`` fail, so none can escape.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from edu_dl.models import Recommendation, SkillPrerequisite
from tests.api.test_permission_matrix import snapshot
from tests.factories import (
    AssessmentFactory,
    ItemFactory,
    ModelVersionFactory,
    ResourceFactory,
    SkillFactory,
    TrainingRunFactory,
    UserFactory,
)
from tests.review_data import model_suggests, patch_grader_retraining, response_of, review_course

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "self", "peer", "stranger", "teacher", "other_teacher", "admin")
METHODS = ("get", "post")
SIGNED_IN = {"self": 200, "peer": 200, "stranger": 200, "teacher": 200, "other_teacher": 200}
OUTSIDERS = {"stranger": 404, "other_teacher": 404}
FORM_TOKEN = "0123456789abcdef0123456789abcdef"


def members(status: int) -> dict[str, int]:
    """For everyone with a role in the course (and superusers)."""
    return {"self": status, "peer": status, "teacher": status, "admin": status, **OUTSIDERS}


def staff(status: int) -> dict[str, int]:
    """For the course's staff (and superusers); its students are refused, outsiders not told."""
    return {"self": 403, "peer": 403, "teacher": status, "admin": status, **OUTSIDERS}


def students(status: int) -> dict[str, int]:
    """A student's own pages: staff are sent to their own pages (403)."""
    return {"self": status, "peer": status, "teacher": 403, "admin": 403, **OUTSIDERS}


def alice_only(status: int) -> dict[str, int]:
    """One of alice's own records: bob is not told it exists; staff may not act as her."""
    return {"self": status, "peer": 404, "teacher": 403, "admin": 403, **OUTSIDERS}


# url name -> method -> (body, {persona: status}); anonymous is sent to the login page (302),
# methods not listed are 405 to anyone.
POLICY: dict[str, dict[str, tuple[Any, dict[str, int]]]] = {
    "home": {"get": (None, {**SIGNED_IN, "admin": 200})},
    "course_detail": {"get": (None, members(200))},
    # The grading queue.
    "review_queue": {"get": (None, staff(200))},
    "review_detail": {"get": (None, staff(200))},
    "review_accept": {"post": ({}, staff(302))},
    "review_override": {"post": ({"score": "3", "feedback": ""}, staff(302))},
    "review_accept_many": {"post": ({"response_ids": "{response_id}"}, staff(302))},
    "review_accept_above": {"post": ({"min_confidence": "50"}, staff(302))},
    # The teacher's pages of students.
    "student_list": {"get": (None, staff(200))},
    "student_detail": {"get": (None, staff(200))},
    # Models and training.
    "models_page": {"get": (None, staff(200))},
    "training_run_detail": {"get": (None, staff(200))},
    "training_run_progress": {"get": (None, staff(200))},
    "model_version_detail": {"get": (None, staff(200))},
    # The candidate's artifact is missing: refused with the reason, nothing changed.
    "model_version_activate": {"post": ({}, staff(302))},
    "model_rollback": {"post": ({}, staff(302))},
    "course_training_request": {"post": ({"target": "kt"}, staff(302))},
    # Content.
    "content_home": {"get": (None, staff(200))},
    "content_items": {"get": (None, staff(200))},
    "content_item_detail": {"get": (None, staff(200))},
    "content_assessments": {"get": (None, staff(200))},
    "content_assessment_detail": {"get": (None, staff(200))},
    "content_resources": {"get": (None, staff(200))},
    "content_resource_deactivate": {"post": ({}, staff(302))},
    "content_resource_reactivate": {"post": ({}, staff(302))},
    "content_skill_graph": {"get": (None, staff(200))},
    "content_prerequisite_add": {
        "post": ({"skill": "{lenses}", "prerequisite": "{skill_id}"}, staff(302))
    },
    "content_prerequisite_remove": {
        "post": ({"skill": "{prisms}", "prerequisite": "{skill_id}"}, staff(302))
    },
    # No file: the form is shown again with what is missing, nothing imported.
    "content_import": {"get": (None, staff(200)), "post": ({"kind": "resources"}, staff(400))},
    # A student's own pages.
    "assessment_take": {
        "get": (None, students(200)),
        "post": (
            {"form_token": FORM_TOKEN, "action": "save", "item_{open_choice}": "a"},
            students(302),
        ),
    },
    "my_results": {"get": (None, students(200))},
    "my_progress": {"get": (None, students(200))},
    "my_suggestions": {"get": (None, students(200))},
    "recommendation_feedback": {"post": ({"event": "viewed"}, alice_only(302))},
    # Alice's submission: hers, and her teachers' (bob is not told it exists).
    "submission_detail": {
        "get": (None, {"self": 200, "peer": 404, "teacher": 200, "admin": 200, **OUTSIDERS})
    },
}
# Open to anyone, signed in or not.
PUBLIC = {"healthz"}


def pages() -> list[tuple[str, URLPattern]]:
    """(name, pattern) of every page of the edu_dl namespace."""
    found = []

    def walk(patterns, namespace=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and namespace == "edu_dl" and entry.name:
                found.append((entry.name, entry))

    walk(get_resolver().url_patterns)
    return found


def test_every_page_has_a_policy():
    names = {name for name, _ in pages()} - PUBLIC
    assert len(names) > 30
    assert sorted(names - set(POLICY)) == []
    assert sorted(set(POLICY) - names) == []


def test_each_policy_names_every_persona():
    for name, methods in POLICY.items():
        for method, (_, expected) in methods.items():
            assert set(expected) == set(PERSONAS) - {"anonymous"}, (name, method)


@pytest.fixture
def no_last_login():
    """Signing the requesters in must not write: the snapshot taken once per case must hold
    for each of them (Django records a sign-in's time on the user)."""
    from django.contrib.auth.models import update_last_login
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.disconnect(dispatch_uid="update_last_login")
    yield
    user_logged_in.connect(update_last_login, dispatch_uid="update_last_login")


@pytest.fixture
def world(monkeypatch, no_last_login):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *args, **kwargs: None)
    patch_grader_retraining(monkeypatch)
    data = review_course()
    course = data["course"]
    people = {
        "self": data["alice"],
        "peer": data["bob"],
        "stranger": data["other_student"],
        "teacher": data["teacher"],
        "other_teacher": data["other_teacher"],
        "admin": UserFactory(username="root", is_superuser=True, is_staff=True),
    }
    lenses = SkillFactory(course=course, name="Lenses")
    prisms = SkillFactory(course=course, name="Prisms")
    SkillPrerequisite.objects.create(skill=prisms, prerequisite=data["optics"])
    open_choice = ItemFactory(course=course, single_choice=True, skills=[data["optics"]])
    open_quiz = AssessmentFactory(course=course, title="Open quiz", items=[open_choice])
    why = response_of(data, "alice")
    model_suggests(why, score=2, confidence=0.9)
    resource = ResourceFactory(course=course, title="Rainbows", skills=[data["optics"]])
    recommendation = Recommendation.objects.create(
        student=data["alice"], course=course, resource=resource, rank=1, score=1, reason="r"
    )
    run = TrainingRunFactory(course=course)
    version = ModelVersionFactory(course=course, status="candidate", training_run=run)
    values = {
        "slug": course.slug,
        "skill_id": data["optics"].pk,
        "lenses": lenses.pk,
        "prisms": prisms.pk,
        "open_choice": open_choice.pk,
        "assessment_id": open_quiz.pk,
        "item_id": open_choice.pk,
        "submission_id": data["submissions"]["alice"].pk,
        "response_id": why.pk,
        "student_id": data["alice"].pk,
        "resource_id": resource.pk,
        "recommendation_id": recommendation.pk,
        "run_id": run.pk,
        "version_id": version.pk,
    }
    return {"people": people, "values": values}


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{" in value:
        return value.format(**values)
    if isinstance(value, dict):
        return {_fill(key, values): _fill(entry, values) for key, entry in value.items()}
    return value


def _cases():
    """One case per page and method; the seven requesters are tried in turn within it, so the
    course is built once for all of them."""
    for name, pattern in pages():
        if name in PUBLIC or name not in POLICY:
            continue
        for method in METHODS:
            body, expected = POLICY[name].get(method, (None, None))
            statuses = {
                persona: 405 if expected is None else 302 if persona == "anonymous" else status
                for persona, status in [("anonymous", 302), *(expected or {}).items()]
            }
            if expected is None:
                statuses = dict.fromkeys(PERSONAS, 405)
            yield pytest.param(name, pattern, method, body, statuses, id=f"{name}-{method}")


@pytest.mark.parametrize("name, pattern, method, body, statuses", list(_cases()))
def test_page_permission_matrix(client, world, name, pattern, method, body, statuses):
    values = world["values"]
    url = reverse(f"edu_dl:{name}", kwargs={key: values[key] for key in pattern.pattern.converters})
    # Every request is rolled back, so each one starts from this same state.
    before = snapshot()
    answered = {}
    for persona in PERSONAS:
        status = statuses[persona]
        # Each requester meets the same course: whatever a request wrote is rolled back.
        with transaction.atomic():
            client.logout()
            if persona != "anonymous":
                client.force_login(world["people"][persona])
            refused = (
                status >= 400 or persona == "anonymous" or (name, persona) in REFUSED_REDIRECTS
            )

            response = getattr(client, method)(url, _fill(body, values) or {})

            answered[persona] = response.status_code
            if persona == "anonymous" and response.status_code == 302:
                assert response["Location"].startswith(reverse("login")), response["Location"]
            if refused:
                assert snapshot() == before, persona
            transaction.set_rollback(True)
    assert answered == statuses


# Requests that are answered with a redirect and a message saying why nothing was done.
REFUSED_REDIRECTS = {
    ("model_version_activate", "teacher"),
    ("model_version_activate", "admin"),
    ("model_rollback", "teacher"),
    ("model_rollback", "admin"),
}


def test_healthz_is_open_to_anyone(client, world):
    assert client.get(reverse("edu_dl:healthz")).json() == {"status": "ok"}
