"""The xAPI 1.0.3 resources: ``/xapi/statements`` and ``/xapi/about``.

Authentication and scopes are the REST API's (session, DRF token, OAuth 2 bearer; ``read`` for
GET, ``write`` for POST and PUT), errors are its problem details. Every request but ``about``
must say ``X-Experience-API-Version: 1.0.x``; every answer says ``1.0.3``. A POST answers the
statement ids, as xAPI asks, and what they became in the ``X-Edu-DL-Statement-Outcomes``
header (a JSON object: outcome -> count, see :mod:`edu_dl.xapi.services`).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from edu_dl.api.permissions import client_course_ids
from edu_dl.api.problems import PROBLEM_CONTENT_TYPE
from edu_dl.services.errors import ValidationFailed
from edu_dl.xapi.models import Statement
from edu_dl.xapi.selectors import MAX_LIMIT, statement_get, statements_query
from edu_dl.xapi.services import statements_store
from edu_dl.xapi.vocabulary import (
    ACCEPTED_VERSION,
    ACTIVITIES_SEGMENT,
    VERSION_HEADER,
    XAPI_VERSION,
)

OUTCOMES_HEADER = "X-Edu-DL-Statement-Outcomes"
CONSISTENT_THROUGH_HEADER = "X-Experience-API-Consistent-Through"
# Query parameters of GET /xapi/statements that this store understands ...
QUERY_PARAMETERS = {"verb", "activity", "since", "until", "limit", "ascending", "cursor"}
SINGLE_PARAMETERS = {"statementId", "voidedStatementId"}
# ... and those xAPI defines that change nothing here (answers are always in "exact" format
# and never carry attachments), so they are accepted and ignored.
IGNORED_PARAMETERS = {"format", "attachments"}

STATEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An xAPI 1.0.3 statement (https://github.com/adlnet/xAPI-Spec).",
    "additionalProperties": True,
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
}
VERSION_PARAMETER = OpenApiParameter(
    VERSION_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="The xAPI version of the request: 1.0.3 (any 1.0.x is accepted).",
)
STATEMENT_ID_PARAMETER = OpenApiParameter(
    "statementId", OpenApiTypes.UUID, description="The id of one statement to fetch or put."
)


def _problems(*codes: int) -> dict[Any, Any]:
    return {(code, PROBLEM_CONTENT_TYPE): PROBLEM_SCHEMA for code in codes}


def activity_base(request: Request) -> str:
    """``https://<host>/xapi/activities/``: the prefix of our own activity IRIs."""
    xapi_root = reverse("edu_dl_xapi:about").removesuffix("about")
    return f"https://{request.get_host()}{xapi_root}{ACTIVITIES_SEGMENT}"


def statement_document(statement: Statement, *, request: Request) -> dict[str, Any]:
    """A stored statement as xAPI returns it: as sent, with the properties the store sets."""
    document = dict(statement.raw)
    stored = statement.stored_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document["stored"] = stored
    document.setdefault("timestamp", stored)
    document.setdefault("version", "1.0.0")
    document.pop("authority", None)
    if statement.authority_user is not None:
        document["authority"] = {
            "objectType": "Agent",
            "account": {
                "homePage": f"https://{request.get_host()}/",
                "name": statement.authority_user.get_username(),
            },
        }
    return document


class XapiView(APIView):
    """Checks the version header of each request and sets it on each answer."""

    requires_version_header = True

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not self.requires_version_header:
            return
        version = request.headers.get(VERSION_HEADER)
        if version is None:
            raise ValidationFailed(f"the {VERSION_HEADER} header is required", field=VERSION_HEADER)
        if not ACCEPTED_VERSION.match(version.strip()):
            raise ValidationFailed(
                f"{VERSION_HEADER} {version!r} is not supported: this store speaks "
                f"{XAPI_VERSION} (any 1.0.x)",
                field=VERSION_HEADER,
            )

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response[VERSION_HEADER] = XAPI_VERSION
        return response


class AboutView(XapiView):
    """The xAPI versions this store speaks; open to anyone."""

    authentication_classes: list = []
    permission_classes: list = []
    requires_version_header = False

    @extend_schema(
        operation_id="xapi_about",
        tags=["xapi"],
        responses={
            200: {
                "type": "object",
                "properties": {"version": {"type": "array", "items": {"type": "string"}}},
            }
        },
    )
    def get(self, request: Request) -> Response:
        return Response({"version": [XAPI_VERSION]})


def _uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(f"{name} {value!r} is not a UUID", field=name) from None


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationFailed(f"{name} {value!r} is not an ISO 8601 date and time", field=name)
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _whole_number(value: str | None, name: str, default: int | None) -> int | None:
    if value is None:
        return default
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed(f"{name} must be a whole number from 0, not {value!r}", field=name)
    return int(value)


