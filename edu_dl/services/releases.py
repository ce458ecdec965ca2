"""What follows a grade's release, whoever released it (rule grading at submission, the model
grader's release policy, a teacher's accept or override): the course's webhooks
(``grade.released``) and, for students who came through an LMS, its gradebook (LTI Assignment
and Grade Services). Called inside the releasing transaction; sends after commit; never fails
the release."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.apps import apps

from edu_dl.models import Response
from edu_dl.services.webhooks import webhook_grades_released

logger = logging.getLogger(__name__)


def grades_released(*, response_ids: Iterable[int]) -> None:
    ids = sorted(set(response_ids))
    if not ids:
        return
    webhook_grades_released(response_ids=ids)
    if not apps.is_installed("edu_dl.lti"):
        return
    from edu_dl.lti.hooks import lti_grade_released

    # The LMS's gradebook column is per assessment: one passback per submission is enough.
    first_of_submission: dict[int, int] = {}
    for submission_id, response_id in Response.objects.filter(pk__in=ids).values_list(
        "submission_id", "pk"
    ):
        first_of_submission.setdefault(submission_id, response_id)
    for response_id in first_of_submission.values():
        lti_grade_released(response_id=response_id)
