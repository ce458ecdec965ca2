"""Storing xAPI statements and turning them into our learning records.

:func:`statements_store` takes a request's statements all or nothing: every statement is checked
(:mod:`edu_dl.xapi.validation`), matched and authorised before the first one is written, and a
single problem refuses the whole request with the statement's position in it.

How a statement maps to our records
-----------------------------------
- **Activity.** The object's activity IRI names an :class:`~edu_dl.models.Item` or
  :class:`~edu_dl.models.Resource` by its ``external_id``, or by our own IRI
  ``https://<host>/xapi/activities/items/<pk>`` / ``.../resources/<pk>``
  (:mod:`edu_dl.xapi.vocabulary`). Only the courses the sender may open count (and, for an
  OAuth application limited to some courses, only those): an item elsewhere is an unknown
  activity, exactly like one that does not exist. When one IRI names several of them (the
  same external id in two courses), the statement's course decides, else it is an unknown
  activity. ``answered`` looks for an item first, ``completed`` and ``experienced`` for a
  resource first.
- **Course.** The course of that item or resource. Without one, the statement's context may
  name it: a ``contextActivities`` parent or grouping with our course IRI
  ``https://<host>/xapi/activities/courses/<slug>``, or the slug in the context extension
  ``https://edu-dl.example/xapi/course``. A statement with no course is kept as an unknown
  activity, with no course.
- **Actor.** A student enrolled in the course, found by ``account.name`` equal to their
  username (whatever the account's homePage), ``mbox`` equal to ``mailto:`` and their email
  address (ignoring case), or ``mbox_sha1sum`` equal to the SHA-1 of that mailto IRI. An
  openid, a group, a teacher or someone found twice is an unknown actor.
- **Verb.** ``answered`` on an item becomes an :class:`~edu_dl.models.Interaction` (source
  xapi, external id = the statement id, the item's skills): correct is ``result.success``, or
  without it ``result.score.scaled`` of at least ``EDU_DL["MASTERY_CORRECT_FRACTION"]`` (0.5),
  the rule graded responses follow; an answer with neither is kept as an ignored verb. The
  student's mastery update is sent after commit, as for graded responses. ``completed`` /
  ``experienced`` on a resource becomes a :class:`~edu_dl.models.ResourceInteraction`
  (completed / viewed); a completion also refreshes the student's suggestions, as completing
  a suggestion does. Any other verb, or a verb on the other kind of activity, is kept as an
  ignored verb.
- **Voiding.** A ``voided`` statement whose object is a StatementRef marks its target voided
  and *deletes* the Interaction or ResourceInteraction the target made (knowledge tracing and
  the recommender read every row of those tables, and they have no "voided" flag), then sends
  the student's mastery update again; the target keeps its outcome and says in its note what
  was undone. A voiding statement cannot be voided; voiding a voided statement again is kept
  and changes nothing.

Who may send what
-----------------
- A statement with a course: the course's staff (teachers, assistants, superusers), or the
  student the actor names, about themself. Anyone else: 403.
- A statement with no course: someone who is staff of at least one course (or a superuser);
  others get 403.
- Voiding: the target course's staff; for a target with no course, whoever stored it. A target
  the sender may not void is reported as not found. Students cannot void (they could erase
  their wrong answers).

Idempotency: a statement whose id is stored already with the same content (``stored`` and
``authority`` aside) is accepted and changes nothing; with other content it is a conflict (409).
The same id twice in one request is refused (400). Timestamps later than the server's clock by
more than :data:`~edu_dl.services.interactions.FUTURE_TOLERANCE` are refused, as for imports.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from edu_dl.conf import edu_settings
from edu_dl.models import Course, Enrollment, Interaction, Item, Resource, ResourceInteraction
from edu_dl.selectors.access import STAFF_ROLES, course_is_staff, course_role
from edu_dl.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from edu_dl.services.interactions import (
    InteractionRecord,
    interaction_values_problem,
    interactions_record,
)
from edu_dl.services.mastery import mastery_update_enqueue
from edu_dl.services.recommending import recommendations_refresh_enqueue
from edu_dl.xapi.models import Statement
from edu_dl.xapi.validation import CheckedStatement, StatementInvalid, statement_check
from edu_dl.xapi.vocabulary import (
    COURSES_SEGMENT,
    ITEMS_SEGMENT,
    RESOURCES_SEGMENT,
    VERB_ANSWERED,
    VERB_COMPLETED,
    VERB_EXPERIENCED,
    own_activity,
)

Outcome = Statement.Outcome
# The outcome reported for a statement that was stored already with the same content.
ALREADY_STORED = "already_stored"
RESOURCE_VERBS = {
    VERB_COMPLETED: ResourceInteraction.Event.COMPLETED,
    VERB_EXPERIENCED: ResourceInteraction.Event.VIEWED,
}
# Properties that the store sets, not the sender: left out when two versions are compared.
STORE_PROPERTIES = ("stored", "authority")


@dataclass
class StatementsStored:
    """What a request's statements became: ``ids`` and ``outcomes`` in the request's order."""

    ids: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        """How many statements had each outcome (``already_stored`` for repeated ones)."""
        return dict(sorted(Counter(self.outcomes).items()))


@dataclass
class _Plan:
    """What one new statement will become, decided before anything is written."""

    checked: CheckedStatement
    outcome: str
    course: Course | None = None
    student_id: int | None = None
    item: Item | None = None
    resource: Resource | None = None
    correct: bool | None = None
    note: str = ""
    # Voiding only: the target's id, and whether the target is in this request.
    target_id: uuid.UUID | None = None


def _where(checked: CheckedStatement | int) -> str:
    index = checked if isinstance(checked, int) else checked.index
    return f"statement {index}"


def _comparable(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key not in STORE_PROPERTIES}


class _Matcher:
    """Finds courses, activities and students for one sender, with a cache per request."""

    def __init__(self, *, user: Any, client_course_ids: set[int] | None, activity_base: str | None):
        self.user = user
        self.client_course_ids = client_course_ids
        self.activity_base = activity_base
        self._visible: dict[int, bool] = {}
        self._activities: dict[str, tuple[list[Item], list[Resource]]] = {}
        self._courses_by_slug: dict[str, Course | None] = {}
        self._students: dict[int, list[tuple[int, str, str]]] = {}

    # --- Courses -----------------------------------------------------------------------------

    def visible(self, course: Course) -> bool:
        """Whether the sender may open the course (and their OAuth client may reach it)."""
        if course.pk not in self._visible:
            allowed = self.client_course_ids is None or course.pk in self.client_course_ids
            self._visible[course.pk] = allowed and (
                course_is_staff(user=self.user, course=course)
                or course_role(user=self.user, course=course) is not None
            )
        return self._visible[course.pk]

    def is_staff_somewhere(self) -> bool:
        if self.user.is_superuser and self.user.is_active:
            return True
        courses = Enrollment.objects.filter(user=self.user, role__in=STAFF_ROLES)
        if self.client_course_ids is not None:
            courses = courses.filter(course_id__in=self.client_course_ids)
        return courses.exists()

    def _course_by_slug(self, slug: str) -> Course | None:
        if slug not in self._courses_by_slug:
            course = Course.objects.filter(slug=slug).first()
            self._courses_by_slug[slug] = course if course and self.visible(course) else None
        return self._courses_by_slug[slug]

    def context_course(self, checked: CheckedStatement) -> Course | None:
        """The one visible course the statement's context names, if it names exactly one."""
        slugs = set()
        for iri in checked.context_activities:
            own = own_activity(iri, activity_base=self.activity_base)
            if own is not None and own.kind == COURSES_SEGMENT.rstrip("/"):
                slugs.add(own.key)
        if checked.context_course_slug:
            slugs.add(checked.context_course_slug)
        courses = {course for slug in slugs if (course := self._course_by_slug(slug))}
        return courses.pop() if len(courses) == 1 else None

    # --- Activities --------------------------------------------------------------------------

    def _candidates(self, iri: str) -> tuple[list[Item], list[Resource]]:
        if iri not in self._activities:
            own = own_activity(iri, activity_base=self.activity_base)
            items = Item.objects.select_related("course")
            resources = Resource.objects.select_related("course")
            if own is not None and own.kind == ITEMS_SEGMENT.rstrip("/"):
                found = (list(items.filter(pk=int(own.key))), [])
            elif own is not None and own.kind == RESOURCES_SEGMENT.rstrip("/"):
                found = ([], list(resources.filter(pk=int(own.key))))
            elif own is not None:
                found = ([], [])
            else:
                found = (
                    list(items.filter(external_id=iri)),
                    list(resources.filter(external_id=iri)),
                )
            self._activities[iri] = (
                [item for item in found[0] if self.visible(item.course)],
                [resource for resource in found[1] if self.visible(resource.course)],
            )
        return self._activities[iri]

    def activity(
        self, checked: CheckedStatement, context_course: Course | None
    ) -> tuple[Item | Resource | None, str]:
        """The item or resource the statement's object names, or None and why not."""
        if checked.object_type != "Activity":
            return None, f"its object is a {checked.object_type}, not an activity"
        items, resources = self._candidates(checked.object_id)
        if context_course is not None:
            items = [item for item in items if item.course_id == context_course.pk]
            resources = [r for r in resources if r.course_id == context_course.pk]
        first, second = (resources, items) if checked.verb in RESOURCE_VERBS else (items, resources)
        for found in (first, second):
            if len(found) == 1:
                return found[0], ""
            if len(found) > 1:
                return None, (
                    f"{len(found)} activities of your courses have this IRI; name the course "
                    "in the statement's context"
                )
        return None, "no item or resource of your courses has this activity IRI"

    def own_course_activity(self, checked: CheckedStatement) -> Course | None:
        """The course whose own IRI is the statement's object, if the sender may open it."""
        if checked.object_type != "Activity":
            return None
        own = own_activity(checked.object_id, activity_base=self.activity_base)
        if own is None or own.kind != COURSES_SEGMENT.rstrip("/"):
            return None
        return self._course_by_slug(own.key)

    # --- Students ----------------------------------------------------------------------------

    def student(self, checked: CheckedStatement, course: Course) -> tuple[int | None, str]:
        """The student of the course the actor names, or None and why not."""
        if course.pk not in self._students:
            User = get_user_model()
            self._students[course.pk] = list(
                User.objects.filter(
                    edu_enrollments__course=course, edu_enrollments__role=Enrollment.Role.STUDENT
                ).values_list("pk", User.USERNAME_FIELD, User.get_email_field_name())
            )
        students = self._students[course.pk]
        kind, value = checked.actor_kind, checked.actor_value
        if kind == "account":
            found = [pk for pk, username, _ in students if username == value]
        elif kind == "mbox":
            address = value.removeprefix("mailto:").lower()
            found = [pk for pk, _, email in students if email and email.lower() == address]
        elif kind == "mbox_sha1sum":
            found = [
                pk
                for pk, _, email in students
                if email and value in {_mbox_sha1(email), _mbox_sha1(email.lower())}
            ]
        else:
            return None, f"an actor identified by {kind} cannot be matched to a student"
        if len(found) == 1:
            return found[0], ""
        if found:
            return None, f"the actor matches {len(found)} students of {course.slug}"
        return None, f"the actor is not a student of {course.slug}"


