"""One error format for every 4xx and 5xx of the API: RFC 9457 problem details.

    {"type": "https://edu-dl.example/problems/validation", "title": "Invalid request",
     "status": 400, "detail": "score 7 is outside the item's scale 0..3",
     "instance": "/api/v1/responses/12/override/", "errors": {"score": ["..."]}}

Domain errors (:mod:`edu_dl.services.errors`) keep their message and field; DRF's own errors
(parse errors, validation, authentication, throttling) are translated; anything unexpected is a
500 problem without internals (the traceback goes to the log). Served as
``application/problem+json``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler

from edu_dl.services.errors import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://edu-dl.readthedocs.io/problems/"

TITLES = {
    400: ("invalid-request", "Invalid request"),
    401: ("not-authenticated", "Authentication needed"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("throttled", "Too many requests"),
    500: ("server-error", "Server error"),
}


def problem(
    status: int,
    detail: str,
    *,
    instance: str = "",
    errors: dict[str, list[str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    slug, title = TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    if extra:
        body.update({key: value for key, value in extra.items() if key not in body})
    return body


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors -> {"field.sub": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(v, dict | list) for v in detail):
            out[prefix or "non_field_errors"] = [str(v) for v in detail]
        else:
            for index, value in enumerate(detail):
                name = f"{prefix}[{index}]" if prefix else f"[{index}]"
                for field, messages in _flatten(value, name).items():
                    out.setdefault(field, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _summary(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {messages[0]}" for field, messages in errors.items()]
    return "; ".join(parts[:5]) + (" ..." if len(parts) > 5 else "")


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER."""
    request = context.get("request")
    instance = request.get_full_path() if request is not None else ""
    if isinstance(exc, ApplicationError):
        errors = {exc.field: [exc.message]} if exc.field else None
        return _response(
            problem(exc.status_code, exc.message, instance=instance, errors=errors, extra=exc.extra)
        )
    if isinstance(exc, DataError):
        # The database refused a value the request carried (a NUL character, a number out of
        # range): the request's fault, and nothing was written.
        return _response(
            problem(
                400,
                "the request holds a value the database cannot store (a NUL character, or a "
                "number out of range)",
                instance=instance,
            )
        )
    if isinstance(exc, RequestDataTooBig):
        return _response(
            problem(413, f"the request body is over the limit: {exc}", instance=instance)
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied(str(exc) or None)
    if isinstance(exc, drf.APIException):
        response = exception_handler(exc, context)
        status = exc.status_code
        if isinstance(exc, drf.ValidationError):
            errors = _flatten(exc.detail)
            body = problem(status, _summary(errors), instance=instance, errors=errors)
        else:
            detail = exc.detail if isinstance(exc.detail, str) else _summary(_flatten(exc.detail))
            body = problem(status, str(detail), instance=instance)
            if isinstance(exc, drf.Throttled) and exc.wait is not None:
                body["retry_after_s"] = round(exc.wait)
        problem_response = _response(body)
        if response is not None:
            for header in ("WWW-Authenticate", "Retry-After", "Allow"):
                if header in response:
                    problem_response[header] = response[header]
        return problem_response
    logger.exception("unhandled error in %s", instance, exc_info=exc)
    return _response(problem(500, "The server failed to answer this request.", instance=instance))


def _response(body: dict[str, Any]) -> Response:
    return Response(body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE)


def problem_json(request, status: int, detail: str) -> JsonResponse:
    """A problem answer outside DRF views (URL not found, server error, body too large)."""
    return JsonResponse(
        problem(status, detail, instance=request.get_full_path()),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


API_PREFIXES = ("/api/", "/xapi/", "/lti/")


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIXES)


def page_not_found(request, exception=None):
    """The site's 404 handler: a problem for API paths (an id that is no number, a path that does
    not exist), Django's page elsewhere."""
    if _is_api(request):
        return problem_json(request, 404, "No API endpoint at this address.")
    from django.views import defaults

    return defaults.page_not_found(request, exception)


def server_error(request):
    """The site's 500 handler: a problem without internals for API paths."""
    if _is_api(request):
        return problem_json(request, 500, "The server failed to answer this request.")
    from django.views import defaults

    return defaults.server_error(request)


def bad_request(request, exception=None):
    """The site's 400 handler (e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    if _is_api(request):
        status = 413 if "RequestDataTooBig" in type(exception).__name__ else 400
        return problem_json(request, status, str(exception) or "Bad request.")
    from django.views import defaults

    return defaults.bad_request(request, exception)
