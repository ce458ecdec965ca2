"""Resource feedback and the mastery around it, for the recommender's selectors and trainer.

Course content and enrollments go through their services (the factories); feedback events and
mastery estimates are written as rows, as the mastery service and the event log would write
them, so a test can put an estimate exactly before or after an event.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from edu_dl.models import (
    Course,
    Enrollment,
    MasteryEstimate,
    Resource,
    ResourceInteraction,
    Skill,
)
from tests.factories import (
    CourseFactory,
    EnrollmentFactory,
    ResourceFactory,
    SkillFactory,
    UserFactory,
)

START = timezone.now().replace(microsecond=0) - timedelta(days=30)


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def student_in(course: Course) -> AbstractBaseUser:
    student = UserFactory()
    EnrollmentFactory(user=student, course=course, role=Enrollment.Role.STUDENT)
    return student


def event(
    student: AbstractBaseUser, resource: Resource, kind: str, when: datetime
) -> ResourceInteraction:
    return ResourceInteraction.objects.create(
        student=student, resource=resource, event=kind, timestamp=when
    )


def estimate(
    student: AbstractBaseUser, skill: Skill, probability: float, when: datetime
) -> MasteryEstimate:
    """Append an estimate; the newest of the student's estimates of the skill is the current."""
    newer = MasteryEstimate.objects.filter(student=student, skill=skill, as_of__gt=when).exists()
    if not newer:
        MasteryEstimate.objects.filter(student=student, skill=skill, is_current=True).update(
            is_current=False
        )
    return MasteryEstimate.objects.create(
        student=student, skill=skill, probability=probability, as_of=when, is_current=not newer
    )


def make_feedback_course(*, students: int = 40, seed: int = 0, slug: str = "") -> Course:
    """Two resources on one skill: A helps students low on it and B does not, B helps the
    others and A does not. Each student votes on both and completes a third resource (on a
    second skill), whose effect shows in the estimate written after it: four labelled examples
    per student, and a viewing that is not one."""
    rng = np.random.default_rng(seed)
    course = CourseFactory(**({"slug": slug} if slug else {}))
    fractions, graphs = SkillFactory(course=course), SkillFactory(course=course)
    a = ResourceFactory(course=course, title="A", skills=[fractions])
    b = ResourceFactory(course=course, title="B", skills=[fractions])
    c = ResourceFactory(course=course, title="C", skills={graphs: 2.0, fractions: 1.0})
    for number in range(students):
        student = student_in(course)
        mastery = float(rng.uniform(0.05, 0.95))
        low = mastery < 0.5
        estimate(student, fractions, mastery, at(number))
        estimate(student, graphs, 0.4, at(number))
        event(student, a, "helpful" if low else "not_helpful", at(number + 1))
        event(student, b, "not_helpful" if low else "helpful", at(number + 2))
        event(student, a, "viewed", at(number + 3))
        event(student, c, "completed", at(number + 4))
        estimate(student, graphs, 0.55 if low else 0.41, at(number + 5))
        event(student, c, "completed", at(number + 6))
        estimate(student, graphs, 0.6 if low else 0.4, at(number + 7))
    return course
