"""The audit trail: one row per change of a grade or a model, never edited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from edu_dl.models import AuditEvent, Course


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    target: Any,
    course: Course | None = None,
    before: dict | None = None,
    after: dict | None = None,
    note: str = "",
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        course=course,
        target_type=type(target)._meta.model_name,
        target_id=str(target.pk),
        before=before or {},
        after=after or {},
        note=note,
    )
