"""Who may read which stored statements, and the statement queries of the xAPI endpoint.

- A statement with a course: the course's staff (superusers included) and the student it is
  about.
- A statement with no course (an unknown activity): whoever stored it.
- An OAuth application limited to some courses sees only statements of those courses (and the
  course-less ones its owner stored).

A statement someone may not read is reported as not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from edu_dl.models import Enrollment
from edu_dl.selectors.access import STAFF_ROLES
from edu_dl.services.errors import NotFound
from edu_dl.xapi.models import Statement

# How many statements one query answer holds at most (and by default).
MAX_LIMIT = 500


def statements_visible(*, user: Any, client_course_ids: set[int] | None = None) -> QuerySet:
    """The statements the user may read (see the module docstring)."""
    if not (user.is_authenticated and user.is_active):
        return Statement.objects.none()
    statements = Statement.objects.all()
    own_courseless = Q(course__isnull=True, authority_user=user)
    if not user.is_superuser:
        staff_courses = Enrollment.objects.filter(user=user, role__in=STAFF_ROLES).values(
            "course_id"
        )
        statements = statements.filter(
            Q(course_id__in=staff_courses) | Q(course__isnull=False, student=user) | own_courseless
        )
    if client_course_ids is not None:
        statements = statements.filter(Q(course_id__in=client_course_ids) | own_courseless)
    return statements


def statement_get(
    *,
    user: Any,
    statement_id: uuid.UUID,
    voided: bool,
    client_course_ids: set[int] | None = None,
) -> Statement:
    """One statement by id: ``voided`` False finds a statement that is not voided (xAPI's
    ``statementId``), True one that is (``voidedStatementId``)."""
    statement = (
        statements_visible(user=user, client_course_ids=client_course_ids)
        .filter(statement_id=statement_id, voided=voided)
        .select_related("authority_user")
        .first()
    )
    if statement is None:
        kind = "voided statement" if voided else "statement"
        raise NotFound(f"no {kind} {statement_id}")
    return statement


@dataclass(frozen=True)
class StatementPage:
    statements: list[Statement]
    # The cursor of the next page (the last statement's row id), or None when this is the last.
    next_cursor: int | None


def statements_query(
    *,
    user: Any,
    client_course_ids: set[int] | None = None,
    verb: str | None = None,
    activity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_LIMIT,
    ascending: bool = False,
    cursor: int | None = None,
) -> StatementPage:
    """Statements that are not voided, in the order they were stored (newest first unless
    ``ascending``), filtered by verb IRI, activity IRI (the object) and stored time (``since``
    excluded, ``until`` included), at most ``limit`` (1..MAX_LIMIT) from ``cursor`` on."""
    statements = statements_visible(user=user, client_course_ids=client_course_ids).filter(
        voided=False
    )
    if verb:
        statements = statements.filter(verb=verb)
    if activity:
        statements = statements.filter(object_id=activity)
    if since is not None:
        statements = statements.filter(stored_at__gt=since)
    if until is not None:
        statements = statements.filter(stored_at__lte=until)
    if cursor is not None:
        statements = (
            statements.filter(pk__gt=cursor) if ascending else statements.filter(pk__lt=cursor)
        )
    limit = max(1, min(limit, MAX_LIMIT))
    ordered = statements.select_related("authority_user").order_by("pk" if ascending else "-pk")
    page = list(ordered[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return StatementPage(statements=page, next_cursor=page[-1].pk if more and page else None)
