"""The tool's keys (JWKS endpoint, command, admin) and the admin of platform registrations."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from edu_dl.lti.models import Context, GradeSync, LtiUser, Platform, ResourceLink, ToolKey
from edu_dl.lti.services.keys import tool_key_generate, tool_keys_retire
from tests.factories import CourseFactory

User = get_user_model()

pytestmark = pytest.mark.django_db

PRIVATE_JWK_FIELDS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_jwks_endpoint_publishes_the_active_public_keys_newest_first(client):
    old, new = tool_key_generate(), tool_key_generate()
    retired = tool_key_generate()
    tool_keys_retire(keys=[retired])

    response = client.get("/lti/jwks/")

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [key["kid"] for key in keys] == [new.kid, old.kid]
    assert all(key.keys().isdisjoint(PRIVATE_JWK_FIELDS) for key in keys)
    assert {(key["kty"], key["alg"], key["use"]) for key in keys} == {("RSA", "RS256", "sig")}
    assert "max-age=300" in response["Cache-Control"]


def test_a_published_key_checks_what_its_private_key_signs():
    key = tool_key_generate()

    token = jwt.encode({"x": 1}, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})

    assert jwt.decode(token, jwt.PyJWK(key.public_jwk).key, algorithms=["RS256"]) == {"x": 1}


def test_the_command_generates_a_key_and_can_retire_the_others():
    old = tool_key_generate()
    output = StringIO()

    call_command("lti_generate_key", "--retire-others", stdout=output)

    new = ToolKey.objects.exclude(pk=old.pk).get()
    assert output.getvalue() == f"generated key {new.kid}\nretired 1 older keys\n"
    assert list(ToolKey.objects.filter(is_active=True)) == [new]


def test_adding_a_key_in_the_admin_generates_one_and_never_shows_its_private_half(admin_client):
    response = admin_client.post("/admin/edu_dl_lti/toolkey/add/", {})

    key = ToolKey.objects.get()
    assert response.status_code == 302
    page = admin_client.get(f"/admin/edu_dl_lti/toolkey/{key.pk}/change/")
    assert page.status_code == 200
    assert key.kid in page.content.decode()
    assert "PRIVATE KEY" not in page.content.decode()


def test_the_admin_actions_generate_and_retire_keys(admin_client):
    key = tool_key_generate()

    admin_client.post(
        "/admin/edu_dl_lti/toolkey/",
        {"action": "generate_key", "_selected_action": [key.pk]},
    )
    admin_client.post(
        "/admin/edu_dl_lti/toolkey/", {"action": "retire_keys", "_selected_action": [key.pk]}
    )

    assert ToolKey.objects.count() == 2
    assert list(ToolKey.objects.filter(is_active=False)) == [key]


def test_a_platform_is_registered_in_the_admin_and_its_page_shows_the_tool_endpoints(
    admin_client,
):
    response = admin_client.post(
        "/admin/edu_dl_lti/platform/add/",
        {
            "name": "Moodle",
            "is_active": "on",
            "issuer": "https://moodle.school.example",
            "client_id": "abc123",
            "deployment_ids": '["1"]',
            "auth_login_url": "https://moodle.school.example/mod/lti/auth.php",
            "auth_token_url": "https://moodle.school.example/mod/lti/token.php",
            "auth_audience": "",
            "key_set_url": "https://moodle.school.example/mod/lti/certs.php",
            "key_set": "null",
        },
    )

    platform = Platform.objects.get()
    assert response.status_code == 302
    assert (platform.issuer, platform.client_id, platform.deployment_ids) == (
        "https://moodle.school.example",
        "abc123",
        ["1"],
    )
    page = admin_client.get(f"/admin/edu_dl_lti/platform/{platform.pk}/change/").content.decode()
    for url in ("/lti/login/", "/lti/launch/", "/lti/jwks/"):
        assert f"http://testserver{url}" in page


def test_a_platform_without_keys_or_with_malformed_deployments_is_refused(admin_client):
    response = admin_client.post(
        "/admin/edu_dl_lti/platform/add/",
        {
            "name": "Canvas",
            "issuer": "https://canvas.instructure.com",
            "client_id": "1000",
            "deployment_ids": '"1"',
            "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
            "key_set_url": "",
            "key_set": "null",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"key_set_url", "deployment_ids"}
    assert Platform.objects.count() == 0


@pytest.mark.parametrize("model", [Context, ResourceLink, LtiUser, GradeSync])
def test_the_mappings_and_the_grade_log_are_read_only_in_the_admin(admin_client, model):
    url = f"/admin/edu_dl_lti/{model._meta.model_name}/"

    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url + "add/").status_code == 403


def test_the_roster_sync_action_sends_the_contexts_with_a_roster_service(admin_client, sent):
    course = CourseFactory()
    platform = Platform.objects.create(
        name="LMS",
        issuer="https://lms.example",
        client_id="c",
        auth_login_url="https://lms.example/auth",
        auth_token_url="https://lms.example/token",
        key_set_url="https://lms.example/jwks",
        deployment_ids=["1"],
    )
    with_roster = Context.objects.create(
        platform=platform, context_id="a", course=course, memberships_url="https://lms.example/m"
    )
    without = Context.objects.create(platform=platform, context_id="b", course=course)

    admin_client.post(
        "/admin/edu_dl_lti/context/",
        {"action": "sync_roster", "_selected_action": [with_roster.pk, without.pk]},
    )

    assert sent == [("edu_dl.lti.roster_sync", [with_roster.pk])]
