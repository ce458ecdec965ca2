"""Generate a new key pair for the LTI tool (it signs from now on)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from edu_dl.lti.models import ToolKey
from edu_dl.lti.services.keys import tool_key_generate, tool_keys_retire


class Command(BaseCommand):
    help = (
        "Generate a new RSA key pair for the LTI tool. The newest active key signs; every active "
        "key is published at /lti/jwks/. --retire-others stops publishing the older keys (do it "
        "once the platforms have fetched the new set, an hour or a day later)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retire-others", action="store_true", help="retire every other active key"
        )

    def handle(self, *args: Any, retire_others: bool = False, **options: Any) -> None:
        key = tool_key_generate()
        self.stdout.write(f"generated key {key.kid}")
        if retire_others:
            retired = tool_keys_retire(
                keys=ToolKey.objects.filter(is_active=True).exclude(pk=key.pk)
            )
            self.stdout.write(f"retired {retired} older keys")
