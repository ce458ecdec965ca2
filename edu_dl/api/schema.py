"""OpenAPI pieces drf-spectacular cannot infer: how integrations authenticate."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ClientOAuth2Scheme(OpenApiAuthenticationExtension):
    target_class = "edu_dl.api.authentication.ClientOAuth2Authentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "OAuth 2 client credentials: POST /o/token/ with "
            "grant_type=client_credentials, your client id and secret, and scope read or "
            "'read write'.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/o/token/",
                    "scopes": {"read": "read your courses' records", "write": "change them"},
                }
            },
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: []}
