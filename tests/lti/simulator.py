"""An LTI 1.3 platform for the tests: ``lti1p3platform`` behind a real HTTP server on 127.0.0.1.

The tool under test talks to it over HTTP as it would to Moodle or Canvas: it fetches the
platform's key set (JWKS), asks its token endpoint for access tokens with a client-credentials
assertion, posts scores to its line items and reads its context memberships. The tests play the
browser: they take the tool's redirect to the platform's OIDC authorisation endpoint, fetch it
over HTTP, and post the auto-submitted form (id token and state) back to the tool.

Every id token is signed RS256 by an RSA key made for the simulator; a launch can be tampered
with (signed by another key, expired, for another audience) to test the tool's refusals. What
the tool sent is recorded: ``token_requests`` (the verified claims of each client assertion),
``scores`` (line item, score, the access token's claims) and ``deep_linking_answers``.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.exceptions import LineItemNotFoundException
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context as MembershipContext
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from lti1p3platform.response import Response, generate_next_link
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
    TPage,
)

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTRUCTOR = LIS + "membership#Instructor"
TEACHING_ASSISTANT = LIS + "membership/Instructor#TeachingAssistant"
LEARNER = LIS + "membership#Learner"
MENTOR = LIS + "membership#Mentor"
SYSTEM_USER = LIS + "system/person#User"
INSTITUTION_ADMINISTRATOR = LIS + "institution/person#Administrator"

TOOL_ORIGIN = "https://testserver"


def rsa_private_pem() -> str:
    """A fresh 2048-bit RSA private key, PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@dataclass
class Person:
    sub: str
    roles: list[str]
    given_name: str = ""
    family_name: str = ""
    email: str = ""

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


@dataclass
class LaunchSpec:
    """One launch the platform will sign when the browser reaches its authorisation endpoint."""

    person: Person
    context_id: str | None = "bio-101"
    context_title: str = "Biology 101"
    context_label: str = "BIO101"
    resource_link_id: str = "quiz-link-1"
    resource_link_title: str = "Quiz on cells"
    custom: dict[str, str] = field(default_factory=dict)
    deep_linking: bool = False
    deep_linking_data: str = "opaque-platform-data"
    ags: bool = True
    nrps: bool = True
    deployment_id: str | None = None
    # Tampering, to test refusals.
    signing_key_pem: str | None = None
    expires_in: int = 300
    audience: str | list[str] | None = None
    authorized_party: str | None = None
    issuer: str | None = None


class _Request(Request):
    def build_metadata(self, request: TRequest) -> TRequest:
        return request


