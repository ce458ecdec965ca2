"""Webhooks: who may subscribe, which addresses a url may reach, which events make deliveries,
how a delivery is signed and sent - to the address vetted - to a real HTTP(S) receiver, retried
and never sent twice, and the grade and training hooks."""

from __future__ import annotations

import json
import re
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import current_app
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from edu_dl.ml.grading.pipeline import train_grader
from edu_dl.models import (
    Assessment,
    AuditEvent,
    Course,
    Item,
    Response,
    TrainingRun,
    WebhookDelivery,
    WebhookSubscription,
)
from edu_dl.services import webhooks
from edu_dl.services.errors import Conflict, PermissionDenied, ValidationFailed
from edu_dl.services.grading import responses_grade_by_model
from edu_dl.services.review import response_override
from edu_dl.services.submissions import submission_create
from edu_dl.services.training import training_request, training_run_execute, training_runs_sweep
from edu_dl.services.webhooks import (
    MAX_ATTEMPTS,
    MAX_SUBSCRIPTIONS_PER_COURSE,
    RESEND_AFTER,
    WebhookDeliveryFailed,
    webhook_body,
    webhook_deliver,
    webhook_deliveries_send_due,
    webhook_event,
    webhook_signature,
    webhook_subscribe,
    webhook_unsubscribe,
    webhook_verify,
)
from edu_dl.tasks.webhooks import webhook_deliver_task
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    UserFactory,
)
from tests.grading_data import (
    PHOTOSYNTHESIS_QUESTION,
    PHOTOSYNTHESIS_REFERENCE,
    activate_grader,
    make_quiz,
    new_student,
    photosynthesis_answers,
    submit,
)
from tests.kt_data import make_kt_course

pytestmark = pytest.mark.django_db

DELIVER = "edu_dl.webhooks.deliver"
GRADE = "grade.released"
TRAINING = "training.finished"
GOOD_ANSWER = "Plants use sunlight and carbon dioxide and water to make glucose and oxygen."
FAST = {"train_config": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01}}
ALLOW_PRIVATE = "settings.EDU_DL['WEBHOOK_ALLOW_PRIVATE_HOSTS']"
ONLY_PUBLIC = f"webhooks reach only public internet addresses unless {ALLOW_PRIVATE} is on"


@pytest.fixture(autouse=True)
def dns(fake_dns):
    """Every host name here is made up and resolved by the fake, never by the network."""
    return fake_dns


@pytest.fixture
def allow_private_hosts(settings):
    """Webhooks may reach this machine: the receivers below listen on 127.0.0.1."""
    settings.EDU_DL = {**settings.EDU_DL, "WEBHOOK_ALLOW_PRIVATE_HOSTS": True}


# --- A real receiver -----------------------------------------------------------------------------


class Receiver:
    """What a local HTTP server received; it answers ``status`` (401 to a bad signature)."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hooks"
        self.status = 200
        self.secret = ""
        # (headers, as case-insensitive as HTTP's; raw body) per request
        self.requests: list[tuple[Message, bytes]] = []
        self.verified: list[bool] = []
        # The names clients asked for in TLS (SNI), when it serves https
        self.server_names: list[str | None] = []


@contextmanager
def serving(tls: ssl.SSLContext | None = None):
    """A receiver on 127.0.0.1, plain http or (``tls``) https, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Receiver(server.server_address[1])
    if tls is not None:

        def note_server_name(connection, server_name, context):
            state.server_names.append(server_name)

        tls.sni_callback = note_server_name
        server.socket = tls.wrap_socket(server.socket, server_side=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            valid = webhook_verify(
                state.secret,
                self.headers["X-EduDL-Timestamp"],
                body,
                self.headers["X-EduDL-Signature"],
            )
            state.requests.append((self.headers, body))
            state.verified.append(valid)
            status = state.status if valid else 401
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"go away!\n" if status >= 300 else b"thanks!!\n")

        def log_message(self, *args):
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def receiver(allow_private_hosts):
    with serving() as state:
        yield state


