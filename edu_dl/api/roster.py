"""The roster import endpoint: a class list from a school's OneRoster 1.2 CSV export.

``POST /api/v1/courses/{slug}/roster/`` with ``users`` and ``enrollments``: two uploaded files
(multipart/form-data) or their text (JSON). The rules are the service's
(:mod:`edu_dl.services.roster`); this view only reads the two files.

The files together may be as large as any API request body (``DATA_UPLOAD_MAX_MEMORY_SIZE``,
which Django applies to form fields but not to uploaded files): a larger request is refused with
413 before its files are read.
"""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response as ApiResponse
from rest_framework.views import APIView

from edu_dl.api.serializers import StrictSerializer
from edu_dl.api.views import CourseScoped
from edu_dl.services.roster import roster_import

ROSTER_FILES = ("users", "enrollments")


class CsvFileField(serializers.Field):
    """A CSV file: an uploaded file (multipart/form-data) or the file's text (JSON)."""

    default_error_messages = {
        "invalid": "must be a CSV file (multipart/form-data) or the file's text (JSON)",
    }

    def to_internal_value(self, data: object) -> UploadedFile | str:
        if isinstance(data, UploadedFile | str):
            return data
        self.fail("invalid")

    def to_representation(self, value: object) -> str:  # never used: input only
        return str(value)


class RosterImportInput(StrictSerializer):
    users = CsvFileField()
    enrollments = CsvFileField()


class RosterImportResultSerializer(serializers.Serializer):
    class_sourced_id = serializers.CharField(
        help_text="The OneRoster class whose enrolments were imported."
    )
    users_created = serializers.IntegerField()
    users_matched = serializers.IntegerField()
    enrollments_created = serializers.IntegerField()
    enrollments_updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField(
        help_text="Enrolments of the class marked tobedeleted (or whose user is): nobody is "
        "ever unenrolled by an import."
    )


def _refuse_a_large_body(request: Request) -> None:
    """413 when the body announces more than the API takes, before anything is read."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if limit is not None and length > limit:
        raise RequestDataTooBig(f"{length} bytes; at most {limit} are accepted")


def _size(value: UploadedFile | str) -> int:
    if isinstance(value, UploadedFile):
        return value.size or 0
    return len(value.encode())


def _file_contents(files: dict[str, UploadedFile | str]) -> dict[str, bytes | str]:
    """The files' contents (bytes of uploads, text as sent), after checking their size."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    size = sum(_size(value) for value in files.values())
    if limit is not None and size > limit:
        raise RequestDataTooBig(f"the roster files hold {size} bytes; at most {limit} fit")
    return {
        name: value.read() if isinstance(value, UploadedFile) else value
        for name, value in files.items()
    }


class RosterImport(CourseScoped, APIView):
    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "RosterImportUpload",
                {
                    "users": serializers.FileField(help_text="users.csv (OneRoster 1.2)"),
                    "enrollments": serializers.FileField(
                        help_text="enrollments.csv (OneRoster 1.2)"
                    ),
                },
            ),
            "application/json": inline_serializer(
                "RosterImportText",
                {
                    "users": serializers.CharField(help_text="the text of users.csv"),
                    "enrollments": serializers.CharField(help_text="the text of enrollments.csv"),
                },
            ),
        },
        responses={201: RosterImportResultSerializer},
        description="Enrol one class of a OneRoster 1.2 CSV export (users.csv and "
        "enrollments.csv, UTF-8) in the course: course staff only. The class is the one whose "
        "classSourcedId is the course's slug, else the file's only class. Users are matched by "
        "username (missing ones are created without a password); student, teacher, aide and "
        "proctor become student, teacher, assistant, assistant. Every row is checked first: "
        "any bad row refuses the whole import with every bad row listed under `errors` "
        "(`users.csv line 7: email: ...`) and nothing is stored. Importing the same files "
        "again changes nothing; nobody is ever unenrolled (tobedeleted rows are skipped).",
    )
    def post(self, request, slug):
        course = self.require_staff()
        _refuse_a_large_body(request)
        serializer = RosterImportInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        contents = _file_contents({name: serializer.validated_data[name] for name in ROSTER_FILES})
        result = roster_import(
            course=course,
            users=contents["users"],
            enrollments=contents["enrollments"],
            actor=request.user,
        )
        return ApiResponse(
            RosterImportResultSerializer(asdict(result)).data, status=status.HTTP_201_CREATED
        )