class StatementsView(XapiView):
    """Store statements (POST, PUT) and read them back (GET)."""

    @extend_schema(
        operation_id="xapi_statements_create",
        tags=["xapi"],
        description=(
            "Store one statement or a list of them, all or nothing. Answers become interactions, "
            "completed or experienced resources resource events; statements about unknown "
            "activities or actors are kept and counted in the outcomes header."
        ),
        parameters=[VERSION_PARAMETER],
        request={
            "application/json": {
                "oneOf": [STATEMENT_SCHEMA, {"type": "array", "items": STATEMENT_SCHEMA}]
            }
        },
        responses={
            200: OpenApiResponse(
                response={"type": "array", "items": {"type": "string", "format": "uuid"}},
                description=(
                    f"The statements' ids, in the request's order. The {OUTCOMES_HEADER} "
                    "header counts what they became."
                ),
            ),
            **_problems(400, 401, 403, 404, 409),
        },
    )
    def post(self, request: Request) -> Response:
        body = request.data
        statements = body if isinstance(body, list) else [body]
        stored = statements_store(
            statements=statements,
            user=request.user,
            request_course_ids=client_course_ids(request),
            activity_base=activity_base(request),
        )
        response = Response(stored.ids, status=status.HTTP_200_OK)
        response[OUTCOMES_HEADER] = json.dumps(stored.summary, separators=(",", ":"))
        return response

    @extend_schema(
        operation_id="xapi_statements_put",
        tags=["xapi"],
        description="Store one statement under the id given as statementId.",
        parameters=[
            VERSION_PARAMETER,
            OpenApiParameter(
                "statementId", OpenApiTypes.UUID, required=True, description="The statement's id."
            ),
        ],
        request={"application/json": STATEMENT_SCHEMA},
        responses={204: None, **_problems(400, 401, 403, 404, 409)},
    )
    def put(self, request: Request) -> Response:
        given = request.query_params.get("statementId")
        if given is None:
            raise ValidationFailed("the statementId parameter is required", field="statementId")
        statement_id = _uuid(given, "statementId")
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed("the body must be one statement (a JSON object)")
        # A malformed id in the body is left to the statement checks, which say what is wrong.
        if isinstance(body.get("id"), str) and _same_id(body["id"]) not in (None, statement_id):
            raise ValidationFailed(
                "the statement's id differs from the statementId parameter", field="id"
            )
        statement = body if "id" in body else {**body, "id": str(statement_id)}
        stored = statements_store(
            statements=[statement],
            user=request.user,
            request_course_ids=client_course_ids(request),
            activity_base=activity_base(request),
        )
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response[OUTCOMES_HEADER] = json.dumps(stored.summary, separators=(",", ":"))
        return response

    @extend_schema(
        operation_id="xapi_statements_read",
        tags=["xapi"],
        description=(
            "One statement by statementId (or voidedStatementId), or the statements you may "
            "read, newest first, filtered by verb, activity and stored time."
        ),
        parameters=[
            VERSION_PARAMETER,
            STATEMENT_ID_PARAMETER,
            OpenApiParameter(
                "voidedStatementId", OpenApiTypes.UUID, description="The id of a voided statement."
            ),
            OpenApiParameter(
                "verb", OpenApiTypes.URI, description="Only statements with this verb."
            ),
            OpenApiParameter(
                "activity", OpenApiTypes.URI, description="Only statements about this activity."
            ),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Only statements stored after it."
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="Only statements stored up to it."
            ),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"At most this many (0 = {MAX_LIMIT})."
            ),
            OpenApiParameter("ascending", OpenApiTypes.BOOL, description="Oldest first."),
            OpenApiParameter(
                "cursor", OpenApiTypes.INT, description="Where the next page starts ('more')."
            ),
        ],
        responses={
            200: OpenApiResponse(
                response={
                    "oneOf": [
                        STATEMENT_SCHEMA,
                        {
                            "type": "object",
                            "properties": {
                                "statements": {"type": "array", "items": STATEMENT_SCHEMA},
                                "more": {"type": "string"},
                            },
                        },
                    ]
                },
                description="One statement (by id), or a page of them with the next page's URL.",
            ),
            **_problems(400, 401, 404),
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = set(params) - QUERY_PARAMETERS - SINGLE_PARAMETERS - IGNORED_PARAMETERS
        if unknown:
            raise ValidationFailed(
                f"unsupported parameter(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
            )
        courses = client_course_ids(request)
        single = SINGLE_PARAMETERS & set(params)
        if single:
            if len(single) > 1 or set(params) - single - IGNORED_PARAMETERS:
                raise ValidationFailed(
                    "statementId or voidedStatementId goes alone (with format or attachments)"
                )
            (name,) = single
            statement = statement_get(
                user=request.user,
                statement_id=_uuid(params[name], name),
                voided=name == "voidedStatementId",
                client_course_ids=courses,
            )
            return Response(statement_document(statement, request=request))
        limit = _whole_number(params.get("limit"), "limit", MAX_LIMIT) or MAX_LIMIT
        ascending_text = params.get("ascending", "false").lower()
        if ascending_text not in ("true", "false"):
            raise ValidationFailed("ascending must be true or false", field="ascending")
        now = timezone.now()
        page = statements_query(
            user=request.user,
            client_course_ids=courses,
            verb=params.get("verb"),
            activity=params.get("activity"),
            since=_moment(params.get("since"), "since"),
            until=_moment(params.get("until"), "until"),
            limit=limit,
            ascending=ascending_text == "true",
            cursor=_whole_number(params.get("cursor"), "cursor", None),
        )
        more = ""
        if page.next_cursor is not None:
            following = params.copy()
            following["cursor"] = str(page.next_cursor)
            more = f"{request.path}?{following.urlencode()}"
        response = Response(
            {
                "statements": [
                    statement_document(statement, request=request) for statement in page.statements
                ],
                "more": more,
            }
        )
        response[CONSISTENT_THROUGH_HEADER] = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return response


def _same_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