def self_signed_certificate(folder, host_name: str) -> tuple[str, str]:
    """Paths of a certificate for ``host_name`` (signing itself, so it can be trusted as its
    own authority) and of its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = folder / "receiver.pem", folder / "receiver.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certificate_path), str(key_path)


@pytest.fixture
def tls_receiver(allow_private_hosts, tmp_path, monkeypatch):
    """An https receiver on 127.0.0.1 whose certificate names lms.school.test only; the client
    trusts that certificate as an authority (SSL_CERT_FILE, read with the system's store)."""
    certificate, key = self_signed_certificate(tmp_path, "lms.school.test")
    monkeypatch.setenv("SSL_CERT_FILE", certificate)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    with serving(tls) as state:
        yield state


# --- Helpers -------------------------------------------------------------------------------------


def course_with_staff():
    course = CourseFactory()
    teacher = EnrollmentFactory(course=course, role="teacher").user
    return course, teacher


def subscribe(course, teacher, url="https://hooks.example.com/edu", events=(GRADE, TRAINING)):
    return webhook_subscribe(course=course, actor=teacher, url=url, events=list(events))


def one_delivery(course, teacher, url, *, event=GRADE, data=None):
    subscription, secret = subscribe(course, teacher, url=url, events=[event])
    (delivery,) = webhook_event(course_id=course.pk, event=event, payload=data or {"n": 1})
    return subscription, secret, delivery


# --- Subscribing ---------------------------------------------------------------------------------


def test_a_teacher_subscribes_and_gets_the_secret_once():
    course, teacher = course_with_staff()

    subscription, secret = subscribe(course, teacher, events=[TRAINING, GRADE, GRADE])

    assert (subscription.course, subscription.url, subscription.events) == (
        course,
        "https://hooks.example.com/edu",
        [GRADE, TRAINING],
    )
    assert (subscription.is_active, subscription.created_by) == (True, teacher)
    assert subscription.secret == secret
    assert len(secret) == 43  # token_urlsafe(32)
    audit = AuditEvent.objects.get(action="webhook.subscribe")
    assert (audit.actor, audit.course, audit.target_id) == (teacher, course, str(subscription.pk))
    assert audit.after == {"url": "https://hooks.example.com/edu", "events": [GRADE, TRAINING]}
    assert secret not in json.dumps(audit.after)


def test_an_assistant_may_subscribe_and_each_subscription_has_its_own_secret():
    course, teacher = course_with_staff()
    assistant = EnrollmentFactory(course=course, role="assistant").user

    _, first = subscribe(course, assistant)
    _, second = subscribe(course, teacher)

    assert first != second
    assert WebhookSubscription.objects.filter(course=course).count() == 2


@pytest.mark.parametrize("who", ["student", "teacher of another course", "stranger"])
def test_anyone_but_the_courses_staff_is_refused_and_nothing_is_created(who):
    course, _ = course_with_staff()
    if who == "student":
        actor = EnrollmentFactory(course=course, role="student").user
    elif who == "teacher of another course":
        actor = EnrollmentFactory(course=CourseFactory(), role="teacher").user
    else:
        actor = UserFactory()

    with pytest.raises(PermissionDenied, match="is not a teacher or assistant"):
        subscribe(course, actor)

    assert WebhookSubscription.objects.count() == 0
    assert AuditEvent.objects.filter(action="webhook.subscribe").count() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/edu", "must use https"),
        ("ftp://hooks.example.com/edu", "not a valid http"),
        ("hooks.example.com/edu", "not a valid http"),
        ("https://user:secret@hooks.example.com/edu", "must not hold a user name"),
        ("https://hooks.example.com/" + "a" * 500, "at most 500"),
        ("https://hooks.example.com:99999/edu", "names a port outside 1 to 65535"),
        ("https://hooks.example.com:0/edu", "names a port outside 1 to 65535"),
        (42, "url must be text"),
    ],
)
def test_a_bad_url_is_refused_by_name_and_nothing_is_created(url, message):
    course, teacher = course_with_staff()

    with pytest.raises(ValidationFailed, match=message) as refused:
        subscribe(course, teacher, url=url)

    assert refused.value.field == "url"
    assert WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/hooks", "http://127.0.0.1:9000/hooks", "http://[::1]:80/x"]
)
def test_plain_http_is_allowed_to_this_machine_where_private_hosts_are(url, allow_private_hosts):
    course, teacher = course_with_staff()

    subscription, _ = subscribe(course, teacher, url=url)

    assert subscription.url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://10.1.2.3/x", f"10.1.2.3 is a private address; {ONLY_PUBLIC}"),
        ("https://192.168.1.20/", f"192.168.1.20 is a private address; {ONLY_PUBLIC}"),
        ("https://[fd12:3456::1]/", f"fd12:3456::1 is a private address; {ONLY_PUBLIC}"),
        (
            "https://100.64.0.1/",
            f"100.64.0.1 is a carrier-grade NAT address (100.64.0.0/10); {ONLY_PUBLIC}",
        ),
        ("https://[::1]/", f"::1 is a loopback address (this machine); {ONLY_PUBLIC}"),
        (
            "https://localhost/",
            f"'localhost' resolves to a loopback address (this machine); {ONLY_PUBLIC}",
        ),
        (
            "http://127.0.0.1:9000/hooks",
            f"127.0.0.1 is a loopback address (this machine); {ONLY_PUBLIC}",
        ),
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address (where cloud metadata services answer), "
            "which never receives webhooks",
        ),
        ("https://[fe80::1]/", "fe80::1 is a link-local address"),
        # IPv4-mapped, 6to4 and NAT64: IPv6 spellings of a private IPv4 address
        ("https://[::ffff:10.0.0.5]/", f"::ffff:10.0.0.5 is a private address; {ONLY_PUBLIC}"),
        ("https://[2002:a00:5::1]/", f"2002:a00:5::1 is a private address; {ONLY_PUBLIC}"),
        ("https://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe is a link-local address"),
        ("https://0.0.0.0/", "0.0.0.0 is an unspecified address, which never receives webhooks"),
        ("https://224.0.0.1/", "224.0.0.1 is a multicast address, which never receives webhooks"),
        ("https://240.0.0.1/", "240.0.0.1 is a reserved address, which never receives webhooks"),
    ],
)
def test_a_url_to_an_address_inside_the_network_is_refused_and_nothing_is_created(url, message):
    course, teacher = course_with_staff()

    with pytest.raises(
        ValidationFailed, match=re.escape(f"url {url!r} is refused: {message}")
    ) as refused:
        subscribe(course, teacher, url=url)

    assert refused.value.field == "url"
    assert WebhookSubscription.objects.count() == 0
    assert AuditEvent.objects.filter(action="webhook.subscribe").count() == 0