class _PlatformConfig(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._registration


class _Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class _Launch(LTIAdvantageMessageLaunchAbstract):
    def __init__(self, request: Request, config: _PlatformConfig, spec: LaunchSpec) -> None:
        super().__init__(request, config)
        self.spec = spec

    def get_launch_message(self, include_extra_claims: bool = True) -> dict[str, Any]:
        message = super().get_launch_message(include_extra_claims)
        if self.spec.deployment_id is not None:
            message["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = (
                self.spec.deployment_id
            )
        if self.spec.audience is not None:
            message["aud"] = self.spec.audience
        if self.spec.authorized_party is not None:
            message["azp"] = self.spec.authorized_party
        if self.spec.issuer is not None:
            message["iss"] = self.spec.issuer
        return message

    def generate_launch_request(self) -> dict[str, str]:
        launch = super().generate_launch_request()
        if self.spec.signing_key_pem is not None:  # forged: same kid, another key
            token = launch["id_token"]
            claims = jwt.decode(token, options={"verify_signature": False})
            launch["id_token"] = jwt.encode(
                claims,
                self.spec.signing_key_pem,
                algorithm="RS256",
                headers={"kid": jwt.get_unverified_header(token)["kid"]},
            )
        return launch

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return launch_data


class _Grades(AssignmentsGradesService):
    def __init__(self, request: Request, simulator: Simulator) -> None:
        super().__init__(request, simulator.config, simulator.lineitems_url)
        self.simulator = simulator

    def find_lineitems(self, **filters: Any) -> TPage:
        wanted = {
            "resourceLinkId": filters.get("resource_link_id"),
            "resourceId": filters.get("resource_id"),
            "tag": filters.get("tag"),
        }
        items = [
            item
            for item in self.simulator.line_items.values()
            if all(value is None or item.get(key) == value for key, value in wanted.items())
        ]
        return {"content": items, "has_next": False, "next": None}

    def find_lineitem(self, line_item_id: str) -> dict[str, Any]:
        try:
            return self.simulator.line_items[line_item_id]
        except KeyError as error:
            raise LineItemNotFoundException(line_item_id) from error

    def create_lineitem(self, creation_data: dict[str, Any]) -> dict[str, Any]:
        return self.simulator.line_item_add(**creation_data)

    def update_lineitem(self, update_data: dict[str, Any]) -> dict[str, Any]:
        self.find_lineitem(update_data["id"]).update(update_data)
        return self.simulator.line_items[update_data["id"]]

    def delete_lineitem(self, line_item_id: str) -> None:
        self.simulator.line_items.pop(self.find_lineitem(line_item_id)["id"])

    def update_score(self, line_item_id: str, score: dict[str, Any]) -> UpdateScoreStatus:
        self.find_lineitem(line_item_id)
        token = self.request.headers["Authorization"].split()[1]
        self.simulator.scores.append(
            {
                "line_item": line_item_id,
                "score": score,
                "token": jwt.decode(token, options={"verify_signature": False}),
            }
        )
        return UpdateScoreStatus.SUCCESS

    def get_results(self, line_item_id: str, **kwargs: Any) -> TPage:
        results = [s["score"] for s in self.simulator.scores if s["line_item"] == line_item_id]
        return {"content": results, "has_next": False, "next": None}


class _Memberships(NamesRoleProvisioningService):
    def __init__(self, request: Request, simulator: Simulator, context_id: str) -> None:
        super().__init__(request, simulator.config, simulator.memberships_url(context_id))
        self.simulator = simulator
        self.context_id = context_id

    def get_member_data_page(self, **kwargs: Any) -> TPage:
        return {
            "content": [dict(m) for m in self.simulator.members],
            "has_next": False,
            "next": None,
        }

    def get_context_by_id(self) -> MembershipContext:
        return MembershipContext(id=self.context_id, label="BIO101", title="Biology 101")


class Simulator:
    """The platform: start it, register it in the tool, then drive launches through it."""

    def __init__(self) -> None:
        self.private_pem = rsa_private_pem()
        self.client_id = "edu-dl-tool-client"
        self.deployment_id = "deployment-1"
        self.launches: dict[str, LaunchSpec] = {}
        self.line_items: dict[str, dict[str, Any]] = {}
        self.members: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.scores: list[dict[str, Any]] = []
        self.deep_linking_answers: list[list[dict[str, Any]]] = []
        self.errors: list[str] = []
        self.key_set_requests = 0
        # Paths the simulator answers with 503 (an LMS that is down), to test retries.
        self.unavailable_paths: set[str] = set()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.registration = (
            Registration()
            .set_iss(self.base_url)
            .set_client_id(self.client_id)
            .set_deployment_id(self.deployment_id)
            .set_oidc_login_url(TOOL_ORIGIN + "/lti/login/")
            .set_launch_url(TOOL_ORIGIN + "/lti/launch/")
            .set_deeplink_launch_url(TOOL_ORIGIN + "/lti/launch/")
            .set_platform_public_key(public_pem_of(self.private_pem))
            .set_platform_private_key(self.private_pem)
        )
        self.config = _PlatformConfig(registration=self.registration)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- life -------------------------------------------------------------------------------

    def start(self) -> Simulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- addresses ---------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def auth_url(self) -> str:
        return self.base_url + "/auth"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/jwks"

    @property
    def lineitems_url(self) -> str:
        return self.base_url + "/lineitems"

    @property
    def deep_linking_return_url(self) -> str:
        return self.base_url + "/deep-linking-return"

    def memberships_url(self, context_id: str) -> str:
        return f"{self.base_url}/contexts/{context_id}/memberships"

    # --- set up -------------------------------------------------------------------------------

    def trust_tool_keys(self, key_set: dict[str, Any]) -> None:
        """Take the tool's key set (as its JWKS endpoint serves it) to check what it signs."""
        self.registration.set_tool_key_set(key_set)

    def rotate_key(self) -> None:
        """Sign with a new key from now on (and publish only it), as platforms do now and then."""
        self.private_pem = rsa_private_pem()
        self.registration.set_platform_private_key(self.private_pem)
        self.registration.set_platform_public_key(public_pem_of(self.private_pem))

    def line_item_add(self, **values: Any) -> dict[str, Any]:
        line_item = {**values, "id": f"{self.lineitems_url}/{next(self._ids)}"}
        self.line_items[line_item["id"]] = line_item
        return line_item

    def line_item_of(self, resource_link_id: str) -> dict[str, Any]:
        for item in self.line_items.values():
            if item.get("resourceLinkId") == resource_link_id:
                return item
        return self.line_item_add(
            resourceLinkId=resource_link_id, scoreMaximum=100, label=resource_link_id
        )

    def login_parameters(self, spec: LaunchSpec) -> dict[str, str]:
        """The third-party-initiated login the LMS starts a launch with (as query parameters
        of the tool's login URL)."""
        hint = f"launch-{next(self._ids)}"
        self.launches[hint] = spec
        login = _Login(None, self.config)
        login.set_lti_message_hint(hint=hint)
        if spec.deep_linking:
            login.set_deeplinking_launch_url()
        url = login.initiate_login(spec.person.sub)
        return dict(parse_qsl(urlsplit(url).query))

    # --- the endpoints ------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, str, str]:
        """The OIDC authorisation endpoint: checks the tool's request, signs the launch, and
        answers the auto-submitting form a browser posts to the tool."""
        spec = self.launches.pop(query.get("lti_message_hint", ""), None)
        expected = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": self.client_id,
        }
        if spec is None or any(query.get(k) != v for k, v in expected.items()):
            return 400, "text/plain", "invalid authorisation request"
        if query.get("login_hint") != spec.person.sub:
            return 400, "text/plain", "login_hint does not match the user"
        if query.get("redirect_uri") != self.registration.get_launch_url():
            return 400, "text/plain", "redirect_uri is not registered"
        launch = _Launch(
            _Request(
                {
                    "method": "GET",
                    "get_data": query,
                    "form_data": {},
                    "headers": {},
                    "content_type": None,
                    "path": "/auth",
                    "json": None,
                }
            ),
            self.config,
            spec,
        )
        person = spec.person
        launch.set_user_data(person.sub, person.roles, person.name or None, person.email or None)
        if person.given_name or person.family_name:
            launch.set_extra_claims(
                {"given_name": person.given_name, "family_name": person.family_name}
            )
        if spec.context_id is not None:
            launch.set_launch_context_claim(
                spec.context_id,
                [LIS + "course#CourseOffering"],
                spec.context_title,
                spec.context_label,
            )
            if spec.nrps:
                launch.set_nrps(self.memberships_url(spec.context_id))
        if spec.custom:
            launch.set_custom_parameters_claim(spec.custom)
        if spec.deep_linking:
            launch.set_dl(
                self.deep_linking_return_url,
                title="Add an activity",
                accept_types={"ltiResourceLink"},
                extra_data=spec.deep_linking_data,
            )
        else:
            launch.set_resource_link_claim(spec.resource_link_id, title=spec.resource_link_title)
            if spec.ags:
                line_item = self.line_item_of(spec.resource_link_id)
                launch.set_ags(lineitems_url=self.lineitems_url, lineitem_url=line_item["id"])
        launch.set_id_token_expiration(spec.expires_in)
        data = launch.lti_launch()
        form = (
            f'<form method="post" action="{data["launch_url"]}">'
            f'<input type="hidden" name="id_token" value="{data["id_token"]}">'
            f'<input type="hidden" name="state" value="{data["state"]}">'
            "</form><script>document.forms[0].submit()</script>"
        )
        return 200, "text/html", form

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: a client-credentials grant with a JWT assertion (RFC 7523)."""
        assertion = form.get("client_assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion)["kid"]
            keys = self.registration.get_tool_key_set()["keys"]
            key = next(jwt.PyJWK(k).key for k in keys if k["kid"] == kid)
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=self.token_url,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
            if not claims["iss"] == claims["sub"] == self.client_id:
                raise jwt.InvalidTokenError("iss and sub must be the client id")
            if form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ):
                raise jwt.InvalidTokenError("wrong client_assertion_type")
            answer = self.config.get_access_token(form)
        except (StopIteration, KeyError, TypeError, jwt.InvalidTokenError) as error:
            return 401, {"error": "invalid_client", "error_description": str(error)}
        self.token_requests.append({"claims": claims, "kid": kid, "scope": form.get("scope")})
        return 200, dict(answer)

    def deep_linking_return(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Where the tool's deep-linking answer is posted: check it and keep its items."""
        items = self.config.validate_deeplinking_resp(form)
        self.deep_linking_answers.append(items)
        return 200, {"content_items": items}


