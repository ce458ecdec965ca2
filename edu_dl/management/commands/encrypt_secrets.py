"""Rewrite every secret the database holds under the first of EDU_DL ENCRYPTION_KEYS.

    python manage.py encrypt_secrets [--show-derived-key]

Run it after putting a new key first in ``EDU_DL["ENCRYPTION_KEYS"]`` (keep the old one after
it until this has run), or after setting keys for the first time where the key derived from
``SECRET_KEY`` was in use: list that derived key second (``--show-derived-key`` prints it and
changes nothing). Safe to run again; one transaction.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from edu_dl.encryption import EncryptedTextField, SecretUnreadable, derived_key, encrypt_stored


class Command(BaseCommand):
    help = "Re-encrypt the stored secrets (webhook secrets, LTI keys) under the first key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--show-derived-key",
            action="store_true",
            help="print the key derived from SECRET_KEY (used while ENCRYPTION_KEYS is empty)",
        )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        if options["show_derived_key"]:
            self.stdout.write(derived_key(settings.SECRET_KEY).decode("ascii"))
            return
        for model in apps.get_models():
            for field in model._meta.get_fields():
                if not isinstance(field, EncryptedTextField):
                    continue
                try:
                    count = encrypt_stored(model, field.name)
                except SecretUnreadable as error:
                    raise CommandError(f"{model._meta.label}.{field.name}: {error}") from None
                self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
