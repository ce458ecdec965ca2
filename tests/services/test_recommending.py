"""A student's suggestions: computed from mastery and the skill graph, stored with reasons,
marked by the student, steered by the teacher's pins and hides."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from edu_dl.models import (
    AuditEvent,
    Enrollment,
    MasteryEstimate,
    Recommendation,
    RecommendationRule,
    ResourceInteraction,
)
from edu_dl.services.errors import NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.recommending import (
    recommendation_feedback,
    recommendation_rule_remove,
    recommendation_rule_set,
    recommendations_refresh,
)
from edu_dl.services.skill_graph import prerequisite_add
from tests.factories import (
    AssessmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ItemFactory,
    ResourceFactory,
    SkillFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

REFRESH_TASK = "edu_dl.recommending.refresh_student"


@pytest.fixture
def school():
    course = CourseFactory(slug="maths")
    teacher = EnrollmentFactory(course=course, role=Enrollment.Role.TEACHER).user
    student = EnrollmentFactory(course=course).user
    other = EnrollmentFactory(course=course).user
    division = SkillFactory(course=course, name="Division")
    fractions = SkillFactory(course=course, name="Fractions")
    ratios = SkillFactory(course=course, name="Ratios")
    prerequisite_add(skill=fractions, prerequisite=division)
    prerequisite_add(skill=ratios, prerequisite=fractions)
    items = {
        skill.name: [
            ItemFactory(course=course, numeric=True, skills=[skill], title=f"{skill.name} {n}")
            for n in range(3)
        ]
        for skill in (division, fractions, ratios)
    }
    AssessmentFactory(course=course, items=[i for group in items.values() for i in group])
    resources = {
        "fractions video": ResourceFactory(
            course=course, title="Fractions video", kind="video", skills=[fractions]
        ),
        "fractions reading": ResourceFactory(
            course=course, title="Fractions reading", skills=[fractions]
        ),
        "division reading": ResourceFactory(
            course=course, title="Division reading", skills=[division]
        ),
        "ratios reading": ResourceFactory(course=course, title="Ratios reading", skills=[ratios]),
    }
    return {
        "course": course,
        "teacher": teacher,
        "student": student,
        "other": other,
        "skills": {"division": division, "fractions": fractions, "ratios": ratios},
        "items": items,
        "resources": resources,
    }


def mastery_rows(student, values, skills):
    MasteryEstimate.objects.filter(student=student).delete()
    for name, value in values.items():
        MasteryEstimate.objects.create(
            student=student,
            skill=skills[name],
            probability=value,
            evidence_count=5,
            as_of=timezone.now(),
        )


def test_suggestions_follow_mastery_and_prerequisites_with_reasons(school):
    skills = school["skills"]
    mastery_rows(school["student"], {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)

    made = recommendations_refresh(student=school["student"], course=school["course"])

    assert {r.skill_id for r in made} == {skills["fractions"].pk}
    practice = [r for r in made if r.item_id]
    studied = [r for r in made if r.resource_id]
    assert len(practice) == 2  # at most RECOMMENDER_PER_SKILL on one skill
    assert {r.resource_id for r in studied} == {
        school["resources"]["fractions video"].pk,
        school["resources"]["fractions reading"].pk,
    }
    assert [r.rank for r in made] == list(range(1, len(made) + 1))
    assert studied[0].reason.startswith(
        "Fractions is at 38% and you have mastered its prerequisite Division."
    )
    assert studied[0].facts["prerequisites_mastered"] == [skills["division"].pk]
    assert all(r.is_current for r in made)


def test_a_refresh_replaces_the_current_set_and_keeps_the_old_one(school):
    student, course, skills = school["student"], school["course"], school["skills"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)
    first = recommendations_refresh(student=student, course=course)
    mastery_rows(student, {"division": 0.9, "fractions": 0.9, "ratios": 0.3}, skills)

    second = recommendations_refresh(student=student, course=course)

    assert Recommendation.objects.filter(pk__in=[r.pk for r in first], is_current=True).count() == 0
    assert Recommendation.objects.count() == len(first) + len(second)
    assert {r.skill_id for r in second} == {skills["ratios"].pk}


def test_a_new_student_gets_the_starting_skills(school):
    made = recommendations_refresh(student=school["student"], course=school["course"])

    assert {r.skill_id for r in made} == {school["skills"]["division"].pk}
    assert "starting skill" in made[0].reason


def test_a_course_without_resources_or_items_gives_an_empty_answer():
    course = CourseFactory()
    student = EnrollmentFactory(course=course).user
    SkillFactory(course=course, name="Lonely skill")

    assert recommendations_refresh(student=student, course=course) == []


def test_only_students_of_the_course_get_suggestions(school):
    outsider = UserFactory()

    with pytest.raises(ValidationFailed, match="not a student"):
        recommendations_refresh(student=outsider, course=school["course"])
    with pytest.raises(ValidationFailed):
        recommendations_refresh(student=school["teacher"], course=school["course"])
    assert Recommendation.objects.count() == 0


def test_feedback_is_recorded_and_a_resource_event_logged(
    school, sent, django_capture_on_commit_callbacks
):
    student, course, skills = school["student"], school["course"], school["skills"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)
    made = recommendations_refresh(student=student, course=course)
    resource_suggestion = next(r for r in made if r.resource_id)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        recommendation_feedback(
            recommendation_id=resource_suggestion.pk, student=student, event="helpful"
        )
        marked = recommendation_feedback(
            recommendation_id=resource_suggestion.pk, student=student, event="completed"
        )

    assert marked.feedback == "helpful"
    assert marked.completed_at is not None and marked.viewed_at is not None
    assert list(
        ResourceInteraction.objects.filter(recommendation=marked).values_list("event", flat=True)
    ) == ["completed", "helpful"]
    assert sent == [(REFRESH_TASK, [student.pk, course.pk])]


def test_a_completed_resource_is_not_suggested_again(school):
    student, course, skills = school["student"], school["course"], school["skills"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)
    made = recommendations_refresh(student=student, course=course)
    done = next(r for r in made if r.resource_id)
    recommendation_feedback(recommendation_id=done.pk, student=student, event="completed")

    again = recommendations_refresh(student=student, course=course)

    assert done.resource_id not in {r.resource_id for r in again}


def test_feedback_on_someone_elses_suggestion_changes_nothing(school):
    student, course, skills = school["student"], school["course"], school["skills"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)
    made = recommendations_refresh(student=student, course=course)

    with pytest.raises(NotFound):
        recommendation_feedback(
            recommendation_id=made[0].pk, student=school["other"], event="helpful"
        )
    with pytest.raises(ValidationFailed, match="event must be one of"):
        recommendation_feedback(recommendation_id=made[0].pk, student=student, event="loved")

    fresh = Recommendation.objects.get(pk=made[0].pk)
    assert (fresh.feedback, fresh.viewed_at, fresh.completed_at) == ("", None, None)
    assert ResourceInteraction.objects.count() == 0


def test_teacher_pins_come_first_and_hides_never_appear(
    school, sent, django_capture_on_commit_callbacks
):
    student, course, skills = school["student"], school["course"], school["skills"]
    resources = school["resources"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)

    with django_capture_on_commit_callbacks(execute=True):
        recommendation_rule_set(
            course=course,
            actor=school["teacher"],
            action="pin",
            resource=resources["ratios reading"],
        )
        recommendation_rule_set(
            course=course,
            actor=school["teacher"],
            action="hide",
            resource=resources["fractions video"],
            student=student,
        )
    made = recommendations_refresh(student=student, course=course)

    studied = [r for r in made if r.resource_id]
    assert studied[0].resource_id == resources["ratios reading"].pk
    assert studied[0].reason == "Your teacher recommends this."
    assert resources["fractions video"].pk not in {r.resource_id for r in made}
    assert (
        AuditEvent.objects.filter(action__in=["recommendation.pin", "recommendation.hide"]).count()
        == 2
    )
    assert ("edu_dl.recommending.refresh_course", [course.pk]) in sent
    assert (REFRESH_TASK, [student.pk, course.pk]) in sent


def test_a_students_own_rule_overrides_the_course_rule(school):
    student, course, skills = school["student"], school["course"], school["skills"]
    video = school["resources"]["fractions video"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)
    recommendation_rule_set(course=course, actor=school["teacher"], action="hide", resource=video)
    rule = recommendation_rule_set(
        course=course, actor=school["teacher"], action="pin", resource=video, student=student
    )

    made = recommendations_refresh(student=student, course=course)
    assert made[[r.resource_id for r in made].index(video.pk)].facts["pinned"] is True

    recommendation_rule_remove(rule=rule, actor=school["teacher"])
    again = recommendations_refresh(student=student, course=course)
    assert video.pk not in {r.resource_id for r in again}


def test_only_the_courses_teachers_may_pin_or_hide(school):
    course = school["course"]
    video = school["resources"]["fractions video"]
    stranger_teacher = EnrollmentFactory(role=Enrollment.Role.TEACHER).user

    for actor in (school["student"], stranger_teacher):
        with pytest.raises(PermissionDenied):
            recommendation_rule_set(course=course, actor=actor, action="pin", resource=video)
    other_course_resource = ResourceFactory()
    with pytest.raises(ValidationFailed, match="is not part of"):
        recommendation_rule_set(
            course=course, actor=school["teacher"], action="pin", resource=other_course_resource
        )
    with pytest.raises(ValidationFailed, match="action must be one of"):
        recommendation_rule_set(
            course=course, actor=school["teacher"], action="boost", resource=video
        )
    assert RecommendationRule.objects.count() == 0
    assert AuditEvent.objects.filter(action__startswith="recommendation.").count() == 0


def test_a_mastery_change_enqueues_a_refresh_and_no_change_does_not(
    school, sent, django_capture_on_commit_callbacks
):
    from edu_dl.services.interactions import InteractionRecord, interactions_record
    from edu_dl.services.mastery import mastery_update_for_student

    student, course = school["student"], school["course"]
    item = school["items"]["Division"][0]
    interactions_record(
        course=course,
        records=[
            InteractionRecord(
                student_id=student.pk,
                item_id=item.pk,
                skill_ids=[school["skills"]["division"].pk],
                correct=True,
                timestamp=timezone.now() - timedelta(minutes=1),
            )
        ],
    )
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        mastery_update_for_student(student=student, course=course)
    assert (REFRESH_TASK, [student.pk, course.pk]) in sent

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        mastery_update_for_student(student=student, course=course)
    assert REFRESH_TASK not in [name for name, _ in sent]


def test_the_number_of_queries_does_not_grow_with_the_catalogue(school):
    student, course, skills = school["student"], school["course"], school["skills"]
    mastery_rows(student, {"division": 0.9, "fractions": 0.38, "ratios": 0.2}, skills)
    recommendations_refresh(student=student, course=course)
    with CaptureQueriesContext(connection) as small:
        recommendations_refresh(student=student, course=course)
    for n in range(30):
        ResourceFactory(course=course, title=f"Extra {n}", skills=[skills["fractions"]])

    with CaptureQueriesContext(connection) as large:
        recommendations_refresh(student=student, course=course)

    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_student_with_answers_but_no_stored_mastery_is_not_treated_as_new(school):
    from edu_dl.services.interactions import InteractionRecord, interactions_record

    student, course, skills = school["student"], school["course"], school["skills"]
    start = timezone.now() - timedelta(hours=1)
    interactions_record(
        course=course,
        records=[
            InteractionRecord(
                student_id=student.pk,
                item_id=school["items"]["Division"][n % 3].pk,
                skill_ids=(skills["division"].pk,),
                correct=n % 4 != 0,
                timestamp=start + timedelta(minutes=n),
            )
            for n in range(8)
        ],
    )
    assert not MasteryEstimate.objects.filter(student=student).exists()

    made = recommendations_refresh(student=student, course=course)

    assert made
    assert not any(r.facts.get("starting") for r in made)
    assert {r.skill_id for r in made} == {skills["division"].pk}