def _mbox_sha1(email: str) -> str:
    return hashlib.sha1(f"mailto:{email}".encode(), usedforsecurity=False).hexdigest()


def _is_correct(checked: CheckedStatement) -> bool | None:
    if checked.success is not None:
        return checked.success
    if checked.scaled is not None:
        return checked.scaled >= edu_settings.MASTERY_CORRECT_FRACTION - 1e-9
    return None


def _plan(checked: CheckedStatement, matcher: _Matcher) -> _Plan:
    """What a new, non-voiding statement becomes."""
    context_course = matcher.context_course(checked)
    activity, why = matcher.activity(checked, context_course)
    course = activity.course if activity is not None else None
    if course is None:
        course = matcher.own_course_activity(checked)
        if course is not None:
            why = ""
    course = course or context_course
    if course is None:
        return _Plan(checked, Outcome.UNKNOWN_ACTIVITY, note=why)
    student_id, who = matcher.student(checked, course)
    if activity is None and why:
        return _Plan(
            checked, Outcome.UNKNOWN_ACTIVITY, course=course, student_id=student_id, note=why
        )
    if student_id is None:
        return _Plan(checked, Outcome.UNKNOWN_ACTOR, course=course, note=who)
    plan = _Plan(checked, Outcome.IGNORED_VERB, course=course, student_id=student_id)
    if isinstance(activity, Item) and checked.verb == VERB_ANSWERED:
        plan.correct = _is_correct(checked)
        if plan.correct is None:
            plan.note = "an answer needs result.success or result.score.scaled to be recorded"
        else:
            plan.outcome, plan.item = Outcome.INTERACTION, activity
    elif isinstance(activity, Resource) and checked.verb in RESOURCE_VERBS:
        plan.outcome, plan.resource = Outcome.RESOURCE_EVENT, activity
    else:
        kind = "course" if activity is None else type(activity).__name__.lower()
        plan.note = f"the verb {checked.verb} is not recorded for {kind}s"
    return plan


