"""Recommendation tasks. Names are stable: a rename breaks messages already queued."""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import OperationalError

from edu_dl.models import Course
from edu_dl.services.errors import ApplicationError
from edu_dl.services.recommending import (
    REFRESH_COURSE_TASK_NAME,
    REFRESH_STUDENT_TASK_NAME,
    recommendations_refresh,
    recommendations_refresh_course,
)

logger = logging.getLogger(__name__)


@shared_task(
    name=REFRESH_STUDENT_TASK_NAME,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_student_task(student_id: int, course_id: int) -> int | None:
    student = get_user_model().objects.filter(pk=student_id).first()
    course = Course.objects.filter(pk=course_id).first()
    if student is None or course is None:
        logger.info("suggestions skipped: student %s or course %s is gone", student_id, course_id)
        return None
    try:
        return len(recommendations_refresh(student=student, course=course))
    except ApplicationError as error:  # e.g. unenrolled since the event
        logger.info("suggestions of %s in %s skipped: %s", student_id, course_id, error.message)
        return None


@shared_task(name=REFRESH_COURSE_TASK_NAME, ignore_result=True)
def refresh_course_task(course_id: int) -> dict | None:
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return None
    return recommendations_refresh_course(course=course)
