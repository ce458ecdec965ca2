"""Who may see what: every page and API view decides access through these functions.

Access comes from course roles (:class:`Enrollment.role`). Teachers and teaching assistants are
the *staff* of a course and see all of it; a student sees only their own records. Django
superusers see everything, whether or not they are enrolled. ``is_staff`` alone (access to the
admin site) grants nothing here: the admin has its own model permissions.

A course that a user may not see is reported as not found, never as forbidden, so that its
existence is not revealed to strangers.

Every function that returns rows returns an empty queryset to someone who may not see them, so a
caller that forgets a check shows nothing rather than too much.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    Course,
    Enrollment,
    Item,
    ModelKind,
    ModelVersion,
    Resource,
    Response,
    Skill,
    Submission,
    TrainingRun,
)
from edu_dl.services.errors import NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    UserLike = AbstractBaseUser | AnonymousUser
else:
    UserLike = Any

STAFF_ROLES = (Enrollment.Role.TEACHER, Enrollment.Role.ASSISTANT)

# Where course_role caches its answers on a user object (one request's lifetime).
ROLE_CACHE_ATTRIBUTE = "_edu_dl_course_roles"

# How many training runs the course page lists.
RECENT_TRAINING_RUNS = 10


def _is_superuser(user: UserLike) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def _signed_in(user: UserLike) -> bool:
    return bool(user.is_authenticated and user.is_active)


def _role_cache(user: UserLike) -> dict[int, str | None]:
    cache = getattr(user, ROLE_CACHE_ATTRIBUTE, None)
    if cache is None:
        cache = {}
        setattr(user, ROLE_CACHE_ATTRIBUTE, cache)
    return cache


def course_scope_key(course: Course) -> str:
    """The ``scope_key`` of course-wide models and training runs (see ``ScopedModel``)."""
    return f"course:{course.pk}"


# --- Roles and courses ---------------------------------------------------------------------------


def course_role(*, user: UserLike, course: Course) -> str | None:
    """The user's role in the course (an ``Enrollment.Role`` value), or None if not enrolled.

    Superusers have no role unless they are enrolled; the other functions let them in anyway.
    The answer is cached on the user object, like Django's permission cache, because one page
    asks it several times: a role changed during a request is seen by the next request.
    """
    if not _signed_in(user):
        return None
    cache = _role_cache(user)
    if course.pk not in cache:
        cache[course.pk] = (
            Enrollment.objects.filter(user=user, course=course)
            .values_list("role", flat=True)
            .first()
        )
    return cache[course.pk]


def courses_for_user(*, user: UserLike) -> QuerySet[Course]:
    """The courses the user may open, each annotated with ``user_role`` (None when not enrolled).

    Everyone sees the courses they are enrolled in; superusers see every course.
    """
    if not _signed_in(user):
        return Course.objects.none()
    role = Enrollment.objects.filter(course=OuterRef("pk"), user=user).values("role")[:1]
    courses = Course.objects.annotate(user_role=Subquery(role))
    if _is_superuser(user):
        return courses.order_by("title", "pk")
    return courses.filter(enrollments__user=user).order_by("title", "pk")


def course_is_staff(*, user: UserLike, course: Course) -> bool:
    """Whether the user teaches or assists in the course (superusers count as staff)."""
    if _is_superuser(user):
        return True
    return course_role(user=user, course=course) in STAFF_ROLES


def course_get_for_user(*, user: UserLike, slug: str) -> Course:
    """The course with this slug if the user may open it; otherwise :class:`NotFound`.

    A course that exists but that the user has no role in is reported exactly like one that does
    not exist.
    """
    course = courses_for_user(user=user).filter(slug=slug).first()
    if course is None:
        raise NotFound("No such course.")
    # The query already read the role: remember it so that later checks cost nothing.
    _role_cache(user)[course.pk] = course.user_role
    return course


# --- Students ------------------------------------------------------------------------------------


def students_visible(*, user: UserLike, course: Course) -> QuerySet:
    """The students of the course whom the user may see, ordered by username.

    Course staff see every enrolled student; a student sees only themself; anyone else no one.
    """
    User = get_user_model()
    students = User.objects.filter(
        edu_enrollments__course=course, edu_enrollments__role=Enrollment.Role.STUDENT
    ).order_by(User.USERNAME_FIELD, "pk")
    if course_is_staff(user=user, course=course):
        return students
    if _signed_in(user):
        return students.filter(pk=user.pk)
    return User.objects.none()


def student_record_visible(*, viewer: UserLike, student: Any, course: Course) -> bool:
    """Whether ``viewer`` may see the records of ``student`` in ``course``.

    Only students of the course have records in it. Course staff may see every student's; a
    student only their own.
    """
    if not _signed_in(viewer):
        return False
    is_student = Enrollment.objects.filter(
        user=student, course=course, role=Enrollment.Role.STUDENT
    ).exists()
    if not is_student:
        return False
    if viewer.pk == student.pk:
        return True
    return course_is_staff(user=viewer, course=course)


# --- Course content for the course page ----------------------------------------------------------


def assessments_visible(*, user: UserLike, course: Course) -> QuerySet[Assessment]:
    """The course's assessments, annotated with ``item_count``, ``my_submission_status`` and
    ``my_submission_id``.

    Staff see all of them; students only the published ones. ``my_submission_status`` and
    ``my_submission_id`` are the status and id of the user's latest submission of the assessment
    (None if they have not started).
    """
    if course_is_staff(user=user, course=course):
        assessments = Assessment.objects.filter(course=course)
    elif course_role(user=user, course=course) == Enrollment.Role.STUDENT:
        assessments = Assessment.objects.filter(course=course, is_published=True)
    else:
        return Assessment.objects.none()
    latest = Submission.objects.filter(assessment=OuterRef("pk"), student=user).order_by(
        "-created_at", "-pk"
    )
    return assessments.annotate(
        item_count=Count("entries", distinct=True),
        my_submission_status=Subquery(latest.values("status")[:1]),
        my_submission_id=Subquery(latest.values("pk")[:1]),
    ).order_by("due_at", "pk")


def responses_visible(*, user: UserLike, course: Course) -> QuerySet[Response]:
    """Responses in the course whose scores the user may see.

    Staff see every response. A student sees only their own responses that are released, and
    none of an assessment that holds grades until a due date that has not passed yet.
    """
    responses = Response.objects.filter(submission__assessment__course=course).select_related(
        "item", "submission__assessment", "model_version"
    )
    if course_is_staff(user=user, course=course):
        return responses.order_by("-submission__submitted_at", "pk")
    if course_role(user=user, course=course) != Enrollment.Role.STUDENT:
        return Response.objects.none()
    held = Q(
        submission__assessment__hold_grades_until_due=True,
        submission__assessment__due_at__gt=timezone.now(),
    )
    return (
        responses.filter(submission__student=user, released=True)
        .exclude(held)
        .order_by("submission__assessment__due_at", "submission__assessment_id", "item_id", "pk")
    )


def skills_visible(*, user: UserLike, course: Course) -> QuerySet[Skill]:
    """The course's skills with their prerequisites prefetched: course staff only."""
    if not course_is_staff(user=user, course=course):
        return Skill.objects.none()
    return (
        Skill.objects.filter(course=course)
        .prefetch_related(
            Prefetch("prerequisites", queryset=Skill.objects.order_by("name", "pk")),
        )
        .order_by("name", "pk")
    )


