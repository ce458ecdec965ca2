"""POST / PUT / GET /xapi/statements and GET /xapi/about: what statements become, who may send
them, and the problems that refuse them (nothing stored then)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from oauth2_provider.models import Application
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from edu_dl.models import ApiClient, Enrollment, Interaction, ResourceInteraction
from edu_dl.services.mastery import MASTERY_UPDATE_TASK_NAME
from edu_dl.services.recommending import REFRESH_STUDENT_TASK_NAME
from edu_dl.xapi.models import Statement
from tests.factories import CourseFactory, EnrollmentFactory, ItemFactory, UserFactory
from tests.xapi.conftest import (
    ANSWERED,
    ATTEMPTED,
    COMPLETED,
    EXPERIENCED,
    RESOURCE_IRI,
    VERSION,
    VOIDED,
    post,
    statement,
)

PROBLEM = "application/problem+json"


def outcomes(response) -> dict[str, int]:
    return json.loads(response["X-Edu-DL-Statement-Outcomes"])


def void(target_id: str, **extra) -> dict:
    return {
        "actor": {"mbox": "mailto:teacher@example.com"},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": target_id},
        **extra,
    }


def nothing_stored() -> bool:
    return (
        not Statement.objects.exists()
        and not Interaction.objects.exists()
        and not ResourceInteraction.objects.exists()
    )


# --- What statements become ----------------------------------------------------------------------


def test_an_answer_becomes_an_interaction_and_updates_mastery(
    world, api, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api(world.student), statement())

    assert response.status_code == 200
    assert response["X-Experience-API-Version"] == "1.0.3"
    assert outcomes(response) == {"interaction": 1}
    [statement_id] = response.json()
    interaction = Interaction.objects.get()
    assert interaction.course == world.course
    assert interaction.student == world.student
    assert interaction.item == world.item
    assert interaction.skill_ids == [world.skill.pk]
    assert interaction.correct is True
    assert interaction.source == Interaction.Source.XAPI
    assert interaction.external_id == statement_id
    assert interaction.duration_s == 45
    assert interaction.timestamp.isoformat() == "2025-01-05T10:00:00+00:00"
    row = Statement.objects.get()
    assert str(row.statement_id) == statement_id
    assert row.outcome == Statement.Outcome.INTERACTION
    assert row.interaction == interaction
    assert row.student == world.student
    assert row.course == world.course
    assert row.authority_user == world.student
    assert row.actor_key == "account:https://lms.example ada"
    assert sent == [(MASTERY_UPDATE_TASK_NAME, [world.student.pk, world.course.pk])]


@pytest.mark.parametrize(("scaled", "correct"), [(0.5, True), (0.49, False), (-1, False)])
def test_without_success_a_scaled_score_of_one_half_is_correct(world, api, scaled, correct):
    body = statement(result={"score": {"scaled": scaled}})

    response = post(api(world.teacher), body)

    assert response.status_code == 200
    assert Interaction.objects.get().correct is correct


def test_success_decides_over_the_score(world, api):
    body = statement(result={"success": False, "score": {"scaled": 0.9}})

    post(api(world.teacher), body)

    assert Interaction.objects.get().correct is False


def test_an_answer_without_success_or_score_is_kept_but_not_recorded(world, api):
    body = statement(result={"completion": True})

    response = post(api(world.teacher), body)

    assert outcomes(response) == {"ignored_verb": 1}
    assert Statement.objects.get().note == (
        "an answer needs result.success or result.score.scaled to be recorded"
    )
    assert not Interaction.objects.exists()


def test_a_completed_resource_becomes_a_resource_event_and_refreshes_suggestions(
    world, api, sent, django_capture_on_commit_callbacks
):
    body = statement(verb=COMPLETED, activity=RESOURCE_IRI)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(api(world.student), body)

    assert response.status_code == 200
    assert outcomes(response) == {"resource_event": 1}
    event = ResourceInteraction.objects.get()
    assert (event.student, event.resource, event.event) == (
        world.student,
        world.resource,
        ResourceInteraction.Event.COMPLETED,
    )
    assert event.external_id == response.json()[0]
    assert Statement.objects.get().resource_event == event
    assert sent == [(REFRESH_STUDENT_TASK_NAME, [world.student.pk, world.course.pk])]


def test_an_experienced_resource_is_viewed(world, api, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post(api(world.student), statement(verb=EXPERIENCED, activity=RESOURCE_IRI))

    assert ResourceInteraction.objects.get().event == ResourceInteraction.Event.VIEWED
    assert sent == []


def test_an_unknown_activity_is_stored_and_reported(world, api):
    body = statement(activity="https://elsewhere.example/quiz/7")

    response = post(api(world.teacher), body)

    assert response.status_code == 200
    assert outcomes(response) == {"unknown_activity": 1}
    row = Statement.objects.get()
    assert (row.outcome, row.course, row.student) == ("unknown_activity", None, None)
    assert row.note == "no item or resource of your courses has this activity IRI"
    assert row.raw["object"]["id"] == "https://elsewhere.example/quiz/7"
    assert not Interaction.objects.exists()


def test_an_unknown_actor_is_stored_with_its_course(world, api):
    body = statement(actor={"account": {"homePage": "https://lms.example", "name": "nobody"}})

    response = post(api(world.teacher), body)

    assert outcomes(response) == {"unknown_actor": 1}
    row = Statement.objects.get()
    assert (row.course, row.student) == (world.course, None)
    assert row.note == "the actor is not a student of physics"
    assert not Interaction.objects.exists()


def test_a_teacher_as_actor_is_an_unknown_actor(world, api):
    body = statement(actor={"account": {"homePage": "https://lms.example", "name": "teacher"}})

    response = post(api(world.teacher), body)

    assert outcomes(response) == {"unknown_actor": 1}


def test_another_verb_is_stored_as_ignored(world, api):
    response = post(api(world.teacher), statement(verb=ATTEMPTED))

    assert outcomes(response) == {"ignored_verb": 1}
    assert Statement.objects.get().note == f"the verb {ATTEMPTED} is not recorded for items"
    assert not Interaction.objects.exists()


def test_a_batch_reports_each_outcome(world, api):
    batch = [
        statement(),
        statement(verb=COMPLETED, activity=RESOURCE_IRI),
        statement(activity="https://elsewhere.example/1"),
        statement(verb=ATTEMPTED),
    ]

    response = post(api(world.teacher), batch)

    assert response.status_code == 200
    assert len(response.json()) == 4
    assert outcomes(response) == {
        "ignored_verb": 1,
        "interaction": 1,
        "resource_event": 1,
        "unknown_activity": 1,
    }
    assert [str(row.statement_id) for row in Statement.objects.order_by("pk")] == response.json()


def test_our_own_activity_iris_name_items_and_resources(world, api):
    base = "https://testserver/xapi/activities"
    batch = [
        statement(activity=f"{base}/items/{world.item.pk}"),
        statement(verb=COMPLETED, activity=f"{base}/resources/{world.resource.pk}"),
    ]

    response = post(api(world.teacher), batch)

    assert outcomes(response) == {"interaction": 1, "resource_event": 1}


def test_a_mailto_or_its_hash_names_the_student_by_email(world, api):
    digest = hashlib.sha1(b"mailto:Ada@Example.com", usedforsecurity=False).hexdigest()
    batch = [
        statement(actor={"mbox": "mailto:ada@example.com"}),
        statement(actor={"mbox_sha1sum": digest}),
    ]

    response = post(api(world.teacher), batch)

    assert outcomes(response) == {"interaction": 2}
    assert set(Interaction.objects.values_list("student", flat=True)) == {world.student.pk}


def test_the_context_names_the_course_of_an_unknown_activity(world, api):
    body = statement(
        activity="https://elsewhere.example/video/3",
        context={"extensions": {"https://edu-dl.example/xapi/course": "physics"}},
    )
    by_iri = statement(
        activity="https://elsewhere.example/video/4",
        context={
            "contextActivities": {
                "grouping": [{"id": "https://testserver/xapi/activities/courses/physics"}]
            }
        },
    )

    response = post(api(world.student), [body, by_iri])

    assert outcomes(response) == {"unknown_activity": 2}
    assert (
        list(Statement.objects.values_list("course", "student"))
        == [(world.course.pk, world.student.pk)] * 2
    )


def test_an_item_of_a_course_the_sender_cannot_open_is_an_unknown_activity(world, api):
    chemistry = CourseFactory(slug="chemistry")
    EnrollmentFactory(user=world.student, course=chemistry)
    ItemFactory(course=chemistry, external_id="https://quiz.example/items/secret")

    response = post(api(world.teacher), statement(activity="https://quiz.example/items/secret"))

    assert outcomes(response) == {"unknown_activity": 1}
    assert Statement.objects.get().course is None
    assert not Interaction.objects.exists()


def test_a_future_timestamp_is_refused(world, api):
    response = post(api(world.teacher), statement(timestamp="2999-01-01T00:00:00Z"))

    assert response.status_code == 400
    assert "is in the future" in response.json()["detail"]
    assert nothing_stored()


# --- Idempotency and voiding ---------------------------------------------------------------------


def test_a_repeated_statement_is_accepted_and_changes_nothing(
    world, api, sent, django_capture_on_commit_callbacks
):
    body = statement(id=str(uuid.uuid4()))
    client = api(world.student)
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, body)
        again = post(client, body)

    assert again.status_code == 200
    assert again.json() == first.json() == [body["id"]]
    assert outcomes(again) == {"already_stored": 1}
    assert Statement.objects.count() == 1
    assert Interaction.objects.count() == 1
    assert len(sent) == 1


def test_the_same_id_with_other_content_is_a_conflict(world, api):
    body = statement(id=str(uuid.uuid4()))
    client = api(world.student)
    post(client, body)

    response = post(client, {**body, "result": {"success": False}})

    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == (
        f"statement 0: statement {body['id']} is stored already with other content"
    )
    assert Statement.objects.get().raw == body
    assert Interaction.objects.get().correct is True


def test_the_same_id_twice_in_one_request_is_refused(world, api):
    body = statement(id=str(uuid.uuid4()))

    response = post(api(world.teacher), [body, body])

    assert response.status_code == 400
    assert (
        response.json()["detail"] == f"statement 1: id {body['id']} appears twice in this request"
    )
    assert nothing_stored()


def test_voiding_deletes_the_interaction_and_updates_mastery_again(
    world, api, sent, django_capture_on_commit_callbacks
):
    teacher = api(world.teacher)
    [answer_id] = post(api(world.student), statement()).json()
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = post(teacher, void(answer_id))

    assert response.status_code == 200
    assert outcomes(response) == {"voiding": 1}
    [voiding_id] = response.json()
    target = Statement.objects.get(statement_id=answer_id)
    assert target.voided is True
    assert str(target.voided_by) == voiding_id
    assert target.interaction is None
    assert "voided by" in target.note
    assert "was deleted" in target.note
    assert not Interaction.objects.exists()
    voiding = Statement.objects.get(statement_id=voiding_id)
    assert (voiding.outcome, voiding.course) == ("voiding", world.course)
    assert sent == [(MASTERY_UPDATE_TASK_NAME, [world.student.pk, world.course.pk])]
    # A voided statement is found only as a voided one.
    assert teacher.get(f"/xapi/statements?statementId={answer_id}", **VERSION).status_code == 404
    found = teacher.get(f"/xapi/statements?voidedStatementId={answer_id}", **VERSION)
    assert found.status_code == 200
    assert found.json()["id"] == answer_id


def test_voiding_a_resource_event_deletes_it(world, api):
    [event_id] = post(api(world.student), statement(verb=COMPLETED, activity=RESOURCE_IRI)).json()

    post(api(world.teacher), void(event_id))

    assert not ResourceInteraction.objects.exists()
    assert Statement.objects.get(statement_id=event_id).voided is True


def test_a_statement_and_its_voiding_in_one_request(world, api):
    answer = statement(id=str(uuid.uuid4()))

    response = post(api(world.teacher), [answer, void(answer["id"])])

    assert outcomes(response) == {"interaction": 1, "voiding": 1}
    assert not Interaction.objects.exists()
    assert Statement.objects.get(statement_id=answer["id"]).voided is True


def test_a_voiding_statement_cannot_be_voided(world, api):
    teacher = api(world.teacher)
    [answer_id] = post(teacher, statement()).json()
    [voiding_id] = post(teacher, void(answer_id)).json()

    response = post(teacher, void(voiding_id))

    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"statement 0: statement {voiding_id} voids another statement and cannot be voided"
    )
    assert Statement.objects.count() == 2


def test_a_student_cannot_void_their_answers(world, api):
    student = api(world.student)
    [answer_id] = post(student, statement()).json()

    response = post(student, void(answer_id))

    assert response.status_code == 404
    assert Statement.objects.count() == 1
    assert Interaction.objects.count() == 1


def test_voiding_an_unknown_statement_is_not_found(world, api):
    missing = str(uuid.uuid4())

    response = post(api(world.teacher), void(missing))

    assert response.status_code == 404
    assert response.json()["detail"] == f"statement 0: no statement {missing} that you may void"
    assert nothing_stored()


def test_a_voiding_statement_needs_a_statement_ref(world, api):
    response = post(api(world.teacher), statement(verb=VOIDED))

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "statement 0: object: a voiding statement's object must be a StatementRef"
    )


# --- Refused statements --------------------------------------------------------------------------


def _without(name: str) -> dict:
    body = statement()
    del body[name]
    return body


BAD_STATEMENTS = {
    "missing actor": (_without("actor"), "statement 0: actor: is required", "statements[0].actor"),
    "bad verb IRI": (
        {**statement(), "verb": {"id": "answered it"}},
        "statement 0: verb.id: 'answered it' is not a valid 'IRI'.",
        "statements[0].verb.id",
    ),
    "scaled score 2": (
        statement(result={"score": {"scaled": 2}}),
        "statement 0: result.score.scaled: Input should be less than or equal to 1",
        "statements[0].result.score.scaled",
    ),
    "unknown property": (
        statement(mood="happy"),
        "statement 0: mood: unknown property",
        "statements[0].mood",
    ),
    "two identifiers": (
        statement(actor={"mbox": "mailto:ada@example.com", "openid": "https://id.example/ada"}),
        "statement 0: actor: must be an Agent with exactly one of mbox, mbox_sha1sum, openid, "
        "account (or a Group with at most one of them)",
        "statements[0].actor",
    ),
    "bad duration": (
        statement(result={"success": True, "duration": "45 seconds"}),
        "statement 0: result.duration: must be an ISO 8601 duration",
        "statements[0].result.duration",
    ),
    "bad id": (
        statement(id="42"),
        "statement 0: id: must be a UUID (8-4-4-4-12 hexadecimal digits)",
        "statements[0].id",
    ),
    "numeric timestamp": (
        statement(timestamp=1736071200),
        "statement 0: timestamp: must be an ISO 8601 date and time",
        "statements[0].timestamp",
    ),
    "not an object": (
        "answered",
        "statement 0: a statement must be a JSON object",
        "statements[0]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_STATEMENTS))
def test_a_bad_statement_is_refused_with_its_problem(world, api, case):
    body, detail, field = BAD_STATEMENTS[case]

    response = post(api(world.teacher), [body] if isinstance(body, str) else body)

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response["X-Experience-API-Version"] == "1.0.3"
    problem = response.json()
    assert problem["detail"] == detail
    assert problem["errors"] == {field: [detail]}
    assert nothing_stored()


def test_one_bad_statement_refuses_the_whole_request(world, api):
    response = post(api(world.teacher), [statement(), statement(), _without("verb")])

    assert response.status_code == 400
    assert response.json()["detail"] == "statement 2: verb: is required"
    assert nothing_stored()


def test_malformed_json_is_refused(world, api):
    client = api(world.teacher)

    response = client.generic(
        "POST", "/xapi/statements", '{"actor": ', content_type="application/json", **VERSION
    )

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"].startswith("JSON parse error")
    assert nothing_stored()


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "the X-Experience-API-Version header is required"),
        (
            {"HTTP_X_EXPERIENCE_API_VERSION": "0.95"},
            "X-Experience-API-Version '0.95' is not supported: this store speaks 1.0.3 (any 1.0.x)",
        ),
    ],
)
def test_the_version_header_is_required(world, api, headers, detail):
    client = api(world.teacher)

    response = client.post("/xapi/statements", statement(), format="json", **headers)

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == detail
    assert response["X-Experience-API-Version"] == "1.0.3"
    assert nothing_stored()


@pytest.mark.parametrize("version", ["1.0.0", "1.0.3", "1.0"])
def test_every_1_0_version_is_accepted(world, api, version):
    client = api(world.teacher)

    response = client.post(
        "/xapi/statements", statement(), format="json", HTTP_X_EXPERIENCE_API_VERSION=version
    )

    assert response.status_code == 200


# --- Who may send and read -----------------------------------------------------------------------


def test_a_student_cannot_post_for_another_student(world, api):
    body = statement(actor={"account": {"homePage": "https://lms.example", "name": "bob"}})

    response = post(api(world.student), body)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "statement 0: you may send statements only about yourself in physics"
    )
    assert nothing_stored()


def test_a_student_cannot_store_statements_about_other_activities(world, api):
    response = post(api(world.student), statement(activity="https://elsewhere.example/1"))

    assert response.status_code == 403
    assert nothing_stored()


def test_someone_outside_the_course_learns_nothing_about_its_items(world, api):
    response = post(api(world.outsider), statement())

    assert response.status_code == 403
    assert "none of your courses' items or resources" in response.json()["detail"]
    assert nothing_stored()


def test_anonymous_requests_are_refused(world):
    response = post(APIClient(), statement())

    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert nothing_stored()


def test_a_drf_token_authenticates(world):
    token = Token.objects.create(user=world.teacher)
    client = APIClient()

    response = post(client, statement(), HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 200
    assert Statement.objects.get().authority_user == world.teacher


def _client_credentials_token(owner, scope: str, courses=()) -> str:
    secret = "a-client-secret-long-enough-to-be-real"
    application = Application.objects.create(
        name="Learning record store",
        user=owner,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
    )
    if courses:
        ApiClient.objects.create(application=application).courses.set(courses)
    response = APIClient().post(
        "/o/token/",
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_id": application.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_an_oauth_client_credentials_token_acts_as_its_owner(world):
    token = _client_credentials_token(world.teacher, "read write")
    client = APIClient()

    response = post(client, statement(), HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    assert outcomes(response) == {"interaction": 1}
    assert Statement.objects.get().authority_user == world.teacher
    listed = client.get("/xapi/statements", HTTP_AUTHORIZATION=f"Bearer {token}", **VERSION)
    assert len(listed.json()["statements"]) == 1


def test_a_read_only_oauth_token_cannot_post(world):
    token = _client_credentials_token(world.teacher, "read")

    response = post(APIClient(), statement(), HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 403
    assert nothing_stored()


def test_an_oauth_client_limited_to_other_courses_does_not_reach_this_one(world):
    other = CourseFactory(slug="other")
    EnrollmentFactory(user=world.teacher, course=other, role=Enrollment.Role.TEACHER)
    token = _client_credentials_token(world.teacher, "read write", courses=[other])

    response = post(APIClient(), statement(), HTTP_AUTHORIZATION=f"Bearer {token}")

    assert outcomes(response) == {"unknown_activity": 1}
    assert not Interaction.objects.exists()


# --- Reading statements back ---------------------------------------------------------------------


def test_put_stores_one_statement_under_its_id(world, api):
    statement_id = str(uuid.uuid4())
    client = api(world.student)

    response = client.put(
        f"/xapi/statements?statementId={statement_id}", statement(), format="json", **VERSION
    )

    assert response.status_code == 204
    assert response["X-Experience-API-Version"] == "1.0.3"
    assert str(Statement.objects.get().statement_id) == statement_id
    assert Interaction.objects.get().external_id == statement_id


def test_put_refuses_a_body_id_that_differs_or_no_statement_id(world, api):
    client = api(world.student)
    body = statement(id=str(uuid.uuid4()))

    differs = client.put(
        f"/xapi/statements?statementId={uuid.uuid4()}", body, format="json", **VERSION
    )
    missing = client.put("/xapi/statements", body, format="json", **VERSION)

    assert differs.status_code == 400
    assert differs.json()["detail"] == "the statement's id differs from the statementId parameter"
    assert missing.status_code == 400
    assert missing.json()["detail"] == "the statementId parameter is required"
    assert nothing_stored()


def test_get_one_statement_as_stored(world, api):
    body = statement(id=str(uuid.uuid4()))
    post(api(world.student), body)

    response = api(world.teacher).get(f"/xapi/statements?statementId={body['id']}", **VERSION)

    assert response.status_code == 200
    document = response.json()
    assert {key: document[key] for key in body} == body
    assert document["version"] == "1.0.0"
    assert document["stored"].endswith("Z")
    assert document["authority"] == {
        "objectType": "Agent",
        "account": {"homePage": "https://testserver/", "name": "ada"},
    }


def test_a_student_reads_only_their_own_statements(world, api):
    [peer_id] = post(
        api(world.teacher),
        statement(actor={"account": {"homePage": "https://lms.example", "name": "bob"}}),
    ).json()
    [own_id] = post(api(world.student), statement()).json()
    student = api(world.student)

    listed = student.get("/xapi/statements", **VERSION)
    peer = student.get(f"/xapi/statements?statementId={peer_id}", **VERSION)

    assert [document["id"] for document in listed.json()["statements"]] == [own_id]
    assert peer.status_code == 404
    assert peer.json()["detail"] == f"no statement {peer_id}"


def test_get_filters_and_pages(world, api):
    teacher = api(world.teacher)
    ids = post(
        teacher,
        [
            statement(),
            statement(verb=COMPLETED, activity=RESOURCE_IRI),
            statement(activity="https://elsewhere.example/1"),
        ],
    ).json()

    def listed(query: str) -> dict:
        response = teacher.get(f"/xapi/statements{query}", **VERSION)
        assert response.status_code == 200, response.content
        return response.json()

    assert [s["id"] for s in listed(f"?verb={ANSWERED}")["statements"]] == [ids[2], ids[0]]
    assert [s["id"] for s in listed(f"?activity={RESOURCE_IRI}")["statements"]] == [ids[1]]
    assert [s["id"] for s in listed("?ascending=true")["statements"]] == ids
    assert listed("?since=2999-01-01T00:00:00Z")["statements"] == []
    assert len(listed("?until=2999-01-01T00:00:00Z")["statements"]) == 3
    first = listed("?limit=2")
    assert [s["id"] for s in first["statements"]] == [ids[2], ids[1]]
    assert first["more"].startswith("/xapi/statements?")
    rest = listed(first["more"].removeprefix("/xapi/statements"))
    assert [s["id"] for s in rest["statements"]] == [ids[0]]
    assert rest["more"] == ""


@pytest.mark.parametrize(
    "query",
    [
        "?statementId=not-a-uuid",
        f"?statementId={uuid.uuid4()}&voidedStatementId={uuid.uuid4()}",
        f"?statementId={uuid.uuid4()}&verb={ANSWERED}",
        "?limit=-1",
        "?since=yesterday",
        "?agent=%7B%7D",
        "?ascending=maybe",
    ],
)
def test_bad_queries_are_refused(world, api, query):
    response = api(world.teacher).get(f"/xapi/statements{query}", **VERSION)

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def test_about_needs_no_sign_in_nor_version():
    response = APIClient().get("/xapi/about")

    assert response.status_code == 200
    assert response.json() == {"version": ["1.0.3"]}
    assert response["X-Experience-API-Version"] == "1.0.3"


def test_the_endpoints_are_in_the_openapi_schema(db):
    response = APIClient().get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert set(paths["/xapi/statements"]) == {"get", "post", "put"}
    assert "get" in paths["/xapi/about"]


def test_the_admin_lists_statements_read_only(world, api, client):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    post(api(world.student), statement())
    client.force_login(admin)

    listing = client.get("/admin/edu_dl_xapi/statement/")
    adding = client.get("/admin/edu_dl_xapi/statement/add/")

    assert listing.status_code == 200
    assert adding.status_code == 403
