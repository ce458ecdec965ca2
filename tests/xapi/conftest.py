"""A physics course with a teacher, two students, an item and a resource named by external
IRIs, and helpers to talk to the xAPI endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from edu_dl.models import Course, Enrollment, Item, Resource, Skill
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    ResourceFactory,
    SkillFactory,
    UserFactory,
)

VERSION = {"HTTP_X_EXPERIENCE_API_VERSION": "1.0.3"}
ITEM_IRI = "https://quiz.example/items/q1"
RESOURCE_IRI = "https://reader.example/texts/optics"
ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ATTEMPTED = "http://adlnet.gov/expapi/verbs/attempted"


@dataclass
class World:
    course: Course
    teacher: Any
    student: Any
    peer: Any
    outsider: Any
    skill: Skill
    item: Item
    resource: Resource


@pytest.fixture
def world(db) -> World:
    course = CourseFactory(slug="physics")
    teacher = UserFactory(username="teacher")
    student = UserFactory(username="ada", email="Ada@Example.com")
    peer = UserFactory(username="bob")
    outsider = UserFactory(username="eve")
    EnrollmentFactory(user=teacher, course=course, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(user=student, course=course)
    EnrollmentFactory(user=peer, course=course)
    skill = SkillFactory(course=course, name="Optics")
    item = ItemFactory(course=course, external_id=ITEM_IRI, skills=[skill])
    resource = ResourceFactory(course=course, external_id=RESOURCE_IRI, skills=[skill])
    return World(course, teacher, student, peer, outsider, skill, item, resource)


def statement(
    *,
    actor: dict | None = None,
    verb: str = ANSWERED,
    activity: str = ITEM_IRI,
    **extra: Any,
) -> dict[str, Any]:
    """A valid statement: ada answered the quiz item correctly, unless told otherwise."""
    body: dict[str, Any] = {
        "actor": actor
        or {"objectType": "Agent", "account": {"homePage": "https://lms.example", "name": "ada"}},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": activity},
        "timestamp": "2025-01-05T10:00:00Z",
    }
    if verb == ANSWERED:
        body["result"] = {"success": True, "duration": "PT45S"}
    body.update(extra)
    return body


@pytest.fixture
def api():
    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def post(client: APIClient, body: Any, **headers: Any):
    return client.post("/xapi/statements", body, format="json", **{**VERSION, **headers})
