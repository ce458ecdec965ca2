"""Accepting a launch whose id token has been validated: who the person is, which course of ours
stands for the LMS context, which role they have in it, and which assessment the link opens.

People of an LMS get users of their own, found again by (platform, ``sub``): an LMS account is
never joined to an existing local account by email or name, which would let whoever controls an
LMS sign in as anyone here. Their name and email follow the LMS on every launch.

Roles come from the context (membership) roles of the launch only: an LMS administrator or a
member of staff who launches a course they take part in as a learner is a student there.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from pylti1p3.roles import AbstractRole, TeacherRole, TeachingAssistantRole

from edu_dl.lti.models import Context, LtiUser, Platform, ResourceLink
from edu_dl.models import Assessment, Course, Enrollment
from edu_dl.services.courses import course_create, enrollment_create
from edu_dl.services.errors import Conflict, PermissionDenied, ValidationFailed

logger = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE_CLAIM = CLAIM + "message_type"
ROLES_CLAIM = CLAIM + "roles"
CONTEXT_CLAIM = CLAIM + "context"
RESOURCE_LINK_CLAIM = CLAIM + "resource_link"
CUSTOM_CLAIM = CLAIM + "custom"
DEPLOYMENT_CLAIM = CLAIM + "deployment_id"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEEP_LINKING_SETTINGS_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
# The custom parameter our deep-linking answers put on a link: the assessment it opens.
ASSESSMENT_PARAMETER = "assessment_id"

USERNAME_CHARACTERS = re.compile(r"[\w.@+-]+")
USERNAME_MAX_LENGTH = 150
STAFF_ROLES = frozenset({Enrollment.Role.TEACHER, Enrollment.Role.ASSISTANT})


class _LearnerRole(AbstractRole):
    """A learner of the context (pylti1p3's ``StudentRole`` also takes system and institution
    roles that every account of some platforms holds)."""

    _common_roles = ("Learner",)
    _context_roles = ("Learner", "Member")


def lti_role_of(roles: Iterable[str]) -> str | None:
    """Our enrollment role for the LIS roles of a launch or a roster entry, or None.

    A teaching assistant (``membership/Instructor#TeachingAssistant``, sent beside the principal
    role ``Instructor``) is an assistant; an instructor or a context administrator a teacher; a
    learner a student. Other roles (mentors, observers, guests) have no place in our courses.
    """
    claims = {ROLES_CLAIM: [role for role in roles if isinstance(role, str)]}
    if TeachingAssistantRole(claims).check():
        return Enrollment.Role.ASSISTANT
    if TeacherRole(claims).check():
        return Enrollment.Role.TEACHER
    if _LearnerRole(claims).check():
        return Enrollment.Role.STUDENT
    return None


@dataclass(frozen=True)
class LaunchOutcome:
    """What a launch led to: the person signed in, and where they go."""

    user: AbstractBaseUser
    course: Course
    role: str
    message_type: str
    resource_link: ResourceLink | None
    assessment: Assessment | None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


# --- people -------------------------------------------------------------------------------------


def _text(value: Any, max_length: int) -> str:
    return value.strip()[:max_length] if isinstance(value, str) else ""


def _email(value: Any) -> str:
    email = _text(value, 254)
    try:
        validate_email(email)
    except ValidationError:
        return ""
    return email


def person_fields(claims: Mapping[str, Any]) -> dict[str, str]:
    """first_name, last_name and email from the OIDC claims of a launch or a roster entry."""
    first_name = _text(claims.get("given_name"), 150)
    last_name = _text(claims.get("family_name"), 150)
    if not first_name and not last_name:
        first_name = _text(claims.get("name"), 150)
    return {"first_name": first_name, "last_name": last_name, "email": _email(claims.get("email"))}


def _username_for(platform: Platform, sub: str) -> str:
    readable = f"lti{platform.pk}-{sub}"
    if USERNAME_CHARACTERS.fullmatch(sub) and len(readable) <= USERNAME_MAX_LENGTH:
        return readable
    return f"lti{platform.pk}-{hashlib.sha256(sub.encode()).hexdigest()[:40]}"


def _user_create(*, platform: Platform, sub: str, fields: Mapping[str, str]) -> AbstractBaseUser:
    """A new user for ``sub``; a name taken by someone else gets a number."""
    User = get_user_model()
    base = _username_for(platform, sub)
    for attempt in range(1, 100):
        username = base if attempt == 1 else f"{base[: USERNAME_MAX_LENGTH - 4]}-{attempt}"
        if User.objects.filter(**{User.USERNAME_FIELD: username}).exists():
            continue
        try:
            with transaction.atomic():
                user = User(**{User.USERNAME_FIELD: username}, **fields)
                user.set_unusable_password()
                user.save()
                return user
        except IntegrityError:  # taken since the check: try the next name
            continue
    raise Conflict(f"no free username for {sub!r} of {platform}", field="sub")


def lti_user_resolve(
    *, platform: Platform, sub: str, claims: Mapping[str, Any], now: datetime | None = None
) -> tuple[AbstractBaseUser, bool]:
    """The user of ``sub`` on ``platform``, made on first sight (True when made now).

    Name and email follow what the LMS sends. Refused: an empty or overlong ``sub``, and a
    user who was deactivated here.
    """
    sub = sub if isinstance(sub, str) else ""
    if not sub or len(sub) > 255:
        raise ValidationFailed("the launch names no user (sub), or an id over 255 characters")
    fields = person_fields(claims)
    identity = LtiUser.objects.filter(platform=platform, sub=sub).select_related("user").first()
    created = False
    if identity is None:
        try:
            with transaction.atomic():
                user = _user_create(platform=platform, sub=sub, fields=fields)
                identity = LtiUser.objects.create(platform=platform, sub=sub, user=user)
                created = True
        except IntegrityError:  # the same person's first launch, twice at once
            identity = LtiUser.objects.select_related("user").get(platform=platform, sub=sub)
    user = identity.user
    if not user.is_active:
        raise PermissionDenied(f"the account of {sub!r} is deactivated here", field="sub")
    changed = [name for name, value in fields.items() if value and getattr(user, name) != value]
    for name in changed:
        setattr(user, name, fields[name])
    if changed:
        user.save(update_fields=changed)
    if now is not None:
        identity.last_launch_at = now
        identity.save(update_fields=["last_launch_at", "updated_at"])
    return user, created


def lti_enrollment_ensure(
    *, user: AbstractBaseUser, course: Course, role: str, sub: str
) -> Enrollment:
    """``user`` enrolled in ``course`` with ``role``.

    An enrollment made by the LMS (its external id is the person's ``sub``) follows the role the
    LMS gives; one made here by hand keeps its role.
    """
    enrollment = Enrollment.objects.filter(user=user, course=course).first()
    if enrollment is None:
        try:
            return enrollment_create(user=user, course=course, role=role, external_id=sub)
        except Conflict:  # enrolled by another request since the check
            enrollment = Enrollment.objects.get(user=user, course=course)
    if enrollment.role != role and enrollment.external_id == sub:
        enrollment.role = role
        enrollment.save(update_fields=["role"])
    return enrollment


# --- courses ------------------------------------------------------------------------------------


def _free_slug(*, text: str, platform: Platform, context_id: str) -> str:
    base = slugify(text)[:60].strip("-") or "lti-course"
    digest = hashlib.sha256(f"{platform.pk}:{context_id}".encode()).hexdigest()
    for candidate in (base, f"{base}-{digest[:8]}", f"{base}-{digest[:16]}"):
        if not Course.objects.filter(slug=candidate).exists():
            return candidate
    raise Conflict(f"no free course slug for context {context_id!r}", field="context")


def _context_resolve(
    *, platform: Platform, claim: Mapping[str, Any] | None
) -> tuple[Course, Context | None]:
    """The course of the launch's context; a new context gets the platform's default course or
    a new course titled after it."""
    context_id = _text((claim or {}).get("id"), 255)
    if not context_id:
        if platform.course is None:
            raise ValidationFailed(
                "the launch names no context (course) and the platform has no default course",
                field="context",
            )
        return platform.course, None
    title = _text(claim.get("title"), 255)
    label = _text(claim.get("label"), 255)
    context = Context.objects.filter(platform=platform, context_id=context_id).first()
    if context is None:
        try:
            with transaction.atomic():
                course = platform.course or course_create(
                    slug=_free_slug(text=label or title, platform=platform, context_id=context_id),
                    title=(title or label or f"Course {context_id}")[:200],
                )
                context = Context.objects.create(
                    platform=platform,
                    context_id=context_id,
                    course=course,
                    title=title,
                    label=label,
                )
        except IntegrityError:  # the context's first launch, twice at once
            context = Context.objects.get(platform=platform, context_id=context_id)
    elif (title and title != context.title) or (label and label != context.label):
        context.title, context.label = title or context.title, label or context.label
        context.save(update_fields=["title", "label", "updated_at"])
    return context.course, context


def _url(value: Any) -> str:
    url = _text(value, 500)
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return ""
    return url


def _assessment_named(custom: Any, course: Course) -> Assessment | None:
    """The assessment named by the link's custom parameter, if it belongs to ``course``."""
    value = custom.get(ASSESSMENT_PARAMETER) if isinstance(custom, Mapping) else None
    if value is None:
        return None
    try:
        assessment_id = int(str(value))
    except ValueError:
        return None
    assessment = Assessment.objects.filter(pk=assessment_id, course=course).first()
    if assessment is None:
        # A link copied with its LMS course into another context keeps its custom parameter;
        # it must not open an assessment of a course the new context does not stand for.
        logger.warning("LTI link names assessment %s, which is not in %s", value, course.slug)
    return assessment


def _resource_link_record(
    *, platform: Platform, context: Context | None, course: Course, claims: Mapping[str, Any]
) -> ResourceLink:
    claim = claims.get(RESOURCE_LINK_CLAIM) or {}
    resource_link_id = _text(claim.get("id"), 255)
    if not resource_link_id:
        raise ValidationFailed("the launch names no resource link", field="resource_link")
    ags = claims.get(AGS_CLAIM) if isinstance(claims.get(AGS_CLAIM), Mapping) else {}
    scopes = [scope for scope in ags.get("scope") or [] if isinstance(scope, str)]
    named = _assessment_named(claims.get(CUSTOM_CLAIM), course)
    values = {
        "context": context,
        "course": course,
        "title": _text(claim.get("title"), 255),
        "lineitem_url": _url(ags.get("lineitem")),
        "lineitems_url": _url(ags.get("lineitems")),
        "ags_scopes": scopes,
        "accepts_scores": SCORE_SCOPE in scopes,
    }
    link, created = ResourceLink.objects.get_or_create(
        platform=platform,
        resource_link_id=resource_link_id,
        defaults={**values, "assessment": named},
    )
    if not created:
        for name, value in values.items():
            setattr(link, name, value)
        if named is not None:
            link.assessment = named
        elif link.assessment is not None and link.assessment.course_id != course.pk:
            link.assessment = None
        link.save()
    return link


def _context_services_record(*, context: Context | None, claims: Mapping[str, Any]) -> None:
    nrps = claims.get(NRPS_CLAIM)
    url = _url(nrps.get("context_memberships_url")) if isinstance(nrps, Mapping) else ""
    if context is not None and url and url != context.memberships_url:
        context.memberships_url = url
        context.save(update_fields=["memberships_url", "updated_at"])


# --- the launch ---------------------------------------------------------------------------------


@transaction.atomic
def lti_launch_accept(
    *, platform: Platform, claims: Mapping[str, Any], now: datetime | None = None
) -> LaunchOutcome:
    """Take in a validated launch: the user, the course, the enrollment and the link.

    Made on first sight: the user (from ``sub``, named by the claims), the course of the
    context (see :func:`_context_resolve`), the enrollment with the role the LMS gives, and for
    a resource link its record (the assessment named by its custom parameter, the line item it
    reports to). Refused, with nothing written: another message type than a resource link or a
    deep-linking request, a launch without a user, a person with no role we know, a learner
    asking to add content, a deactivated account.
    """
    now = timezone.now() if now is None else now
    message_type = claims.get(MESSAGE_TYPE_CLAIM)
    if message_type not in (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST):
        raise ValidationFailed(f"LTI messages of type {message_type!r} are not supported here")
    role = lti_role_of(claims.get(ROLES_CLAIM) or [])
    if role is None:
        raise PermissionDenied(
            "none of your roles in this course (instructor, teaching assistant, learner) "
            "gives access to this tool",
            field="roles",
        )
    if message_type == DEEP_LINKING_REQUEST and role not in STAFF_ROLES:
        raise PermissionDenied("only instructors may add content from this tool", field="roles")
    sub = claims.get("sub")
    existing = LtiUser.objects.filter(platform=platform, sub=sub).select_related("user").first()
    if existing is not None and not existing.user.is_active:
        raise PermissionDenied(f"the account of {sub!r} is deactivated here", field="sub")

    user, _ = lti_user_resolve(platform=platform, sub=sub, claims=claims, now=now)
    course, context = _context_resolve(platform=platform, claim=claims.get(CONTEXT_CLAIM))
    lti_enrollment_ensure(user=user, course=course, role=role, sub=sub)
    _context_services_record(context=context, claims=claims)
    link = None
    if message_type == RESOURCE_LINK_REQUEST:
        link = _resource_link_record(
            platform=platform, context=context, course=course, claims=claims
        )
    return LaunchOutcome(
        user=user,
        course=course,
        role=role,
        message_type=message_type,
        resource_link=link,
        assessment=link.assessment if link is not None else None,
    )
