"""Reads of a course's content for its staff: counts, items with their graders, assessments,
resources and the skill graph.

Every function answers only the course's staff (and superusers): to anyone else it returns
nothing (an empty list, zero counts) or raises :class:`~edu_dl.services.errors.NotFound`, like
the rest of :mod:`edu_dl.selectors.access`. Each read costs a fixed number of queries, however
many items, resources, skills or students the course has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Item,
    ModelKind,
    ModelVersion,
    Resource,
    ResourceSkill,
    Response,
    Skill,
    SkillPrerequisite,
    Submission,
)
from edu_dl.selectors.access import UserLike, course_is_staff, items_visible
from edu_dl.selectors.grading import item_grader_yields_to_cold_start, release_thresholds
from edu_dl.services.errors import NotFound

GLOBAL_GRADER_SCOPE_KEY = "global"  # the cross-item (cold-start) reference grader


def item_scope_key(item_id: int) -> str:
    return f"item:{item_id}"


def validated_qwk(version: ModelVersion | None) -> float | None:
    """The grader version's quadratic weighted kappa on held-out teacher scores, when its
    metrics hold a finite one (older or failed evaluations may hold none or NaN)."""
    if version is None:
        return None
    value = (version.metrics or {}).get("validated_qwk")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# --- The content home ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContentCounts:
    items: int = 0
    active_items: int = 0
    model_graded_items: int = 0
    assessments: int = 0
    published_assessments: int = 0
    resources: int = 0
    active_resources: int = 0
    skills: int = 0
    prerequisites: int = 0


def content_counts(*, user: UserLike, course: Course) -> ContentCounts:
    """How many items, assessments, resources, skills and prerequisite edges the course has
    (five queries); zeros to anyone but its staff."""
    if not course_is_staff(user=user, course=course):
        return ContentCounts()
    items = Item.objects.filter(course=course).aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(is_active=True)),
        model_graded=Count("pk", filter=Q(kind__in=Item.MODEL_GRADED_KINDS)),
    )
    assessments = Assessment.objects.filter(course=course).aggregate(
        total=Count("pk"), published=Count("pk", filter=Q(is_published=True))
    )
    resources = Resource.objects.filter(course=course).aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(is_active=True))
    )
    return ContentCounts(
        items=items["total"],
        active_items=items["active"],
        model_graded_items=items["model_graded"],
        assessments=assessments["total"],
        published_assessments=assessments["published"],
        resources=resources["total"],
        active_resources=resources["active"],
        skills=Skill.objects.filter(course=course).count(),
        prerequisites=SkillPrerequisite.objects.filter(skill__course=course).count(),
    )


# --- Items and their graders -----------------------------------------------------------------


@dataclass(frozen=True)
class ItemGrading:
    """How an item is graded: by rule, or by a model (which one, and how well it did)."""

    item: Item
    # The version that grades the item's answers now: its own grader, else (for an item with a
    # reference answer) the cross-item reference grader; None when no model can grade it yet.
    grader: ModelVersion | None = None
    is_reference_grader: bool = False

    @property
    def is_model_graded(self) -> bool:
        return self.item.kind in Item.MODEL_GRADED_KINDS

    @property
    def validated_qwk(self) -> float | None:
        return validated_qwk(self.grader)


def item_gradings(*, user: UserLike, course: Course, items: Sequence[Item]) -> list[ItemGrading]:
    """Each of ``items`` (the course's) with its active grader: at most two queries for any
    number of items, none when no item is graded by a model. Graders are shown to staff only."""
    model_graded = [
        item
        for item in items
        if item.kind in Item.MODEL_GRADED_KINDS and item.course_id == course.pk
    ]
    if not model_graded or not course_is_staff(user=user, course=course):
        return [ItemGrading(item=item) for item in items]
    active = {
        version.scope_key: version
        for version in ModelVersion.objects.filter(
            kind=ModelKind.GRADER,
            status=ModelVersion.Status.ACTIVE,
            scope_key__in=[item_scope_key(item.pk) for item in model_graded],
        )
    }

    def own_grader(item: Item, *, reference_exists: bool) -> ModelVersion | None:
        """The item's own active grader, unless the cold-start grader scores its answers
        instead (the rule of the grading service)."""
        own = active.get(item_scope_key(item.pk))
        if own is None or item_grader_yields_to_cold_start(
            own=own, item=item, cold_start_available=reference_exists
        ):
            return None
        return own

    reference = None
    if any(
        item.reference_answer.strip() and own_grader(item, reference_exists=True) is None
        for item in model_graded
    ):
        reference = ModelVersion.objects.filter(
            kind=ModelKind.GRADER,
            status=ModelVersion.Status.ACTIVE,
            scope_key=GLOBAL_GRADER_SCOPE_KEY,
        ).first()
    gradings = []
    for item in items:
        if item.kind not in Item.MODEL_GRADED_KINDS or item.course_id != course.pk:
            gradings.append(ItemGrading(item=item))
        elif (own := own_grader(item, reference_exists=reference is not None)) is not None:
            gradings.append(ItemGrading(item=item, grader=own))
        elif reference is not None and item.reference_answer.strip():
            gradings.append(ItemGrading(item=item, grader=reference, is_reference_grader=True))
        else:
            gradings.append(ItemGrading(item=item))
    return gradings


def items_for_staff(*, user: UserLike, course: Course) -> QuerySet[Item]:
    """The course's items with their skills, in id order, for the items list."""
    return items_visible(user=user, course=course)


@dataclass(frozen=True)
class ReleasePolicy:
    """When a model's grade of the item reaches the student without a teacher."""

    min_qwk: float
    min_confidence: float
    qwk_is_default: bool
    confidence_is_default: bool


def release_policy(item: Item) -> ReleasePolicy:
    """The item's release thresholds, or the site's (``EDU_DL``) where it sets none: the rule
    that :mod:`edu_dl.services.grading` applies when it releases a grade."""
    min_qwk, min_confidence = release_thresholds(item=item)
    return ReleasePolicy(
        min_qwk=min_qwk,
        min_confidence=min_confidence,
        qwk_is_default=item.release_min_qwk is None,
        confidence_is_default=item.release_min_confidence is None,
    )


@dataclass(frozen=True)
class ItemOption:
    id: str
    text: str
    is_correct: bool


@dataclass(frozen=True)
class ItemDetail:
    grading: ItemGrading
    policy: ReleasePolicy
    # Response status -> how many of the item's responses have it.
    responses_by_status: dict[str, int]
    assessments: list[Assessment] = field(default_factory=list)

    @property
    def item(self) -> Item:
        return self.grading.item

    @property
    def response_count(self) -> int:
        return sum(self.responses_by_status.values())

    @property
    def options(self) -> list[ItemOption]:
        """A choice item's options, each marked correct when the answer key names it."""
        key = self.item.answer_key
        correct = {str(entry) for entry in key} if isinstance(key, list) else {str(key)}
        return [
            ItemOption(
                id=str(option["id"]),
                text=str(option.get("text", option["id"])),
                is_correct=str(option["id"]) in correct,
            )
            for option in self.item.options or []
            if isinstance(option, dict) and "id" in option
        ]

    @property
    def accepted_answers(self) -> list[str]:
        """A numeric or exact-text item's answer key as texts (a number, accepted texts or one
        regular expression); empty for other kinds."""
        if self.item.kind not in (Item.Kind.NUMERIC, Item.Kind.EXACT_TEXT):
            return []
        key = self.item.answer_key
        if key is None:
            return []
        entries = key if isinstance(key, list) else [key]
        return [f"{entry:g}" if isinstance(entry, float) else str(entry) for entry in entries]

    @property
    def grader_reaches_qwk(self) -> bool | None:
        """Whether the grader's validated QWK reaches the release threshold; None without a
        grader or a validated QWK."""
        qwk = self.grading.validated_qwk
        return None if qwk is None else qwk >= self.policy.min_qwk

    @property
    def release_waits(self) -> str:
        """Why the grader releases nothing yet whatever its grades ("measured on ... answers
        that are not a random check: ..."), or ""."""
        grader = self.grading.grader
        waits = (grader.metrics or {}).get("release_waits") if grader is not None else None
        return waits if isinstance(waits, str) else ""

    @property
    def released_before(self) -> int:
        """How many answers of the random check show what the item's earlier graders released
        (the grader's release curve counts those releases); 0 for a first grader."""
        grader = self.grading.grader
        count = (grader.metrics or {}).get("released_before_answers") if grader else None
        return count if isinstance(count, int) else 0

    @property
    def release_point(self) -> dict[str, Any] | None:
        """The share of the grader's grades, surest first, that reached the release threshold
        (``share`` of the answers it was validated on, or of those the earlier graders did not
        release where :attr:`released_before`; ``qwk`` and its lower bound ``qwk_low``, with
        those releases counted) and from which ``confidence`` grades are released; None when
        none did or no grader."""
        from edu_dl.ml.grading.policy import release_curve_of, release_gate

        if self.grading.grader is None:
            return None
        gate = release_gate(
            release_curve_of(self.grading.grader.metrics or {}),
            min_qwk=self.policy.min_qwk,
            min_confidence=self.policy.min_confidence,
        )
        if gate.point is None:
            return None
        return {**gate.point, "confidence": gate.confidence, "share": gate.point.get("share", 1.0)}


def item_detail(*, user: UserLike, course: Course, item_id: int) -> ItemDetail:
    """One item of the course with its grader, release policy, responses counted by status
    and the assessments that hold it; NotFound for another course's item or a non-staff user."""
    item = items_visible(user=user, course=course).filter(pk=item_id).first()
    if item is None:
        raise NotFound("no such item in this course", field="item")
    counts = dict(
        Response.objects.filter(item=item)
        .values_list("status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    assessments = list(
        Assessment.objects.filter(entries__item=item).order_by("due_at", "pk").distinct()
    )
    return ItemDetail(
        grading=item_gradings(user=user, course=course, items=[item])[0],
        policy=release_policy(item),
        responses_by_status={status: counts.get(status, 0) for status in Response.Status.values},
        assessments=assessments,
    )


# --- Assessments -----------------------------------------------------------------------------


def _count_of(queryset: QuerySet, outer: str) -> Coalesce:
    """A correlated subquery counting ``queryset``'s rows per ``outer`` row (no join that would
    multiply another count)."""
    counted = (
        queryset.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def assessments_for_staff(*, user: UserLike, course: Course) -> QuerySet[Assessment]:
    """The course's assessments (published or not) by due date, those without one last,
    annotated with ``item_count`` and ``submission_count`` (submitted, not drafts), in one
    query."""
    if not course_is_staff(user=user, course=course):
        return Assessment.objects.none()
    return (
        Assessment.objects.filter(course=course)
        .annotate(
            item_count=_count_of(AssessmentItem.objects.all(), "assessment"),
            submission_count=_count_of(
                Submission.objects.exclude(status=Submission.Status.DRAFT), "assessment"
            ),
        )
        .order_by(F("due_at").asc(nulls_last=True), "pk")
    )


@dataclass(frozen=True)
class AssessmentDetail:
    assessment: Assessment
    entries: list[AssessmentItem]


def assessment_detail(*, user: UserLike, course: Course, assessment_id: int) -> AssessmentDetail:
    """One assessment of the course with its items in order (and their skills); NotFound for
    another course's assessment or a non-staff user."""
    assessment = assessments_for_staff(user=user, course=course).filter(pk=assessment_id).first()
    if assessment is None:
        raise NotFound("no such assessment in this course", field="assessment")
    entries = list(
        AssessmentItem.objects.filter(assessment=assessment)
        .select_related("item")
        .prefetch_related(Prefetch("item__skills", queryset=Skill.objects.order_by("name", "pk")))
        .order_by("position", "pk")
    )
    return AssessmentDetail(assessment=assessment, entries=entries)


# --- Resources -------------------------------------------------------------------------------


def resources_for_staff(*, user: UserLike, course: Course) -> QuerySet[Resource]:
    """The course's resources by title with their skill links (skill and weight) prefetched."""
    if not course_is_staff(user=user, course=course):
        return Resource.objects.none()
    return (
        Resource.objects.filter(course=course)
        .prefetch_related(
            Prefetch(
                "skill_links",
                queryset=ResourceSkill.objects.select_related("skill").order_by(
                    "skill__name", "skill_id"
                ),
            )
        )
        .order_by("title", "pk")
    )


def resource_for_staff(*, user: UserLike, course: Course, resource_id: int) -> Resource:
    """One resource of the course (skills prefetched); NotFound otherwise."""
    resource = resources_for_staff(user=user, course=course).filter(pk=resource_id).first()
    if resource is None:
        raise NotFound("no such resource in this course", field="resource")
    return resource


# --- The skill graph -------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillNode:
    pk: int
    name: str
    external_id: str
    prerequisites: list[SkillNode] = field(default_factory=list, compare=False, repr=False)
    unlocks: list[SkillNode] = field(default_factory=list, compare=False, repr=False)


@dataclass(frozen=True)
class SkillGraph:
    """The course's skills by name, each with its prerequisites and the skills it unlocks (by
    name), and the edges as ``(prerequisite pk, skill pk)`` pairs."""

    skills: list[SkillNode]
    edges: list[tuple[int, int]]

    def by_pk(self) -> dict[int, SkillNode]:
        return {skill.pk: skill for skill in self.skills}


def skill_graph(*, user: UserLike, course: Course) -> SkillGraph:
    """The course's skill graph in two queries, whatever its size; empty to non-staff."""
    if not course_is_staff(user=user, course=course):
        return SkillGraph(skills=[], edges=[])
    skills = [
        SkillNode(pk=pk, name=name, external_id=external_id)
        for pk, name, external_id in Skill.objects.filter(course=course)
        .order_by("name", "pk")
        .values_list("pk", "name", "external_id")
    ]
    nodes = {skill.pk: skill for skill in skills}
    edges = [
        (prerequisite_id, skill_id)
        for skill_id, prerequisite_id in SkillPrerequisite.objects.filter(skill__course=course)
        .order_by("pk")
        .values_list("skill_id", "prerequisite_id")
        if skill_id in nodes and prerequisite_id in nodes
    ]
    rank = {skill.pk: index for index, skill in enumerate(skills)}  # name order
    for prerequisite_id, skill_id in sorted(edges, key=lambda edge: rank[edge[0]]):
        nodes[skill_id].prerequisites.append(nodes[prerequisite_id])
    for prerequisite_id, skill_id in sorted(edges, key=lambda edge: rank[edge[1]]):
        nodes[prerequisite_id].unlocks.append(nodes[skill_id])
    return SkillGraph(skills=skills, edges=edges)


def skills_by_pk(*, user: UserLike, course: Course, pks: Iterable[int]) -> dict[int, Skill]:
    """The course's skills among ``pks``, by pk (one query); empty to non-staff."""
    if not course_is_staff(user=user, course=course):
        return {}
    return {skill.pk: skill for skill in Skill.objects.filter(course=course, pk__in=list(pks))}
