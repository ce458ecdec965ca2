"""The stored xAPI statements in the admin: read-only (the statements service owns them)."""

from __future__ import annotations

from django.contrib import admin

from edu_dl.admin import ReadOnlyAdminMixin
from edu_dl.xapi.models import Statement


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "statement_id",
        "outcome",
        "course",
        "student",
        "verb",
        "object_id",
        "voided",
        "stored_at",
    )
    list_filter = ("outcome", "voided", "course")
    search_fields = ("=statement_id", "=object_id", "=student__username", "=actor_key")
    raw_id_fields = ("course", "student", "authority_user", "interaction", "resource_event")
    list_select_related = ("course", "student")
    date_hierarchy = "stored_at"
    show_full_result_count = False
