"""Suggestions for each student: what to practise and what to study next, with reasons.

The ranking itself is :mod:`edu_dl.ml.recommend.policy`; this module gathers its inputs from the
database (current mastery, the skill graph, the catalogue, what the student completed, the
teacher's pins and hides, the active models), stores what was suggested as the student's
current set of :class:`Recommendation` rows, and records the student's feedback.

Suggestions are computed in a worker when the student's mastery changes (after a graded
answer, or a course-wide refresh after a new model), when the student completes one, and when
a teacher pins or hides something; a page only reads the stored set. Computing on every page
view would make the list jump while a student reads it, and would load models into web
processes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import current_app
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from edu_dl.conf import edu_settings
from edu_dl.models import (
    Course,
    Enrollment,
    Item,
    MasteryEstimate,
    ModelKind,
    Recommendation,
    RecommendationRule,
    Resource,
    ResourceInteraction,
    ResourceSkill,
    Skill,
)
from edu_dl.selectors.access import course_is_staff, course_scope_key
from edu_dl.selectors.mastery import AnswerHistory, student_answer_sequence
from edu_dl.selectors.skill_graph import course_prerequisites
from edu_dl.services.audit import audit_record
from edu_dl.services.errors import NotFound, PermissionDenied, ValidationFailed

logger = logging.getLogger(__name__)

REFRESH_STUDENT_TASK_NAME = "edu_dl.recommending.refresh_student"
REFRESH_COURSE_TASK_NAME = "edu_dl.recommending.refresh_course"
FEEDBACK_EVENTS = ("viewed", "completed", "helpful", "not_helpful")


def policy_config():
    """The policy's settings from ``EDU_DL`` (read when called, never at import)."""
    from edu_dl.ml.recommend.policy import PolicyConfig

    return PolicyConfig(
        target_mastery=edu_settings.RECOMMENDER_TARGET_MASTERY,
        band_low=edu_settings.RECOMMENDER_BAND[0],
        band_high=edu_settings.RECOMMENDER_BAND[1],
        count=edu_settings.RECOMMENDER_COUNT,
        per_skill=edu_settings.RECOMMENDER_PER_SKILL,
    )


# --- Reasons -------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "?" if value is None else f"{round(100 * value)}%"


def _names(ids: Iterable[Any], names: dict[int, str]) -> str:
    listed = [names.get(int(i), str(i)) for i in ids]
    return ", ".join(listed[:3]) + ("…" if len(listed) > 3 else "")


def reason_text(
    *, kind: str, facts: dict[str, Any], skill_name: str, skill_names: dict[int, str]
) -> str:
    """The sentence a student reads, built only from the facts the policy used.

    Built again at display time in the reader's language; the stored ``reason`` is the text in
    the language of the worker that made the suggestion.
    """
    target = facts.get("target_mastery", 0.8)
    if facts.get("pinned"):
        return _("Your teacher recommends this.")
    if facts.get("fallback"):
        return _(
            "Every skill with practice is mastered or waiting for a prerequisite: this "
            "question keeps your practice going."
        )
    parts = []
    mastery = _percent(facts.get("mastery"))
    if facts.get("starting"):
        parts.append(
            _("%(skill)s is a starting skill of this course: a good place to begin.")
            % {"skill": skill_name}
        )
    elif facts.get("in_progress"):
        parts.append(
            _("You are working on %(skill)s (%(mastery)s): keep going until it is mastered.")
            % {"skill": skill_name, "mastery": mastery}
        )
    elif facts.get("prerequisites_mastered"):
        parts.append(
            _(
                "%(skill)s is at %(mastery)s and you have mastered its prerequisite "
                "%(prerequisites)s."
            )
            % {
                "skill": skill_name,
                "mastery": mastery,
                "prerequisites": _names(facts["prerequisites_mastered"], skill_names),
            }
        )
    else:
        parts.append(
            _("%(skill)s is at %(mastery)s, below the %(target)s that counts as mastered.")
            % {"skill": skill_name, "mastery": mastery, "target": _percent(target)}
        )
    if kind == "item" and facts.get("success") is not None:
        if facts.get("in_band"):
            parts.append(
                _("Your chance on this question is about %(chance)s: a good level of challenge.")
                % {"chance": _percent(facts["success"])}
            )
        else:
            parts.append(
                _("Your chance on this question is about %(chance)s.")
                % {"chance": _percent(facts["success"])}
            )
    helpfulness = facts.get("helpfulness")
    if kind == "resource" and helpfulness is not None and helpfulness >= 0.6:
        parts.append(
            _("Students at a similar level found it helpful (%(chance)s likely to help you).")
            % {"chance": _percent(helpfulness)}
        )
    return " ".join(parts)


