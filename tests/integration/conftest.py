"""A real Celery worker process on the suite's broker and test database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worker import WorkerProcess, purge_queues


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path, settings) -> Iterator[WorkerProcess]:
    """A worker subprocess sharing the test database, the broker and the artifact folder."""
    artifact_dir = Path(settings.STORAGES["edu_dl_artifacts"]["OPTIONS"]["location"])
    purge_queues()
    worker = WorkerProcess(artifact_dir)
    worker.start()
    yield worker
    worker.stop()


def wait_for(condition, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


__all__ = ["WorkerProcess", "celery_worker_process", "wait_for"]