def test_debug_allows_plain_http_but_not_this_machine(settings):
    settings.DEBUG = True
    course, teacher = course_with_staff()

    with pytest.raises(
        ValidationFailed, match=re.escape("127.0.0.1 is a loopback address")
    ) as refused:
        subscribe(course, teacher, url="http://127.0.0.1:8000/hooks")

    assert refused.value.field == "url"
    assert WebhookSubscription.objects.count() == 0


def test_a_name_that_resolves_to_a_private_address_is_refused_without_naming_it(dns):
    course, teacher = course_with_staff()
    # One public address is not enough: every address of the name must be public.
    dns.names["hooks.school.test"] = [dns.public_address, "10.20.30.40"]

    with pytest.raises(ValidationFailed) as refused:
        subscribe(course, teacher, url="https://hooks.school.test/edu")

    assert refused.value.field == "url"
    assert refused.value.message == (
        "url 'https://hooks.school.test/edu' is refused: 'hooks.school.test' resolves to a "
        f"private address; {ONLY_PUBLIC}"
    )
    assert "10.20.30.40" not in refused.value.message  # no map of the school's internal DNS
    assert WebhookSubscription.objects.count() == 0


def test_a_name_that_does_not_resolve_is_refused(dns):
    course, teacher = course_with_staff()

    with pytest.raises(ValidationFailed) as refused:
        subscribe(course, teacher, url="https://nowhere.invalid/edu")

    assert refused.value.field == "url"
    assert refused.value.message == (
        "url 'https://nowhere.invalid/edu' is refused: 'nowhere.invalid' does not resolve to "
        "any address (Name or service not known)"
    )
    assert WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize(
    "url", ["https://10.1.2.3/x", "https://100.64.0.1/", "https://[fd00::1]/", "http://[::1]/"]
)
def test_private_addresses_are_allowed_where_the_setting_allows_them(url, allow_private_hosts):
    course, teacher = course_with_staff()

    subscription, _ = subscribe(course, teacher, url=url)

    assert subscription.url == url


@pytest.mark.parametrize(
    "url", ["https://169.254.169.254/", "https://[fe80::1]/", "https://0.0.0.0/"]
)
def test_link_local_and_unspecified_addresses_are_refused_even_where_private_ones_are_allowed(
    url, allow_private_hosts
):
    course, teacher = course_with_staff()

    with pytest.raises(ValidationFailed, match="which never receives webhooks") as refused:
        subscribe(course, teacher, url=url)

    assert refused.value.field == "url"
    assert WebhookSubscription.objects.count() == 0


def test_plain_http_is_allowed_anywhere_in_debug(settings):
    settings.DEBUG = True
    course, teacher = course_with_staff()

    subscription, _ = subscribe(course, teacher, url="http://hooks.example.com/edu")

    assert subscription.url == "http://hooks.example.com/edu"


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "must name at least one of grade.released, training.finished"),
        (GRADE, "must be a list of event names"),
        (None, "must be a list of event names"),
        ([GRADE, "grade.changed"], "unknown event 'grade.changed'"),
        ([1], "unknown event 1"),
    ],
)
def test_bad_events_are_refused_by_name_and_nothing_is_created(events, message):
    course, teacher = course_with_staff()

    with pytest.raises(ValidationFailed, match=message) as refused:
        webhook_subscribe(
            course=course, actor=teacher, url="https://hooks.example.com/", events=events
        )

    assert refused.value.field == "events"
    assert WebhookSubscription.objects.count() == 0


