"""Webhooks: a course's teachers subscribe URLs to its events; every event is POSTed, signed, to
each subscription that wants it, and retried with exponential backoff until it is accepted.

Events (``WebhookSubscription.Event``)::

    grade.released     a response's grade can be seen by its student: a rule's grade at
                       submission, a model's grade the release policy let through, a teacher's
                       accept or override (again on every later override). An assessment that
                       holds grades until its due date has its grades sent at the due date.
    training.finished  a training run of the course's models (course-wide, or an item's grader)
                       ended, succeeded or failed (a cancelled run sends nothing)

The flow::

    a service: a grade released, a run ended ─► webhook_event ─► one WebhookDelivery per active
        subscription of the course that wants the event, inside the caller's transaction
        ─► on commit: default queue ─► edu_dl.webhooks.deliver ─► webhook_deliver: the url's
        host resolved and vetted again, one POST to the address vetted
            2xx ─► delivered, never sent again
            else, or an address refused (nothing sent) ─► attempts + 1, retried by the task
                    with exponential backoff; failed after MAX_ATTEMPTS attempts
    beat, every minute ─► edu_dl.webhooks.send_due ─► webhook_deliveries_send_due: pending
        deliveries whose ``next_attempt_at`` passed: grades held until a due date that has come,
        and messages the broker lost (a retry not started long after it was due)

What a receiver gets (document for integrators)::

    POST <url>
    Content-Type: application/json
    X-EduDL-Event: grade.released
    X-EduDL-Delivery: <event id: the same on every retry of the event; ignore repeats>
    X-EduDL-Timestamp: <Unix time in whole seconds of this attempt>
    X-EduDL-Signature: sha256=<hex HMAC-SHA256, keyed with the subscription's secret, of
                       the bytes "<X-EduDL-Timestamp>.<body>">

    {"course":"<slug>","created_at":"<ISO 8601>","data":{...},"event":"...","id":"<event id>"}

The body is compact UTF-8 JSON with sorted keys, serialised once per attempt and signed as
sent. To verify, compute the HMAC over the timestamp header, a dot and the raw body bytes as
received (never re-serialised), compare it in constant time with the signature header, and
refuse a timestamp more than five minutes from your clock (a replayed request):
:func:`webhook_verify` does all three. Deliveries are at least once and in no guaranteed order:
use the event id to drop repeats, and for ``grade.released`` keep the grade with the latest
``released_at``. Redirects are not followed (a 3xx counts as a failure).

Where deliveries may go: public internet addresses only. The delivery log keeps a receiver's
status and the start of its reply, so a url that reached inside the school's network would let
any teacher probe and read its internal services (server-side request forgery). A url whose
host is, or resolves to (every address it resolves to counts), a loopback, private (RFC 1918,
fc00::/7), carrier-grade NAT (100.64.0.0/10), link-local (169.254.0.0/16 and fe80::/10, where
cloud metadata services answer), unspecified, multicast or reserved address - IPv4-mapped, 6to4
and NAT64 forms of IPv6 included - is refused at subscription, as is a host name that does not
resolve. Every attempt resolves and checks the host again (a name's DNS may since point inside
the network): a refused address is a failed attempt, nothing sent, its reason in
``last_error``. The connection then goes to the address just checked, not to a second lookup
that could answer differently (DNS rebinding), while the Host header, TLS SNI and certificate
check use the url's host name; proxies set in the environment are not used. A site whose
receivers live inside its own network (a Moodle on 10.x) sets
``EDU_DL["WEBHOOK_ALLOW_PRIVATE_HOSTS"]``: loopback, private and carrier-grade NAT addresses are
then allowed; link-local, unspecified, multicast and reserved ones never are.

Web processes call :func:`webhook_event` (through the grade and training hooks); only workers
call :func:`webhook_deliver`. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import math
import secrets
import socket
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from edu_dl.conf import edu_settings
from edu_dl.models import (
    Assessment,
    Course,
    ModelVersion,
    Response,
    TrainingRun,
    WebhookDelivery,
    WebhookSubscription,
)
from edu_dl.selectors.access import course_is_staff
from edu_dl.selectors.submissions import assessment_grades_held
from edu_dl.services.audit import audit_record
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

logger = logging.getLogger(__name__)

DELIVER_TASK_NAME = "edu_dl.webhooks.deliver"
SEND_DUE_TASK_NAME = "edu_dl.webhooks.send_due"

GRADE_RELEASED = WebhookSubscription.Event.GRADE_RELEASED.value
TRAINING_FINISHED = WebhookSubscription.Event.TRAINING_FINISHED.value
EVENTS = tuple(WebhookSubscription.Event.values)

SIGNATURE_PREFIX = "sha256="
# A receiver refuses a timestamp further than this from its clock (webhook_verify).
VERIFY_TOLERANCE_S = 300
# Hosts a subscription may reach over plain http (a receiver on the same machine, in tests and
# development); everything else must be https unless settings.DEBUG. Being loopback, they are
# reached only where EDU_DL["WEBHOOK_ALLOW_PRIVATE_HOSTS"] allows private addresses.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Carrier-grade NAT (RFC 6598): not public, though Python's is_private leaves it out.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052): an IPv6 network's gateway to the IPv4 address in the last 32 bits.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
ALLOW_PRIVATE_OPTION = "settings.EDU_DL['WEBHOOK_ALLOW_PRIVATE_HOSTS']"
URL_MAX_LENGTH = WebhookSubscription._meta.get_field("url").max_length
# Each subscription multiplies the deliveries of every event: a course needs a few.
MAX_SUBSCRIPTIONS_PER_COURSE = 20

DELIVERY_TIMEOUT_S = 10
# The first attempt and the task's retries (edu_dl.tasks.webhooks: max_retries = MAX_ATTEMPTS - 1).
MAX_ATTEMPTS = 9
# Celery's exponential backoff: the n-th retry waits up to RETRY_BACKOFF_S * 2**(n-1) seconds
# (full jitter), at most RETRY_BACKOFF_MAX_S: 1, 2, 4 ... minutes, then an hour; some three
# hours in all, so a receiver down for a deployment or an afternoon still gets its events.
RETRY_BACKOFF_S = 60
RETRY_BACKOFF_MAX_S = 3600
# A pending delivery not attempted this long after it was due is sent again by the sweep (its
# message was lost: the broker was down at commit, or a worker died holding it).
RESEND_AFTER = timedelta(minutes=10)
# The most deliveries one sweep sends.
SEND_DUE_MAX = 1000
# How much of a receiver's error reply is kept in last_error.
REPLY_EXCERPT_CHARS = 200
LAST_ERROR_MAX_LENGTH = 1000
TRAINING_ERROR_MAX_LENGTH = 500
METRIC_TEXT_MAX_LENGTH = 200


class WebhookDeliveryFailed(Exception):
    """An attempt failed in a way that may recover (an error reply, a timeout, a refused
    connection): the task retries it later."""


# --- Signatures (for receivers as much as for us) ------------------------------------------------


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def webhook_signature(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``X-EduDL-Signature`` header value: ``sha256=`` and the hex HMAC-SHA256, keyed with
    ``secret``, of ``"<timestamp>.<body>"``."""
    message = f"{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def webhook_verify(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    *,
    tolerance_s: int = VERIFY_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether a request carries a valid signature: ``timestamp`` and ``signature`` are the
    ``X-EduDL-Timestamp`` and ``X-EduDL-Signature`` headers, ``body`` the raw body as received.

    False as well when the timestamp is not a whole number or lies more than ``tolerance_s``
    seconds from ``now`` (Unix time; the clock by default), so a recorded request cannot be
    replayed later.
    """
    try:
        sent_at = int(str(timestamp))
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance_s:
        return False
    expected = webhook_signature(secret, sent_at, body)
    return hmac.compare_digest(expected.encode(), str(signature).encode())


def webhook_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes POSTed for ``payload``: compact UTF-8 JSON with sorted keys."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(
        "utf-8"
    )


# --- Destinations --------------------------------------------------------------------------------

# (family, socket address) of one vetted address, as socket.getaddrinfo gives them.
VettedAddress = tuple[int, Any]


class _DestinationRefused(Exception):
    """A url's host is, or resolves to, an address webhooks may not reach, or does not resolve;
    the message says which and why."""


def _embedded_ipv4(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped ``::ffff:a.b.c.d``, 6to4
    ``2002::/16``, NAT64 ``64:ff9b::/96``), else None: a connection to the one reaches the
    other, so the IPv4 address is what must be judged."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _address_refusal(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool
) -> str | None:
    """Why a delivery may not connect to ``address`` ("a private address; ..."), or None when
    it may.

    Explicit checks besides ``is_global``: Python counts multicast as global, and the versions
    we run differ on IPv4-mapped addresses. Link-local, unspecified, multicast and reserved
    addresses are no receiver's, whatever ``allow_private`` says: 169.254.169.254 is the cloud
    metadata service, and 0.0.0.0 connects to this machine.
    """
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _address_refusal(embedded, allow_private=allow_private)
    never = "which never receives webhooks"
    if address.is_unspecified:
        return f"an unspecified address, {never}"
    if address.is_link_local:
        return f"a link-local address (where cloud metadata services answer), {never}"
    if address.is_multicast:
        return f"a multicast address, {never}"
    # Before is_reserved: IPv6's reserved ::/8 holds ::1.
    if address.is_loopback:
        kind = "a loopback address (this machine)"
    elif address.is_reserved:
        return f"a reserved address, {never}"
    elif address in SHARED_ADDRESS_SPACE:
        kind = "a carrier-grade NAT address (100.64.0.0/10)"
    elif address.is_private:
        kind = "a private address"
    elif not address.is_global:
        kind = "a special-purpose address that is not publicly routable"
    else:
        return None
    if allow_private:
        return None
    return (
        f"{kind}; webhooks reach only public internet addresses unless {ALLOW_PRIVATE_OPTION} is on"
    )


def _vetted_addresses(*, host: str, port: int) -> list[VettedAddress]:
    """Resolve ``host`` and return its addresses, in the resolver's order, when every one of
    them may receive webhooks; the connection is then made to these, never to a second lookup.

    Raises :class:`_DestinationRefused` when the name does not resolve, or when any address is
    not a public one (all of them: a name that resolves to a public and a private address
    would otherwise reach the private one on some attempts) - unless
    ``EDU_DL["WEBHOOK_ALLOW_PRIVATE_HOSTS"]`` allows loopback, private and carrier-grade NAT
    addresses. An IP address as ``host`` is judged as it is, without a lookup. The message
    names a resolved name's kind of address, not the address, so a refusal does not map the
    school's internal DNS for whoever subscribed.
    """
    # Only True opens the network: a misconfigured value (a "false" text) fails closed.
    allow_private = edu_settings.WEBHOOK_ALLOW_PRIVATE_HOSTS is True
    try:
        ipaddress.ip_address(host)
        subject = f"{host} is"
    except ValueError:
        subject = f"{host!r} resolves to"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        # socket.gaierror is an OSError; a name too long for IDNA is a UnicodeError.
        reason = getattr(error, "strerror", None) or error
        raise _DestinationRefused(f"{host!r} does not resolve to any address ({reason})") from None
    vetted: list[VettedAddress] = []
    for family, _, _, _, socket_address in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        refusal = _address_refusal(
            ipaddress.ip_address(socket_address[0]), allow_private=allow_private
        )
        if refusal is not None:
            raise _DestinationRefused(f"{subject} {refusal}")
        vetted.append((family, socket_address))
    if not vetted:
        raise _DestinationRefused(f"{host!r} does not resolve to any IP address")
    return vetted


def _url_port(parts: SplitResult) -> int:
    """The port a url names, or its scheme's; ValueError when it is not one of 1 to 65535."""
    port = parts.port  # ValueError above 65535
    if port is None:
        return 443 if parts.scheme == "https" else 80
    if port == 0:
        raise ValueError("port 0 is no port to connect to")
    return port


