"""LTI endpoints: the LMS sends the browser to ``login/``, which sends it to the LMS's OIDC
endpoint, which posts the signed id token to ``launch/``; ``jwks/`` publishes our public keys.

``login/``, ``launch/`` and ``deep-linking/`` are exempt from CSRF checks: the first two are
cross-site posts by design (the id token, bound to our state cookie and a nonce we issued, is
what protects them), and the deep-linking choice is bound to its launch by the launch id, an
unguessable value only the teacher's page holds, spent once (a CSRF cookie is not sent inside
an LMS iframe). Refusals are RFC 9457 problem details.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pylti1p3.contrib.django import DjangoOIDCLogin
from pylti1p3.exception import LtiException, OIDCException

from edu_dl.api.problems import problem_json
from edu_dl.lti.models import Platform
from edu_dl.lti.selectors import tool_key_set
from edu_dl.lti.services.deep_linking import lti_deep_linking_answer
from edu_dl.lti.services.launches import DEEP_LINKING_REQUEST, LaunchOutcome, lti_launch_accept
from edu_dl.lti.tool import (
    CACHE_PREFIX,
    LAUNCH_DATA_LIFETIME_S,
    PlatformToolConf,
    ToolMessageLaunch,
    launch_data_storage,
)
from edu_dl.selectors.access import assessments_visible
from edu_dl.services.errors import ApplicationError

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
LAUNCH_ID_PREFIX = "lti1p3-launch-"


def _launch_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("edu_dl_lti:launch"))


def _framable_by(response: HttpResponse, platform: Platform) -> HttpResponse:
    """Let the platform (and only it) show ``response`` in an iframe, as LMSs show tools."""
    parts = urlsplit(platform.auth_login_url)
    response.xframe_options_exempt = True
    response["Content-Security-Policy"] = f"frame-ancestors 'self' {parts.scheme}://{parts.netloc}"
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """OIDC third-party-initiated login: check the platform, then send the browser to its
    authorisation endpoint with a state (in a cookie) and a nonce (in the cache)."""
    params = request.POST if request.method == "POST" else request.GET
    issuer, login_hint = params.get("iss"), params.get("login_hint")
    if not issuer or not login_hint:
        return problem_json(request, 400, "an LTI login needs the parameters iss and login_hint")
    tool_conf = PlatformToolConf()
    platform = tool_conf.platform(issuer, params.get("client_id"))
    if platform is None:
        detail = f"no active LTI platform is registered for {issuer!r}"
        if not params.get("client_id"):
            detail += " (or several are, and the login names no client_id)"
        return problem_json(request, 403, detail)
    deployment_id = params.get("lti_deployment_id")
    if deployment_id and deployment_id not in platform.deployment_ids:
        return problem_json(request, 403, f"deployment {deployment_id!r} is not registered")
    oidc_login = DjangoOIDCLogin(request, tool_conf)
    oidc_login.set_launch_data_storage(launch_data_storage())
    oidc_login.set_launch_data_lifetime(LAUNCH_DATA_LIFETIME_S)
    try:
        return oidc_login.redirect(_launch_url(request))
    except OIDCException as error:
        return problem_json(request, 400, f"LTI login refused: {error}")


def _backend() -> str:
    backends = settings.AUTHENTICATION_BACKENDS
    return MODEL_BACKEND if MODEL_BACKEND in backends else backends[0]


def _landing_url(outcome: LaunchOutcome) -> str:
    """Where a launch lands: the course page (there is no page of an assessment of its own yet;
    the learner finds the linked assessment there)."""
    return reverse("edu_dl:course_detail", kwargs={"slug": outcome.course.slug})


@csrf_exempt
@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The platform's signed launch: validate it, take in the person, sign them in, and open
    the course (resource link) or the assessment picker (deep linking)."""
    if not request.POST.get("id_token") or not request.POST.get("state"):
        return problem_json(request, 400, "an LTI launch needs the parameters id_token and state")
    try:
        message_launch = ToolMessageLaunch(request, PlatformToolConf())
        claims = message_launch.get_launch_data()
        platform = message_launch.platform
        outcome = lti_launch_accept(platform=platform, claims=claims)
    except LtiException as error:
        return problem_json(request, 403, f"LTI launch refused: {error}")
    except ApplicationError as error:
        return problem_json(request, error.status_code, error.message)
    auth_login(request, outcome.user, backend=_backend())
    if outcome.message_type == DEEP_LINKING_REQUEST:
        response = render(
            request,
            "edu_dl_lti/deep_linking.html",
            {
                "course": outcome.course,
                "assessments": assessments_visible(user=outcome.user, course=outcome.course),
                "launch_id": message_launch.get_launch_id(),
            },
        )
        return _framable_by(response, platform)
    return redirect(_landing_url(outcome))


@csrf_exempt
@require_POST
def deep_linking_choice(request: HttpRequest) -> HttpResponse:
    """The teacher's pick: answer the platform with the signed content item, posted by the
    browser to the platform's return URL."""
    launch_id = request.POST.get("launch_id", "")
    try:
        assessment_id = int(request.POST.get("assessment_id", ""))
    except ValueError:
        return problem_json(request, 400, "choose an assessment (assessment_id)")
    if not launch_id.startswith(LAUNCH_ID_PREFIX):
        return problem_json(request, 400, "launch_id is missing or malformed")
    try:
        message_launch = ToolMessageLaunch.from_cache(launch_id, request, PlatformToolConf())
        claims = message_launch.get_launch_data()
        platform = message_launch.platform
        answer = lti_deep_linking_answer(
            platform=platform,
            claims=claims,
            assessment_id=assessment_id,
            launch_url=_launch_url(request),
        )
    except LtiException as error:
        return problem_json(request, 403, f"deep linking refused: {error}")
    except ApplicationError as error:
        return problem_json(request, error.status_code, error.message)
    if not cache.add(
        CACHE_PREFIX + "deep-linking-answered:" + launch_id, True, LAUNCH_DATA_LIFETIME_S
    ):
        return problem_json(request, 409, "this deep-linking request was answered already")
    response = render(
        request,
        "edu_dl_lti/deep_linking_answer.html",
        {"return_url": answer.return_url, "jwt": answer.jwt},
    )
    return _framable_by(response, platform)


@require_GET
@cache_control(public=True, max_age=300)
def jwks(request: HttpRequest) -> JsonResponse:
    """The tool's public keys (JWKS): platforms check our deep-linking answers and token
    requests with them."""
    return JsonResponse(tool_key_set())
