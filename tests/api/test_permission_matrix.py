"""Every API endpoint x method against every kind of requester, with the exact status expected,
and proof that a refused write changed nothing.

The endpoints are read from the URL configuration: an endpoint added later without a line in
POLICY makes ``test_every_endpoint_has_a_policy`` fail, so none can escape the matrix.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from edu_dl.models import Recommendation, Response, WebhookSubscription
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
METHODS = ("get", "post", "put", "patch", "delete")
NAMESPACES = ("edu_dl_api", "edu_dl_xapi", "edu_dl_lti")
# LTI endpoints are reached by browsers sent by the LMS, before any sign-in: the same answer for
# everyone (the launch itself proves who the user is). Methods they do not take are 405 to all.
OPEN = {"login", "launch", "deep_linking", "jwks"}
# Documentation endpoints (and the xAPI version probe) are public by design.
PUBLIC = {"edu_dl_api:schema", "edu_dl_api:docs", "edu_dl_xapi:about"}
SNAPSHOT_APPS = ("edu_dl", "auth", "authtoken", "oauth2_provider", "edu_dl_xapi", "edu_dl_lti")
# Headers an endpoint needs on every request (xAPI's version header).
HEADERS = {"statements": {"HTTP_X_EXPERIENCE_API_VERSION": "1.0.3"}}
ANSWERED = {
    "actor": {
        "objectType": "Agent",
        "account": {"homePage": "https://lms.example", "name": "alice"},
    },
    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered"},
    "object": {"id": "https://testserver/xapi/activities/items/{open_choice}"},
    "result": {"success": True},
}

MEMBERS = {"self": 200, "peer": 200, "teacher": 200, "admin": 200}
OUTSIDERS = {"stranger": 404, "other_teacher": 404}


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(PERSONAS, status)


def staff(ok: int, *, students: int = 403) -> dict[str, int]:
    return {"self": students, "peer": students, "teacher": ok, "admin": ok, **OUTSIDERS}


# url name -> method -> (body, {persona: status}); anonymous is always 401, methods not listed
# are 405 to anyone signed in.
POLICY: dict[str, dict[str, tuple[Any, dict[str, int]]]] = {
    "course_list": {"get": (None, {**MEMBERS, "stranger": 200, "other_teacher": 200})},
    "course_detail": {"get": (None, {**MEMBERS, **OUTSIDERS})},
    "enrollment_list": {
        "get": (None, staff(200)),
        "post": ({"username": "newbie", "role": "student"}, staff(201)),
    },
    "skill_list": {"get": (None, staff(200)), "post": ({"name": "Refraction"}, staff(201))},
    "skill_prerequisites": {"post": ({"prerequisite": "{lenses}"}, staff(201))},
    "item_list": {
        "get": (None, staff(200)),
        "post": ({"kind": "numeric", "prompt": "2 + 2?", "answer_key": 4}, staff(201)),
    },
    "assessment_list": {
        "get": (None, {**MEMBERS, **OUTSIDERS}),
        "post": ({"title": "Quiz 2", "items": ["{open_choice}"]}, staff(201)),
    },
    "assessment_detail": {"get": (None, {**MEMBERS, **OUTSIDERS})},
    "submission_create": {
        "post": (
            {"answers": {"{open_choice}": "a"}},
            {"self": 201, "peer": 201, "teacher": 403, "admin": 403, **OUTSIDERS},
        )
    },
    "submission_detail": {
        "get": (None, {"self": 200, "peer": 404, "teacher": 200, "admin": 200, **OUTSIDERS})
    },
    "response_list": {"get": (None, staff(200))},
    "response_accept": {"post": ({}, staff(200))},
    "response_override": {"post": ({"score": 3}, staff(200))},
    "interaction_bulk": {"post": ([], staff(201))},
    "student_progress": {
        "get": (None, {"self": 200, "peer": 404, "teacher": 200, "admin": 200, **OUTSIDERS})
    },
    "course_mastery": {"get": (None, staff(200))},
    "resource_list": {
        "get": (None, staff(200)),
        "post": ({"title": "Prisms", "kind": "video"}, staff(201)),
    },
    "resource_detail": {
        "get": (None, staff(200)),
        "patch": ({"title": "Prisms, again"}, staff(200)),
        "delete": (None, staff(204)),
    },
    "recommendation_list": {
        "get": (None, {"self": 200, "peer": 200, "teacher": 400, "admin": 400, **OUTSIDERS})
    },
    "recommendation_feedback": {
        "post": (
            {"event": "helpful"},
            {"self": 200, "peer": 404, "teacher": 403, "admin": 403, **OUTSIDERS},
        )
    },
    # The factory's run is still queued: asking again returns it (202), no second run.
    "training_run_list": {"get": (None, staff(200)), "post": ({"kind": "kt"}, staff(202))},
    "training_run_detail": {"get": (None, staff(200))},
    "model_list": {"get": (None, staff(200))},
    # The candidate's artifact is missing: refused, the active model keeps serving.
    "model_activate": {"post": (None, staff(409))},
    # Nothing active yet to roll back from.
    "model_rollback": {"post": ({"kind": "kt"}, staff(404))},
    "roster_import": {
        "post": (
            {
                "users": "sourcedId,status,enabledUser,username,givenName,familyName,email\n"
                "u-1,,true,rostered,Rosa,Stern,rosa@school.example\n",
                "enrollments": "sourcedId,status,classSourcedId,userSourcedId,role\n"
                "e-1,,period-1,u-1,student\n",
            },
            staff(201),
        )
    },
    "webhook_list": {
        "get": (None, staff(200)),
        "post": (
            {"url": "https://lms.example.org/hooks", "events": ["grade.released"]},
            staff(201),
        ),
    },
    "webhook_detail": {"delete": (None, staff(204))},
    # xAPI: everyone signed in may list (each sees only what they may); a statement about
    # alice's answer may be sent by alice or her course's staff; PUT needs ?statementId=.
    "statements": {
        "get": (None, {**MEMBERS, "stranger": 200, "other_teacher": 200}),
        "post": (
            ANSWERED,
            {
                "self": 200,
                "peer": 403,
                "teacher": 200,
                "admin": 200,
                "stranger": 403,
                "other_teacher": 200,
            },
        ),
        "put": (
            ANSWERED,
            dict.fromkeys(("self", "peer", "stranger", "teacher", "other_teacher", "admin"), 400),
        ),
    },
    # LTI without a platform's parameters: refused with a problem, nothing created.
    "login": {"get": (None, everyone(400)), "post": (None, everyone(400))},
    "launch": {"post": (None, everyone(400))},
    "deep_linking": {"post": (None, everyone(400))},
    "jwks": {"get": (None, everyone(200))},
}


def api_endpoints() -> list[tuple[str, URLPattern]]:
    """(namespaced name, pattern) of every URL in the API namespaces."""
    found = []

    def walk(patterns, namespace=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and namespace in NAMESPACES and entry.name:
                found.append((f"{namespace}:{entry.name}", entry))

    walk(get_resolver().url_patterns)
    return found


def test_every_endpoint_has_a_policy():
    names = {name for name, _ in api_endpoints()} - PUBLIC
    assert names, "no API endpoint found in the URL configuration"
    missing = sorted(n for n in names if n.split(":", 1)[1] not in POLICY)
    assert missing == []
    stale = sorted(set(POLICY) - {n.split(":", 1)[1] for n in names})
    assert stale == []


def test_each_policy_names_every_persona():
    for name, methods in POLICY.items():
        for method, (_, expected) in methods.items():
            personas = set(PERSONAS) if name in OPEN else set(PERSONAS) - {"anonymous"}
            assert set(expected) == personas, (name, method)


@pytest.fixture
def world(monkeypatch):
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
    UserFactory(username="newbie")
    lenses = SkillFactory(course=course, name="Lenses")
    open_choice = ItemFactory(course=course, single_choice=True, skills=[data["optics"]])
    open_quiz = AssessmentFactory(course=course, title="Open quiz", items=[open_choice])
    why = response_of(data, "alice")
    model_suggests(why, score=2)
    resource = ResourceFactory(course=course, title="Rainbows", skills=[data["optics"]])
    recommendation = Recommendation.objects.create(
        student=data["alice"], course=course, resource=resource, rank=1, score=1, reason="r"
    )
    run = TrainingRunFactory(course=course)
    version = ModelVersionFactory(course=course, status="candidate", training_run=run)
    webhook = WebhookSubscription.objects.create(
        course=course, url="https://lms.example.org/old", events=["grade.released"], secret="s"
    )
    values = {
        "slug": course.slug,
        "skill_id": data["optics"].pk,
        "lenses": lenses.pk,
        "open_choice": open_choice.pk,
        "assessment_id": open_quiz.pk,
        "submission_id": data["submissions"]["alice"].pk,
        "response_id": why.pk,
        "username": data["alice"].username,
        "resource_id": resource.pk,
        "recommendation_id": recommendation.pk,
        "run_id": run.pk,
        "version_id": version.pk,
        "webhook_id": webhook.pk,
    }
    return {"people": people, "values": values}


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return values[value[1:-1]]
    if isinstance(value, str) and "{" in value:
        return value.format(**values)
    if isinstance(value, dict):
        return {str(_fill(k, values)): _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def _url(name: str, pattern: URLPattern, values: dict[str, Any]) -> str:
    kwargs = {key: values[key] for key in pattern.pattern.converters}
    return reverse(name, kwargs=kwargs)


def snapshot() -> list:
    """Every row of every table the API can write, to compare before and after a refusal."""
    rows = []
    for model in apps.get_models():
        if model._meta.app_label in SNAPSHOT_APPS:
            rows.append(
                (model._meta.label, sorted(map(repr, model.objects.values_list(flat=False))))
            )
    return rows


def _expected(short: str, method: str) -> dict[str, int]:
    """The status each requester must get for ``method`` on the endpoint named ``short``."""
    _, expected = POLICY[short].get(method, (None, None))
    statuses = {}
    for persona in PERSONAS:
        if short in OPEN:
            statuses[persona] = 405 if expected is None else expected[persona]
        elif persona == "anonymous":
            statuses[persona] = 401
        elif expected is None:
            statuses[persona] = 405
        else:
            statuses[persona] = expected[persona]
    return statuses


def _cases():
    """One case per endpoint and method; the seven requesters are tried in turn within it, so
    the course is built once for all of them."""
    for name, pattern in api_endpoints():
        short = name.split(":", 1)[1]
        if name in PUBLIC or short not in POLICY:
            continue
        for method in METHODS:
            body, _ = POLICY[short].get(method, (None, None))
            yield pytest.param(
                name, pattern, method, body, _expected(short, method), id=f"{short}-{method}"
            )


@pytest.mark.parametrize("name, pattern, method, body, statuses", list(_cases()))
def test_permission_matrix(world, fake_dns, name, pattern, method, body, statuses):
    # fake_dns: a webhook's lms.example.org resolves, to a public address, without the network.
    url = _url(name, pattern, world["values"])
    headers = HEADERS.get(name.split(":", 1)[1], {})
    # Every request is rolled back, so each one starts from this same state.
    before = snapshot()
    answered = {}
    for persona in PERSONAS:
        status = statuses[persona]
        # Each requester meets the same course: whatever a request wrote is rolled back.
        with transaction.atomic():
            client = APIClient()
            if persona != "anonymous":
                client.force_authenticate(world["people"][persona])

            response = getattr(client, method)(
                url, _fill(body, world["values"]), format="json", **headers
            )

            answered[persona] = response.status_code
            if status >= 400 and response.status_code == status:
                assert response["Content-Type"].startswith("application/problem+json"), persona
                assert response.json()["status"] == status, persona
                assert snapshot() == before, persona
            transaction.set_rollback(True)
    assert answered == statuses


def test_a_refused_student_sees_no_score_of_another(world):
    client = APIClient()
    client.force_authenticate(world["people"]["peer"])
    url = reverse(
        "edu_dl_api:submission_detail",
        kwargs={"slug": world["values"]["slug"], "submission_id": world["values"]["submission_id"]},
    )

    response = client.get(url)

    assert response.status_code == 404
    assert "score" not in response.content.decode()
    assert Response.objects.filter(pk=world["values"]["response_id"]).exists()
