"""People for the page tests: users who can sign in with a password, and their enrolments."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from edu_dl.models import Course, Enrollment

PASSWORD = "pass-word-1"


def make_user(username: str, **fields):
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **fields)


def enroll(user, course: Course, role: str = Enrollment.Role.STUDENT) -> Enrollment:
    return Enrollment.objects.create(user=user, course=course, role=role)
