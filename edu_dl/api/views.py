"""REST API views: thin. Each resolves the course the user may see, checks the role the
operation needs, validates input with a serializer and calls one service or selector.

Everything lives under a course (``/api/v1/courses/{slug}/...``): a course the user may not open
is reported as not found, like one that does not exist, and an OAuth application limited to some
courses never reaches the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response as ApiResponse
from rest_framework.views import APIView

from edu_dl.api import serializers as s
from edu_dl.api.permissions import check_client_course, client_course_ids
from edu_dl.models import (
    Assessment,
    Course,
    Enrollment,
    Item,
    ModelKind,
    ModelVersion,
    Recommendation,
    Resource,
    Response,
    Skill,
    Submission,
    TrainingRun,
    WebhookSubscription,
)
from edu_dl.selectors.access import (
    assessments_visible,
    course_get_for_user,
    course_is_staff,
    course_role,
    course_scope_key,
    courses_for_user,
    items_visible,
    resources_visible,
    responses_visible,
    skills_visible,
    student_record_visible,
)
from edu_dl.selectors.submissions import responses_for_student_view, submission_get_for_viewer
from edu_dl.services.errors import NotFound, PermissionDenied, ValidationFailed

API_STATUS = {
    Submission.Status.SUBMITTED: "pending",
    Submission.Status.NEEDS_REVIEW: "needs-review",
    Submission.Status.GRADED: "graded",
    Submission.Status.DRAFT: "draft",
}
MAX_BULK_INTERACTIONS = 10_000


class CourseScoped:
    """Resolves ``{slug}`` to a course the requester may open (and their client may reach)."""

    request: Request
    kwargs: dict[str, Any]
    staff_only = False

    def get_course(self) -> Course:
        if not hasattr(self, "_course"):
            course = course_get_for_user(user=self.request.user, slug=self.kwargs["slug"])
            check_client_course(self.request, course)
            self._course = course
        return self._course

    def require_staff(self) -> Course:
        course = self.get_course()
        if not course_is_staff(user=self.request.user, course=course):
            raise PermissionDenied("only the course's teachers and assistants may do this")
        return course

    def require_student(self) -> Course:
        course = self.get_course()
        if course_role(user=self.request.user, course=course) != Enrollment.Role.STUDENT:
            raise PermissionDenied("only students of the course may do this")
        return course


class CourseListView(CourseScoped, generics.ListAPIView):
    """A paginated, orderable list of one course's rows; ``rows()`` applies the access rule."""

    model: Any = None
    # Each list names ``rows(course) -> QuerySet``: the course's rows the requester may see.
    rows: Callable[[Course], Any]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.rows(self.get_course())


def _course_rows(manager, ids: list[int], *, field: str) -> list:
    """The course's rows with these ids, in the order given; an unknown id is refused."""
    rows = {row.pk: row for row in manager.filter(pk__in=ids)}
    missing = [pk for pk in ids if pk not in rows]
    if missing:
        raise ValidationFailed(f"no {field[:-1]} {missing[0]} in this course", field=field)
    return [rows[pk] for pk in ids]


