"""The deployable site that runs the edu_dl app."""

from lms_site.celery import app as celery_app

__all__ = ["celery_app"]
