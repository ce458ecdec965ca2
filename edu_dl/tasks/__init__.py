"""Celery tasks: thin wrappers that take ids and call one service.

Celery's autodiscovery imports this package; importing the modules registers their tasks.
"""

from edu_dl.tasks import grading, mastery, recommending, training, webhooks  # noqa: F401
