"""Secrets at rest: model fields whose values the database only ever holds encrypted.

Two things we store must be read back in the clear to be used, so they cannot be hashed like
passwords: a webhook subscription's signing secret (every delivery is signed with it) and the
LTI tool's private key (it signs our messages and token requests to the LMSs). Whoever reads a
database dump or backup with them could sign as us: forge webhook deliveries to a school's
systems, or ask an LMS for tokens in our name. :class:`EncryptedTextField` keeps them encrypted
with Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under keys that live in the
settings, not in the database.

Keys: ``EDU_DL["ENCRYPTION_KEYS"]``, a list of Fernet keys (``Fernet.generate_key()``, 32
url-safe base64 bytes). The first encrypts; every one decrypts, so a key is rotated by putting a
new one first, running ``manage.py encrypt_secrets`` (which rewrites every value under the first
key) and then dropping the old one. With no keys configured one key is derived from
``SECRET_KEY`` (HKDF-SHA256): enough for a demo, but a deployment should set its own, because
changing ``SECRET_KEY`` then makes the stored secrets unreadable.

Stored form: ``"fernet:" + token``. A value without the prefix is one written before encryption
(the migration that introduced the field encrypts those); it is read as it is and encrypted the
next time it is saved. A value that no configured key can open raises
:class:`SecretUnreadable`, naming the setting to check: never a silent wrong secret.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

PREFIX = "fernet:"
# HKDF's "info": the purpose the SECRET_KEY-derived key serves, so that it is no other key.
_DERIVATION_INFO = b"edu_dl: secrets at rest"


class SecretUnreadable(RuntimeError):
    """A stored secret that none of the configured keys decrypts."""


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from Django's ``SECRET_KEY`` (used when ENCRYPTION_KEYS is empty)."""
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(material)


@functools.lru_cache(maxsize=8)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def configured_keys() -> tuple[str, ...]:
    """The keys in use, the encrypting one first."""
    from edu_dl.conf import edu_settings

    keys = tuple(edu_settings.ENCRYPTION_KEYS)
    return keys or (derived_key(settings.SECRET_KEY).decode("ascii"),)


def encrypt(plaintext: str) -> str:
    return PREFIX + _cipher(configured_keys()).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(stored: str) -> str:
    """The plaintext of a stored value; a value without the prefix is returned as it is."""
    if not stored.startswith(PREFIX):
        return stored
    try:
        return _cipher(configured_keys()).decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, ValueError) as error:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with any key of EDU_DL['ENCRYPTION_KEYS'] (or, "
            "with none set, the key derived from SECRET_KEY): put back the key it was written "
            "with"
        ) from error


def is_encrypted(stored: str | None) -> bool:
    """Whether a value as the database holds it is encrypted (not a plaintext left from before)."""
    return bool(stored) and stored.startswith(PREFIX)


class EncryptedTextField(models.TextField):
    """A text kept encrypted in the database and plain in Python (see the module's doc).

    Lookups cannot compare encrypted values (each encryption differs), so the field is not for
    filtering; it is for secrets read through the row that holds them.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)


def encrypt_stored(model: type[models.Model], field_name: str, *, using: str = "default") -> int:
    """Rewrite every value of ``field_name`` under the first key (plaintext left from before the
    field was encrypted, or a value under an older key); returns how many rows were written.
    For migrations (``model`` may be a historical model) and ``manage.py encrypt_secrets``."""
    rows = model._default_manager.using(using).exclude(**{f"{field_name}__isnull": True})
    written = 0
    for pk, value in rows.values_list("pk", field_name).iterator():
        # values_list reads through the field (plaintext out); update writes through it.
        model._default_manager.using(using).filter(pk=pk).update(**{field_name: value})
        written += 1
    return written


def decrypt_stored(model: type[models.Model], field_name: str, *, using: str = "default") -> int:
    """Write every value of ``field_name`` back in the clear (undoing the migration that
    encrypted it, before the column becomes a plain one again); returns how many rows."""
    from django.db import connections

    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field_name).column)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    rows = model._default_manager.using(using).exclude(**{f"{field_name}__isnull": True})
    written = 0
    with connection.cursor() as cursor:
        for pk, value in list(rows.values_list("pk", field_name)):
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s",  # noqa: S608
                [value, pk],
            )
            written += 1
    return written
