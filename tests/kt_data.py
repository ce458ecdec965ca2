"""A small course with a real answer history of known structure, built through services."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from edu_dl.models import Course, Enrollment, Item, Skill
from edu_dl.services.interactions import InteractionRecord, interactions_record


def make_kt_course(
    *,
    slug: str = "kt-course",
    students: int = 40,
    answers: int = 30,
    skills: int = 4,
    seed: int = 0,
) -> Course:
    """Students with an ability each, items with a skill and a difficulty, answers that follow
    a logistic model with practice effects: a model that learns must beat chance on it."""
    rng = np.random.default_rng(seed)
    user_model = get_user_model()
    course = Course.objects.create(slug=slug, title=slug.title())
    teacher = user_model.objects.create_user(username=f"{slug}-teacher")
    Enrollment.objects.create(user=teacher, course=course, role=Enrollment.Role.TEACHER)
    skill_rows = [Skill.objects.create(course=course, name=f"Skill {k}") for k in range(skills)]
    item_rows = []
    for k, skill in enumerate(skill_rows):
        for j in range(3):
            item = Item.objects.create(
                course=course, kind=Item.Kind.NUMERIC, title=f"Q{k}.{j}", answer_key=1
            )
            item.skills.add(skill)
            item_rows.append((item, skill, k - skills / 2 + j * 0.3))
    start = timezone.now() - timedelta(days=30)
    records = []
    for s in range(students):
        student = user_model.objects.create_user(username=f"{slug}-student-{s}")
        Enrollment.objects.create(user=student, course=course, role=Enrollment.Role.STUDENT)
        ability = rng.normal()
        practice = np.zeros(skills)
        for t in range(answers):
            item, skill, difficulty = item_rows[int(rng.integers(len(item_rows)))]
            k = skill_rows.index(skill)
            chance = 1 / (1 + np.exp(-(ability - difficulty + 0.4 * practice[k])))
            practice[k] += 1
            records.append(
                InteractionRecord(
                    student_id=student.pk,
                    item_id=item.pk,
                    skill_ids=(skill.pk,),
                    correct=bool(rng.random() < chance),
                    timestamp=start + timedelta(minutes=s * 1000 + t),
                    external_id=f"{slug}-{s}-{t}",
                )
            )
    interactions_record(course=course, records=records, source="import")
    return course