def _authorise(plan: _Plan, matcher: _Matcher) -> None:
    user = matcher.user
    if plan.course is not None:
        if course_is_staff(user=user, course=plan.course) or plan.student_id == user.pk:
            return
        raise PermissionDenied(
            f"{_where(plan.checked)}: you may send statements only about yourself in "
            f"{plan.course.slug}"
        )
    if not matcher.is_staff_somewhere():
        raise PermissionDenied(
            f"{_where(plan.checked)}: {plan.checked.object_id or 'its object'} is none of your "
            "courses' items or resources, and only course staff may store statements about "
            "other activities"
        )


def _void_plan(
    checked: CheckedStatement,
    matcher: _Matcher,
    *,
    new: dict[uuid.UUID, _Plan],
    voiding_ids: set[uuid.UUID],
) -> _Plan:
    """The plan of a voiding statement: its target must exist and be the sender's to void."""
    target_id = uuid.UUID(checked.object_id)
    not_found = NotFound(f"{_where(checked)}: no statement {target_id} that you may void")
    if target_id in voiding_ids:
        raise ValidationFailed(
            f"{_where(checked)}: statement {target_id} voids another statement and cannot be "
            "voided",
            field=f"statements[{checked.index}].object.id",
        )
    if target_id in new:
        course = new[target_id].course
        stored_by = matcher.user.pk
    else:
        target = Statement.objects.select_related("course").filter(statement_id=target_id).first()
        if target is None:
            raise not_found
        if target.outcome == Outcome.VOIDING:
            raise ValidationFailed(
                f"{_where(checked)}: statement {target_id} voids another statement and cannot "
                "be voided",
                field=f"statements[{checked.index}].object.id",
            )
        course, stored_by = target.course, target.authority_user_id
    if course is not None:
        if not (matcher.visible(course) and course_is_staff(user=matcher.user, course=course)):
            raise not_found
    elif not (stored_by == matcher.user.pk or matcher.user.is_superuser):
        raise not_found
    return _Plan(checked, Outcome.VOIDING, course=course, target_id=target_id)


