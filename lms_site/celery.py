"""The Celery application of the site. Tasks live in the edu_dl app and are found by autodiscovery."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_site.settings.local")

app = Celery("lms_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["edu_dl"], related_name="tasks")


@worker_init.connect
def refuse_to_start_when_misconfigured(**_kwargs) -> None:
    """Run Django's system checks in the worker too, so a bad EDU_DL option stops it at once."""
    from django.core import checks
    from django.core.exceptions import ImproperlyConfigured

    errors = [m for m in checks.run_checks() if m.level >= checks.ERROR]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{m.id}: {m.msg}" for m in errors))
