"""Contracts of the runtime that a rename or a stray import would silently break."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from celery import current_app
from django.conf import settings
from django.core.management import call_command

import lms_site.celery  # noqa: F401  (registers the tasks with the app)

REPOSITORY = Path(__file__).resolve().parents[1]


def test_registered_task_names_are_stable():
    current_app.loader.import_default_modules()
    names = sorted(n for n in current_app.tasks if n.startswith("edu_dl."))

    assert names == [
        "edu_dl.grading.grade_responses",
        "edu_dl.grading.rescore_waiting",
        "edu_dl.grading.sweep_pending",
        "edu_dl.lti.grade_passback",
        "edu_dl.lti.grade_passback_sweep",
        "edu_dl.lti.roster_sync",
        "edu_dl.mastery.refresh_class_summaries_due",
        "edu_dl.mastery.refresh_class_summary",
        "edu_dl.mastery.refresh_course",
        "edu_dl.mastery.update_student",
        "edu_dl.recommending.refresh_course",
        "edu_dl.recommending.refresh_student",
        "edu_dl.tracing.retrain_due",
        "edu_dl.training.run",
        "edu_dl.training.sweep",
        "edu_dl.webhooks.deliver",
        "edu_dl.webhooks.send_due",
    ]


def test_the_training_task_survives_a_lost_worker_and_runs_on_the_training_queue():
    task = current_app.tasks["edu_dl.training.run"]
    router = current_app.amqp.router

    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)
    assert router.route({}, "edu_dl.training.run")["queue"].name == "training"
    assert router.route({}, "edu_dl.training.sweep")["queue"].name == "default"


def test_a_students_mastery_update_is_routed_with_grading_and_the_course_refresh_to_default():
    router = current_app.amqp.router

    assert router.route({}, "edu_dl.mastery.update_student")["queue"].name == "grading"
    assert router.route({}, "edu_dl.mastery.refresh_course")["queue"].name == "default"
    assert router.route({}, "edu_dl.tracing.retrain_due")["queue"].name == "default"
    assert router.route({}, "edu_dl.recommending.refresh_student")["queue"].name == "default"
    assert router.route({}, "edu_dl.recommending.refresh_course")["queue"].name == "default"
    assert router.route({}, "edu_dl.mastery.refresh_class_summary")["queue"].name == "default"
    assert router.route({}, "edu_dl.mastery.refresh_class_summaries_due")["queue"].name == "default"


def test_model_grading_is_routed_to_the_grading_queue_and_its_sweep_to_default():
    router = current_app.amqp.router

    assert router.route({}, "edu_dl.grading.grade_responses")["queue"].name == "grading"
    assert router.route({}, "edu_dl.grading.rescore_waiting")["queue"].name == "grading"
    assert router.route({}, "edu_dl.grading.sweep_pending")["queue"].name == "default"


def test_webhook_deliveries_and_their_sweep_are_routed_to_default():
    router = current_app.amqp.router

    assert router.route({}, "edu_dl.webhooks.deliver")["queue"].name == "default"
    assert router.route({}, "edu_dl.webhooks.send_due")["queue"].name == "default"


def test_every_beat_entry_names_a_registered_task():
    current_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in current_app.tasks


@pytest.mark.django_db
def test_migrations_match_the_models():
    output = StringIO()

    call_command("makemigrations", "--check", "--dry-run", stdout=output)

    assert "No changes detected" in output.getvalue()


def test_the_web_process_never_imports_torch():
    code = (
        "import sys, django; django.setup();"
        "from django.test import Client; from django.urls import reverse;"
        "import lms_site.urls, edu_dl.admin, edu_dl.services.training, edu_dl.services.mastery;"
        "import edu_dl.services.progress, edu_dl.services.importing, edu_dl.selectors.progress;"
        "import edu_dl.services.submissions, edu_dl.selectors.submissions;"
        "import edu_dl.services.grader_training, edu_dl.selectors.grading;"
        "Client().get('/healthz');"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "lms_site.settings.test"}

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY, env=env, capture_output=True, text=True
    )

    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_edu_dl_ml_imports_nothing_from_django_or_the_app():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout
