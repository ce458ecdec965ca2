"""The platform simulator, its registration in the tool, and a browser that walks a launch."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import requests
from django.core.cache import cache
from django.test import Client

from edu_dl.lti.models import Platform
from edu_dl.lti.services.keys import tool_key_generate
from tests.lti.simulator import LaunchSpec, Simulator


@dataclass
class Form:
    action: str
    fields: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.action).path


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(action=values.get("action", ""), fields={}))
        elif tag == "input" and self.forms and values.get("type") == "hidden":
            self.forms[-1].fields[values["name"]] = values.get("value", "")


def form_of(html: str) -> Form:
    """The first form of an HTML page, with its hidden fields."""
    parser = _FormParser()
    parser.feed(html)
    assert parser.forms, html[:500]
    return parser.forms[0]


class Browser:
    """The person's browser: it goes from the LMS to the tool's login, to the LMS's
    authorisation endpoint (over HTTP) and posts the signed launch back to the tool."""

    def __init__(self, client: Client, simulator: Simulator) -> None:
        self.client = client
        self.simulator = simulator

    def login(self, spec: LaunchSpec):
        return self.client.get("/lti/login/", self.simulator.login_parameters(spec), secure=True)

    def authorize(self, login_response) -> Form:
        assert login_response.status_code == 302, login_response.content
        answer = requests.get(login_response["Location"], timeout=10)
        assert answer.status_code == 200, answer.text
        return form_of(answer.text)

    def post(self, form: Form):
        return self.client.post(form.path, form.fields, secure=True)

    def launch_form(self, spec: LaunchSpec) -> Form:
        return self.authorize(self.login(spec))

    def launch(self, spec: LaunchSpec):
        return self.post(self.launch_form(spec))


@pytest.fixture(autouse=True)
def empty_cache():
    """Launch state, used nonces, key sets and tokens live in the cache: none leaks between
    tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def simulator():
    running = Simulator().start()
    yield running
    running.stop()
    assert running.errors == []


@pytest.fixture
def tool_key(db):
    return tool_key_generate()


@pytest.fixture
def platform(db, simulator, tool_key, client):
    """The simulator registered in the tool as an administrator does in the admin, and the
    tool's keys, as served by its JWKS endpoint, handed to the simulator."""
    registered = Platform(
        name="Simulated LMS",
        issuer=simulator.issuer,
        client_id=simulator.client_id,
        auth_login_url=simulator.auth_url,
        auth_token_url=simulator.token_url,
        key_set_url=simulator.jwks_url,
        deployment_ids=[simulator.deployment_id],
    )
    registered.full_clean()
    registered.save()
    simulator.trust_tool_keys(client.get("/lti/jwks/").json())
    return registered


@pytest.fixture
def browser(client, simulator, platform):
    return Browser(client, simulator)
