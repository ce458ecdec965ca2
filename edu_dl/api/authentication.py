"""OAuth 2 for integrations: a client-credentials token acts as its application's owner.

django-oauth-toolkit leaves ``token.user`` empty for the client-credentials grant (no person
signed in). Here the request then acts as ``application.user``, the account an administrator
made the application for (a Moodle site's service account, say): it sees exactly what that
account may see, further narrowed by the token's scopes and the application's course list
(:class:`edu_dl.models.ApiClient`).
"""

from __future__ import annotations

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.exceptions import AuthenticationFailed


class ClientOAuth2Authentication(OAuth2Authentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if user is None:
            owner = token.application.user if token.application_id else None
            if owner is None or not owner.is_active:
                raise AuthenticationFailed(
                    "this OAuth application has no active owner account; an administrator must "
                    "set one before its tokens can be used"
                )
            user = owner
        return user, token
