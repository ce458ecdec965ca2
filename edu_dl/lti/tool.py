"""pylti1p3 fitted to our tables, with the checks a tool must make that the library leaves out.

- :class:`PlatformToolConf` finds registrations and deployments in :class:`Platform` rows (one
  issuer may register the tool several times under different client ids).
- :class:`ToolMessageLaunch` validates a launch like pylti1p3 does (state, nonce issued by our
  login step, registration, RS256 signature against the platform's key set, deployment, message)
  and adds what it does not check: ``aud`` must hold our client id (and ``azp`` name it when
  there are several audiences), ``exp``/``iat`` are required, only RS256 is taken, and a nonce
  is used once (pylti1p3 accepts the same id token posted twice).
- Every HTTP call has a timeout (pylti1p3 sets none) and key sets and access tokens are cached
  in Django's cache, so a launch or a grade costs one request to the platform, not three.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import jwt
import requests
from django.core.cache import cache
from jwcrypto.jwk import JWK
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoMessageLaunch
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.registration import Registration
from pylti1p3.service_connector import REQUESTS_USER_AGENT, ServiceConnector
from pylti1p3.tool_config import ToolConfAbstract

from edu_dl.lti.models import Platform, ToolKey

# How long the state of an OIDC login, its nonce and a validated launch are kept (a teacher
# picking an assessment after a deep-linking launch has this long).
LAUNCH_DATA_LIFETIME_S = 2 * 60 * 60
# A platform's key set is fetched again after this, or at once when a token names a key the
# cached set does not hold (the platform rotated its keys).
KEY_SET_CACHE_S = 60 * 60
KEY_SET_REFETCH_S = 60
# Clocks of the platform and ours may differ by this much (exp, iat).
CLOCK_SKEW_S = 60
HTTP_TIMEOUT_S = 10
ACCESS_TOKEN_CACHE_S = 50 * 60
ALGORITHM = "RS256"
CACHE_PREFIX = "edu_dl_lti:"


class TimeoutSession(requests.Session):
    """A requests session whose calls give up after ``HTTP_TIMEOUT_S``: a platform that does not
    answer must not hold a web worker forever."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["User-Agent"] = f"edu_dl-lti ({REQUESTS_USER_AGENT})"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return super().request(method, url, *args, **kwargs)


def signing_key() -> ToolKey | None:
    """The newest active key of the tool: it signs what the tool sends."""
    return ToolKey.objects.filter(is_active=True).order_by("-created_at", "-id").first()


def registration_for(platform: Platform) -> Registration:
    """pylti1p3's registration of ``platform``, with the tool's signing key when there is one."""
    registration = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_key_set_url(platform.key_set_url or None)
        .set_key_set(platform.key_set or None)
    )
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    key = signing_key()
    if key is not None:
        registration.set_tool_private_key(key.private_key_pem)
        # pylti1p3 names the key in the JWT header by the RFC 7638 thumbprint of this public
        # key, which is how our kids are made (see services.keys).
        registration.set_tool_public_key(public_pem_of(key))
    return registration


def public_pem_of(key: ToolKey) -> str:
    return JWK(**key.public_jwk).export_to_pem().decode("ascii")


class PlatformToolConf(ToolConfAbstract):
    """Registrations and deployments read from the active :class:`Platform` rows."""

    def __init__(self) -> None:
        super().__init__()
        self._found: dict[tuple[str, str | None], Platform | None] = {}

    # Every issuer may have several client ids: pylti1p3 then asks with both.
    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def platform(self, iss: str, client_id: str | None) -> Platform | None:
        """The active platform of ``iss`` and ``client_id``; without a client id (it is optional
        in the login request), the issuer's only active platform."""
        key = (iss, client_id)
        if key not in self._found:
            platforms = Platform.objects.filter(issuer=iss, is_active=True)
            if client_id:
                platforms = platforms.filter(client_id=client_id)
            found = list(platforms[:2])
            self._found[key] = found[0] if len(found) == 1 else None
        return self._found[key]

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Registration | None:
        platform = self.platform(iss, client_id)
        return None if platform is None else registration_for(platform)

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        platform = self.platform(iss, client_id)
        if platform is None or deployment_id not in platform.deployment_ids:
            return None
        return Deployment().set_deployment_id(deployment_id)


def launch_data_storage() -> DjangoCacheDataStorage:
    return DjangoCacheDataStorage(cache_name="default")


def _key_set_cache_key(url: str) -> str:
    return CACHE_PREFIX + "jwks:" + hashlib.sha256(url.encode()).hexdigest()


def _may_refetch(key_set_url: str) -> bool:
    """At most one fetch a minute of a key set for tokens naming a key it lacks: tokens made up
    by anyone must not make us hammer the platform."""
    return cache.add(_key_set_cache_key(key_set_url) + ":refetched", True, KEY_SET_REFETCH_S)