def _store(plan: _Plan, *, user: Any, now: datetime) -> Statement:
    checked = plan.checked
    try:
        with transaction.atomic():
            return Statement.objects.create(
                statement_id=checked.statement_id,
                course=plan.course,
                student_id=plan.student_id if plan.outcome != Outcome.VOIDING else None,
                actor_key=checked.actor_key,
                verb=checked.verb,
                object_id=checked.object_id,
                raw=checked.raw,
                stored_at=now,
                authority_user=user,
                outcome=plan.outcome,
                note=plan.note,
            )
    except IntegrityError:
        raise Conflict(
            f"{_where(checked)}: statement {checked.statement_id} was stored by another request "
            "meanwhile; send it again to compare"
        ) from None


@dataclass
class _FollowUps:
    """The (student, course) pairs whose mastery or suggestions must be refreshed after commit,
    each sent once however many statements touched it."""

    mastery: set[tuple[int, int]] = field(default_factory=set)
    suggestions: set[tuple[int, int]] = field(default_factory=set)

    def send(self) -> None:
        for student_id, course_id in sorted(self.mastery):
            mastery_update_enqueue(student_id=student_id, course_id=course_id)
        for student_id, course_id in sorted(self.suggestions):
            recommendations_refresh_enqueue(student_id=student_id, course_id=course_id)