def recommendation_reason(recommendation: Recommendation, skill_names: dict[int, str]) -> str:
    """The recommendation's reason in the active language."""
    skill = recommendation.skill_id
    return reason_text(
        kind=recommendation.kind,
        facts=recommendation.facts,
        skill_name=skill_names.get(skill, recommendation.facts.get("skill_name", "")),
        skill_names=skill_names,
    )


# --- Inputs --------------------------------------------------------------------------------------


def _mastery(
    *, student_id: int, skill_ids: list[int], history: AnswerHistory, estimator: Any
) -> dict[int, tuple[float, int]]:
    """Current mastery and evidence per skill, as the student sees it on their progress page;
    skills without a stored estimate (mastery not computed yet, a skill added since) are
    estimated now from the history, as the mastery service would."""
    rows = MasteryEstimate.objects.filter(
        student_id=student_id, skill_id__in=skill_ids, is_current=True
    ).values_list("skill_id", "probability", "evidence_count")
    found = {skill_id: (probability, evidence) for skill_id, probability, evidence in rows}
    if len(found) < len(skill_ids):
        estimates = estimator.estimate([history])[0]
        for skill_id in skill_ids:
            if skill_id not in found:
                estimate = estimates[skill_id]
                found[skill_id] = (estimate.probability, estimate.evidence_count)
    return found


def _practice_items(course: Course) -> dict[int, list[int]]:
    """Active items of the course's published assessments, with their skills (one query)."""
    skills: dict[int, set[int]] = defaultdict(set)
    for item_id, skill_id in Item.skills.through.objects.filter(
        item__course=course,
        item__is_active=True,
        item__assessment_entries__assessment__is_published=True,
    ).values_list("item_id", "skill_id"):
        skills[item_id].add(skill_id)
    return {item_id: sorted(skill_ids) for item_id, skill_ids in skills.items()}


def _answered_right(history: AnswerHistory) -> set[int]:
    """Items whose latest answer by the student was correct (practice would repeat them)."""
    latest = {}
    for item_id, correct in zip(history.item_ids, history.correct, strict=True):
        if item_id is not None:
            latest[item_id] = correct
    return {item_id for item_id, correct in latest.items() if correct}


def _resources(course: Course) -> dict[int, dict[str, Any]]:
    """Active resources with their difficulty and skill weights (one query; a resource linked
    to no skill teaches nothing the policy can place, so it is not read)."""
    resources: dict[int, dict[str, Any]] = {}
    for resource_id, difficulty, skill_id, weight in ResourceSkill.objects.filter(
        resource__course=course, resource__is_active=True
    ).values_list("resource_id", "resource__difficulty", "skill_id", "weight"):
        resources.setdefault(resource_id, {"difficulty": difficulty, "skills": {}})["skills"][
            skill_id
        ] = weight
    return resources


def _rules(*, student_id: int, course: Course) -> dict[str, list]:
    """The teacher's pins (in the order made) and hides that apply to the student; a rule for
    the student overrides a course-wide one on the same target."""
    chosen: dict[tuple[str, int], str] = {}
    order: list[tuple[str, int]] = []
    rules = (
        RecommendationRule.objects.filter(course=course)
        .filter(Q(student_id=student_id) | Q(student__isnull=True))
        .order_by("created_at", "pk")
        .values_list("student_id", "resource_id", "item_id", "action")
    )
    # Course-wide rules first, so that the student's own rule on the same target wins.
    for _student, resource_id, item_id, action in sorted(rules, key=lambda row: row[0] is not None):
        target = ("resource", resource_id) if resource_id else ("item", item_id)
        if target not in chosen:
            order.append(target)
        chosen[target] = action
    result: dict[str, list] = {
        "pin_resource": [],
        "pin_item": [],
        "hide_resource": [],
        "hide_item": [],
    }
    for target in order:
        result[f"{chosen[target]}_{target[0]}"].append(target[1])
    return result