# --- Subscribing ---------------------------------------------------------------------------------


def _check_staff(*, actor: AbstractBaseUser, course: Course, doing: str) -> None:
    if not course_is_staff(user=actor, course=course):
        raise PermissionDenied(
            f"{actor.get_username()!r} is not a teacher or assistant of {course.slug!r} "
            f"and cannot {doing}",
            field="actor",
        )


def _checked_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ValidationFailed("url must be text", field="url")
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        raise ValidationFailed(
            f"url is {len(url)} characters long; at most {URL_MAX_LENGTH} are allowed",
            field="url",
        )
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise ValidationFailed(f"url {url!r} is not a valid http(s) URL", field="url") from None
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(
            "url must not hold a user name or password; receivers authenticate deliveries by "
            "their signature",
            field="url",
        )
    if parts.scheme != "https" and not (settings.DEBUG or parts.hostname in LOCAL_HOSTS):
        raise ValidationFailed(
            f"url {url!r} must use https: deliveries carry grades and are signed with a secret",
            field="url",
        )
    try:
        port = _url_port(parts)
    except ValueError:
        raise ValidationFailed(
            f"url {url!r} names a port outside 1 to 65535", field="url"
        ) from None
    try:
        _vetted_addresses(host=parts.hostname, port=port)
    except _DestinationRefused as refused:
        raise ValidationFailed(f"url {url!r} is refused: {refused}", field="url") from None
    return url


