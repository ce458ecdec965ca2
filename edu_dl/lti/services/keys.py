"""The tool's own RSA keys: made here, retired by hand (published by
:func:`edu_dl.lti.selectors.tool_key_set`)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from jwcrypto.jwk import JWK

from edu_dl.lti.models import ToolKey

KEY_SIZE = 2048


@transaction.atomic
def tool_key_generate() -> ToolKey:
    """A new RSA key pair; being the newest active key, it signs from now on.

    Its ``kid`` is the RFC 7638 thumbprint of the public key, the id pylti1p3 puts in the
    header of what it signs.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    jwk = JWK.from_pem(public_pem)
    kid = jwk.thumbprint()
    public_jwk = {**json.loads(jwk.export_public()), "kid": kid, "alg": "RS256", "use": "sig"}
    return ToolKey.objects.create(kid=kid, private_key_pem=private_pem, public_jwk=public_jwk)


@transaction.atomic
def tool_keys_retire(*, keys: Iterable[ToolKey]) -> int:
    """Stop signing with and publishing ``keys``; the number retired."""
    return ToolKey.objects.filter(pk__in=[key.pk for key in keys], is_active=True).update(
        is_active=False
    )
