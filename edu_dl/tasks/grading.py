"""Model grading tasks. Names are stable: a rename breaks messages already queued."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from edu_dl.services.grading import (
    SWEEP_PENDING_TASK_NAME,
    responses_grade_by_model,
    responses_pending_sweep,
    responses_rescore_waiting,
)
from edu_dl.services.model_versions import RESCORE_WAITING_TASK_NAME
from edu_dl.services.submissions import GRADE_RESPONSES_TASK_NAME


@shared_task(
    name=GRADE_RESPONSES_TASK_NAME,
    ignore_result=True,
    # A database busy or briefly unreachable recovers; a model problem sends the answers to the
    # teacher inside the service and never reaches here.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def grade_responses_task(response_ids: list[int]) -> int:
    return len(responses_grade_by_model(response_ids=list(response_ids)))


@shared_task(name=SWEEP_PENDING_TASK_NAME, ignore_result=True)
def sweep_pending_task() -> int:
    return responses_pending_sweep()


@shared_task(
    name=RESCORE_WAITING_TASK_NAME,
    ignore_result=True,
    # As for grading: only a database problem is worth a retry; answers already re-scored by
    # the serving grader are skipped by the next try.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def rescore_waiting_task(item_id: int) -> int:
    return responses_rescore_waiting(item_id=item_id)
