"""Domain errors raised by services when a rule is broken; the API maps them to problem details."""

from __future__ import annotations


class ApplicationError(Exception):
    """A broken business rule. ``message`` is meant for the person who made the request."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    """The input is malformed or violates a rule of the domain."""

    status_code = 400


class PermissionDenied(ApplicationError):
    """The user may not do this."""

    status_code = 403


class NotFound(ApplicationError):
    """No such object, or none that this user may see."""

    status_code = 404


class Conflict(ApplicationError):
    """The object is not in a state that allows this change."""

    status_code = 409
