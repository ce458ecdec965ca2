"""statements_store: the mapping rules that the endpoint tests do not reach, called directly."""

from __future__ import annotations

import pytest

from edu_dl.models import Enrollment, Interaction
from edu_dl.services.errors import PermissionDenied, ValidationFailed
from edu_dl.xapi.models import Statement
from edu_dl.xapi.services import statements_store
from edu_dl.xapi.validation import StatementInvalid, statement_check
from tests.factories import CourseFactory, EnrollmentFactory, ItemFactory, UserFactory
from tests.xapi.conftest import ATTEMPTED, ITEM_IRI, statement

BASE = "https://lms.example/xapi/activities/"


def store(user, *statements, **options):
    return statements_store(statements=list(statements), user=user, activity_base=BASE, **options)


def test_an_external_id_in_two_of_the_senders_courses_needs_the_course_in_the_context(world):
    twin = CourseFactory(slug="physics-2")
    EnrollmentFactory(user=world.teacher, course=twin, role=Enrollment.Role.TEACHER)
    EnrollmentFactory(user=world.student, course=twin)
    twin_item = ItemFactory(course=twin, external_id=ITEM_IRI)
    in_context = statement(
        context={"contextActivities": {"parent": {"id": f"{BASE}courses/physics-2"}}}
    )

    stored = store(world.teacher, statement(), in_context)

    assert stored.outcomes == ["unknown_activity", "interaction"]
    assert Statement.objects.get(outcome="unknown_activity").note == (
        "2 activities of your courses have this IRI; name the course in the statement's context"
    )
    assert Interaction.objects.get().item == twin_item


def test_only_our_own_host_makes_an_own_iri(world):
    foreign = statement(activity=f"https://other.example/xapi/activities/items/{world.item.pk}")

    stored = store(world.teacher, foreign)

    assert stored.outcomes == ["unknown_activity"]


def test_a_statement_about_a_whole_course_is_kept_with_its_course(world):
    stored = store(world.student, statement(verb=ATTEMPTED, activity=f"{BASE}courses/physics"))

    assert stored.outcomes == ["ignored_verb"]
    row = Statement.objects.get()
    assert (row.course, row.student) == (world.course, world.student)


def test_a_group_or_an_openid_is_an_unknown_actor(world):
    group = {"objectType": "Group", "member": [{"mbox": "mailto:ada@example.com"}]}

    stored = store(
        world.teacher,
        statement(actor=group),
        statement(actor={"openid": "https://id.example/ada"}),
    )

    assert stored.outcomes == ["unknown_actor", "unknown_actor"]
    assert list(Statement.objects.order_by("pk").values_list("actor_key", flat=True)) == [
        "group:anonymous",
        "openid:https://id.example/ada",
    ]


def test_an_email_shared_by_two_students_names_no_one(world):
    twin = UserFactory(username="ada2", email="ada@example.com")
    EnrollmentFactory(user=twin, course=world.course)

    stored = store(world.teacher, statement(actor={"mbox": "mailto:ada@example.com"}))

    assert stored.outcomes == ["unknown_actor"]
    assert Statement.objects.get().note == "the actor matches 2 students of physics"


def test_a_naive_timestamp_is_taken_as_utc(world):
    store(world.teacher, statement(timestamp="2025-01-05T10:00:00"))

    assert Interaction.objects.get().timestamp.isoformat() == "2025-01-05T10:00:00+00:00"


def test_a_statement_without_timestamp_is_timed_when_stored(world):
    body = statement()
    del body["timestamp"]

    store(world.teacher, body)

    row = Statement.objects.get()
    assert Interaction.objects.get().timestamp == row.stored_at


def test_the_course_less_statements_of_a_student_are_refused(world):
    with pytest.raises(PermissionDenied):
        store(world.student, statement(activity="https://elsewhere.example/1"))

    assert not Statement.objects.exists()


def test_an_empty_request_is_refused(world):
    with pytest.raises(ValidationFailed, match="send at least one statement"):
        store(world.teacher)


def test_the_summary_counts_outcomes(world):
    stored = store(
        world.teacher, statement(), statement(), statement(activity="https://elsewhere.example/1")
    )

    assert stored.summary == {"interaction": 2, "unknown_activity": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "attachments": [
                    {
                        "usageType": "https://x.example/u",
                        "display": {"en": "a"},
                        "contentType": "text/plain",
                        "length": 1,
                        "sha2": "ab",
                    }
                ]
            },
            "attachments[0].fileUrl: is required: this endpoint takes JSON bodies, not multipart "
            "ones",
        ),
        ({"context": ["not", "an", "object"]}, "context: must be a JSON object"),
        (
            {"object": {"objectType": "Person", "id": ITEM_IRI}},
            "object: objectType must be one of Activity, Agent, Group, StatementRef, SubStatement; "
            "an Agent has exactly one of mbox, mbox_sha1sum, openid, account",
        ),
        ({"actor": {"mbox": "ada@example.com"}}, "actor.mbox: Invalid `mailto:email` value"),
        ({"version": "2.0.0"}, "version: String should match pattern '^1\\.0\\.[0-9]+$'"),
        ({"verb": {"id": "https://x.example/" + "v" * 1100}}, "verb.id: is longer than 1024 bytes"),
    ],
)
def test_statement_check_names_the_property_and_the_problem(change, message):
    with pytest.raises(StatementInvalid) as refused:
        statement_check({**statement(), **change}, index=0)

    assert str(refused.value) == message
