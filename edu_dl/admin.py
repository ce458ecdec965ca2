"""The Django admin for edu_dl: browsing, searching and fixing data by hand.

Two rules shape it:

- Tables can be huge (millions of interactions and responses), so no page offers a dropdown of
  every user or item (``raw_id_fields`` / ``autocomplete_fields``), every list joins what it shows
  (``list_select_related``), and the big lists skip the full ``COUNT(*)``
  (``show_full_result_count = False``).
- Grades, model versions, training runs, derived estimates and the audit trail change only through
  the services, which check the rules and write the audit trail. Here they are read-only: an edit
  in the admin would bypass both.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from edu_dl.models import (
    ApiClient,
    Assessment,
    AssessmentDraft,
    AssessmentItem,
    AuditEvent,
    Course,
    CourseMasterySummary,
    Enrollment,
    Interaction,
    Item,
    MasteryEstimate,
    ModelVersion,
    Recommendation,
    RecommendationRule,
    Resource,
    ResourceInteraction,
    ResourceSkill,
    Response,
    ResponseGrade,
    Skill,
    SkillPrerequisite,
    Submission,
    TrainingRun,
    WebhookDelivery,
    WebhookSubscription,
)


class ReadOnlyAdminMixin:
    """Shows rows and lets nobody add, change or delete them here (services own the writes)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Courses, people and skills ------------------------------------------------------------------


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    fields = ("user", "role", "external_id", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
    show_change_link = True

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("user")


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "language", "is_active", "created_at")
    list_filter = ("is_active", "language")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("created_at", "updated_at")
    inlines = (EnrollmentInline,)


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ("user", "course", "role", "external_id", "created_at")
    list_filter = ("role", "course")
    search_fields = ("=user__username", "user__email", "external_id", "course__slug")
    raw_id_fields = ("user",)
    autocomplete_fields = ("course",)
    list_select_related = ("user", "course")
    show_full_result_count = False


class SkillPrerequisiteInline(admin.TabularInline):
    model = SkillPrerequisite
    fk_name = "skill"
    extra = 0
    autocomplete_fields = ("prerequisite",)
    verbose_name = _("prerequisite")
    verbose_name_plural = _("prerequisites (to be mastered before this skill)")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("prerequisite")


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ("name", "course", "external_id", "created_at")
    list_filter = ("course",)
    search_fields = ("name", "external_id", "course__slug")
    autocomplete_fields = ("course",)
    list_select_related = ("course",)
    readonly_fields = ("created_at",)
    inlines = (SkillPrerequisiteInline,)


@admin.register(SkillPrerequisite)
class SkillPrerequisiteAdmin(admin.ModelAdmin):
    list_display = ("prerequisite", "skill", "course")
    list_filter = ("skill__course",)
    search_fields = ("skill__name", "prerequisite__name")
    autocomplete_fields = ("skill", "prerequisite")
    list_select_related = ("skill__course", "prerequisite")

    @admin.display(description=_("course"), ordering="skill__course__title")
    def course(self, obj: SkillPrerequisite) -> Course:
        return obj.skill.course


# --- Content -------------------------------------------------------------------------------------


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("__str__", "course", "kind", "external_id", "max_score", "is_active")
    list_filter = ("kind", "is_active", "course")
    search_fields = ("title", "external_id", "prompt")
    autocomplete_fields = ("course", "skills")
    list_select_related = ("course",)
    readonly_fields = ("created_at", "updated_at")
    show_full_result_count = False


class AssessmentItemInline(admin.TabularInline):
    model = AssessmentItem
    extra = 0
    autocomplete_fields = ("item",)
    ordering = ("position",)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("item")


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "opens_at", "due_at", "is_published")
    list_filter = ("is_published", "hold_grades_until_due", "course")
    search_fields = ("title", "course__slug")
    autocomplete_fields = ("course",)
    list_select_related = ("course",)
    readonly_fields = ("created_at",)
    inlines = (AssessmentItemInline,)


@admin.register(AssessmentItem)
class AssessmentItemAdmin(admin.ModelAdmin):
    list_display = ("assessment", "position", "item")
    list_filter = ("assessment__course",)
    search_fields = ("assessment__title", "item__title")
    autocomplete_fields = ("assessment", "item")
    list_select_related = ("assessment", "item")


class ResourceSkillInline(admin.TabularInline):
    model = ResourceSkill
    extra = 0
    autocomplete_fields = ("skill",)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("skill")


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "kind", "difficulty", "minutes", "language", "is_active")
    list_filter = ("kind", "is_active", "language", "course")
    search_fields = ("title", "external_id", "url")
    autocomplete_fields = ("course",)
    list_select_related = ("course",)
    readonly_fields = ("created_at",)
    inlines = (ResourceSkillInline,)
    # Django 6 makes https the scheme of a link typed without one; do so already.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(ResourceSkill)
class ResourceSkillAdmin(admin.ModelAdmin):
    list_display = ("resource", "skill", "weight")
    list_filter = ("resource__course",)
    search_fields = ("resource__title", "skill__name")
    autocomplete_fields = ("resource", "skill")
    list_select_related = ("resource", "skill")


# --- Work: submissions and responses (grades change only through the review services) ------------


class ResponseInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Response
    extra = 0
    fields = ("item", "status", "score", "grade_source", "confidence", "released", "graded_at")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("item")


