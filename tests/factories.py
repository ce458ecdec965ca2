"""factory_boy factories. Course content is created through its services, so every factory-made
row has passed the same rules as one made in the app."""

from __future__ import annotations

from typing import Any

import factory
from django.conf import settings
from factory.django import DjangoModelFactory

from edu_dl.models import (
    Assessment,
    Course,
    Enrollment,
    Item,
    ModelVersion,
    Resource,
    Skill,
    TrainingRun,
)
from edu_dl.services.courses import (
    assessment_create,
    course_create,
    enrollment_create,
    item_create,
    resource_create,
    skill_create,
)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = settings.AUTH_USER_MODEL
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"user{number}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("a-test-password")


class CourseFactory(DjangoModelFactory):
    class Meta:
        model = Course

    slug = factory.Sequence(lambda number: f"course-{number}")
    title = factory.Sequence(lambda number: f"Course {number}")

    @classmethod
    def _create(cls, model_class: type[Course], *args: Any, **kwargs: Any) -> Course:
        return course_create(**kwargs)


class EnrollmentFactory(DjangoModelFactory):
    class Meta:
        model = Enrollment

    user = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseFactory)
    role = Enrollment.Role.STUDENT

    @classmethod
    def _create(cls, model_class: type[Enrollment], *args: Any, **kwargs: Any) -> Enrollment:
        return enrollment_create(**kwargs)


class SkillFactory(DjangoModelFactory):
    class Meta:
        model = Skill

    course = factory.SubFactory(CourseFactory)
    name = factory.Sequence(lambda number: f"Skill {number}")

    @classmethod
    def _create(cls, model_class: type[Skill], *args: Any, **kwargs: Any) -> Skill:
        return skill_create(**kwargs)


class ItemFactory(DjangoModelFactory):
    """A short-answer item by default; ``ItemFactory(single_choice=True)`` for a choice item
    (also ``multiple_choice``, ``numeric`` and ``exact_text``)."""

    class Meta:
        model = Item

    course = factory.SubFactory(CourseFactory)
    kind = Item.Kind.SHORT_ANSWER
    title = factory.Sequence(lambda number: f"Question {number}")
    prompt = "Explain why the sky is blue."
    reference_answer = "Air scatters blue light more than red light."
    skills = factory.LazyFunction(list)

    class Params:
        single_choice = factory.Trait(
            kind=Item.Kind.SINGLE_CHOICE,
            prompt="Which colour is the sky on a clear day?",
            options=factory.LazyFunction(
                lambda: [{"id": "a", "text": "Blue"}, {"id": "b", "text": "Green"}]
            ),
            answer_key="a",
            reference_answer="",
        )
        numeric = factory.Trait(
            kind=Item.Kind.NUMERIC,
            prompt="What is 6 x 7?",
            answer_key=42,
            reference_answer="",
        )
        multiple_choice = factory.Trait(
            kind=Item.Kind.MULTIPLE_CHOICE,
            prompt="Which of these are prime?",
            options=factory.LazyFunction(
                lambda: [
                    {"id": "a", "text": "2"},
                    {"id": "b", "text": "4"},
                    {"id": "c", "text": "5"},
                    {"id": "d", "text": "9"},
                ]
            ),
            answer_key=factory.LazyFunction(lambda: ["a", "c"]),
            reference_answer="",
        )
        exact_text = factory.Trait(
            kind=Item.Kind.EXACT_TEXT,
            prompt="What is the capital of France?",
            answer_key="Paris",
            reference_answer="",
        )

    @classmethod
    def _create(cls, model_class: type[Item], *args: Any, **kwargs: Any) -> Item:
        return item_create(**kwargs)


class AssessmentFactory(DjangoModelFactory):
    class Meta:
        model = Assessment

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda number: f"Quiz {number}")
    items = factory.LazyFunction(list)

    @classmethod
    def _create(cls, model_class: type[Assessment], *args: Any, **kwargs: Any) -> Assessment:
        return assessment_create(**kwargs)


class ResourceFactory(DjangoModelFactory):
    class Meta:
        model = Resource

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda number: f"Reading {number}")
    kind = Resource.Kind.READING
    body = "A short text."
    skills = factory.LazyFunction(list)

    @classmethod
    def _create(cls, model_class: type[Resource], *args: Any, **kwargs: Any) -> Resource:
        return resource_create(**kwargs)


class TrainingRunFactory(DjangoModelFactory):
    """A course's knowledge-tracing run as a row, for pages and reads that only display it
    (real runs are made by ``training_request``, see tests/services/test_training.py)."""

    class Meta:
        model = TrainingRun

    kind = "kt"
    scope_type = "course"
    course = factory.SubFactory(CourseFactory)
    scope_key = factory.LazyAttribute(lambda run: f"course:{run.course.pk}")
    idempotency_key = factory.LazyAttribute(lambda run: f"kt:course:{run.course.pk}")


class ModelVersionFactory(DjangoModelFactory):
    """An active course KT version as a row (no artifact behind it): for display and access
    tests only; versions that are loaded come from ``training_run_execute``."""

    class Meta:
        model = ModelVersion

    kind = "kt"
    scope_type = "course"
    course = factory.SubFactory(CourseFactory)
    scope_key = factory.LazyAttribute(lambda version: f"course:{version.course.pk}")
    version = 1
    status = ModelVersion.Status.ACTIVE
    architecture = "dkt"
    artifact_path = "x"
    artifact_sha256 = "0" * 64
    artifact_size = 1
    data_fingerprint = "f"
