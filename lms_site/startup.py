"""Load the settings before anything else runs, so a bad setting stops the process with one
clear line that names it, not a traceback from deep inside a driver."""

from __future__ import annotations

import sys


def load_settings_or_exit() -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018  (importing the settings module is the point)
    except ImproperlyConfigured as error:
        sys.stderr.write(f"edu_dl cannot start: {error}\n")
        raise SystemExit(2) from None


def run_checks_or_exit() -> None:
    """Django's system checks (edu_dl.E0xx among them), for servers that do not run them
    themselves (gunicorn, uvicorn, celery)."""
    from django.core import checks

    errors = [m for m in checks.run_checks() if m.level >= checks.ERROR]
    if errors:
        for message in errors:
            sys.stderr.write(f"edu_dl cannot start: {message.id}: {message.msg}\n")
        raise SystemExit(2)
