"""Mastery and retraining tasks. Names are stable: a rename breaks messages already queued."""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import OperationalError

from edu_dl.models import Course
from edu_dl.services.class_summary import (
    REFRESH_DUE_TASK_NAME,
    REFRESH_TASK_NAME,
    course_mastery_summaries_refresh_due,
    course_mastery_summary_refresh_requested,
    parse_requested_at,
)
from edu_dl.services.errors import ApplicationError
from edu_dl.services.mastery import (
    MASTERY_UPDATE_TASK_NAME,
    mastery_refresh_course,
    mastery_update_for_student,
)
from edu_dl.services.model_versions import MASTERY_REFRESH_TASK_NAME
from edu_dl.services.retraining import KT_RETRAIN_DUE_TASK_NAME, kt_retrain_due_courses

logger = logging.getLogger(__name__)


@shared_task(
    name=MASTERY_UPDATE_TASK_NAME,
    ignore_result=True,
    # A database busy or briefly unreachable recovers; anything else would fail again.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def mastery_update_task(student_id: int, course_id: int) -> None:
    student = get_user_model().objects.filter(pk=student_id).first()
    course = Course.objects.filter(pk=course_id).first()
    if student is None or course is None:
        logger.info(
            "mastery update skipped: student %s or course %s is gone", student_id, course_id
        )
        return
    try:
        mastery_update_for_student(student=student, course=course)
    except ApplicationError as error:  # e.g. unenrolled since the answer was graded
        logger.info("mastery update of %s in %s skipped: %s", student_id, course_id, error.message)


@shared_task(name=MASTERY_REFRESH_TASK_NAME, ignore_result=True)
def mastery_refresh_task(course_id: int) -> dict | None:
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return None
    return mastery_refresh_course(course=course)


@shared_task(name=KT_RETRAIN_DUE_TASK_NAME, ignore_result=True)
def kt_retrain_due_task() -> dict[str, int]:
    return {"requested": len(kt_retrain_due_courses())}


@shared_task(
    name=REFRESH_TASK_NAME,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_class_summary_task(course_id: int, requested_at: str | None = None) -> bool:
    """Refresh the course's class mastery summary unless a later refresh covered the request;
    returns whether it refreshed."""
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return False
    summary = course_mastery_summary_refresh_requested(
        course=course, requested_at=parse_requested_at(requested_at)
    )
    return summary is not None


@shared_task(name=REFRESH_DUE_TASK_NAME, ignore_result=True)
def refresh_class_summaries_due_task() -> dict[str, int]:
    return {"refreshed": len(course_mastery_summaries_refresh_due())}
