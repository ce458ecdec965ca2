"""The xAPI words this app understands: verbs, activity IRIs and the version it speaks.

Activities are named by IRIs. An item or resource is found by its ``external_id`` equal to the
activity IRI (the id that the tool which made the content gave it), or by an IRI of our own form,
built on the address the site serves ``/xapi/`` at::

    https://<host>/xapi/activities/items/<pk>
    https://<host>/xapi/activities/resources/<pk>
    https://<host>/xapi/activities/courses/<slug>      (a course, in a statement's context)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

XAPI_VERSION = "1.0.3"
VERSION_HEADER = "X-Experience-API-Version"
# The versions a request may speak: 1.0 and its patch releases (1.0.0 ... 1.0.3).
ACCEPTED_VERSION = re.compile(r"^1\.0(\.\d+)?$")

VERB_ANSWERED = "http://adlnet.gov/expapi/verbs/answered"
VERB_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VERB_EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"
VERB_VOIDED = "http://adlnet.gov/expapi/verbs/voided"

# A course named by its slug in a statement's context extensions.
COURSE_EXTENSION = "https://edu-dl.example/xapi/course"

# The path segments of our own activity IRIs, under ``<base>`` = https://<host>/xapi/activities/.
ACTIVITIES_SEGMENT = "activities/"
ITEMS_SEGMENT = "items/"
RESOURCES_SEGMENT = "resources/"
COURSES_SEGMENT = "courses/"


@dataclass(frozen=True)
class OwnActivity:
    """An activity IRI of our own form, taken apart: ``kind`` is items, resources or courses."""

    kind: str
    key: str


def own_activity(iri: str, *, activity_base: str | None) -> OwnActivity | None:
    """The kind and key of an activity IRI of our own form, or None for any other IRI."""
    if not activity_base or not iri.startswith(activity_base):
        return None
    rest = iri[len(activity_base) :]
    for segment, pattern in (
        (ITEMS_SEGMENT, r"[1-9][0-9]{0,17}"),
        (RESOURCES_SEGMENT, r"[1-9][0-9]{0,17}"),
        (COURSES_SEGMENT, r"[-a-zA-Z0-9_]+"),
    ):
        if rest.startswith(segment) and re.fullmatch(pattern, rest[len(segment) :]):
            return OwnActivity(kind=segment.rstrip("/"), key=rest[len(segment) :])
    return None


def item_iri(*, activity_base: str, item_pk: int) -> str:
    return f"{activity_base}{ITEMS_SEGMENT}{item_pk}"


def resource_iri(*, activity_base: str, resource_pk: int) -> str:
    return f"{activity_base}{RESOURCES_SEGMENT}{resource_pk}"


def course_iri(*, activity_base: str, slug: str) -> str:
    return f"{activity_base}{COURSES_SEGMENT}{slug}"