def test_a_course_has_a_limited_number_of_active_subscriptions():
    course, teacher = course_with_staff()
    for _ in range(MAX_SUBSCRIPTIONS_PER_COURSE):
        subscribe(course, teacher)

    with pytest.raises(Conflict, match="unsubscribe one first"):
        subscribe(course, teacher)

    assert WebhookSubscription.objects.count() == MAX_SUBSCRIPTIONS_PER_COURSE


def test_unsubscribing_stops_events_and_cancels_pending_deliveries(sent):
    course, teacher = course_with_staff()
    subscription, _, delivery = one_delivery(course, teacher, "https://hooks.example.com/")

    webhook_unsubscribe(subscription=subscription, actor=teacher)
    again = webhook_unsubscribe(subscription=subscription, actor=teacher)

    subscription.refresh_from_db()
    delivery.refresh_from_db()
    assert subscription.is_active is again.is_active is False
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert delivery.last_error == "the subscription was cancelled before this was delivered"
    audit = AuditEvent.objects.get(action="webhook.unsubscribe")
    assert audit.after == {"is_active": False, "pending_deliveries_cancelled": 1}
    assert webhook_event(course_id=course.pk, event=GRADE, payload={}) == []


def test_a_student_cannot_unsubscribe_and_nothing_changes():
    course, teacher = course_with_staff()
    subscription, _ = subscribe(course, teacher)
    student = EnrollmentFactory(course=course).user

    with pytest.raises(PermissionDenied):
        webhook_unsubscribe(subscription=subscription, actor=student)

    subscription.refresh_from_db()
    assert subscription.is_active is True
    assert AuditEvent.objects.filter(action="webhook.unsubscribe").count() == 0


# --- Events --------------------------------------------------------------------------------------


def test_an_event_makes_one_delivery_per_active_subscription_that_wants_it(
    sent, django_capture_on_commit_callbacks
):
    course, teacher = course_with_staff()
    grades, _ = subscribe(course, teacher, url="https://a.example.com/", events=[GRADE])
    both, _ = subscribe(course, teacher, url="https://b.example.com/", events=[GRADE, TRAINING])
    subscribe(course, teacher, url="https://c.example.com/", events=[TRAINING])
    gone, _ = subscribe(course, teacher, url="https://d.example.com/", events=[GRADE])
    webhook_unsubscribe(subscription=gone, actor=teacher)
    other_course, other_teacher = course_with_staff()
    subscribe(other_course, other_teacher, events=[GRADE])

    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhook_event(course_id=course.pk, event=GRADE, payload={"score": 1.0})

    assert sorted(d.subscription_id for d in deliveries) == [grades.pk, both.pk]
    first, second = deliveries
    assert first.event_id == second.event_id
    assert len(first.event_id) == 32
    assert first.payload == {
        "id": first.event_id,
        "event": GRADE,
        "created_at": first.payload["created_at"],
        "course": course.slug,
        "data": {"score": 1.0},
    }
    assert (first.status, first.attempts) == ("pending", 0)
    assert sorted(sent) == sorted([(DELIVER, [first.pk]), (DELIVER, [second.pk])])
    assert WebhookDelivery.objects.count() == 2


def test_an_event_without_subscriptions_makes_nothing(sent, django_capture_on_commit_callbacks):
    course, _ = course_with_staff()

    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhook_event(course_id=course.pk, event=GRADE, payload={})

    assert deliveries == []
    assert sent == []


def test_an_event_that_cannot_be_recorded_never_fails_the_caller(sent, monkeypatch):
    course, teacher = course_with_staff()
    subscribe(course, teacher)

    def broken(*args, **kwargs):
        raise RuntimeError("database trouble")

    monkeypatch.setattr(WebhookDelivery.objects, "bulk_create", broken)
    with transaction.atomic():
        deliveries = webhook_event(course_id=course.pk, event=GRADE, payload={})
        still_usable = WebhookSubscription.objects.count()

    assert deliveries == []
    assert still_usable == 1
    assert webhook_event(course_id=course.pk, event="grade.typo", payload={}) == []


# --- Delivering ----------------------------------------------------------------------------------