def _item_success(
    *, estimator: Any, history: AnswerHistory, items: dict[int, list[int]], mastery: dict
) -> tuple[dict[int, float], int | None]:
    """The chance of answering each item right now: from the course's knowledge-tracing model
    where one is active, else the mean mastery of the item's skills."""
    if estimator.cached is not None and items:
        chances = estimator.item_success(history, list(items.items()))
        if chances is not None:
            return dict(zip(items, (float(c) for c in chances), strict=True)), estimator.version_id
    return (
        {
            item_id: sum(mastery[s][0] for s in skills) / len(skills)
            for item_id, skills in items.items()
        },
        None,
    )


def _helpfulness(
    *, course: Course, mastery: dict[int, tuple], resources: dict[int, dict[str, Any]]
) -> tuple[dict[int, float], int | None]:
    """The learned model's probability that each resource helps this student, where the
    course has an active recommender model."""
    from edu_dl.services.model_versions import ModelUnavailable, active_model_load

    if not resources:
        return {}, None
    try:
        cached = active_model_load(kind=ModelKind.RECOMMENDER, scope_key=course_scope_key(course))
    except ModelUnavailable:
        return {}, None
    from edu_dl.ml.recommend.helpfulness import TrainedHelpfulness

    model = TrainedHelpfulness.from_checkpoint(cached.loaded)
    scores = model.score(
        {skill_id: value[0] for skill_id, value in mastery.items()},
        {pk: resource["skills"] for pk, resource in resources.items()},
    )
    return scores, cached.version_id


# --- Computing and storing -----------------------------------------------------------------------


def _require_student(*, student: AbstractBaseUser, course: Course) -> None:
    if not Enrollment.objects.filter(
        course=course, user=student, role=Enrollment.Role.STUDENT
    ).exists():
        raise ValidationFailed(
            f"{student.get_username()!r} is not a student of {course.slug!r}", field="student"
        )