def _request_of(handler: BaseHTTPRequestHandler, body: bytes) -> _Request:
    parts = urlsplit(handler.path)
    content_type = handler.headers.get("Content-Type", "")
    return _Request(
        {
            "method": handler.command,
            "get_data": dict(parse_qsl(parts.query)),
            "form_data": dict(parse_qsl(body.decode()))
            if content_type.startswith("application/x-www-form-urlencoded")
            else {},
            "headers": dict(handler.headers.items()),
            "content_type": content_type,
            "path": parts.path,
            "json": json.loads(body) if body and "json" in content_type else None,
        }
    )


def _handler_for(simulator: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, content_type: str, body: str, headers=None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_json(self, status: int, body: Any, content_type: str = "application/json"):
            self._send(status, content_type, json.dumps(body))

        def _send_service(self, response: Response) -> None:
            if 200 <= response.code < 300:
                result = response.result
                headers = {}
                if isinstance(result, dict) and result.get("next"):
                    headers["Link"] = generate_next_link(result["next"])
                if isinstance(result, dict) and "content" in result:
                    result = result["content"]
                body = "" if result is None else json.dumps(result)
                self._send(response.code, response.media_type, body, headers)
            else:
                self._send_json(response.code, {"error": response.message})

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = _request_of(self, body)
            path = request.path
            if path in simulator.unavailable_paths:
                return self._send_json(503, {"error": "temporarily unavailable"})
            if path == "/jwks" and self.command == "GET":
                simulator.key_set_requests += 1
                return self._send_json(200, simulator.config.get_jwks())
            if path == "/auth":
                return self._send(*simulator.authorize(request.get_data))
            if path == "/token" and self.command == "POST":
                return self._send_json(*simulator.token(request.form_data))
            if path == "/deep-linking-return" and self.command == "POST":
                return self._send_json(*simulator.deep_linking_return(request.form_data))
            if path.startswith("/contexts/") and path.endswith("/memberships"):
                context_id = path.split("/")[2]
                service = _Memberships(request, simulator, context_id)
                return self._send_service(service.handle_resp(service.handle_get_members))
            if path.startswith("/lineitems"):
                return self._route_grades(request)
            return self._send_json(404, {"error": "no such endpoint"})

        def _route_grades(self, request: _Request) -> None:
            service = _Grades(request, simulator)
            parts = request.path.rstrip("/").split("/")  # "", "lineitems", id?, "scores"?
            line_item_id = f"{simulator.lineitems_url}/{parts[2]}" if len(parts) > 2 else None
            if line_item_id is None:
                handler = (
                    service.handle_get_lineitems
                    if self.command == "GET"
                    else service.handle_create_lineitem
                )
                return self._send_service(service.handle_resp(handler))
            if len(parts) == 4 and parts[3] == "scores":
                handler = service.handle_update_score
            elif len(parts) == 4 and parts[3] == "results":
                handler = service.handle_get_results
            else:
                handler = service.handle_get_lineitem
            return self._send_service(service.handle_resp(handler, line_item_id=line_item_id))

        def _safely(self) -> None:
            try:
                self._route()
            except Exception as error:  # shown to the test, which fails on it
                simulator.errors.append(f"{self.command} {self.path}: {error!r}")
                self._send_json(500, {"error": repr(error)})

        do_GET = do_POST = do_PUT = do_DELETE = _safely

    return Handler
