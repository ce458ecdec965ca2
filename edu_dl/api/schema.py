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


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details: every 4xx and 5xx answer of the API.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail"],
}


def add_problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation may answer a problem (4xx / 5xx)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    problem = {
        "description": "A problem (RFC 9457): what was wrong with the request, or a server error",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method in ("get", "put", "post", "patch", "delete") and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault("default", problem)
    return result