def _checked_events(events: Any) -> list[str]:
    allowed = ", ".join(EVENTS)
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise ValidationFailed(
            f"events must be a list of event names (of {allowed})", field="events"
        )
    events = list(events)
    unknown = [event for event in events if not isinstance(event, str) or event not in EVENTS]
    if unknown:
        raise ValidationFailed(
            f"unknown event {unknown[0]!r}; use one or more of {allowed}", field="events"
        )
    if not events:
        raise ValidationFailed(f"events must name at least one of {allowed}", field="events")
    return sorted(set(events))


@transaction.atomic
def webhook_subscribe(
    *, course: Course, actor: AbstractBaseUser, url: str, events: list[str]
) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to ``events`` of ``course``; returns the subscription and its signing
    secret, which is shown this once (keep it: it verifies every delivery).

    Refused, with nothing written: an actor who is not a teacher or assistant of the course
    (:class:`PermissionDenied`); a url that is not https - plain http only to localhost or
    127.0.0.1, or anywhere when ``settings.DEBUG`` - or that holds credentials, or whose host
    does not resolve or is, or resolves to, an address that is not a public one (loopback,
    private, carrier-grade NAT, link-local, multicast, reserved ...; the first three allowed by
    ``EDU_DL["WEBHOOK_ALLOW_PRIVATE_HOSTS"]``, which localhost and 127.0.0.1 therefore need
    too, DEBUG or not: see the module's documentation), events that are not a non-empty list of
    known names (:class:`ValidationFailed`, naming the field);
    :data:`MAX_SUBSCRIPTIONS_PER_COURSE` active subscriptions already (:class:`Conflict`).
    The host is checked again at every delivery, since its DNS may change.
    Two subscriptions may share a url: subscribe anew and then unsubscribe the old one to
    change a secret without missing an event.
    """
    _check_staff(actor=actor, course=course, doing="manage its webhooks")
    url = _checked_url(url)
    events = _checked_events(events)
    active = WebhookSubscription.objects.filter(course=course, is_active=True).count()
    if active >= MAX_SUBSCRIPTIONS_PER_COURSE:
        raise Conflict(
            f"course {course.slug!r} has {active} webhook subscriptions, the most allowed; "
            "unsubscribe one first",
            field="course",
        )
    secret = secrets.token_urlsafe(32)
    subscription = WebhookSubscription.objects.create(
        course=course, url=url, events=events, secret=secret, created_by=actor
    )
    audit_record(
        actor=actor,
        action="webhook.subscribe",
        target=subscription,
        course=course,
        after={"url": url, "events": events},  # never the secret
    )
    return subscription, secret


@transaction.atomic
def webhook_unsubscribe(
    *, subscription: WebhookSubscription, actor: AbstractBaseUser
) -> WebhookSubscription:
    """Stop ``subscription``: it receives no more events, and its deliveries still pending
    are marked failed. Its delivery log stays. Returns it, inactive.

    Refused, with nothing written: an actor who is not a teacher or assistant of its course
    (:class:`PermissionDenied`). Unsubscribing twice changes nothing the second time.
    """
    locked = (
        WebhookSubscription.objects.select_for_update(of=("self",))
        .select_related("course")
        .filter(pk=subscription.pk)
        .first()
    )
    if locked is None:
        raise NotFound(f"webhook subscription {subscription.pk} no longer exists")
    _check_staff(actor=actor, course=locked.course, doing="manage its webhooks")
    if not locked.is_active:
        return locked
    locked.is_active = False
    locked.save(update_fields=["is_active"])
    cancelled = WebhookDelivery.objects.filter(
        subscription=locked, status=WebhookDelivery.Status.PENDING
    ).update(
        status=WebhookDelivery.Status.FAILED,
        last_error="the subscription was cancelled before this was delivered",
        next_attempt_at=None,
    )
    audit_record(
        actor=actor,
        action="webhook.unsubscribe",
        target=locked,
        course=locked.course,
        before={"url": locked.url, "events": locked.events, "is_active": True},
        after={"is_active": False, "pending_deliveries_cancelled": cancelled},
    )
    subscription.is_active = False
    return locked


# --- Events --------------------------------------------------------------------------------------


def _wanting(subscriptions: Iterable[WebhookSubscription], event: str) -> list[WebhookSubscription]:
    # Filtered here, not in SQL: SQLite has no JSON "contains", and a course has a few rows.
    return [subscription for subscription in subscriptions if event in subscription.events]


def _subscriptions_by_course(*, course_ids: Any, event: str) -> dict[int, list]:
    """The active subscriptions that want ``event``, by course id; ``course_ids`` may be a
    subquery."""
    by_course: dict[int, list[WebhookSubscription]] = defaultdict(list)
    rows = WebhookSubscription.objects.filter(course_id__in=course_ids, is_active=True).only(
        "pk", "course_id", "events"
    )
    for subscription in _wanting(rows, event):
        by_course[subscription.course_id].append(subscription)
    return by_course


def _record(
    *,
    course_id: int,
    event: str,
    events: list[tuple[dict[str, Any], datetime | None]],
    subscriptions: list[WebhookSubscription],
) -> list[WebhookDelivery]:
    """One delivery per event and subscription; those not held are sent after commit."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    slug = Course.objects.values_list("slug", flat=True).get(pk=course_id)
    now = timezone.now()
    deliveries: list[WebhookDelivery] = []
    send_now: list[WebhookDelivery] = []
    for data, deliver_after in events:
        event_id = uuid.uuid4().hex
        # Through the JSON encoder once: datetimes and decimals become text, as receivers see.
        payload = json.loads(
            json.dumps(
                {
                    "id": event_id,
                    "event": event,
                    "created_at": now,
                    "course": slug,
                    "data": data,
                },
                cls=DjangoJSONEncoder,
            )
        )
        held = deliver_after is not None and deliver_after > now
        for subscription in subscriptions:
            delivery = WebhookDelivery(
                subscription_id=subscription.pk,
                event=event,
                event_id=event_id,
                payload=payload,
                # When the sweep sends it if it is still pending then: a held grade at its due
                # date, any other a while after its message should have been delivered.
                next_attempt_at=deliver_after if held else now + RESEND_AFTER,
            )
            deliveries.append(delivery)
            if not held:
                send_now.append(delivery)
    # A savepoint: a failure here is rolled back alone and leaves the caller's transaction whole.
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(deliveries)
    webhook_deliveries_enqueue(delivery_ids=[delivery.pk for delivery in send_now])
    return deliveries


def webhook_deliveries_enqueue(*, delivery_ids: list[int]) -> None:
    """Send the deliveries to the default queue once the transaction commits."""
    if not delivery_ids:
        return
    ids = list(delivery_ids)

    def send() -> None:
        for delivery_id in ids:
            current_app.send_task(DELIVER_TASK_NAME, args=[delivery_id])

    # robust: a broker that is down must not fail the grade or run that made the event; the
    # deliveries stay pending and the sweep sends them later.
    transaction.on_commit(send, robust=True)


def webhook_event(
    *,
    course_id: int,
    event: str,
    payload: dict[str, Any],
    deliver_after: datetime | None = None,
) -> list[WebhookDelivery]:
    """Record that ``event`` happened in the course, with ``payload`` as its ``data``: one
    delivery per active subscription of the course that wants it, sent after commit (or by the
    sweep from ``deliver_after``, when that is still ahead). Returns the deliveries.

    Called by the services inside their transactions; it never fails them: without a
    subscription it costs one query, and any error is logged and the event dropped.
    """
    try:
        subscriptions = _subscriptions_by_course(course_ids=[course_id], event=event)
        if not subscriptions:
            return []
        return _record(
            course_id=course_id,
            event=event,
            events=[(payload, deliver_after)],
            subscriptions=subscriptions[course_id],
        )
    except Exception:
        logger.exception("webhook event %s of course %s not recorded", event, course_id)
        return []


def webhook_grades_released(*, response_ids: Iterable[int]) -> None:
    """The ``grade.released`` hook: called by every service that releases a grade (rule grading
    at submission, the model grader's release policy, a teacher's accept or override), inside
    its transaction, with the responses it released.

    ``data``: response, submission, assessment and item ids, the student's username, score,
    min_score and max_score, grade_source and released_at. A response whose assessment holds
    grades until a due date still ahead is sent at that date, when its student can see it.
    Never fails the caller (see :func:`webhook_event`).
    """
    ids = sorted(set(response_ids))
    if not ids:
        return
    try:
        course_ids = Response.objects.filter(pk__in=ids).values("item__course_id")
        subscriptions = _subscriptions_by_course(course_ids=course_ids, event=GRADE_RELEASED)
        if not subscriptions:
            return
        now = timezone.now()
        by_course: dict[int, list[tuple[dict[str, Any], datetime | None]]] = defaultdict(list)
        released = (
            Response.objects.filter(
                pk__in=ids, released=True, item__course_id__in=list(subscriptions)
            )
            .select_related("item", "submission__student", "submission__assessment")
            .order_by("pk")
        )
        for response in released:
            assessment = response.submission.assessment
            held = assessment_grades_held(assessment=assessment, now=now)
            by_course[response.item.course_id].append(
                (
                    {
                        "response": response.pk,
                        "submission": response.submission_id,
                        "assessment": assessment.pk,
                        "item": response.item_id,
                        "student": response.submission.student.get_username(),
                        "score": response.score,
                        "min_score": response.item.min_score,
                        "max_score": response.item.max_score,
                        "grade_source": response.grade_source,
                        "released_at": response.graded_at or now,
                    },
                    assessment.due_at if held else None,
                )
            )
        for course_id, events in by_course.items():
            _record(
                course_id=course_id,
                event=GRADE_RELEASED,
                events=events,
                subscriptions=subscriptions[course_id],
            )
    except Exception:
        logger.exception("grade.released of responses %s not recorded", ids)


def _scalar_metrics(metrics: Any) -> dict[str, Any]:
    """The numbers, flags and short texts of a version's metrics (no lists or tables)."""
    if not isinstance(metrics, dict):
        return {}
    return {
        key: value
        for key, value in metrics.items()
        if (isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)))
        or (isinstance(value, str) and len(value) <= METRIC_TEXT_MAX_LENGTH)
    }


