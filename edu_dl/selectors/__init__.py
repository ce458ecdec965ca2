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
    "responses_visible",
    "skills_visible",
    "student_record_visible",
    "students_visible",
    "training_runs_visible",
]
