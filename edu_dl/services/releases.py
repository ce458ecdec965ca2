"""What follows a grade's release, whoever released it (rule grading at submission, the model
grader's release policy, a teacher's accept or override): the course's webhooks
(``grade.released``) and, for students who came through an LMS, its gradebook (LTI Assignment
and Grade Services). Called inside the releasing transaction; sends after commit; never fails
the release."""

from __future__ import annotations

from collections.abc import Iterable

from edu_dl.services.webhooks import webhook_grades_released


def grades_released(*, response_ids: Iterable[int]) -> None:
    ids = sorted(set(response_ids))
    if not ids:
        return
    webhook_grades_released(response_ids=ids)
    # The hook does nothing (and loads no LTI table) where edu_dl.lti is not installed.
    from edu_dl.lti.hooks import lti_grades_released

    lti_grades_released(response_ids=ids)