def _record_answers(
    plans: list[_Plan], rows: dict[uuid.UUID, Statement], now: datetime, follow_ups: _FollowUps
) -> None:
    """Interactions of the answers, one call of the interaction service per course."""
    by_course: dict[int, list[_Plan]] = {}
    for plan in plans:
        by_course.setdefault(plan.course.pk, []).append(plan)
    for course_plans in by_course.values():
        course = course_plans[0].course
        records = []
        for plan in course_plans:
            assert plan.item is not None and plan.student_id is not None
            records.append(
                InteractionRecord(
                    student_id=plan.student_id,
                    item_id=plan.item.pk,
                    skill_ids=tuple(plan.item.skills.values_list("id", flat=True)),
                    correct=bool(plan.correct),
                    timestamp=plan.checked.timestamp or now,
                    external_id=str(plan.checked.statement_id),
                    duration_s=plan.checked.duration_s,
                )
            )
        interactions_record(course=course, records=records, source=Interaction.Source.XAPI)
        made = dict(
            Interaction.objects.filter(
                course=course,
                source=Interaction.Source.XAPI,
                external_id__in=[record.external_id for record in records],
            ).values_list("external_id", "pk")
        )
        for plan in course_plans:
            row = rows[plan.checked.statement_id]
            row.interaction_id = made[str(plan.checked.statement_id)]
            row.save(update_fields=["interaction"])
            follow_ups.mastery.add((plan.student_id, course.pk))


def _record_resource_event(
    plan: _Plan, row: Statement, now: datetime, follow_ups: _FollowUps
) -> None:
    assert plan.resource is not None and plan.student_id is not None
    event = RESOURCE_VERBS[plan.checked.verb]
    row.resource_event = ResourceInteraction.objects.create(
        student_id=plan.student_id,
        resource=plan.resource,
        event=event,
        timestamp=plan.checked.timestamp or now,
        external_id=str(plan.checked.statement_id),
    )
    row.save(update_fields=["resource_event"])
    if event == ResourceInteraction.Event.COMPLETED:
        follow_ups.suggestions.add((plan.student_id, plan.course.pk))


def _void(plan: _Plan, follow_ups: _FollowUps) -> str:
    """Void the plan's target and undo what it made; returns the voiding statement's note."""
    target = Statement.objects.select_for_update().get(statement_id=plan.target_id)
    if target.voided:
        return f"statement {target.statement_id} was voided already by {target.voided_by}"
    undone = []
    if target.interaction_id is not None:
        interaction = target.interaction
        Interaction.objects.filter(pk=interaction.pk).delete()
        follow_ups.mastery.add((interaction.student_id, interaction.course_id))
        undone.append(f"its interaction {interaction.pk} was deleted")
    if target.resource_event_id is not None:
        ResourceInteraction.objects.filter(pk=target.resource_event_id).delete()
        undone.append(f"its resource event {target.resource_event_id} was deleted")
    target.voided = True
    target.voided_by = plan.checked.statement_id
    target.interaction = None
    target.resource_event = None
    voided = f"voided by {plan.checked.statement_id}" + (f": {'; '.join(undone)}" if undone else "")
    target.note = f"{target.note}\n{voided}".strip()
    target.save(update_fields=["voided", "voided_by", "interaction", "resource_event", "note"])
    return f"voids {target.statement_id}" + (f": {'; '.join(undone)}" if undone else "")