def items_visible(*, user: UserLike, course: Course) -> QuerySet[Item]:
    """The course's items (answer keys included) with their skills: course staff only."""
    if not course_is_staff(user=user, course=course):
        return Item.objects.none()
    return (
        Item.objects.filter(course=course)
        .prefetch_related(Prefetch("skills", queryset=Skill.objects.order_by("name", "pk")))
        .order_by("pk")
    )


def resources_visible(*, user: UserLike, course: Course) -> QuerySet[Resource]:
    """The course's study resources with their skills: course staff only (for now)."""
    if not course_is_staff(user=user, course=course):
        return Resource.objects.none()
    return (
        Resource.objects.filter(course=course)
        .prefetch_related(Prefetch("skills", queryset=Skill.objects.order_by("name", "pk")))
        .order_by("title", "pk")
    )


def training_runs_visible(
    *, user: UserLike, course: Course, limit: int = RECENT_TRAINING_RUNS
) -> QuerySet[TrainingRun]:
    """The newest training runs of course-wide models, newest first: course staff only."""
    if not course_is_staff(user=user, course=course):
        return TrainingRun.objects.none()
    return TrainingRun.objects.filter(scope_key=course_scope_key(course)).order_by(
        "-created_at", "-pk"
    )[:limit]


def active_model_version(
    *, user: UserLike, course: Course, kind: str = ModelKind.KT
) -> ModelVersion | None:
    """The active course-wide model version of ``kind``, or None: course staff only."""
    if not course_is_staff(user=user, course=course):
        return None
    return ModelVersion.objects.filter(
        kind=kind, scope_key=course_scope_key(course), status=ModelVersion.Status.ACTIVE
    ).first()