def recommendations_refresh(
    *, student: AbstractBaseUser, course: Course, now: datetime | None = None
) -> list[Recommendation]:
    """Compute the student's suggestions and make them the current set (workers and CLIs:
    this may load the course's models)."""
    from edu_dl.ml.recommend.policy import (
        PracticeCandidate,
        ResourceCandidate,
        SkillState,
        rank_practice,
        rank_resources,
    )
    from edu_dl.services.mastery import MasteryEstimator

    _require_student(student=student, course=course)
    config = policy_config()
    skills = dict(Skill.objects.filter(course=course).values_list("pk", "name"))
    prerequisites = course_prerequisites(course_id=course.pk)
    history = student_answer_sequence(course_id=course.pk, student_id=student.pk)
    estimator = MasteryEstimator.for_course(course)
    mastery = _mastery(
        student_id=student.pk, skill_ids=list(skills), history=history, estimator=estimator
    )
    states = {
        skill_id: SkillState(
            mastery=mastery[skill_id][0],
            evidence=mastery[skill_id][1],
            prerequisites=tuple(sorted(prerequisites.get(skill_id, ()))),
        )
        for skill_id in skills
    }
    recent = _recent_skills(history)
    rules = _rules(student_id=student.pk, course=course)

    items = _practice_items(course)
    hidden_items = set(rules["hide_item"])
    items = {pk: s for pk, s in items.items() if pk not in hidden_items}
    success, kt_version = _item_success(
        estimator=estimator, history=history, items=items, mastery=mastery
    )
    done_items = _answered_right(history)
    practice = rank_practice(
        states,
        [
            PracticeCandidate(key=pk, skills=tuple(s), success=success[pk])
            for pk, s in items.items()
        ],
        recent_skills=recent,
        exclude=done_items,
        config=config,
    )
    pinned_items = [pk for pk in rules["pin_item"] if pk in items and pk not in done_items]

    resources = _resources(course)
    helpfulness, recommender_version = _helpfulness(
        course=course, mastery=mastery, resources=resources
    )
    completed = set(
        ResourceInteraction.objects.filter(
            student=student, resource__course=course, event=ResourceInteraction.Event.COMPLETED
        ).values_list("resource_id", flat=True)
    )
    studied = rank_resources(
        states,
        [
            ResourceCandidate(
                key=pk,
                skills=resource["skills"],
                difficulty=resource["difficulty"],
                helpfulness=helpfulness.get(pk),
            )
            for pk, resource in resources.items()
        ],
        completed=completed,
        hidden=rules["hide_resource"],
        pinned=[pk for pk in rules["pin_resource"] if pk in resources],
        recent_skills=recent,
        config=config,
    )

    now = now or timezone.now()
    rows = []
    for pk in pinned_items:
        rows.append(
            Recommendation(
                student=student,
                course=course,
                item_id=pk,
                skill_id=items[pk][0] if items[pk] else None,
                rank=0,
                score=1e6,
                reason=_("Your teacher recommends this."),
                facts={"pinned": True},
                model_version_id=kt_version,
            )
        )
    pinned_set = set(pinned_items)
    chosen = [(s, "item", kt_version) for s in practice if s.key not in pinned_set] + [
        (s, "resource", recommender_version or kt_version) for s in studied
    ]
    for suggestion, kind, version in chosen:
        facts = {
            **suggestion.facts,
            "target_mastery": config.target_mastery,
            "kt_model_version": kt_version,
            "recommender_model_version": recommender_version if kind == "resource" else None,
        }
        rows.append(
            Recommendation(
                student=student,
                course=course,
                item_id=suggestion.key if kind == "item" else None,
                resource_id=suggestion.key if kind == "resource" else None,
                skill_id=suggestion.skill,
                rank=0,
                score=suggestion.score,
                reason=reason_text(
                    kind=kind,
                    facts=facts,
                    skill_name=skills.get(suggestion.skill, ""),
                    skill_names=skills,
                ),
                facts=facts,
                model_version_id=version,
            )
        )
    # Practice first then study, each in the policy's order: one ranking the student reads.
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
        row.created_at = now
    with transaction.atomic():
        Recommendation.objects.filter(student=student, course=course, is_current=True).update(
            is_current=False
        )
        created = Recommendation.objects.bulk_create(rows)
    return created


def _recent_skills(history: AnswerHistory, limit: int = 20) -> list[int]:
    """The first skill of each of the student's latest answers, oldest first (the skill in
    progress last)."""
    return [skill_ids[0] for skill_ids in history.skill_ids[-limit:] if skill_ids]


def recommendations_refresh_enqueue(*, student_id: int, course_id: int) -> None:
    """Refresh the student's suggestions in a worker once the transaction commits."""

    def send() -> None:
        current_app.send_task(REFRESH_STUDENT_TASK_NAME, args=[student_id, course_id])

    transaction.on_commit(send, robust=True)


def recommendations_refresh_course_enqueue(*, course_id: int) -> None:
    def send() -> None:
        current_app.send_task(REFRESH_COURSE_TASK_NAME, args=[course_id])

    transaction.on_commit(send, robust=True)


def recommendations_refresh_course(*, course: Course) -> dict[str, int]:
    """Every student's suggestions (after a course-wide mastery refresh or a new rule)."""
    User = get_user_model()
    student_ids = list(
        Enrollment.objects.filter(course=course, role=Enrollment.Role.STUDENT).values_list(
            "user_id", flat=True
        )
    )
    refreshed = 0
    for student in User.objects.filter(pk__in=student_ids).iterator():
        recommendations_refresh(student=student, course=course)
        refreshed += 1
    return {"students": refreshed}


# --- Feedback and the teacher's rules ------------------------------------------------------------


