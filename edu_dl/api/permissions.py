"""What a request may do through the API, before the object-level rules of the selectors.

- Signed in: a browser session, a DRF token or an OAuth 2 token; anonymous requests get 401.
- OAuth 2 tokens carry scopes: ``read`` for GET / HEAD / OPTIONS, ``write`` for the rest. A
  session or DRF token acts with all of its user's rights.
- An OAuth application may be limited to some courses (:class:`edu_dl.models.ApiClient`); a
  course outside them is reported as not found, like any course the user may not see.

Who may see which course, student or grade is decided by :mod:`edu_dl.selectors.access`, as for
the pages.
"""

from __future__ import annotations

from typing import Any

from oauth2_provider.models import AbstractAccessToken
from rest_framework.permissions import SAFE_METHODS, BasePermission

from edu_dl.models import ApiClient, Course
from edu_dl.services.errors import NotFound


def oauth_token(request) -> AbstractAccessToken | None:
    token = getattr(request, "auth", None)
    return token if isinstance(token, AbstractAccessToken) else None


def token_scopes(request) -> set[str] | None:
    """The OAuth token's scopes; None for a session or DRF token (no narrowing)."""
    token = oauth_token(request)
    return None if token is None else set((token.scope or "").split())


def client_course_ids(request) -> set[int] | None:
    """The courses an OAuth application is limited to; None when it is not limited."""
    token = oauth_token(request)
    if token is None or not token.application_id:
        return None
    ids = set(
        ApiClient.objects.filter(application_id=token.application_id).values_list(
            "courses", flat=True
        )
    )
    ids.discard(None)
    return ids or None


def check_client_course(request, course: Course) -> None:
    allowed = client_course_ids(request)
    if allowed is not None and course.pk not in allowed:
        raise NotFound(f"no course {course.slug!r}")


class ScopedAccess(BasePermission):
    """Signed in, and an OAuth token holds ``read`` (safe methods) or ``write`` (the rest)."""

    message = "this token's scopes do not allow this request"

    def has_permission(self, request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        scopes = token_scopes(request)
        if scopes is None:
            return True
        needed = "read" if request.method in SAFE_METHODS else "write"
        return needed in scopes
