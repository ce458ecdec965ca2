"""What the rest of edu_dl calls when something the LMS should hear of happens.

Safe to import and call in a site that leaves ``edu_dl.lti`` out of INSTALLED_APPS: then it does
nothing (and imports none of the LTI tables).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps


def lti_grades_released(*, response_ids: Iterable[int]) -> None:
    """Grades of these responses were released: their submissions' scores go to the LMS
    gradebooks after commit (see :mod:`edu_dl.lti.services.grades`). Call it inside the
    transaction that releases the grades; it never fails the release."""
    if not apps.is_installed("edu_dl.lti"):
        return
    from edu_dl.lti.services.grades import lti_grades_released as send_after_commit

    send_after_commit(response_ids=response_ids)


def lti_grade_released(*, response_id: int) -> None:
    """The grade of response ``response_id`` was released: its submission's score goes to the
    LMS gradebooks after commit (see :mod:`edu_dl.lti.services.grades`). Call it inside the
    transaction that releases the grade; it never fails the release."""
    lti_grades_released(response_ids=[response_id])
