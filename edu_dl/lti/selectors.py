"""Reads of the LTI tool that have a rule in them."""

from __future__ import annotations

from typing import Any

from edu_dl.lti.models import ToolKey


def tool_key_set() -> dict[str, Any]:
    """The public keys a platform checks our signatures with (JWKS): every active key, the one
    that signs now first."""
    return {
        "keys": [
            key.public_jwk
            for key in ToolKey.objects.filter(is_active=True).order_by("-created_at", "-id")
        ]
    }
