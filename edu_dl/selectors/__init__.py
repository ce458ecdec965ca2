"""Reads that carry a rule: who may see what, and (later) dashboard queries and rows -> ml data."""

from edu_dl.selectors.access import (
    active_model_version,
    assessments_visible,
    course_get_for_user,
    course_is_staff,
    course_role,
    course_scope_key,
    courses_for_user,
    items_visible,
    resources_visible,
    responses_visible,
    skills_visible,
    student_record_visible,
    students_visible,
    training_runs_visible,
)
from edu_dl.selectors.review import (
    response_for_review,
    response_get_for_review,
    review_next,
    review_queue,
    review_queue_counts,
    review_queue_total,
)
from edu_dl.selectors.submissions import responses_for_student_view, submission_get_for_viewer

__all__ = [
    "active_model_version",
    "assessments_visible",
    "course_get_for_user",
    "course_is_staff",
    "course_role",
    "course_scope_key",
    "courses_for_user",
    "items_visible",
    "resources_visible",
    "response_for_review",
    "response_get_for_review",
    "responses_for_student_view",
    "responses_visible",
    "review_next",
    "review_queue",
    "review_queue_counts",
    "review_queue_total",
    "skills_visible",
    "student_record_visible",
    "students_visible",
    "submission_get_for_viewer",
    "training_runs_visible",
]
