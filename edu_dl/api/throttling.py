"""Throttling per client: an OAuth application, a token's user, or a browser session's user
(anonymous requests by address)."""

from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        application = getattr(token, "application_id", None)
        if application is not None:
            ident = f"oauth-app:{application}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"address:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
