"""Names and Role Provisioning: the context's members, read from the simulator, become users
and enrollments of the course."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from edu_dl.lti.models import Context, LtiUser
from edu_dl.lti.services.roster import RosterSync, lti_roster_sync
from edu_dl.lti.tasks import roster_sync_task
from edu_dl.models import Enrollment
from edu_dl.services.errors import ValidationFailed
from tests.lti.simulator import INSTRUCTOR, LEARNER, MENTOR, TEACHING_ASSISTANT, LaunchSpec, Person

User = get_user_model()

pytestmark = pytest.mark.django_db

TARA = Person(sub="t-1", roles=[INSTRUCTOR], given_name="Tara", family_name="Ng")


def member(user_id: str, roles: list[str], **fields) -> dict:
    return {"user_id": user_id, "roles": roles, "status": "Active", **fields}


@pytest.fixture
def context(browser, simulator):
    """The context of Tara's launch, which announced its roster service."""
    browser.launch(LaunchSpec(person=TARA))
    simulator.members = [
        member("t-1", [INSTRUCTOR], given_name="Tara", family_name="Ng"),
        member("s-1", [LEARNER], given_name="Sam", family_name="Ode", email="sam@school.example"),
        member("s-2", [LEARNER], name="Kim Park"),
        member("ta-1", [INSTRUCTOR, TEACHING_ASSISTANT], given_name="Tom"),
        member("m-1", [MENTOR]),
        member("gone", [LEARNER], status="Deleted"),
    ]
    return Context.objects.get()


def roles() -> dict[str, str]:
    return dict(
        Enrollment.objects.filter(course__lti_contexts__isnull=False).values_list(
            "external_id", "role"
        )
    )


def test_the_roster_makes_users_and_enrollments_for_the_active_members(context, simulator):
    result = lti_roster_sync(context=context)

    assert result == RosterSync(
        members=6, users_created=3, enrollments_created=3, roles_changed=0, skipped=2
    )
    assert roles() == {
        "t-1": Enrollment.Role.TEACHER,
        "s-1": Enrollment.Role.STUDENT,
        "s-2": Enrollment.Role.STUDENT,
        "ta-1": Enrollment.Role.ASSISTANT,
    }
    sam = LtiUser.objects.get(sub="s-1").user
    assert (sam.first_name, sam.last_name, sam.email) == ("Sam", "Ode", "sam@school.example")
    assert LtiUser.objects.get(sub="s-2").user.first_name == "Kim Park"
    assert not LtiUser.objects.filter(sub__in=["m-1", "gone"]).exists()
    assert [r["scope"] for r in simulator.token_requests] == [
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
    ]
    context.refresh_from_db()
    assert context.roster_synced_at is not None


def test_a_second_sync_changes_only_what_changed(context, simulator):
    lti_roster_sync(context=context)
    simulator.members[1] = member("s-1", [TEACHING_ASSISTANT])

    result = lti_roster_sync(context=context)

    assert (result.users_created, result.enrollments_created, result.roles_changed) == (0, 0, 1)
    assert roles()["s-1"] == Enrollment.Role.ASSISTANT
    assert User.objects.count() == 4


def test_the_task_takes_the_context_id(context):
    assert roster_sync_task.apply(args=[context.pk]).get() == 6
    assert Enrollment.objects.count() == 4


def test_a_context_without_roster_service_cannot_sync(context):
    Context.objects.update(memberships_url="")
    context.refresh_from_db()

    with pytest.raises(ValidationFailed):
        lti_roster_sync(context=context)

    assert Enrollment.objects.count() == 1