def test_a_delivery_is_posted_signed_to_a_real_receiver(receiver):
    course, teacher = course_with_staff()
    _, receiver.secret, delivery = one_delivery(course, teacher, receiver.url, data={"n": 1})

    sent_back = webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert sent_back == delivery
    assert receiver.verified == [True]
    headers, body = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-EduDL-Event"] == GRADE
    assert headers["X-EduDL-Delivery"] == delivery.event_id
    assert headers["X-EduDL-Signature"] == webhook_signature(
        receiver.secret, headers["X-EduDL-Timestamp"], body
    )
    assert body == webhook_body(delivery.payload)
    assert json.loads(body) == delivery.payload
    assert b" " not in body  # compact
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert (delivery.last_error, delivery.next_attempt_at) == ("", None)
    assert delivery.delivered_at is not None


def test_a_delivered_delivery_is_never_sent_again(receiver):
    course, teacher = course_with_staff()
    _, receiver.secret, delivery = one_delivery(course, teacher, receiver.url)
    webhook_deliver(delivery_id=delivery.pk)

    again = webhook_deliver(delivery_id=delivery.pk)
    webhook_deliver_task(delivery.pk)

    assert len(receiver.requests) == 1
    assert (again.status, again.attempts) == ("delivered", 1)


def test_an_error_reply_is_recorded_and_raised_for_the_task_to_retry(receiver):
    course, teacher = course_with_staff()
    _, receiver.secret, delivery = one_delivery(course, teacher, receiver.url)
    receiver.status = 503
    before = timezone.now()

    with pytest.raises(WebhookDeliveryFailed, match="attempt 1: HTTP 503"):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 503)
    assert delivery.last_error == "HTTP 503 Service Unavailable: go away!"
    # The sweep takes the retry for lost only after its longest backoff (60 s) and a margin.
    assert delivery.next_attempt_at >= before + timedelta(seconds=60) + RESEND_AFTER
    assert delivery.delivered_at is None

    receiver.status = 200
    webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 2, 200)
    assert delivery.last_error == ""


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(receiver):
    course, teacher = course_with_staff()
    _, _, delivery = one_delivery(course, teacher, receiver.url)
    receiver.secret = "not-the-secret"

    with pytest.raises(WebhookDeliveryFailed):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert receiver.verified == [False]
    assert (delivery.status, delivery.response_status) == ("pending", 401)


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    course, teacher = course_with_staff()
    _, receiver.secret, delivery = one_delivery(course, teacher, receiver.url)
    receiver.status = 302

    with pytest.raises(WebhookDeliveryFailed, match="HTTP 302"):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert (delivery.status, delivery.response_status) == ("pending", 302)


def test_no_receiver_at_all_is_a_failure_without_a_status(allow_private_hosts):
    course, teacher = course_with_staff()
    # Port 9 (discard) on this machine: nothing listens there.
    _, _, delivery = one_delivery(course, teacher, "http://127.0.0.1:9/hooks")

    with pytest.raises(WebhookDeliveryFailed, match="URLError"):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert "Connection refused" in delivery.last_error


def test_the_connection_goes_to_the_vetted_address_with_the_host_name_in_the_host_header(
    receiver, dns, settings
):
    settings.DEBUG = True  # plain http to a name
    course, teacher = course_with_staff()
    dns.names["lms.school.test"] = ["127.0.0.1"]
    url = f"http://lms.school.test:{receiver.port}/hooks"
    _, receiver.secret, delivery = one_delivery(course, teacher, url)
    dns.lookups.clear()

    webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    headers, _ = receiver.requests[0]
    assert headers["Host"] == f"lms.school.test:{receiver.port}"
    # One lookup, to vet: the connection went to that answer, not to a second lookup.
    assert dns.lookups == ["lms.school.test"]


def test_https_goes_to_the_vetted_address_with_the_host_name_for_tls_and_the_certificate(
    tls_receiver, dns
):
    course, teacher = course_with_staff()
    dns.names["lms.school.test"] = ["127.0.0.1"]
    url = f"https://lms.school.test:{tls_receiver.port}/hooks"
    _, tls_receiver.secret, delivery = one_delivery(course, teacher, url)

    webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status) == ("delivered", 200)
    assert tls_receiver.server_names == ["lms.school.test"]
    headers, _ = tls_receiver.requests[0]
    assert headers["Host"] == f"lms.school.test:{tls_receiver.port}"