def webhook_training_finished(*, run_id: int) -> None:
    """The ``training.finished`` hook: called by the training service when a run has ended,
    succeeded or failed. Runs of the whole site (the cross-item grader) belong to no course
    and send nothing; neither does a cancelled run.

    ``data``: run id, kind, scope (``scope_key``), scope_type, item id, status, error (failed
    runs, shortened), started_at and finished_at, the metrics of the version the run made
    (numbers only), its version number and ``activated_version``: that number when the
    evaluation gate activated it, else None. Never fails the caller.
    """
    try:
        run = TrainingRun.objects.select_related("item").filter(pk=run_id).first()
        if run is None or run.status not in (
            TrainingRun.Status.SUCCEEDED,
            TrainingRun.Status.FAILED,
        ):
            return
        course_id = run.course_id or (run.item.course_id if run.item is not None else None)
        if course_id is None:
            return
        subscriptions = _subscriptions_by_course(course_ids=[course_id], event=TRAINING_FINISHED)
        if not subscriptions:
            return
        version = ModelVersion.objects.filter(training_run=run).order_by("-version").first()
        data = {
            "run": run.pk,
            "kind": run.kind,
            "scope": run.scope_key,
            "scope_type": run.scope_type,
            "item": run.item_id,
            "status": run.status,
            "error": run.error[:TRAINING_ERROR_MAX_LENGTH],
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "metrics": _scalar_metrics(version.metrics) if version is not None else {},
            "version": version.version if version is not None else None,
            "activated_version": (
                version.version
                if version is not None and version.activated_at is not None
                else None
            ),
        }
        _record(
            course_id=course_id,
            event=TRAINING_FINISHED,
            events=[(data, None)],
            subscriptions=subscriptions[course_id],
        )
    except Exception:
        logger.exception("training.finished of run %s not recorded", run_id)


