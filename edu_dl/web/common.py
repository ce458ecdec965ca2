"""What every page of a course needs: the course (or a 404 for strangers, a 403 for students on
staff pages), the user's role in words, and the context of the course's tabs.

Who may see what is decided in :mod:`edu_dl.selectors.access`; these helpers only turn its answers
into HTTP ones. A course that the user has no role in answers 404, whatever the user asks of it,
so that strangers cannot learn which courses exist.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _

from edu_dl import selectors
from edu_dl.models import Course, Enrollment
from edu_dl.services.errors import NotFound


def course_or_404(request: HttpRequest, slug: str) -> Course:
    """The course, for anyone with a role in it (and superusers); 404 to everyone else."""
    try:
        return selectors.course_get_for_user(user=request.user, slug=slug)
    except NotFound as error:
        raise Http404(error.message) from error


def staff_course_or_404(request: HttpRequest, slug: str) -> Course:
    """The course, for its staff; 404 to those without a role in it, 403 to its students."""
    course = course_or_404(request, slug)
    if not selectors.course_is_staff(user=request.user, course=course):
        raise DjangoPermissionDenied
    return course


def student_course_or_404(request: HttpRequest, slug: str) -> Course:
    """The course, for its students (the pages about one's own work); 404 to those without a
    role in it, 403 to its staff, who see these records on the teacher's pages instead."""
    course = course_or_404(request, slug)
    if course.user_role != Enrollment.Role.STUDENT:
        raise DjangoPermissionDenied
    return course


def role_label(role: str | None) -> str:
    if role is None:
        return _("Administrator")
    return Enrollment.Role(role).label


def course_context(request: HttpRequest, course: Course, *, tab: str) -> dict[str, Any]:
    """The context that ``edu_dl/_course_nav.html`` needs: the course, the user's role, whether
    they are its staff, and which tab is open (its URL name without the namespace)."""
    return {
        "course": course,
        "role": role_label(course.user_role),
        "is_course_staff": selectors.course_is_staff(user=request.user, course=course),
        "tab": tab,
    }