def _validated(serializer_class, request: Request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Courses and enrolments ----------------------------------------------------------------------


class CourseList(generics.ListAPIView):
    serializer_class = s.CourseSerializer
    ordering_fields = ["title", "slug", "created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Course.objects.none()
        courses = courses_for_user(user=self.request.user)
        allowed = client_course_ids(self.request)
        return courses if allowed is None else courses.filter(pk__in=allowed)


class CourseDetail(CourseScoped, APIView):
    @extend_schema(responses=s.CourseSerializer)
    def get(self, request, slug):
        return ApiResponse(s.CourseSerializer(self.get_course()).data)


class EnrollmentList(CourseListView):
    serializer_class = s.EnrollmentSerializer
    model = Enrollment
    filterset_fields = ["role"]
    ordering_fields = ["created_at", "role"]

    def rows(self, course):
        self.require_staff()
        return Enrollment.objects.filter(course=course).select_related("user").order_by("pk")

    @extend_schema(request=s.EnrollmentCreateSerializer, responses={201: s.EnrollmentSerializer})
    def post(self, request, slug):
        from edu_dl.services.courses import enrollment_create

        course = self.require_staff()
        data = _validated(s.EnrollmentCreateSerializer, request)
        user = get_user_model().objects.filter(username=data["username"]).first()
        if user is None:
            raise ValidationFailed(f"no user {data['username']!r}", field="username")
        enrollment = enrollment_create(user=user, course=course, role=data["role"])
        return ApiResponse(s.EnrollmentSerializer(enrollment).data, status=201)


# --- Skills, items, assessments -----------------------------------------------------------------


class SkillList(CourseListView):
    serializer_class = s.SkillSerializer
    model = Skill
    ordering_fields = ["name"]

    def rows(self, course):
        self.require_staff()
        return skills_visible(user=self.request.user, course=course)

    @extend_schema(request=s.SkillCreateSerializer, responses={201: s.SkillSerializer})
    def post(self, request, slug):
        from edu_dl.services.courses import skill_create

        course = self.require_staff()
        data = _validated(s.SkillCreateSerializer, request)
        skill = skill_create(course=course, **data)
        return ApiResponse(s.SkillSerializer(skill).data, status=201)


class SkillPrerequisites(CourseScoped, APIView):
    @extend_schema(request=s.PrerequisiteSerializer, responses={201: s.SkillSerializer})
    def post(self, request, slug, skill_id):
        from edu_dl.services.skill_graph import prerequisite_add

        course = self.require_staff()
        data = _validated(s.PrerequisiteSerializer, request)
        skills = {k.pk: k for k in course.skills.filter(pk__in=[skill_id, data["prerequisite"]])}
        if skill_id not in skills:
            raise NotFound(f"no skill {skill_id} in this course")
        if data["prerequisite"] not in skills:
            raise ValidationFailed(
                f"no skill {data['prerequisite']} in this course", field="prerequisite"
            )
        prerequisite_add(skill=skills[skill_id], prerequisite=skills[data["prerequisite"]])
        return ApiResponse(s.SkillSerializer(skills[skill_id]).data, status=201)


class ItemList(CourseListView):
    serializer_class = s.ItemSerializer
    model = Item
    filterset_fields = ["kind", "is_active"]
    ordering_fields = ["title", "created_at"]

    def rows(self, course):
        self.require_staff()
        return items_visible(user=self.request.user, course=course)

    @extend_schema(request=s.ItemCreateSerializer, responses={201: s.ItemSerializer})
    def post(self, request, slug):
        from edu_dl.services.courses import item_create

        course = self.require_staff()
        data = _validated(s.ItemCreateSerializer, request)
        data["skills"] = _course_rows(course.skills, data["skills"], field="skills")
        item = item_create(course=course, **data)
        return ApiResponse(s.ItemSerializer(item).data, status=201)


class AssessmentList(CourseListView):
    serializer_class = s.AssessmentSerializer
    model = Assessment
    ordering_fields = ["due_at", "title"]

    def rows(self, course):
        return assessments_visible(user=self.request.user, course=course)

    @extend_schema(request=s.AssessmentCreateSerializer, responses={201: s.AssessmentSerializer})
    def post(self, request, slug):
        from edu_dl.services.courses import assessment_create

        course = self.require_staff()
        data = _validated(s.AssessmentCreateSerializer, request)
        data["items"] = _course_rows(course.items, data["items"], field="items")
        assessment = assessment_create(course=course, **data)
        return ApiResponse(s.AssessmentSerializer(assessment).data, status=201)


class AssessmentDetail(CourseScoped, APIView):
    @extend_schema(responses=s.AssessmentSerializer)
    def get(self, request, slug, assessment_id):
        course = self.get_course()
        assessment = (
            assessments_visible(user=request.user, course=course).filter(pk=assessment_id).first()
        )
        if assessment is None:
            raise NotFound(f"no assessment {assessment_id} in this course")
        return ApiResponse(s.AssessmentSerializer(assessment).data)


# --- Submissions and responses ------------------------------------------------------------------


def _submission_body(request: Request, submission: Submission) -> dict[str, Any]:
    course = submission.assessment.course
    views = responses_for_student_view(student=request.user, submission=submission)
    return {
        "id": submission.pk,
        "assessment": submission.assessment_id,
        "student": submission.student.get_username(),
        "status": API_STATUS.get(submission.status, submission.status),
        "submitted_at": submission.submitted_at,
        "status_url": request.build_absolute_uri(
            reverse(
                "edu_dl_api:submission_detail",
                kwargs={"slug": course.slug, "submission_id": submission.pk},
            )
        ),
        "responses": [
            {
                "id": view.response_id,
                "item": view.item_id,
                "answer": view.answer,
                "status": view.status.replace("_", "-"),
                "score": view.score,
                "max_score": view.max_score,
                "feedback": view.feedback,
            }
            for view in views
        ],
    }


class SubmissionCreate(CourseScoped, APIView):
    @extend_schema(
        request=s.SubmissionCreateSerializer,
        responses={201: s.SubmissionSerializer, 200: s.SubmissionSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="a retried POST with the same key returns the first submission",
            )
        ],
    )
    def post(self, request, slug, assessment_id):
        from edu_dl.services.submissions import submission_create

        course = self.require_student()
        assessment = Assessment.objects.filter(
            pk=assessment_id, course=course, is_published=True
        ).first()
        if assessment is None:
            raise NotFound(f"no assessment {assessment_id} in this course")
        data = _validated(s.SubmissionCreateSerializer, request)
        answers = {}
        for key, answer in data["answers"].items():
            try:
                answers[int(key)] = answer
            except (TypeError, ValueError):
                raise ValidationFailed(
                    f"answers must be keyed by item id, not {key!r}", field="answers"
                ) from None
        key = request.headers.get("Idempotency-Key", "")
        before = (
            Submission.objects.filter(student=request.user, idempotency_key=key).exists()
            if key
            else False
        )
        submission = submission_create(
            student=request.user, assessment=assessment, answers=answers, idempotency_key=key
        )
        return ApiResponse(
            _submission_body(request, submission),
            status=status.HTTP_200_OK if before else status.HTTP_201_CREATED,
        )


class SubmissionDetail(CourseScoped, APIView):
    @extend_schema(responses=s.SubmissionSerializer)
    def get(self, request, slug, submission_id):
        course = self.get_course()
        submission = submission_get_for_viewer(
            viewer=request.user, course=course, submission_id=submission_id
        )
        return ApiResponse(_submission_body(request, submission))


class ResponseList(CourseScoped, generics.ListAPIView):
    """Staff: every response of the course, with the model's suggestion (``?status=needs_review``
    for the review queue). Students use their submissions."""

    serializer_class = s.ReviewResponseSerializer
    filterset_fields = ["status", "item", "released"]
    ordering_fields = ["review_priority", "created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Response.objects.none()
        course = self.require_staff()
        return responses_visible(user=self.request.user, course=course).select_related(
            "submission__student"
        )


class _ResponseAction(CourseScoped, APIView):
    def get_response(self, response_id: int) -> Response:
        course = self.require_staff()
        response = (
            responses_visible(user=self.request.user, course=course).filter(pk=response_id).first()
        )
        if response is None:
            raise NotFound(f"no response {response_id} in this course")
        return response


class ResponseAccept(_ResponseAction):
    @extend_schema(request=s.AcceptSerializer, responses=s.ReviewResponseSerializer)
    def post(self, request, slug, response_id):
        from edu_dl.services.review import response_accept

        response = self.get_response(response_id)
        data = _validated(s.AcceptSerializer, request)
        graded = response_accept(response=response, actor=request.user, feedback=data["feedback"])
        return ApiResponse(s.ReviewResponseSerializer(graded).data)


class ResponseOverride(_ResponseAction):
    @extend_schema(request=s.OverrideSerializer, responses=s.ReviewResponseSerializer)
    def post(self, request, slug, response_id):
        from edu_dl.services.review import response_override

        response = self.get_response(response_id)
        data = _validated(s.OverrideSerializer, request)
        graded = response_override(
            response=response, actor=request.user, score=data["score"], feedback=data["feedback"]
        )
        return ApiResponse(s.ReviewResponseSerializer(graded).data)


# --- Interactions (bulk) -------------------------------------------------------------------------


class NDJSONParser(BaseParser):
    """One JSON object per line (``application/x-ndjson``)."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        records = []
        for number, line in enumerate(stream.read().decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValidationFailed(
                    f"line {number} is not JSON: {error.msg}", field="body"
                ) from None
            if len(records) > MAX_BULK_INTERACTIONS:
                raise ValidationFailed(
                    f"at most {MAX_BULK_INTERACTIONS} interactions per request", field="body"
                )
        return records


class InteractionBulk(CourseScoped, APIView):
    parser_classes = [NDJSONParser, JSONParser]

    @extend_schema(
        request={"application/x-ndjson": OpenApiTypes.OBJECT},
        responses={
            201: inline_serializer(
                "InteractionImportResult",
                {
                    "received": serializers.IntegerField(),
                    "imported": serializers.IntegerField(),
                    "already_present": serializers.IntegerField(),
                },
            )
        },
        description="Answers in bulk (at most 10,000), one JSON object a line with the columns "
        "of the import file: student, item, skills (a list, or one text with ; between them), "
        "correct (true/false or 1/0), timestamp (ISO 8601), optionally attempt and duration_s. "
        "The importer's validation: a bad line refuses the whole request, naming the line, and "
        "nothing is stored; answers already stored are counted, not stored twice.",
    )
    def post(self, request, slug):
        from edu_dl.services.importing import interactions_import_records

        course = self.require_staff()
        records = request.data if isinstance(request.data, list) else [request.data]
        if len(records) > MAX_BULK_INTERACTIONS:
            raise ValidationFailed(
                f"at most {MAX_BULK_INTERACTIONS} interactions per request", field="body"
            )
        if not all(isinstance(record, dict) for record in records):
            raise ValidationFailed("every line must be a JSON object", field="body")
        result = interactions_import_records(course=course, records=records, source="api")
        return ApiResponse(
            {
                "received": result.read,
                "imported": result.imported,
                "already_present": result.already_present,
            },
            status=status.HTTP_201_CREATED,
        )


# --- Mastery and progress ------------------------------------------------------------------------


class StudentProgress(CourseScoped, APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, slug, username):
        from edu_dl.selectors.progress import student_progress

        course = self.get_course()
        student = get_user_model().objects.filter(username=username).first()
        if student is None:
            raise NotFound("No such student.")
        progress = student_progress(viewer=request.user, student=student, course=course)
        return ApiResponse(progress.as_dict())


class CourseMastery(CourseScoped, APIView):
    """The class mastery matrix (students x skills, current estimates): staff only."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, slug):
        from edu_dl.selectors.progress import course_mastery_matrix

        course = self.require_staff()
        matrix = course_mastery_matrix(viewer=request.user, course=course)
        return ApiResponse(matrix.as_dict())


# --- Resources and recommendations ----------------------------------------------------------------


class ResourceList(CourseListView):
    serializer_class = s.ResourceSerializer
    model = Resource
    filterset_fields = ["kind", "is_active", "language"]
    ordering_fields = ["title", "difficulty", "minutes"]

    def rows(self, course):
        self.require_staff()
        return resources_visible(user=self.request.user, course=course).prefetch_related(
            "skill_links"
        )

    @extend_schema(request=s.ResourceWriteSerializer, responses={201: s.ResourceSerializer})
    def post(self, request, slug):
        from edu_dl.services.courses import resource_create

        course = self.require_staff()
        data = _validated(s.ResourceWriteSerializer, request)
        data["skills"] = _skills_of(course, data["skills"])
        resource = resource_create(course=course, **data)
        return ApiResponse(s.ResourceSerializer(resource).data, status=201)


def _skills_of(course: Course, weights: dict[str, float]) -> dict:
    try:
        ids = {int(key): weight for key, weight in weights.items()}
    except ValueError:
        raise ValidationFailed("skills must be keyed by skill id", field="skills") from None
    skills = {skill.pk: skill for skill in course.skills.filter(pk__in=list(ids))}
    missing = sorted(set(ids) - set(skills))
    if missing:
        raise ValidationFailed(f"no skill {missing[0]} in this course", field="skills")
    return {skills[pk]: weight for pk, weight in ids.items()}


class ResourceDetail(CourseScoped, APIView):
    def get_resource(self) -> Resource:
        course = self.require_staff()
        resource = Resource.objects.filter(course=course, pk=self.kwargs["resource_id"]).first()
        if resource is None:
            raise NotFound(f"no resource {self.kwargs['resource_id']} in this course")
        return resource

    @extend_schema(responses=s.ResourceSerializer)
    def get(self, request, slug, resource_id):
        return ApiResponse(s.ResourceSerializer(self.get_resource()).data)

    @extend_schema(request=s.ResourceWriteSerializer, responses=s.ResourceSerializer)
    def patch(self, request, slug, resource_id):
        from edu_dl.services.catalogue import resource_update

        resource = self.get_resource()
        serializer = s.ResourceWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k in request.data}
        if "skills" in changes:
            changes["skills"] = _skills_of(resource.course, changes["skills"])
        resource = resource_update(resource=resource, **changes)
        return ApiResponse(s.ResourceSerializer(resource).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, resource_id):
        """Deactivates the resource (it stays in the history of what was suggested)."""
        from edu_dl.services.catalogue import resource_deactivate

        resource_deactivate(resource=self.get_resource())
        return ApiResponse(status=204)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "student", OpenApiTypes.STR, description="staff: whose suggestions (a username)"
        )
    ]
)
class RecommendationList(CourseListView):
    """The current suggestions of a student: a student's own, or (staff) ``?student=``."""

    serializer_class = s.RecommendationSerializer
    model = Recommendation
    ordering_fields = ["rank"]

    def rows(self, course):
        request = self.request
        username = request.query_params.get("student")
        if username and username != request.user.get_username():
            self.require_staff()
            student = get_user_model().objects.filter(username=username).first()
            if student is None or not student_record_visible(
                viewer=request.user, student=student, course=course
            ):
                raise NotFound("No such student.")
        elif course_role(user=request.user, course=course) == Enrollment.Role.STUDENT:
            student = request.user
        else:
            raise ValidationFailed("staff must name a ?student=", field="student")
        return Recommendation.objects.filter(
            course=course, student=student, is_current=True
        ).order_by("rank")