# --- Delivering ----------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered, not followed: a 3xx is an error reply like any other (a POST
    redirected would lose its body, and a receiver's redirect could point anywhere)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _open_socket(*, addresses: list[VettedAddress], timeout: float) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that accepts one, tried in order as
    ``socket.create_connection`` tries a name's addresses - but without resolving anything:
    these are the addresses that were vetted."""
    last_error: OSError | None = None
    for family, socket_address in addresses:
        connection = socket.socket(family, socket.SOCK_STREAM)
        try:
            connection.settimeout(timeout)
            connection.connect(socket_address)
        except OSError as error:
            connection.close()
            last_error = error
            continue
        # As http.client does: a small request is sent at once, not held back by Nagle.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection
    raise last_error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to addresses vetted beforehand: the Host header names the url's
    host, but the socket goes to the vetted addresses, never to a new DNS lookup."""

    def __init__(self, host: str, *, addresses: list[VettedAddress], **kwargs: Any):
        super().__init__(host, **kwargs)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _open_socket(addresses=self.addresses, timeout=self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to addresses vetted beforehand: TLS is negotiated with the url's
    host name (SNI) and the certificate verified against it, as for any https request; only
    the socket goes to the vetted addresses instead of a new DNS lookup."""

    def __init__(
        self,
        host: str,
        *,
        addresses: list[VettedAddress],
        context: ssl.SSLContext,
        **kwargs: Any,
    ):
        super().__init__(host, context=context, **kwargs)
        self.addresses = addresses
        self.tls_context = context

    def connect(self) -> None:
        connection = _open_socket(addresses=self.addresses, timeout=self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(connection, server_hostname=self.host)
        except BaseException:
            connection.close()
            raise


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, addresses: list[VettedAddress]):
        super().__init__()
        self.addresses = addresses

    def http_open(self, request: urllib.request.Request):
        return self.do_open(_PinnedHTTPConnection, request, addresses=self.addresses)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, addresses: list[VettedAddress]):
        # What http.client uses by default: the system's certificate authorities, the host
        # name checked, and HTTP/1.1 offered in ALPN.
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])
        super().__init__(context=context)
        self.addresses = addresses
        self.tls_context = context

    def https_open(self, request: urllib.request.Request):
        return self.do_open(
            _PinnedHTTPSConnection, request, addresses=self.addresses, context=self.tls_context
        )


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST ``body``; returns the reply's status (None when none came) and an error message
    ("" for a 2xx).

    The url's host is resolved and vetted first (:func:`_vetted_addresses`): a refused one is
    an error with nothing sent. The request then goes to the vetted addresses only, through
    urllib with its redirects refused and no proxy (a proxy would resolve the name itself).
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return None, "not sent: the url names no host"
    try:
        addresses = _vetted_addresses(host=parts.hostname, port=_url_port(parts))
    except _DestinationRefused as refused:
        return None, f"not sent: {refused}"
    except ValueError as error:
        return None, f"not sent: {error}"
    opener = urllib.request.build_opener(
        _NoRedirects,
        urllib.request.ProxyHandler({}),
        _PinnedHTTPHandler(addresses),
        _PinnedHTTPSHandler(addresses),
    )
    try:
        # The scheme was checked at subscription: http or https only.
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        with opener.open(request, timeout=DELIVERY_TIMEOUT_S) as reply:
            return reply.status, ""
    except urllib.error.HTTPError as error:
        try:
            excerpt = error.read(REPLY_EXCERPT_CHARS).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            excerpt = ""
        finally:
            error.close()
        message = f"HTTP {error.code} {error.reason}"
        return error.code, f"{message}: {excerpt}" if excerpt else message
    except (OSError, http.client.HTTPException, ValueError) as error:
        # URLError, timeouts, refused connections, TLS failures, malformed replies.
        reason = getattr(error, "reason", None) or error
        return None, f"{type(error).__name__}: {reason}"


def _held_until(*, delivery: WebhookDelivery, now: datetime) -> datetime | None:
    """The due date a grade.released delivery still waits for (checked again when it is sent:
    the assessment's due date may have moved since the grade was released)."""
    if delivery.event != GRADE_RELEASED:
        return None
    data = delivery.payload.get("data") if isinstance(delivery.payload, dict) else None
    assessment_id = data.get("assessment") if isinstance(data, dict) else None
    assessment = Assessment.objects.filter(pk=assessment_id).first() if assessment_id else None
    if assessment is not None and assessment_grades_held(assessment=assessment, now=now):
        return assessment.due_at
    return None


def _retry_expected_by(*, attempts: int, now: datetime) -> datetime:
    """When the sweep may take a failed delivery's retry for lost: its longest backoff after
    ``attempts`` attempts, plus :data:`RESEND_AFTER`."""
    backoff = min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_S * 2 ** (attempts - 1))
    return now + timedelta(seconds=backoff) + RESEND_AFTER


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery:
    """Send one delivery: POST its payload, signed, to its subscription's url; returns it.

    2xx: delivered. Any other reply, a timeout, no connection, or a host that does not resolve
    or is refused now (its DNS may have changed since it was subscribed; nothing is sent, see
    the module's documentation): ``attempts`` + 1 with the status and the error recorded, and
    :class:`WebhookDeliveryFailed` raised for the task to retry - except at the
    :data:`MAX_ATTEMPTS`-th attempt, which marks it failed. Safe to run
    twice: a delivered or failed delivery is returned as it is, never sent again; one of a
    cancelled subscription is marked failed unsent; a grade still held until its due date is
    left pending for the sweep at that date.

    Not one transaction: the attempt is recorded before the error is raised, and no database
    transaction waits on a receiver (each write is its own).
    """
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound(f"webhook delivery {delivery_id} no longer exists")
    if delivery.status != WebhookDelivery.Status.PENDING:
        return delivery
    subscription = delivery.subscription
    pending = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING)
    now = timezone.now()
    if not subscription.is_active:
        pending.update(
            status=WebhookDelivery.Status.FAILED,
            last_error="the subscription was cancelled before this was delivered",
            next_attempt_at=None,
        )
        delivery.refresh_from_db()
        return delivery
    held_until = _held_until(delivery=delivery, now=now)
    if held_until is not None:
        pending.update(next_attempt_at=held_until)
        delivery.refresh_from_db()
        return delivery

    body = webhook_body(delivery.payload)
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "edu-dl-webhooks/1",
        "X-EduDL-Event": delivery.event,
        "X-EduDL-Delivery": delivery.event_id,
        "X-EduDL-Timestamp": timestamp,
        "X-EduDL-Signature": webhook_signature(subscription.secret, timestamp, body),
    }
    status, error = _post(url=subscription.url, body=body, headers=headers)
    attempts = delivery.attempts + 1
    done = timezone.now()
    if status is not None and 200 <= status < 300:
        pending.update(
            status=WebhookDelivery.Status.DELIVERED,
            attempts=attempts,
            response_status=status,
            last_error="",
            delivered_at=done,
            next_attempt_at=None,
        )
        delivery.refresh_from_db()
        return delivery
    last_attempt = attempts >= MAX_ATTEMPTS
    pending.update(
        status=WebhookDelivery.Status.FAILED if last_attempt else WebhookDelivery.Status.PENDING,
        attempts=attempts,
        response_status=status,
        last_error=error[:LAST_ERROR_MAX_LENGTH],
        next_attempt_at=None if last_attempt else _retry_expected_by(attempts=attempts, now=done),
    )
    delivery.refresh_from_db()
    if last_attempt:
        logger.warning(
            "webhook delivery %s to %s failed for good after %d attempts: %s",
            delivery.pk,
            subscription.url,
            attempts,
            error,
        )
        return delivery
    logger.info(
        "webhook delivery %s to %s: attempt %d failed: %s",
        delivery.pk,
        subscription.url,
        attempts,
        error,
    )
    raise WebhookDeliveryFailed(f"delivery {delivery.pk}, attempt {attempts}: {error}")


def webhook_deliveries_send_due(*, now: datetime | None = None, limit: int = SEND_DUE_MAX) -> int:
    """Send the pending deliveries whose ``next_attempt_at`` has passed (oldest first, at most
    ``limit``); returns how many were sent. Run by celery beat every minute.

    They are grades held until a due date that has now come, and deliveries whose message was
    lost. Each is due again :data:`RESEND_AFTER` later, so a slow queue is not flooded with
    copies; a copy that does run finds the delivery delivered and sends nothing.
    """
    now = timezone.now() if now is None else now
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    )
    ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + RESEND_AFTER)
    for delivery_id in ids:
        current_app.send_task(DELIVER_TASK_NAME, args=[delivery_id])
    logger.info("webhooks: %d due deliveries sent", len(ids))
    return len(ids)