class ToolMessageLaunch(DjangoMessageLaunch):
    """A launch validated by pylti1p3 and by the stricter checks of this module's doc."""

    def __init__(self, request: Any, tool_config: PlatformToolConf, **kwargs: Any) -> None:
        # from_cache() passes these as None: the defaults must hold then too.
        kwargs["launch_data_storage"] = kwargs.get("launch_data_storage") or launch_data_storage()
        kwargs["requests_session"] = kwargs.get("requests_session") or TimeoutSession()
        super().__init__(request, tool_config, **kwargs)
        self.set_launch_data_lifetime(LAUNCH_DATA_LIFETIME_S)
        self._key_set_refreshed = False

    @property
    def platform(self) -> Platform:
        """The registration the launch came through (once validated)."""
        platform = self._tool_config.platform(self.get_iss(), self.get_client_id())
        if platform is None:
            raise LtiException("Registration not found.")
        return platform

    # --- the platform's keys -------------------------------------------------------------------

    def fetch_public_key(self, key_set_url: str) -> dict[str, Any]:
        cache_key = _key_set_cache_key(key_set_url)
        key_set = None if self._key_set_refreshed else cache.get(cache_key)
        if key_set is not None:
            return key_set
        try:
            answer = self._requests_session.get(key_set_url)
            answer.raise_for_status()
            key_set = answer.json()
        except (requests.RequestException, ValueError) as error:
            raise LtiException(
                f"the platform's key set at {key_set_url} failed: {error}"
            ) from error
        if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
            raise LtiException(f"the platform's key set at {key_set_url} holds no keys")
        cache.set(cache_key, key_set, KEY_SET_CACHE_S)
        return key_set

    def get_public_key(self) -> tuple[str, str]:
        registration = self._registration
        assert registration is not None, "Registration not yet set"
        pasted = registration.get_key_set() is not None  # by hand in the admin: never fetched
        try:
            return super().get_public_key()
        except LtiException:
            url = registration.get_key_set_url() or ""
            if pasted or self._key_set_refreshed or not _may_refetch(url):
                raise
            # The platform may have rotated its keys since we cached its set: fetch it anew.
            self._key_set_refreshed = True
            registration.set_key_set(None)
            return super().get_public_key()

    # --- stricter checks -----------------------------------------------------------------------

    def validate_jwt_signature(self) -> ToolMessageLaunch:
        assert self._registration is not None
        header = self._jwt.get("header", {})
        if header.get("alg") != ALGORITHM:
            raise LtiException(f"id_token must be signed with {ALGORITHM}")
        public_key, _ = self.get_public_key()
        client_id = self._registration.get_client_id()
        try:
            claims = jwt.decode(
                self._get_id_token(),
                public_key,
                algorithms=[ALGORITHM],
                audience=client_id,
                issuer=self._registration.get_issuer(),
                leeway=CLOCK_SKEW_S,
                options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.InvalidTokenError as error:
            raise LtiException(f"Can't decode id_token: {error}") from error
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != client_id:
            raise LtiException("azp must name this tool's client id")
        return self

    def save_launch_data(self) -> ToolMessageLaunch:
        self._use_nonce_once()
        return super().save_launch_data()

    def _use_nonce_once(self) -> None:
        """Mark the token's nonce used: ``cache.add`` is atomic, so of two posts of one id token,
        even at the same instant, one is refused."""
        body = self._get_jwt_body()
        marker = hashlib.sha256(
            json.dumps([body.get("iss"), body.get("nonce")]).encode()
        ).hexdigest()
        if not cache.add(CACHE_PREFIX + "nonce-used:" + marker, True, LAUNCH_DATA_LIFETIME_S):
            raise LtiException("nonce already used: this launch was replayed")


class CachedTokenConnector(ServiceConnector):
    """A service connector whose access tokens are shared through Django's cache until shortly
    before they expire, and fetched again once when a service answers 401."""

    def __init__(self, registration: Registration, platform: Platform) -> None:
        super().__init__(registration, TimeoutSession())
        self._platform = platform

    def _token_cache_key(self, scopes: Sequence[str]) -> str:
        platform = self._platform
        key = json.dumps(
            [platform.pk, platform.auth_token_url, platform.client_id, *sorted(scopes)]
        )
        return CACHE_PREFIX + "token:" + hashlib.sha256(key.encode()).hexdigest()

    def get_access_token(self, scopes: Sequence[str]) -> str:
        cache_key = self._token_cache_key(scopes)
        token = cache.get(cache_key)
        if token:
            return token
        token = super().get_access_token(scopes)
        # pylti1p3 keeps the token but not its expires_in; the LTI security framework gives
        # tokens an hour. A platform that gives less answers 401, and the token is fetched anew.
        cache.set(cache_key, token, ACCESS_TOKEN_CACHE_S)
        return token

    def forget_token(self, scopes: Sequence[str]) -> None:
        cache.delete(self._token_cache_key(scopes))
        self._access_tokens.clear()

    def make_service_request(self, scopes: Sequence[str], url: str, **kwargs: Any):
        try:
            return super().make_service_request(scopes, url, **kwargs)
        except LtiServiceException as error:
            if error.response.status_code != 401:
                raise
            self.forget_token(scopes)
            return super().make_service_request(scopes, url, **kwargs)


def service_connector(platform: Platform) -> CachedTokenConnector:
    """A connector to the services of ``platform``, signing token requests with our key."""
    registration = registration_for(platform)
    if registration.get_tool_private_key() is None:
        raise LtiException(
            "the tool has no active key: generate one (manage.py lti_generate_key or the admin)"
        )
    return CachedTokenConnector(registration, platform)