def test_https_to_a_name_the_certificate_does_not_hold_is_a_failure_unsent(tls_receiver, dns):
    course, teacher = course_with_staff()
    dns.names["other.school.test"] = ["127.0.0.1"]
    url = f"https://other.school.test:{tls_receiver.port}/hooks"
    _, tls_receiver.secret, delivery = one_delivery(course, teacher, url)

    with pytest.raises(WebhookDeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert "Hostname mismatch" in delivery.last_error
    assert tls_receiver.requests == []


def test_a_name_that_now_resolves_inside_the_network_fails_at_delivery_unsent(
    receiver, dns, settings, monkeypatch
):
    settings.DEBUG = True  # plain http to a name
    settings.EDU_DL = {**settings.EDU_DL, "WEBHOOK_ALLOW_PRIVATE_HOSTS": False}
    course, teacher = course_with_staff()
    dns.names["hooks.school.test"] = [dns.public_address]
    url = f"http://hooks.school.test:{receiver.port}/hooks"
    _, receiver.secret, delivery = one_delivery(course, teacher, url)
    # DNS rebinding: the name subscribed as public now points at the receiver on this machine.
    dns.names["hooks.school.test"] = ["127.0.0.1"]
    connections = []
    monkeypatch.setattr(webhooks, "_open_socket", lambda **kwargs: connections.append(kwargs))

    with pytest.raises(WebhookDeliveryFailed, match="resolves to a loopback address"):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (connections, receiver.requests) == ([], [])
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.last_error == (
        "not sent: 'hooks.school.test' resolves to a loopback address (this machine); "
        + ONLY_PUBLIC
    )


def test_a_subscription_to_an_address_refused_since_fails_at_delivery_unsent(
    dns, settings, monkeypatch
):
    course, teacher = course_with_staff()
    settings.EDU_DL = {**settings.EDU_DL, "WEBHOOK_ALLOW_PRIVATE_HOSTS": True}
    _, _, delivery = one_delivery(course, teacher, "https://10.0.0.5/hooks")
    settings.EDU_DL = {**settings.EDU_DL, "WEBHOOK_ALLOW_PRIVATE_HOSTS": False}
    connections = []
    monkeypatch.setattr(webhooks, "_open_socket", lambda **kwargs: connections.append(kwargs))

    with pytest.raises(WebhookDeliveryFailed, match=re.escape("10.0.0.5 is a private address")):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert connections == []
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.last_error == f"not sent: 10.0.0.5 is a private address; {ONLY_PUBLIC}"


def test_a_name_that_stopped_resolving_fails_at_delivery_unsent(dns):
    course, teacher = course_with_staff()
    _, _, delivery = one_delivery(course, teacher, "https://hooks.school.example.com/edu")
    dns.names["hooks.school.example.com"] = []

    with pytest.raises(WebhookDeliveryFailed, match="does not resolve"):
        webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, None)
    assert delivery.last_error == (
        "not sent: 'hooks.school.example.com' does not resolve to any address "
        "(Name or service not known)"
    )


def test_the_last_attempt_marks_the_delivery_failed_and_raises_no_more(receiver):
    course, teacher = course_with_staff()
    _, receiver.secret, delivery = one_delivery(course, teacher, receiver.url)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS - 1)
    receiver.status = 500

    failed = webhook_deliver(delivery_id=delivery.pk)
    webhook_deliver(delivery_id=delivery.pk)

    assert (failed.status, failed.attempts, failed.response_status) == ("failed", MAX_ATTEMPTS, 500)
    assert failed.next_attempt_at is None
    assert len(receiver.requests) == 1


def test_the_delivery_task_retries_with_exponential_backoff_until_the_last_attempt():
    task = current_app.tasks[DELIVER]

    assert WebhookDeliveryFailed in task.autoretry_for
    assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter) == (60, 3600, True)
    assert task.max_retries == MAX_ATTEMPTS - 1 == 8
    assert task.ignore_result is True


def test_the_task_sends_through_the_service_and_skips_a_vanished_delivery(receiver):
    course, teacher = course_with_staff()
    _, receiver.secret, delivery = one_delivery(course, teacher, receiver.url)

    webhook_deliver_task(delivery.pk)
    webhook_deliver_task(delivery.pk + 1000)

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert len(receiver.requests) == 1


def test_a_delivery_of_a_cancelled_subscription_is_failed_unsent(receiver):
    course, teacher = course_with_staff()
    subscription, receiver.secret, delivery = one_delivery(course, teacher, receiver.url)
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)

    webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert receiver.requests == []


def test_the_sweep_sends_again_deliveries_whose_message_was_lost(sent):
    course, teacher = course_with_staff()
    _, _, lost = one_delivery(course, teacher, "https://hooks.example.com/")
    (fresh,) = webhook_event(course_id=course.pk, event=GRADE, payload={})
    later = timezone.now() + RESEND_AFTER + timedelta(seconds=1)
    WebhookDelivery.objects.filter(pk=fresh.pk).update(next_attempt_at=later + timedelta(hours=1))
    sent.clear()

    count = webhook_deliveries_send_due(now=later)
    again = webhook_deliveries_send_due(now=later)

    lost.refresh_from_db()
    assert (count, again) == (1, 0)
    assert sent == [(DELIVER, [lost.pk])]
    assert lost.next_attempt_at == later + RESEND_AFTER


