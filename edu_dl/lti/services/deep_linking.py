"""Deep linking: a teacher picks one of the course's assessments inside the LMS, and the tool
answers with a signed content item the LMS turns into a link (and a gradebook column)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from edu_dl.lti.models import Context, LtiUser, Platform
from edu_dl.lti.services.grades import assessment_score_maximum
from edu_dl.lti.services.launches import (
    ASSESSMENT_PARAMETER,
    CONTEXT_CLAIM,
    DEEP_LINKING_REQUEST,
    DEEP_LINKING_SETTINGS_CLAIM,
    DEPLOYMENT_CLAIM,
    MESSAGE_TYPE_CLAIM,
)
from edu_dl.lti.tool import registration_for
from edu_dl.models import Assessment, Course
from edu_dl.selectors.access import course_is_staff
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

# The tag of the line items our links ask for: a tool finds its own columns by it.
LINE_ITEM_TAG = "edu_dl"


@dataclass(frozen=True)
class DeepLinkingAnswer:
    """The signed answer (``JWT``) and where the browser posts it."""

    return_url: str
    jwt: str
    content_items: list[dict[str, Any]]


def deep_linking_course(*, platform: Platform, claims: Mapping[str, Any]) -> Course | None:
    """The course a deep-linking request was made from (its context's, else the default)."""
    context_id = (claims.get(CONTEXT_CLAIM) or {}).get("id")
    if context_id:
        context = Context.objects.filter(platform=platform, context_id=context_id).first()
        return context.course if context is not None else None
    return platform.course


def lti_deep_linking_answer(
    *, platform: Platform, claims: Mapping[str, Any], assessment_id: int, launch_url: str
) -> DeepLinkingAnswer:
    """The content item that places ``assessment_id`` in the LMS, signed by the tool's key.

    ``claims`` are those of the validated deep-linking request. The item is an
    ``ltiResourceLink`` to ``launch_url`` carrying the assessment's id as a custom parameter
    (the launches of the new link open it) and a line item scored out of the assessment's
    maximum. Refused: a request that is not deep linking, someone who is not staff of the
    course, an assessment of another course or one without items.
    """
    if claims.get(MESSAGE_TYPE_CLAIM) != DEEP_LINKING_REQUEST:
        raise ValidationFailed("this launch is not a deep-linking request")
    settings = claims.get(DEEP_LINKING_SETTINGS_CLAIM) or {}
    identity = LtiUser.objects.filter(platform=platform, sub=claims.get("sub")).first()
    course = deep_linking_course(platform=platform, claims=claims)
    if identity is None or course is None or not course_is_staff(user=identity.user, course=course):
        raise PermissionDenied("only the course's instructors may add its assessments")
    assessment = Assessment.objects.filter(pk=assessment_id, course=course).first()
    if assessment is None:
        raise NotFound(f"no assessment {assessment_id} in {course.slug!r}", field="assessment")
    maximum = assessment_score_maximum(assessment=assessment)
    if maximum <= 0:
        raise Conflict(
            f"assessment {assessment.title!r} has no items yet: add some before linking it",
            field="assessment",
        )
    registration = registration_for(platform)
    if registration.get_tool_private_key() is None:
        raise Conflict("the tool has no signing key: an administrator must generate one")
    resource = (
        DeepLinkResource()
        .set_title(assessment.title)
        .set_url(launch_url)
        .set_custom_params({ASSESSMENT_PARAMETER: str(assessment.pk)})
        .set_lineitem(
            LineItem()
            .set_score_maximum(maximum)
            .set_label(assessment.title)
            .set_resource_id(f"assessment-{assessment.pk}")
            .set_tag(LINE_ITEM_TAG)
        )
    )
    deep_link = DeepLink(registration, claims[DEPLOYMENT_CLAIM], settings)
    return DeepLinkingAnswer(
        return_url=settings["deep_link_return_url"],
        jwt=deep_link.get_response_jwt([resource]),
        content_items=[resource.to_dict()],
    )