class RecommendationFeedback(CourseScoped, APIView):
    @extend_schema(request=s.FeedbackSerializer, responses=s.RecommendationSerializer)
    def post(self, request, slug, recommendation_id):
        from edu_dl.services.recommending import recommendation_feedback

        course = self.require_student()
        data = _validated(s.FeedbackSerializer, request)
        if not Recommendation.objects.filter(pk=recommendation_id, course=course).exists():
            raise NotFound(f"no recommendation {recommendation_id} for this student")
        recommendation = recommendation_feedback(
            recommendation_id=recommendation_id, student=request.user, event=data["event"]
        )
        return ApiResponse(s.RecommendationSerializer(recommendation).data)


# --- Models and training runs -------------------------------------------------------------------


class TrainingRunList(CourseListView):
    serializer_class = s.TrainingRunSerializer
    model = TrainingRun
    filterset_fields = ["kind", "status"]
    ordering_fields = ["created_at"]

    def rows(self, course):
        self.require_staff()
        return TrainingRun.objects.filter(course=course).order_by("-created_at", "-pk")

    @extend_schema(
        request=s.TrainingRequestSerializer,
        responses={202: s.TrainingRunSerializer},
        description="Ask for a course-wide model to be trained in the background; follow the "
        "run at its URL. While a run of the same kind is open, that run is returned.",
    )
    def post(self, request, slug):
        from edu_dl.services.training import training_request

        course = self.require_staff()
        data = _validated(s.TrainingRequestSerializer, request)
        run = training_request(
            kind=data["kind"], course=course, requested_by=request.user, params=data["params"]
        )
        return ApiResponse(s.TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetail(CourseScoped, APIView):
    @extend_schema(responses=s.TrainingRunSerializer)
    def get(self, request, slug, run_id):
        course = self.require_staff()
        run = TrainingRun.objects.filter(course=course, pk=run_id).first()
        if run is None:
            raise NotFound(f"no training run {run_id} in this course")
        return ApiResponse(s.TrainingRunSerializer(run).data)


class ModelVersionList(CourseListView):
    serializer_class = s.ModelVersionSerializer
    model = ModelVersion
    filterset_fields = ["kind", "status"]
    ordering_fields = ["version", "created_at"]

    def rows(self, course):
        self.require_staff()
        return ModelVersion.objects.filter(course=course).order_by("kind", "-version")


class ModelVersionActivate(CourseScoped, APIView):
    @extend_schema(request=None, responses=s.ModelVersionSerializer)
    def post(self, request, slug, version_id):
        from edu_dl.services.model_versions import model_version_activate

        course = self.require_staff()
        version = ModelVersion.objects.filter(course=course, pk=version_id).first()
        if version is None:
            raise NotFound(f"no model version {version_id} in this course")
        version = model_version_activate(version=version, actor=request.user)
        return ApiResponse(s.ModelVersionSerializer(version).data)


class ModelRollback(CourseScoped, APIView):
    @extend_schema(
        request=inline_serializer(
            "RollbackRequest",
            {"kind": serializers.ChoiceField(choices=[ModelKind.KT, ModelKind.RECOMMENDER])},
        ),
        responses=s.ModelVersionSerializer,
    )
    def post(self, request, slug):
        from edu_dl.services.model_versions import model_version_rollback

        course = self.require_staff()
        kind = request.data.get("kind") if isinstance(request.data, dict) else None
        if kind not in (ModelKind.KT, ModelKind.RECOMMENDER):
            raise ValidationFailed("kind must be kt or recommender", field="kind")
        extra = sorted(set(request.data) - {"kind"})
        if extra:
            raise ValidationFailed(f"unknown field {extra[0]!r}", field=extra[0])
        version = model_version_rollback(
            kind=kind, scope_key=course_scope_key(course), actor=request.user
        )
        return ApiResponse(s.ModelVersionSerializer(version).data)


# --- Webhooks -------------------------------------------------------------------------------------


class WebhookList(CourseListView):
    """A course's webhook subscriptions (staff)."""

    serializer_class = s.WebhookSerializer
    model = WebhookSubscription
    ordering_fields = ["created_at"]

    def rows(self, course):
        self.require_staff()
        return WebhookSubscription.objects.filter(course=course).order_by("pk")

    @extend_schema(request=s.WebhookCreateSerializer, responses={201: s.WebhookCreatedSerializer})
    def post(self, request, slug):
        from edu_dl.services.webhooks import webhook_subscribe

        course = self.require_staff()
        data = _validated(s.WebhookCreateSerializer, request)
        subscription, secret = webhook_subscribe(
            course=course, actor=request.user, url=data["url"], events=data["events"]
        )
        body = s.WebhookSerializer(subscription).data
        return ApiResponse({**body, "secret": secret}, status=201)


class WebhookDetail(CourseScoped, APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, slug, webhook_id):
        """Stops the subscription (its delivery log is kept)."""
        from edu_dl.services.webhooks import webhook_unsubscribe

        course = self.require_staff()
        subscription = WebhookSubscription.objects.filter(course=course, pk=webhook_id).first()
        if subscription is None:
            raise NotFound(f"no webhook {webhook_id} in this course")
        webhook_unsubscribe(subscription=subscription, actor=request.user)
        return ApiResponse(status=204)
