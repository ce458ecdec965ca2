"""Secrets at rest: the database holds webhook secrets and the LTI tool's private keys only
encrypted, the app reads them in the clear, keys rotate, and a wrong key fails loudly."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from edu_dl.encryption import (
    PREFIX,
    SecretUnreadable,
    decrypt_stored,
    derived_key,
    encrypt_stored,
)
from edu_dl.lti.models import ToolKey
from edu_dl.lti.services.keys import tool_key_generate
from edu_dl.models import WebhookSubscription
from tests.factories import CourseFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def keys(settings):
    """Set EDU_DL ENCRYPTION_KEYS for the rest of the test."""

    def use(*values: str) -> None:
        settings.EDU_DL = {**settings.EDU_DL, "ENCRYPTION_KEYS": list(values)}

    return use


def stored(model, field: str, pk: int) -> str:
    """The value as the database holds it, not through the field."""
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def store_raw(model, field: str, pk: int, value: str) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])  # noqa: S608


SIGNING_SECRET = "the-signing-secret"


def subscription() -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        course=CourseFactory(), url="https://lms.example.org/hook", events=["grade.released"],
        secret=SIGNING_SECRET,
    )  # fmt: skip


def test_a_webhook_secret_is_encrypted_in_the_database_and_plain_in_the_app(keys):
    keys(NEW_KEY)
    created = subscription()

    raw = stored(WebhookSubscription, "secret", created.pk)

    assert raw.startswith(PREFIX)
    assert "the-signing-secret" not in raw
    assert Fernet(NEW_KEY).decrypt(raw[len(PREFIX) :].encode()).decode() == "the-signing-secret"
    assert WebhookSubscription.objects.get(pk=created.pk).secret == "the-signing-secret"
    assert WebhookSubscription.objects.values_list("secret", flat=True).get() == (
        "the-signing-secret"
    )


def test_the_lti_tools_private_key_is_encrypted_in_the_database(keys):
    keys(NEW_KEY)
    key = tool_key_generate()

    raw = stored(ToolKey, "private_key_pem", key.pk)

    assert raw.startswith(PREFIX) and "PRIVATE KEY" not in raw
    assert ToolKey.objects.get(pk=key.pk).private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_without_keys_one_is_derived_from_the_secret_key(keys, settings):
    keys()
    created = subscription()

    raw = stored(WebhookSubscription, "secret", created.pk)

    key = derived_key(settings.SECRET_KEY)
    assert Fernet(key).decrypt(raw[len(PREFIX) :].encode()) == b"the-signing-secret"


def test_keys_rotate_old_values_stay_readable_and_the_command_rewrites_them(keys):
    keys(OLD_KEY)
    created = subscription()
    key = tool_key_generate()
    pem = ToolKey.objects.get(pk=key.pk).private_key_pem

    keys(NEW_KEY, OLD_KEY)
    assert WebhookSubscription.objects.get(pk=created.pk).secret == "the-signing-secret"
    out = io.StringIO()
    call_command("encrypt_secrets", stdout=out)

    assert "edu_dl.WebhookSubscription.secret: 1 re-encrypted" in out.getvalue()
    assert "edu_dl_lti.ToolKey.private_key_pem: 1 re-encrypted" in out.getvalue()
    keys(NEW_KEY)  # the old key is gone
    assert WebhookSubscription.objects.get(pk=created.pk).secret == "the-signing-secret"
    assert ToolKey.objects.get(pk=key.pk).private_key_pem == pem


def test_a_secret_no_key_opens_fails_loudly_and_names_the_setting(keys):
    keys(OLD_KEY)
    created = subscription()
    keys(NEW_KEY)

    with pytest.raises(SecretUnreadable, match=r"EDU_DL\['ENCRYPTION_KEYS'\]"):
        WebhookSubscription.objects.get(pk=created.pk)


def test_the_migration_encrypts_secrets_stored_in_the_clear_and_can_undo_it(keys):
    keys(NEW_KEY)
    created = subscription()
    store_raw(WebhookSubscription, "secret", created.pk, "written-before-encryption")
    # A value from before the field was encrypted reads as it is.
    assert WebhookSubscription.objects.get(pk=created.pk).secret == "written-before-encryption"

    assert encrypt_stored(WebhookSubscription, "secret") == 1

    raw = stored(WebhookSubscription, "secret", created.pk)
    assert raw.startswith(PREFIX) and "written-before-encryption" not in raw
    assert WebhookSubscription.objects.get(pk=created.pk).secret == "written-before-encryption"

    assert decrypt_stored(WebhookSubscription, "secret") == 1
    assert stored(WebhookSubscription, "secret", created.pk) == "written-before-encryption"


def test_the_command_shows_the_key_derived_from_the_secret_key(keys, settings):
    keys()
    out = io.StringIO()

    call_command("encrypt_secrets", "--show-derived-key", stdout=out)

    assert out.getvalue().strip() == derived_key(settings.SECRET_KEY).decode()
