"""Setting up teaching: courses, who takes part, skills, items, assessments and resources.

Every write checks its rules here and raises a :mod:`edu_dl.services.errors` error whose message
names the field, before the database would refuse the row with a bare ``IntegrityError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import regex
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone

from edu_dl.models import (
    Assessment,
    AssessmentItem,
    Course,
    Enrollment,
    Item,
    Resource,
    ResourceSkill,
    Skill,
)
from edu_dl.services.errors import Conflict, ValidationFailed
from edu_dl.services.rule_grading import regex_key_compile

CHOICE_KINDS = frozenset({Item.Kind.SINGLE_CHOICE, Item.Kind.MULTIPLE_CHOICE})


def _text(value: Any, *, field: str, max_length: int, required: bool = True) -> str:
    """``value`` stripped, checked for presence and length."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text", field=field)
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise ValidationFailed(
            f"{field} is {len(value)} characters long; at most {max_length} are allowed",
            field=field,
        )
    return value


def _number(value: Any, *, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed(f"{field} must be a finite number, not {value!r}", field=field)
    return float(value)


def _choice(value: Any, *, field: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if value not in allowed:
        raise ValidationFailed(f"{field} {value!r} is not one of {', '.join(allowed)}", field=field)
    return str(value)


def _aware(value: datetime | None, *, field: str) -> datetime | None:
    if value is not None and timezone.is_naive(value):
        raise ValidationFailed(f"{field} must carry a time zone", field=field)
    return value


def _skills_of_course(skills: Iterable[Skill], *, course: Course, field: str) -> list[Skill]:
    skills = list(skills)
    foreign = [skill.name for skill in skills if skill.course_id != course.pk]
    if foreign:
        raise ValidationFailed(
            f"{field}: {', '.join(sorted(foreign))} belong to another course than {course.slug!r}",
            field=field,
        )
    return skills


# --- courses and people -----------------------------------------------------------------------


@transaction.atomic
def course_create(
    *,
    slug: str,
    title: str,
    description: str = "",
    language: str = "en",
    is_active: bool = True,
) -> Course:
    """A new course. Its slug (the name in its addresses) must be unused."""
    slug = _text(slug, field="slug", max_length=80)
    try:
        validate_slug(slug)
    except ValidationError as error:
        raise ValidationFailed(
            f"slug {slug!r} may hold only letters, digits, hyphens and underscores", field="slug"
        ) from error
    title = _text(title, field="title", max_length=200)
    language = _text(language, field="language", max_length=16)
    if Course.objects.filter(slug=slug).exists():
        raise Conflict(f"a course with slug {slug!r} already exists", field="slug")
    try:
        with transaction.atomic():
            return Course.objects.create(
                slug=slug,
                title=title,
                description=description,
                language=language,
                is_active=is_active,
            )
    except IntegrityError as error:  # created by another request since the check above
        raise Conflict(f"a course with slug {slug!r} already exists", field="slug") from error


@transaction.atomic
def enrollment_create(
    *,
    user: AbstractBaseUser,
    course: Course,
    role: str = Enrollment.Role.STUDENT,
    external_id: str = "",
) -> Enrollment:
    """Put ``user`` in ``course`` with ``role``; a person holds one role per course."""
    if user.pk is None:
        raise ValidationFailed("user must be saved before it is enrolled", field="user")
    role = _choice(role, field="role", choices=Enrollment.Role.values)
    external_id = _text(external_id, field="external_id", max_length=255, required=False)
    existing = Enrollment.objects.filter(user=user, course=course).first()
    if existing is not None:
        raise Conflict(
            f"{user.get_username()!r} is already enrolled in {course.slug!r} as {existing.role}",
            field="user",
        )
    try:
        with transaction.atomic():
            return Enrollment.objects.create(
                user=user, course=course, role=role, external_id=external_id
            )
    except IntegrityError as error:
        raise Conflict(
            f"{user.get_username()!r} is already enrolled in {course.slug!r}", field="user"
        ) from error


# --- skills -----------------------------------------------------------------------------------


@transaction.atomic
def skill_create(
    *, course: Course, name: str, description: str = "", external_id: str = ""
) -> Skill:
    """A new skill of the course; names and external ids are unique within a course."""
    name = _text(name, field="name", max_length=200)
    external_id = _text(external_id, field="external_id", max_length=255, required=False)
    if Skill.objects.filter(course=course, name=name).exists():
        raise Conflict(f"course {course.slug!r} already has a skill {name!r}", field="name")
    if external_id and Skill.objects.filter(course=course, external_id=external_id).exists():
        raise Conflict(
            f"course {course.slug!r} already has a skill with external id {external_id!r}",
            field="external_id",
        )
    return Skill.objects.create(
        course=course, name=name, description=description, external_id=external_id
    )


@transaction.atomic
def skill_get_or_create(
    *, course: Course, name: str, description: str = "", external_id: str = ""
) -> tuple[Skill, bool]:
    """The course's skill called ``name``, created if missing; True when it was created.

    An existing skill is returned as it is (its description is not overwritten).
    """
    existing = Skill.objects.filter(
        course=course, name=_text(name, field="name", max_length=200)
    ).first()
    if existing is not None:
        return existing, False
    return (
        skill_create(course=course, name=name, description=description, external_id=external_id),
        True,
    )


# --- items ------------------------------------------------------------------------------------


@dataclass
class ItemSpec:
    """Everything that defines an item, before it is saved (see :func:`item_create`)."""

    kind: str
    title: str = ""
    prompt: str = ""
    options: list[dict[str, str]] = field(default_factory=list)
    answer_key: Any = None
    reference_answer: str = ""
    numeric_tolerance: float | None = None
    tolerance_mode: str = Item.ToleranceMode.ABSOLUTE
    multiple_choice_credit: str = Item.MultipleChoiceCredit.ALL_OR_NOTHING
    text_match: str = Item.TextMatch.NORMALIZED
    empty_answer_policy: str = Item.EmptyAnswerPolicy.MIN_SCORE
    min_score: float = 0.0
    max_score: float = 1.0
    release_min_qwk: float | None = None
    release_min_confidence: float | None = None
    skills: Sequence[Skill] = ()
    external_id: str = ""
    is_active: bool = True


def _option_ids(options: Any) -> list[str]:
    if not isinstance(options, list) or len(options) < 2:
        raise ValidationFailed("options must be a list of at least two choices", field="options")
    ids: list[str] = []
    for position, option in enumerate(options):
        if (
            not isinstance(option, dict)
            or not isinstance(option.get("id"), str)
            or not option["id"].strip()
            or not isinstance(option.get("text"), str)
        ):
            raise ValidationFailed(
                f"options[{position}] must be {{'id': <text>, 'text': <text>}}", field="options"
            )
        ids.append(option["id"])
    duplicates = sorted({option_id for option_id in ids if ids.count(option_id) > 1})
    if duplicates:
        raise ValidationFailed(
            f"option ids must be unique; repeated: {', '.join(duplicates)}", field="options"
        )
    return ids


def _check_answer_key(spec: ItemSpec) -> None:
    """The answer key a rule-graded kind needs, and none for the kinds a model grades."""
    key = spec.answer_key
    if spec.kind == Item.Kind.SINGLE_CHOICE:
        if key not in _option_ids(spec.options):
            raise ValidationFailed(
                f"answer_key {key!r} must be the id of one of the options", field="answer_key"
            )
    elif spec.kind == Item.Kind.MULTIPLE_CHOICE:
        ids = _option_ids(spec.options)
        if (
            not isinstance(key, list)
            or not key
            or not all(isinstance(value, str) for value in key)
            or len(set(key)) != len(key)
            or any(value not in ids for value in key)
        ):
            raise ValidationFailed(
                "answer_key must be a non-empty list of distinct option ids", field="answer_key"
            )
    elif spec.kind == Item.Kind.NUMERIC:
        _number(key, field="answer_key")
    elif spec.kind == Item.Kind.EXACT_TEXT:
        _check_exact_text_key(key, text_match=spec.text_match)
    elif key is not None:
        raise ValidationFailed(
            f"a {spec.kind} item is graded by a model or a teacher and takes no answer_key; "
            "put the model answer in reference_answer",
            field="answer_key",
        )
    if spec.kind not in CHOICE_KINDS and spec.options:
        raise ValidationFailed(f"a {spec.kind} item has no options", field="options")


def _check_exact_text_key(key: Any, *, text_match: str) -> None:
    """Accepted texts (one text or a list of texts), or one regular expression in regex mode,
    compiled by the function that grades with it (so a key accepted here is the key graded)."""
    if text_match == Item.TextMatch.REGEX:
        if not isinstance(key, str) or not key.strip():
            raise ValidationFailed(
                "answer_key of a regex exact_text item must be a regular expression (a text)",
                field="answer_key",
            )
        try:
            regex_key_compile(key)
        except regex.error as error:
            raise ValidationFailed(
                f"answer_key is not a valid regular expression: {error}", field="answer_key"
            ) from error
        return
    if isinstance(key, str) and key.strip():
        return
    if isinstance(key, list) and key and all(isinstance(v, str) and v.strip() for v in key):
        return
    raise ValidationFailed(
        "answer_key of an exact_text item must be a text or a list of texts",
        field="answer_key",
    )


def _check_grading_policy(spec: ItemSpec, *, kind: str) -> None:
    """The grading options an item's kind has; the others must keep their defaults."""
    credit = _choice(
        spec.multiple_choice_credit,
        field="multiple_choice_credit",
        choices=Item.MultipleChoiceCredit.values,
    )
    if kind != Item.Kind.MULTIPLE_CHOICE and credit != Item.MultipleChoiceCredit.ALL_OR_NOTHING:
        raise ValidationFailed(
            "multiple_choice_credit applies to multiple_choice items only",
            field="multiple_choice_credit",
        )
    text_match = _choice(spec.text_match, field="text_match", choices=Item.TextMatch.values)
    if kind != Item.Kind.EXACT_TEXT and text_match != Item.TextMatch.NORMALIZED:
        raise ValidationFailed("text_match applies to exact_text items only", field="text_match")
    _choice(
        spec.empty_answer_policy,
        field="empty_answer_policy",
        choices=Item.EmptyAnswerPolicy.values,
    )
    for name in ("release_min_qwk", "release_min_confidence"):
        value = getattr(spec, name)
        if value is None:
            continue
        if kind not in Item.MODEL_GRADED_KINDS:
            raise ValidationFailed(
                f"{name} applies to the items a model grades "
                f"({', '.join(sorted(Item.MODEL_GRADED_KINDS))}) only",
                field=name,
            )
        if not 0 <= _number(value, field=name) <= 1:
            raise ValidationFailed(f"{name} must be from 0 to 1, not {value:g}", field=name)


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _item_from_spec(spec: ItemSpec, *, course: Course) -> Item:
    """An unsaved, checked item; raises ValidationFailed naming the first field that is wrong."""
    kind = _choice(spec.kind, field="kind", choices=Item.Kind.values)
    tolerance_mode = _choice(
        spec.tolerance_mode, field="tolerance_mode", choices=Item.ToleranceMode.values
    )
    min_score = _number(spec.min_score, field="min_score")
    max_score = _number(spec.max_score, field="max_score")
    if max_score <= min_score:
        raise ValidationFailed(
            f"max_score ({max_score:g}) must be greater than min_score ({min_score:g})",
            field="max_score",
        )
    tolerance = spec.numeric_tolerance
    if tolerance is not None:
        if kind != Item.Kind.NUMERIC:
            raise ValidationFailed(
                "numeric_tolerance applies to numeric items only", field="numeric_tolerance"
            )
        tolerance = _number(tolerance, field="numeric_tolerance")
        if tolerance < 0:
            raise ValidationFailed(
                "numeric_tolerance must not be negative", field="numeric_tolerance"
            )
    _check_grading_policy(spec, kind=kind)
    _check_answer_key(spec)
    if tolerance and tolerance_mode == Item.ToleranceMode.RELATIVE and spec.answer_key == 0:
        # A share of 0 is 0: the tolerance would silently demand the exact answer.
        raise ValidationFailed(
            "a relative numeric_tolerance of an answer_key of 0 allows nothing; "
            "use an absolute tolerance",
            field="tolerance_mode",
        )
    return Item(
        course=course,
        kind=kind,
        title=_text(spec.title, field="title", max_length=200, required=False),
        prompt=spec.prompt,
        options=list(spec.options),
        answer_key=spec.answer_key,
        reference_answer=spec.reference_answer,
        numeric_tolerance=tolerance,
        tolerance_mode=tolerance_mode,
        multiple_choice_credit=spec.multiple_choice_credit,
        text_match=spec.text_match,
        empty_answer_policy=spec.empty_answer_policy,
        min_score=min_score,
        max_score=max_score,
        release_min_qwk=_optional_float(spec.release_min_qwk),
        release_min_confidence=_optional_float(spec.release_min_confidence),
        external_id=_text(spec.external_id, field="external_id", max_length=255, required=False),
        is_active=spec.is_active,
    )


@transaction.atomic
def item_create(
    *,
    course: Course,
    kind: str,
    title: str = "",
    prompt: str = "",
    options: list[dict[str, str]] | None = None,
    answer_key: Any = None,
    reference_answer: str = "",
    numeric_tolerance: float | None = None,
    tolerance_mode: str = Item.ToleranceMode.ABSOLUTE,
    multiple_choice_credit: str = Item.MultipleChoiceCredit.ALL_OR_NOTHING,
    text_match: str = Item.TextMatch.NORMALIZED,
    empty_answer_policy: str = Item.EmptyAnswerPolicy.MIN_SCORE,
    min_score: float = 0.0,
    max_score: float = 1.0,
    release_min_qwk: float | None = None,
    release_min_confidence: float | None = None,
    skills: Sequence[Skill] = (),
    external_id: str = "",
    is_active: bool = True,
) -> Item:
    """A new item of ``course`` carrying ``skills`` (skills of the same course).

    Rule-graded kinds need their answer key (an option id, a list of option ids, a number,
    accepted texts, or with ``text_match="regex"`` one regular expression); short answers and
    essays take none: their model answer goes in ``reference_answer``. How a rule grades is
    set by ``multiple_choice_credit`` and ``text_match`` (see :mod:`edu_dl.services.rule_grading`),
    and ``empty_answer_policy`` says what an empty answer gets. ``release_min_qwk`` and
    ``release_min_confidence`` (0 to 1; None = the site's settings) apply to model-graded kinds.
    External ids are unique within a course.
    """
    spec = ItemSpec(
        kind=kind,
        title=title,
        prompt=prompt,
        options=options if options is not None else [],
        answer_key=answer_key,
        reference_answer=reference_answer,
        numeric_tolerance=numeric_tolerance,
        tolerance_mode=tolerance_mode,
        multiple_choice_credit=multiple_choice_credit,
        text_match=text_match,
        empty_answer_policy=empty_answer_policy,
        min_score=min_score,
        max_score=max_score,
        release_min_qwk=release_min_qwk,
        release_min_confidence=release_min_confidence,
        skills=skills,
        external_id=external_id,
        is_active=is_active,
    )
    return item_bulk_create(course=course, specs=[spec])[0]


@transaction.atomic
def item_bulk_create(*, course: Course, specs: Sequence[ItemSpec]) -> list[Item]:
    """Many new items of one course in a few queries (imports); all are checked first.

    Nothing is written when any spec is wrong: the error names the spec's position.
    """
    items: list[Item] = []
    skill_lists: list[list[Skill]] = []
    for position, spec in enumerate(specs):
        try:
            items.append(_item_from_spec(spec, course=course))
            skill_lists.append(_skills_of_course(spec.skills, course=course, field="skills"))
        except ValidationFailed as error:
            prefix = f"item {position}: " if len(specs) > 1 else ""
            raise ValidationFailed(prefix + error.message, field=error.field) from error
    external_ids = [item.external_id for item in items if item.external_id]
    repeated = sorted({value for value in external_ids if external_ids.count(value) > 1})
    if repeated:
        raise ValidationFailed(
            f"external_id repeated in the batch: {', '.join(repeated[:5])}", field="external_id"
        )
    taken = sorted(
        Item.objects.filter(course=course, external_id__in=external_ids).values_list(
            "external_id", flat=True
        )
    )
    if taken:
        raise Conflict(
            f"course {course.slug!r} already has items with external id {', '.join(taken[:5])}",
            field="external_id",
        )
    created = Item.objects.bulk_create(items, batch_size=1000)
    links = [
        Item.skills.through(item_id=item.pk, skill_id=skill.pk)
        for item, skills in zip(created, skill_lists, strict=True)
        for skill in {skill.pk: skill for skill in skills}.values()
    ]
    Item.skills.through.objects.bulk_create(links, batch_size=1000)
    return created


# --- assessments ------------------------------------------------------------------------------


@transaction.atomic
def assessment_create(
    *,
    course: Course,
    title: str,
    description: str = "",
    items: Sequence[Item] = (),
    opens_at: datetime | None = None,
    due_at: datetime | None = None,
    hold_grades_until_due: bool = False,
    is_published: bool = True,
) -> Assessment:
    """A new assessment of ``course`` holding ``items`` in the given order."""
    title = _text(title, field="title", max_length=200)
    opens_at = _aware(opens_at, field="opens_at")
    due_at = _aware(due_at, field="due_at")
    if opens_at is not None and due_at is not None and due_at <= opens_at:
        raise ValidationFailed("due_at must be later than opens_at", field="due_at")
    if hold_grades_until_due and due_at is None:
        raise ValidationFailed(
            "grades can be held until the due date only when there is one",
            field="hold_grades_until_due",
        )
    assessment = Assessment.objects.create(
        course=course,
        title=title,
        description=description,
        opens_at=opens_at,
        due_at=due_at,
        hold_grades_until_due=hold_grades_until_due,
        is_published=is_published,
    )
    for item in items:
        assessment_item_add(assessment=assessment, item=item)
    return assessment


@transaction.atomic
def assessment_item_add(
    *, assessment: Assessment, item: Item, position: int | None = None
) -> AssessmentItem:
    """Place ``item`` in ``assessment``, at the end unless a free ``position`` is given."""
    if item.course_id != assessment.course_id:
        raise ValidationFailed(
            f"item {item.pk} belongs to another course than the assessment", field="item"
        )
    if AssessmentItem.objects.filter(assessment=assessment, item=item).exists():
        raise Conflict(f"item {item.pk} is already in assessment {assessment.pk}", field="item")
    entries = AssessmentItem.objects.filter(assessment=assessment)
    if position is None:
        last = entries.order_by("-position").values_list("position", flat=True).first()
        position = 1 if last is None else last + 1
    elif isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise ValidationFailed("position must be a whole number from 1", field="position")
    elif entries.filter(position=position).exists():
        raise Conflict(f"position {position} of the assessment is taken", field="position")
    return AssessmentItem.objects.create(assessment=assessment, item=item, position=position)


# --- resources --------------------------------------------------------------------------------


@transaction.atomic
def resource_create(
    *,
    course: Course,
    title: str,
    kind: str = Resource.Kind.READING,
    url: str = "",
    body: str = "",
    skills: Mapping[Skill, float] | Sequence[Skill] = (),
    difficulty: float = 0.5,
    minutes: int = 10,
    language: str = "en",
    external_id: str = "",
    is_active: bool = True,
) -> Resource:
    """A study resource of ``course`` and the skills it teaches.

    ``skills`` is a list (each weighted 1) or a mapping of skill to a positive weight.
    """
    title = _text(title, field="title", max_length=200)
    kind = _choice(kind, field="kind", choices=Resource.Kind.values)
    url = _text(url, field="url", max_length=500, required=False)
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as error:
            raise ValidationFailed(f"url {url!r} is not an http(s) address", field="url") from error
    difficulty = _number(difficulty, field="difficulty")
    if not 0 <= difficulty <= 1:
        raise ValidationFailed(
            f"difficulty must be between 0 and 1, not {difficulty:g}", field="difficulty"
        )
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise ValidationFailed("minutes must be a whole number of at least 1", field="minutes")
    language = _text(language, field="language", max_length=16)
    external_id = _text(external_id, field="external_id", max_length=255, required=False)
    weights = dict(skills) if isinstance(skills, Mapping) else dict.fromkeys(skills, 1.0)
    _skills_of_course(weights, course=course, field="skills")
    for skill, weight in weights.items():
        if _number(weight, field="skills") <= 0:
            raise ValidationFailed(
                f"the weight of skill {skill.name!r} must be positive", field="skills"
            )
    if external_id and Resource.objects.filter(course=course, external_id=external_id).exists():
        raise Conflict(
            f"course {course.slug!r} already has a resource with external id {external_id!r}",
            field="external_id",
        )
    resource = Resource.objects.create(
        course=course,
        title=title,
        kind=kind,
        url=url,
        body=body,
        difficulty=difficulty,
        minutes=minutes,
        language=language,
        external_id=external_id,
        is_active=is_active,
    )
    ResourceSkill.objects.bulk_create(
        ResourceSkill(resource=resource, skill=skill, weight=float(weight))
        for skill, weight in weights.items()
    )
    return resource