def _checked(statements: Sequence[Any], now: datetime) -> list[CheckedStatement]:
    checked = []
    seen: set[uuid.UUID] = set()
    for index, statement in enumerate(statements):
        try:
            one = statement_check(statement, index=index)
        except StatementInvalid as problem:
            field_name = f"statements[{index}]" + (f".{problem.where}" if problem.where else "")
            raise ValidationFailed(f"{_where(index)}: {problem}", field=field_name) from None
        if one.timestamp is not None:
            late = interaction_values_problem(timestamp=one.timestamp, now=now)
            if late is not None:
                raise ValidationFailed(
                    f"{_where(index)}: {late}", field=f"statements[{index}].timestamp"
                )
        if one.statement_id in seen:
            raise ValidationFailed(
                f"{_where(index)}: id {one.statement_id} appears twice in this request",
                field=f"statements[{index}].id",
            )
        seen.add(one.statement_id)
        checked.append(one)
    return checked


@transaction.atomic
def statements_store(
    *,
    statements: Sequence[Any],
    user: Any,
    request_course_ids: set[int] | None = None,
    activity_base: str | None = None,
    now: datetime | None = None,
) -> StatementsStored:
    """Check, match, authorise and store a request's xAPI statements, all or nothing.

    ``user`` is the sender (the authority of the statements); ``request_course_ids`` the
    courses an OAuth application is limited to (None: not limited); ``activity_base`` the
    ``https://<host>/xapi/activities/`` prefix of our own activity IRIs (None: only external
    ids are matched). The module docstring gives the rules. Raises :class:`ValidationFailed`
    (400), :class:`PermissionDenied` (403), :class:`NotFound` (404, a voiding target) or
    :class:`Conflict` (409) naming the statement's position; then nothing is stored.
    """
    now = now or timezone.now()
    if not statements:
        raise ValidationFailed("send at least one statement", field="statements")
    checked = _checked(statements, now)
    existing = {
        row.statement_id: row
        for row in Statement.objects.select_for_update().filter(
            statement_id__in=[one.statement_id for one in checked]
        )
    }
    result = StatementsStored()
    fresh: list[CheckedStatement] = []
    for one in checked:
        stored = existing.get(one.statement_id)
        if stored is not None and _comparable(stored.raw) != _comparable(one.raw):
            raise Conflict(
                f"{_where(one)}: statement {one.statement_id} is stored already with other content",
                extra={"statement_id": str(one.statement_id)},
            )
        if stored is None:
            fresh.append(one)

    matcher = _Matcher(user=user, client_course_ids=request_course_ids, activity_base=activity_base)
    plans: dict[uuid.UUID, _Plan] = {}
    for one in fresh:
        if not one.is_voiding:
            plans[one.statement_id] = _plan(one, matcher)
            _authorise(plans[one.statement_id], matcher)
    voiding_ids = {one.statement_id for one in fresh if one.is_voiding}
    new = dict(plans)
    for one in fresh:
        if one.is_voiding:
            plans[one.statement_id] = _void_plan(one, matcher, new=new, voiding_ids=voiding_ids)

    rows = {
        statement_id: _store(plan, user=user, now=now)
        for statement_id, plan in plans.items()
        if plan.outcome != Outcome.VOIDING
    }
    follow_ups = _FollowUps()
    answers = [plan for plan in plans.values() if plan.outcome == Outcome.INTERACTION]
    _record_answers(answers, rows, now, follow_ups)
    for statement_id, plan in plans.items():
        if plan.outcome == Outcome.RESOURCE_EVENT:
            _record_resource_event(plan, rows[statement_id], now, follow_ups)
    for plan in plans.values():
        if plan.outcome == Outcome.VOIDING:
            plan.note = _void(plan, follow_ups)
            _store(plan, user=user, now=now)
    follow_ups.send()

    for one in checked:
        result.ids.append(str(one.statement_id))
        plan = plans.get(one.statement_id)
        result.outcomes.append(str(plan.outcome) if plan is not None else ALREADY_STORED)
    return result