def test_signatures_verify_only_with_the_secret_the_body_and_a_recent_timestamp():
    body = webhook_body({"b": 1, "a": "é"})
    signature = webhook_signature("s3cret", 1_700_000_000, body)

    assert body == '{"a":"é","b":1}'.encode()
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    assert webhook_verify("s3cret", "1700000000", body, signature, now=1_700_000_100)
    assert webhook_verify("s3cret", "1700000000", body.decode(), signature, now=1_700_000_000)
    assert not webhook_verify("other", "1700000000", body, signature, now=1_700_000_000)
    assert not webhook_verify("s3cret", "1700000001", body, signature, now=1_700_000_000)
    assert not webhook_verify("s3cret", "1700000000", body + b" ", signature, now=1_700_000_000)
    assert not webhook_verify("s3cret", "1700000000", body, signature, now=1_700_000_301)
    assert not webhook_verify("s3cret", "soon", body, signature, now=1_700_000_000)


# --- grade.released ------------------------------------------------------------------------------


@dataclass
class Quiz:
    course: Course
    teacher: object
    assessment: Assessment
    choice: Item  # graded by rule at submission
    essay: Item  # graded by a model or a teacher
    student: object
    subscription: WebhookSubscription


def quiz_with_subscription(*, hold_until=None) -> Quiz:
    course, teacher = course_with_staff()
    choice = ItemFactory(course=course, single_choice=True)
    essay = ItemFactory(course=course)
    assessment = AssessmentFactory(
        course=course,
        items=[choice, essay],
        is_published=True,
        due_at=hold_until,
        hold_grades_until_due=hold_until is not None,
    )
    subscription, _ = subscribe(course, teacher, events=[GRADE])
    student = EnrollmentFactory(course=course).user
    return Quiz(course, teacher, assessment, choice, essay, student, subscription)


def test_a_rule_grade_at_submission_is_released_to_the_webhooks(
    sent, django_capture_on_commit_callbacks
):
    quiz = quiz_with_subscription()
    answers = {quiz.choice.pk: "a", quiz.essay.pk: "Blue."}

    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(
            student=quiz.student, assessment=quiz.assessment, answers=answers
        )

    response = Response.objects.get(submission=submission, item=quiz.choice)
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["data"] == {
        "response": response.pk,
        "submission": submission.pk,
        "assessment": quiz.assessment.pk,
        "item": quiz.choice.pk,
        "student": quiz.student.username,
        "score": 1.0,
        "min_score": 0.0,
        "max_score": 1.0,
        "grade_source": "rule",
        "released_at": json.loads(json.dumps(response.graded_at, cls=DjangoJSONEncoder)),
    }
    assert (delivery.event, delivery.payload["course"]) == (GRADE, quiz.course.slug)
    assert (DELIVER, [delivery.pk]) in sent


def test_a_teachers_override_releases_the_grade_to_the_webhooks(
    sent, django_capture_on_commit_callbacks
):
    quiz = quiz_with_subscription()
    submission = submission_create(
        student=quiz.student, assessment=quiz.assessment, answers={quiz.essay.pk: "Blue."}
    )
    essay_response = Response.objects.get(submission=submission, item=quiz.essay)
    WebhookDelivery.objects.all().delete()  # the empty choice answer's rule grade
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response_override(response=essay_response, actor=quiz.teacher, score=0.5)

    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["data"]["response"] == essay_response.pk
    assert (delivery.payload["data"]["score"], delivery.payload["data"]["grade_source"]) == (
        0.5,
        "teacher",
    )
    assert (DELIVER, [delivery.pk]) in sent


