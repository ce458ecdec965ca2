"""The site's Celery application. Tasks live in the edu_dl app and are found by autodiscovery."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init

from lms_site.startup import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_site.settings.local")
load_settings_or_exit()

app = Celery("lms_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["edu_dl", "edu_dl.lti"], related_name="tasks")


@worker_init.connect
@beat_init.connect
def refuse_to_start_when_misconfigured(**_kwargs) -> None:
    """Run Django's system checks in workers and beat too, so a bad EDU_DL option stops them."""
    from lms_site.startup import run_checks_or_exit

    run_checks_or_exit()