@transaction.atomic
def recommendation_feedback(
    *,
    recommendation_id: int,
    student: AbstractBaseUser,
    event: str,
    now: datetime | None = None,
) -> Recommendation:
    """The student marks a suggestion viewed, completed, helpful or not helpful.

    Only the student it was made for may; anyone else is told it does not exist. A resource's
    feedback is also logged as a ResourceInteraction (the helpfulness model learns from those);
    completing a suggestion replaces it with a fresh one.
    """
    if event not in FEEDBACK_EVENTS:
        raise ValidationFailed(
            f"event must be one of {', '.join(FEEDBACK_EVENTS)}, not {event!r}", field="event"
        )
    recommendation = (
        Recommendation.objects.select_for_update()
        .filter(pk=recommendation_id, student_id=student.pk)
        .first()
    )
    if recommendation is None:
        raise NotFound(f"no recommendation {recommendation_id} for this student")
    now = now or timezone.now()
    if event == "viewed":
        recommendation.viewed_at = recommendation.viewed_at or now
    elif event == "completed":
        recommendation.completed_at = recommendation.completed_at or now
        recommendation.viewed_at = recommendation.viewed_at or now
    else:
        recommendation.feedback = event
        recommendation.feedback_at = now
    recommendation.save(update_fields=["viewed_at", "completed_at", "feedback", "feedback_at"])
    if recommendation.resource_id:
        ResourceInteraction.objects.create(
            student_id=student.pk,
            resource_id=recommendation.resource_id,
            recommendation=recommendation,
            event=event,
            timestamp=now,
        )
    if event == "completed":
        recommendations_refresh_enqueue(student_id=student.pk, course_id=recommendation.course_id)
    return recommendation


def _rule_target(*, course: Course, resource: Resource | None, item: Item | None) -> None:
    if (resource is None) == (item is None):
        raise ValidationFailed("a rule names either a resource or an item", field="resource")
    target = resource or item
    if target.course_id != course.pk:
        raise ValidationFailed(
            f"{type(target).__name__.lower()} {target.pk} is not part of {course.slug!r}",
            field="resource" if resource else "item",
        )


@transaction.atomic
def recommendation_rule_set(
    *,
    course: Course,
    actor: AbstractBaseUser,
    action: str,
    resource: Resource | None = None,
    item: Item | None = None,
    student: AbstractBaseUser | None = None,
) -> RecommendationRule:
    """Pin (always suggest first) or hide (never suggest) a resource or item, for one student
    or for the whole course. Teachers and assistants of the course only; audited."""
    if not course_is_staff(user=actor, course=course):
        raise PermissionDenied("only the course's teachers may pin or hide suggestions")
    if action not in RecommendationRule.Action.values:
        raise ValidationFailed(
            f"action must be one of {', '.join(RecommendationRule.Action.values)}, not {action!r}",
            field="action",
        )
    _rule_target(course=course, resource=resource, item=item)
    if student is not None:
        _require_student(student=student, course=course)
    rule, created = RecommendationRule.objects.select_for_update().get_or_create(
        course=course,
        student=student,
        resource=resource,
        item=item,
        defaults={"action": action, "created_by": actor},
    )
    before = None if created else {"action": rule.action}
    if not created and rule.action != action:
        rule.action = action
        rule.created_by = actor
        rule.save(update_fields=["action", "created_by"])
    audit_record(
        actor=actor,
        action=f"recommendation.{action}",
        target=rule,
        course=course,
        before=before,
        after={
            "action": action,
            "resource": resource.pk if resource else None,
            "item": item.pk if item else None,
            "student": student.pk if student else None,
        },
    )
    _refresh_after_rule(course=course, student=student)
    return rule


@transaction.atomic
def recommendation_rule_remove(*, rule: RecommendationRule, actor: AbstractBaseUser) -> None:
    if not course_is_staff(user=actor, course=rule.course):
        raise PermissionDenied("only the course's teachers may pin or hide suggestions")
    audit_record(
        actor=actor,
        action="recommendation.rule_removed",
        target=rule,
        course=rule.course,
        before={"action": rule.action},
    )
    student = rule.student
    course = rule.course
    rule.delete()
    _refresh_after_rule(course=course, student=student)


def _refresh_after_rule(*, course: Course, student: AbstractBaseUser | None) -> None:
    if student is not None:
        recommendations_refresh_enqueue(student_id=student.pk, course_id=course.pk)
    else:
        recommendations_refresh_course_enqueue(course_id=course.pk)
