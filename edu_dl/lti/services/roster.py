"""Names and Role Provisioning: the members of an LMS context made users and enrollments here,
before they launch the tool (a teacher sees the whole class at once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import requests
from django.db import transaction
from django.utils import timezone
from pylti1p3.exception import LtiServiceException
from pylti1p3.names_roles import NamesRolesProvisioningService

from edu_dl.lti.models import Context
from edu_dl.lti.services.grades import PlatformUnavailable
from edu_dl.lti.services.launches import lti_enrollment_ensure, lti_role_of, lti_user_resolve
from edu_dl.lti.tool import service_connector
from edu_dl.models import Enrollment
from edu_dl.services.errors import ApplicationError, ValidationFailed

ROSTER_SYNC_TASK_NAME = "edu_dl.lti.roster_sync"


@dataclass(frozen=True)
class RosterSync:
    """What a roster sync did."""

    members: int
    users_created: int
    enrollments_created: int
    roles_changed: int
    # Inactive or deleted members, roles we do not take (mentors ...), unusable entries.
    skipped: int


def lti_roster_sync(*, context: Context, now: datetime | None = None) -> RosterSync:
    """Fetch the members of ``context`` from its LMS and enroll them in its course.

    Active members with a role we know get a user (made on first sight, as on a launch) and an
    enrollment; an enrollment made by the LMS follows its role, one made here keeps its own.
    Nobody is removed: an inactive or deleted member keeps what they have (their work stays).
    Raises :class:`PlatformUnavailable` when the LMS does not answer or answers 429/5xx, and
    ValidationFailed when the context has no roster service or the LMS refuses.
    """
    now = timezone.now() if now is None else now
    if not context.memberships_url:
        raise ValidationFailed(
            "the LMS has not offered this context's roster (no Names and Role Provisioning "
            "claim in its launches)",
            field="context",
        )
    platform = context.platform
    service = NamesRolesProvisioningService(
        service_connector(platform), {"context_memberships_url": context.memberships_url}
    )
    try:
        members = service.get_members()
    except LtiServiceException as error:
        status = error.response.status_code
        if status == 429 or status >= 500:
            raise PlatformUnavailable(str(error)) from error
        raise ValidationFailed(f"the LMS refused the roster: {error}") from error
    except requests.RequestException as error:
        raise PlatformUnavailable(str(error)) from error

    users_created = enrollments_created = roles_changed = skipped = 0
    course = context.course
    for member in members:
        role = lti_role_of(member.get("roles") or [])
        sub = member.get("user_id")
        if member.get("status", "Active") != "Active" or role is None or not sub:
            skipped += 1
            continue
        try:
            with transaction.atomic():
                user, created = lti_user_resolve(platform=platform, sub=sub, claims=member)
                before = (
                    Enrollment.objects.filter(user=user, course=course)
                    .values_list("role", flat=True)
                    .first()
                )
                enrollment = lti_enrollment_ensure(user=user, course=course, role=role, sub=sub)
        except ApplicationError:  # a deactivated account, an unusable id
            skipped += 1
            continue
        users_created += created
        enrollments_created += before is None
        roles_changed += before is not None and before != enrollment.role
    context.roster_synced_at = now
    context.save(update_fields=["roster_synced_at", "updated_at"])
    return RosterSync(
        members=len(members),
        users_created=users_created,
        enrollments_created=enrollments_created,
        roles_changed=roles_changed,
        skipped=skipped,
    )
