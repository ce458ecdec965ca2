"""Schemathesis against the live OpenAPI schema: every operation, generated requests (valid and
not), as a teacher of a real course. No answer may be a server error, and every answer must be
what the schema says (status code, content type, body)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.review_data import model_suggests, patch_grader_retraining, response_of, review_course


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value) -> bytes:
    """The bulk interactions body: one JSON object a line."""
    records = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(record) for record in records).encode()


schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_world(db, monkeypatch):
    """A course with work in it (the review pages' course), and a teacher's API token."""
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: type("R", (), {"id": ""})())
    patch_grader_retraining(monkeypatch)
    data = review_course(slug="fuzz")
    model_suggests(response_of(data, "alice"), score=2)
    token = Token.objects.create(user=data["teacher"])
    # As Django's test client does: the WSGI handler must not close the test's connection
    # (its transaction holds the data) at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"slug": data["course"].slug, "token": token.key}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_by_its_schema(case, fuzz_world):
    if "slug" in (case.path_parameters or {}):
        case.path_parameters["slug"] = fuzz_world["slug"]
    case.call_and_validate(headers={"Authorization": f"Token {fuzz_world['token']}"}, checks=CHECKS)