@admin.register(AssessmentDraft)
class AssessmentDraftAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Answers a student saved without handing them in: looked at, never edited by staff."""

    list_display = ("id", "student", "assessment", "updated_at")
    raw_id_fields = ("student", "assessment")
    list_select_related = ("student", "assessment")
    search_fields = ("=student__username",)


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "student", "assessment", "status", "submitted_at")
    list_filter = ("status", "assessment__course")
    search_fields = ("=student__username", "=idempotency_key")
    raw_id_fields = ("student", "assessment")
    list_select_related = ("student", "assessment")
    show_full_result_count = False
    inlines = (ResponseInline,)


class ResponseGradeInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The response's grade history, oldest first."""

    model = ResponseGrade
    extra = 0
    fields = (
        "created_at",
        "action",
        "score",
        "grade_source",
        "confidence",
        "model_version",
        "actor",
        "released",
        "note",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("model_version", "actor")


@admin.register(Response)
class ResponseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "student",
        "item",
        "status",
        "score",
        "grade_source",
        "confidence",
        "released",
        "graded_at",
    )
    list_filter = ("status", "grade_source", "released", "submission__assessment__course")
    search_fields = ("=submission__student__username", "=submission__id")
    raw_id_fields = ("submission", "item", "model_version", "reviewed_by")
    list_select_related = ("submission__student", "item")
    show_full_result_count = False
    inlines = (ResponseGradeInline,)

    @admin.display(description=_("student"), ordering="submission__student__username")
    def student(self, obj: Response) -> Any:
        return obj.submission.student


@admin.register(ResponseGrade)
class ResponseGradeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "response", "action", "score", "grade_source", "actor", "created_at")
    list_filter = ("action", "grade_source", "released")
    search_fields = ("=response__id", "=actor__username")
    raw_id_fields = ("response", "model_version", "actor")
    list_select_related = ("response", "actor")
    show_full_result_count = False


# --- The learning-event log and what the models make of it ---------------------------------------


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "student", "course", "item", "correct", "timestamp", "source")
    list_filter = ("source", "correct", "course")
    search_fields = ("=student__username", "=external_id")
    raw_id_fields = ("student", "item", "response")
    autocomplete_fields = ("course",)
    list_select_related = ("student", "course", "item")
    readonly_fields = ("created_at",)
    show_full_result_count = False


@admin.register(ResourceInteraction)
class ResourceInteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "student", "resource", "event", "timestamp")
    list_filter = ("event", "resource__course")
    search_fields = ("=student__username", "=external_id")
    raw_id_fields = ("student", "resource", "recommendation")
    list_select_related = ("student", "resource")
    show_full_result_count = False


@admin.register(MasteryEstimate)
class MasteryEstimateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "student",
        "skill",
        "probability",
        "evidence_count",
        "as_of",
        "is_current",
        "model_version",
    )
    list_filter = ("is_current", "skill__course")
    search_fields = ("=student__username", "skill__name")
    raw_id_fields = ("student", "skill", "model_version")
    list_select_related = ("student", "skill", "model_version")
    show_full_result_count = False


@admin.register(CourseMasterySummary)
class CourseMasterySummaryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """When and for which rule each course's class summary was computed; its JSON (a few
    hundred kilobytes for a big class) is neither shown nor loaded here."""

    list_display = ("course", "computed_at", "window_days", "window_start", "estimates_revision")
    exclude = ("students",)
    raw_id_fields = ("course",)
    list_select_related = ("course",)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("students")


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "student",
        "course",
        "rank",
        "resource",
        "item",
        "skill",
        "score",
        "is_current",
        "feedback",
        "completed_at",
        "created_at",
    )
    list_filter = ("course", "is_current", "feedback")
    search_fields = ("=student__username",)
    raw_id_fields = ("student", "course", "resource", "item", "skill", "model_version")
    list_select_related = ("student", "course", "resource", "item", "skill")
    show_full_result_count = False


# Pins and hides go through recommendation_rule_set, which checks the teacher and audits.
@admin.register(RecommendationRule)
class RecommendationRuleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("course", "action", "resource", "item", "student", "created_by", "created_at")
    list_filter = ("action", "course")
    raw_id_fields = ("course", "student", "resource", "item", "created_by")
    list_select_related = ("course", "resource", "item", "student", "created_by")


# --- Model lifecycle: read-only, changed by the training and activation services -----------------


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "scope_key",
        "status",
        "progress",
        "stage",
        "requested_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "kind", "scope_type", "cancel_requested", "course")
    search_fields = ("=scope_key", "=idempotency_key", "=task_id")
    raw_id_fields = ("course", "item", "requested_by")
    list_select_related = ("requested_by",)
    show_full_result_count = False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "scope_key",
        "version",
        "status",
        "architecture",
        "created_at",
        "activated_at",
    )
    list_filter = ("status", "kind", "scope_type", "architecture", "course")
    search_fields = ("=scope_key", "=artifact_sha256", "=data_fingerprint")
    raw_id_fields = ("course", "item", "training_run")
    show_full_result_count = False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "action", "actor", "course", "target_type", "target_id")
    # No filters on action or target type: their choices would be a DISTINCT over the whole table.
    list_filter = ("course",)
    search_fields = ("=action", "=target_type", "=target_id", "=actor__username")
    raw_id_fields = ("actor", "course")
    list_select_related = ("actor", "course")
    show_full_result_count = False


# --- Integrations ------------------------------------------------------------------------------


# An administrator limits an OAuth application (created under "Django OAuth Toolkit") to some
# courses here; the application still never sees more than its owner may.
@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("application", "created_at")
    filter_horizontal = ("courses",)
    raw_id_fields = ("application",)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("course", "url", "is_active", "created_at")
    list_filter = ("is_active", "course")
    raw_id_fields = ("course", "created_by")
    # The signing secret is shown once, when the subscription is made through the API.
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event", "subscription", "status", "attempts", "response_status", "created_at")
    list_filter = ("status", "event")
    raw_id_fields = ("subscription",)
    list_select_related = ("subscription",)
