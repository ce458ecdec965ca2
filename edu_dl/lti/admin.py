"""The admin of the LTI tool: platform registrations are edited here; the tool's keys are made
and retired here (the private half is never shown); the mappings the launches make and the
grade log are read-only (the services own them)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from edu_dl.lti.models import Context, GradeSync, LtiUser, Platform, ResourceLink, ToolKey
from edu_dl.lti.services.keys import tool_key_generate, tool_keys_retire
from edu_dl.lti.services.roster import ROSTER_SYNC_TASK_NAME

# The request of the platform form being drawn: its endpoints are shown as absolute URLs of the
# site it is served from (a ContextVar, as the admin instance is shared by every request).
_form_request: ContextVar[HttpRequest | None] = ContextVar("lti_platform_form", default=None)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("name", "issuer", "client_id", "course", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "issuer", "client_id")
    raw_id_fields = ("course",)
    readonly_fields = ("tool_endpoints", "created_at", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("name", "is_active", "course")}),
        (
            _("What the LMS shows once the tool is added"),
            {
                "fields": (
                    "issuer",
                    "client_id",
                    "deployment_ids",
                    "auth_login_url",
                    "auth_token_url",
                    "auth_audience",
                    "key_set_url",
                    "key_set",
                )
            },
        ),
        (_("What to enter in the LMS"), {"fields": ("tool_endpoints",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("Tool endpoints"))
    def tool_endpoints(self, obj: Platform | None) -> str:
        request = _form_request.get()
        rows = [
            (_("Login (OIDC initiation) URL"), "edu_dl_lti:login"),
            (_("Launch / redirect URL (also for deep linking)"), "edu_dl_lti:launch"),
            (_("Public keyset (JWKS) URL"), "edu_dl_lti:jwks"),
        ]
        return format_html(
            "<dl>{}</dl>",
            format_html_join(
                "",
                "<dt>{}</dt><dd><code>{}</code></dd>",
                (
                    (
                        label,
                        request.build_absolute_uri(reverse(name))
                        if request is not None
                        else reverse(name),
                    )
                    for label, name in rows
                ),
            ),
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        _form_request.set(request)
        return super().get_form(request, obj, change=change, **kwargs)


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    """Adding a key generates a new pair (there is nothing to type); retiring stops its use."""

    list_display = ("kid", "is_active", "created_at")
    list_filter = ("is_active",)
    fields = ("kid", "public_jwk", "is_active", "created_at")
    readonly_fields = ("kid", "public_jwk", "is_active", "created_at")
    actions = ("generate_key", "retire_keys")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None):
        return () if obj is None else self.fields

    def save_model(self, request: HttpRequest, obj: ToolKey, form: Any, change: bool) -> None:
        generated = tool_key_generate()
        obj.pk, obj.kid = generated.pk, generated.kid  # so the admin's message names the new key

    @admin.action(description=_("Generate a new key pair (it signs from now on)"))
    def generate_key(self, request: HttpRequest, queryset: QuerySet[ToolKey]) -> None:
        key = tool_key_generate()
        self.message_user(request, _("Generated key %(kid)s.") % {"kid": key.kid})

    @admin.action(description=_("Retire the selected keys"), permissions=["delete"])
    def retire_keys(self, request: HttpRequest, queryset: QuerySet[ToolKey]) -> None:
        retired = tool_keys_retire(keys=queryset)
        self.message_user(
            request, _("%(count)d keys retired.") % {"count": retired}, messages.SUCCESS
        )


@admin.register(Context)
class ContextAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("title", "context_id", "platform", "course", "roster_synced_at")
    list_filter = ("platform",)
    list_select_related = ("platform", "course")
    search_fields = ("title", "label", "context_id")
    actions = ("sync_roster",)

    @admin.action(description=_("Sync the roster from the LMS (in the background)"))
    def sync_roster(self, request: HttpRequest, queryset: QuerySet[Context]) -> None:
        from celery import current_app

        contexts = list(queryset.exclude(memberships_url="").values_list("pk", flat=True))
        for context_id in contexts:
            current_app.send_task(ROSTER_SYNC_TASK_NAME, args=[context_id])
        self.message_user(
            request, _("%(count)d roster syncs sent to the workers.") % {"count": len(contexts)}
        )


@admin.register(ResourceLink)
class ResourceLinkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("title", "resource_link_id", "platform", "course", "assessment")
    list_filter = ("platform", "accepts_scores")
    list_select_related = ("platform", "course", "assessment")
    search_fields = ("title", "resource_link_id")


@admin.register(LtiUser)
class LtiUserAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("sub", "user", "platform", "last_launch_at")
    list_filter = ("platform",)
    list_select_related = ("platform", "user")
    search_fields = ("sub", "user__username", "user__email")
    show_full_result_count = False


@admin.register(GradeSync)
class GradeSyncAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "submission",
        "resource_link",
        "score_given",
        "score_maximum",
        "status",
        "attempts",
        "updated_at",
    )
    list_filter = ("status",)
    list_select_related = ("submission__student", "submission__assessment", "resource_link")
    search_fields = ("user_sub", "lineitem_url")
    show_full_result_count = False
