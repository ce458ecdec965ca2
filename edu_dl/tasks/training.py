"""Training tasks. Names are stable: a rename breaks messages already queued."""

from __future__ import annotations

import socket

from celery import shared_task

from edu_dl.services.training import (
    TRAINING_TASK_NAME,
    training_run_execute,
    training_runs_sweep,
)


@shared_task(
    bind=True,
    name=TRAINING_TASK_NAME,
    acks_late=True,  # a worker lost mid-run gives the message back instead of dropping it
    reject_on_worker_lost=True,
    ignore_result=True,
)
def training_run_task(self, run_id: int) -> None:
    training_run_execute(
        run_id=run_id,
        task_id=self.request.id or "",
        worker=self.request.hostname or socket.gethostname(),
    )


@shared_task(name="edu_dl.training.sweep", ignore_result=True)
def training_sweep_task() -> dict[str, int]:
    return training_runs_sweep()
