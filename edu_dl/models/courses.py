"""Courses, who takes part in them and the skills they teach."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Course(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=16, default="en")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Enrollment(models.Model):
    class Role(models.TextChoices):
        TEACHER = "teacher", _("Teacher")
        ASSISTANT = "assistant", _("Teaching assistant")
        STUDENT = "student", _("Student")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_enrollments"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    # The id of this person in the LMS that sent the roster (OneRoster sourcedId, LTI sub ...).
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "course"], name="enrollment_one_per_user_course"
            ),
        ]
        indexes = [models.Index(fields=["course", "role"], name="enrollment_course_role")]

    def __str__(self) -> str:
        return f"{self.user} in {self.course} as {self.role}"


class Skill(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="skills")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The skill's id in the source it was imported from (a dataset's skill index, a standard code).
    external_id = models.CharField(max_length=255, blank=True)
    prerequisites = models.ManyToManyField(
        "self",
        through="SkillPrerequisite",
        through_fields=("skill", "prerequisite"),
        symmetrical=False,
        related_name="unlocks",
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "name"]
        constraints = [
            models.UniqueConstraint(fields=["course", "name"], name="skill_unique_name_in_course"),
            models.UniqueConstraint(
                fields=["course", "external_id"],
                condition=~models.Q(external_id=""),
                name="skill_unique_external_id_in_course",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SkillPrerequisite(models.Model):
    """``prerequisite`` is to be mastered before ``skill`` is learnt: an edge of the skill graph."""

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="prerequisite_links")
    prerequisite = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="unlock_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["skill", "prerequisite"], name="prerequisite_once"),
            models.CheckConstraint(
                condition=~models.Q(skill=models.F("prerequisite")),
                name="prerequisite_not_itself",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prerequisite} before {self.skill}"
