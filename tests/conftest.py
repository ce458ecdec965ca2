"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def artifact_storage_in_tmp(tmp_path, settings):
    """Each test writes model artifacts to its own folder."""
    storages = dict(settings.STORAGES)
    storages["edu_dl_artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "artifacts")},
    }
    settings.STORAGES = storages
    yield tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def fresh_model_cache():
    from edu_dl.services.model_versions import active_model_cache_clear

    active_model_cache_clear()
    yield
    active_model_cache_clear()


@pytest.fixture
def sent(monkeypatch):
    """Messages sent to the broker, as (task name, args), instead of sending them (the real
    broker is exercised by the integration tests)."""
    from celery import current_app

    messages = []

    class Result:
        id = "task-id"

    def send_task(name, args=None, **options):
        messages.append((name, args))
        return Result()

    monkeypatch.setattr(current_app, "send_task", send_task)
    return messages


def uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's filesystem-broker folder (kept under the system's temporary folder)."""
    import shutil
    import tempfile
    from pathlib import Path

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    folder = options.get("data_folder_in")
    if folder and Path(folder).parent.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(Path(folder).parent, ignore_errors=True)
