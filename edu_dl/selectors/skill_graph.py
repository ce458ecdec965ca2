"""Reads of a course's skill graph: which skills come before which (for the recommender)."""

from __future__ import annotations

from edu_dl.models import Skill, SkillPrerequisite


def course_prerequisites(*, course_id: int) -> dict[int, set[int]]:
    """Every skill of the course (by id) -> the ids of its prerequisites (empty when none)."""
    graph: dict[int, set[int]] = {
        pk: set() for pk in Skill.objects.filter(course_id=course_id).values_list("pk", flat=True)
    }
    edges = SkillPrerequisite.objects.filter(skill__course_id=course_id).values_list(
        "skill_id", "prerequisite_id"
    )
    for skill_id, prerequisite_id in edges:
        graph[skill_id].add(prerequisite_id)
    return graph


def starting_skills(*, course_id: int) -> list[int]:
    """The ids of the course's skills that have no prerequisite, ordered by name."""
    return list(
        Skill.objects.filter(course_id=course_id, prerequisite_links__isnull=True)
        .order_by("name", "pk")
        .values_list("pk", flat=True)
    )