def test_a_grade_held_until_the_due_date_is_sent_at_the_due_date(
    receiver, sent, django_capture_on_commit_callbacks
):
    due = timezone.now() + timedelta(days=2)
    quiz = quiz_with_subscription(hold_until=due)
    receiver.secret = quiz.subscription.secret
    WebhookSubscription.objects.filter(pk=quiz.subscription.pk).update(url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        submission_create(
            student=quiz.student, assessment=quiz.assessment, answers={quiz.choice.pk: "a"}
        )

    # The choice graded right, the empty essay its min score: both by rule, both held.
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [d.payload["data"]["item"] for d in deliveries] == [quiz.choice.pk, quiz.essay.pk]
    assert [d.next_attempt_at for d in deliveries] == [due, due]
    assert DELIVER not in [name for name, _ in sent]
    # Sent early all the same (a stray message): it waits, unsent.
    webhook_deliver(delivery_id=deliveries[0].pk)
    deliveries[0].refresh_from_db()
    assert (deliveries[0].status, deliveries[0].attempts, receiver.requests) == ("pending", 0, [])
    assert webhook_deliveries_send_due() == 0

    quiz.assessment.due_at = timezone.now() - timedelta(seconds=1)
    quiz.assessment.save(update_fields=["due_at"])
    assert webhook_deliveries_send_due(now=due) == 2
    assert sent[-2:] == [(DELIVER, [deliveries[0].pk]), (DELIVER, [deliveries[1].pk])]
    for delivery in deliveries:
        webhook_deliver(delivery_id=delivery.pk)

    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert receiver.verified == [True, True]


def test_a_models_grade_released_by_the_policy_goes_to_the_webhooks(
    sent, django_capture_on_commit_callbacks
):
    texts, scores = photosynthesis_answers()
    grader = train_grader(
        texts,
        scores,
        list(range(len(texts))),
        min_score=0.0,
        max_score=1.0,
        reference_answer=PHOTOSYNTHESIS_REFERENCE,
    )
    quiz = make_quiz(
        items=[
            {
                "title": "Photosynthesis",
                "prompt": PHOTOSYNTHESIS_QUESTION,
                "reference_answer": PHOTOSYNTHESIS_REFERENCE,
                "release_min_qwk": 0.5,
                "release_min_confidence": 0.5,
            }
        ]
    )
    activate_grader(grader, item=quiz.items[0])
    subscribe(quiz.course, quiz.teacher, events=[GRADE])
    (response,) = submit(quiz, new_student(quiz.course, 0), {quiz.items[0]: GOOD_ANSWER})
    assert WebhookDelivery.objects.count() == 0  # pending: nothing released yet
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        responses_grade_by_model(response_ids=[response.pk])

    response.refresh_from_db()
    delivery = WebhookDelivery.objects.get()
    assert response.released is True
    assert (delivery.payload["data"]["response"], delivery.payload["data"]["score"]) == (
        response.pk,
        response.score,
    )
    assert delivery.payload["data"]["grade_source"] == "model"
    assert (DELIVER, [delivery.pk]) in sent


# --- training.finished ---------------------------------------------------------------------------


@pytest.fixture
def kt_course_with_subscription():
    course = make_kt_course()
    teacher = course.enrollments.get(role="teacher").user
    subscribe(course, teacher, events=[TRAINING])
    return course


def test_a_succeeded_run_sends_training_finished_with_its_activated_version(
    kt_course_with_subscription, sent, django_capture_on_commit_callbacks
):
    course = kt_course_with_subscription
    run = training_request(kind="kt", course=course, params=FAST)

    with django_capture_on_commit_callbacks(execute=True):
        training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    delivery = WebhookDelivery.objects.get()
    data = delivery.payload["data"]
    assert (delivery.event, delivery.payload["course"]) == (TRAINING, course.slug)
    assert (data["run"], data["kind"], data["scope"], data["status"]) == (
        run.pk,
        "kt",
        f"course:{course.pk}",
        "succeeded",
    )
    assert (data["version"], data["activated_version"], data["error"]) == (1, 1, "")
    assert 0.0 <= data["metrics"]["val_auc"] <= 1.0
    assert data["metrics"]["epochs_run"] == 2
    assert (DELIVER, [delivery.pk]) in sent


def test_a_failed_run_sends_training_finished_and_a_cancelled_one_nothing(
    kt_course_with_subscription, sent
):
    course = kt_course_with_subscription
    cancelled = training_request(kind="kt", course=course, params=FAST)
    TrainingRun.objects.filter(pk=cancelled.pk).update(cancel_requested=True)
    training_run_execute(run_id=cancelled.pk)
    assert WebhookDelivery.objects.count() == 0
    bad = training_request(
        kind="kt", course=course, params={"model": "dkt-rasch", "model_config": {"hidden": 3}}
    )

    training_run_execute(run_id=bad.pk)

    data = WebhookDelivery.objects.get().payload["data"]
    assert (data["run"], data["status"]) == (bad.pk, "failed")
    assert "unknown option(s) for DKTRaschConfig: hidden" in data["error"]
    assert (data["version"], data["activated_version"], data["metrics"]) == (None, None, {})


def test_a_run_the_sweeper_fails_sends_training_finished(kt_course_with_subscription, sent):
    course = kt_course_with_subscription
    run = training_request(kind="kt", course=course)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(days=1)
    )

    training_runs_sweep()

    data = WebhookDelivery.objects.get().payload["data"]
    assert (data["run"], data["status"]) == (run.pk, "failed")
    assert "the worker stopped responding" in data["error"]
