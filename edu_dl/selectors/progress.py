"""Progress as people read it: a student's mastery of each skill with its trend and the skills
that need attention, and a course's students x skills matrix for the teacher's heatmap.

These read only the stored :class:`MasteryEstimate` rows (kept up to date by the workers, see
:mod:`edu_dl.services.mastery`): no model and no torch, a fixed handful of queries, safe for any
page or API call. What needs the model itself - forecasts of an assessment, the answers that
moved an estimate - lives in :mod:`edu_dl.services.progress`.

Who may see: a student their own progress, course staff (and superusers) every student's;
anyone else is told the student is not found. The matrix is for course staff only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext

from edu_dl.conf import edu_settings
from edu_dl.models import Course, Enrollment, MasteryEstimate, ModelVersion, Skill
from edu_dl.selectors.access import UserLike, course_is_staff, student_record_visible
from edu_dl.services.errors import NotFound, ValidationFailed

SMOOTHED_METHOD = "smoothed success rate"
NO_ESTIMATE_METHOD = "no estimate yet"
DEFAULT_WINDOW_DAYS = 14


def estimate_method(*, version: int | None, architecture: str = "") -> str:
    """How an estimate was made, in words: ``model v3 (dkt)`` or ``smoothed success rate``."""
    if version is None:
        return SMOOTHED_METHOD
    return f"model v{version} ({architecture})" if architecture else f"model v{version}"


def estimate_method_label(method: str) -> str:
    """How an estimate was made, for people, in the active language where the words are fixed
    (the smoothed rate, no estimate); a model's name and version read the same everywhere."""
    labels = {
        SMOOTHED_METHOD: gettext("smoothed success rate of the answers (no model yet)"),
        NO_ESTIMATE_METHOD: gettext("no estimate yet"),
    }
    return labels.get(method, method)


def _method_of(model_version: ModelVersion | None) -> str:
    if model_version is None:
        return SMOOTHED_METHOD
    return estimate_method(version=model_version.version, architecture=model_version.architecture)


# --- One student ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionRule:
    """When a skill needs attention: low mastery that enough answers confirm, or a drop."""

    below: float
    min_evidence: int
    drop: float
    window_days: int

    @classmethod
    def from_settings(cls, *, window_days: int) -> AttentionRule:
        return cls(
            below=edu_settings.MASTERY_ATTENTION_BELOW,
            min_evidence=edu_settings.MASTERY_ATTENTION_MIN_EVIDENCE,
            drop=edu_settings.MASTERY_ATTENTION_DROP,
            window_days=window_days,
        )

    def describe(self) -> str:
        """The rule in words, in the active language."""
        return gettext(
            "mastery below %(below)s after at least %(answers)d answers, or a drop of at least "
            "%(points)s percentage points over the last %(days)d days"
        ) % {
            "below": f"{self.below:.0%}",
            "answers": self.min_evidence,
            "points": f"{self.drop * 100:.0f}",
            "days": self.window_days,
        }

    def is_low(self, *, probability: float | None, evidence_count: int) -> bool:
        """Mastery below the threshold with enough answers behind it to trust it."""
        return (
            probability is not None
            and probability < self.below
            and evidence_count >= self.min_evidence
        )

    def has_dropped(self, *, change: float | None) -> bool:
        """A fall of at least ``drop`` over the window (a hair of slack for float rounding)."""
        return change is not None and change <= -self.drop + 1e-9

    def reasons(
        self, *, probability: float | None, evidence_count: int, change: float | None
    ) -> tuple[str, ...]:
        """Why a skill needs attention, in the active language (none: it does not)."""
        reasons = []
        if self.is_low(probability=probability, evidence_count=evidence_count):
            reasons.append(
                gettext("mastery %(mastery)s is below %(below)s after %(answers)d answers")
                % {
                    "mastery": f"{probability:.0%}",
                    "below": f"{self.below:.0%}",
                    "answers": evidence_count,
                }
            )
        if self.has_dropped(change=change):
            reasons.append(
                gettext("down %(points)s percentage points in %(days)d days")
                % {"points": f"{-change * 100:.0f}", "days": self.window_days}
            )
        return tuple(reasons)


@dataclass(frozen=True)
class SkillProgress:
    skill_id: int
    skill_name: str
    probability: float | None  # None: no estimate yet
    evidence_count: int
    # Current probability minus the newest estimate at or before the window's start; None
    # when there was no estimate then.
    change: float | None
    as_of: datetime | None
    method: str  # "model v3 (dkt)", "smoothed success rate" or "no estimate yet"
    model_version: int | None
    needs_attention: bool
    attention_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudentProgress:
    student_id: int
    course_id: int
    window_days: int
    window_start: datetime
    skills: list[SkillProgress]  # every skill of the course, by name
    needing_attention: list[SkillProgress]  # the flagged ones, lowest mastery first
    attention_rule: str
    methods: list[str] = field(default_factory=list)  # the methods behind these estimates

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def student_progress(
    *,
    viewer: UserLike,
    student: Any,
    course: Course,
    window_days: int = DEFAULT_WINDOW_DAYS,
    now: datetime | None = None,
) -> StudentProgress:
    """A student's mastery of each skill of the course: probability, evidence, change over the
    last ``window_days`` days, the method behind it, and the skills needing attention (see
    :class:`AttentionRule`; thresholds in ``EDU_DL['MASTERY_ATTENTION_*']``).

    Two queries whatever the number of skills (the access check aside).
    """
    if not student_record_visible(viewer=viewer, student=student, course=course):
        raise NotFound("No such student.")
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ValidationFailed("window_days must be a whole number of days from 1", field="window")
    now = now or timezone.now()
    window_start = now - timedelta(days=window_days)
    rule = AttentionRule.from_settings(window_days=window_days)
    baseline = (
        MasteryEstimate.objects.filter(
            student=OuterRef("student"), skill=OuterRef("skill"), as_of__lte=window_start
        )
        .order_by("-as_of", "-pk")
        .values("probability")[:1]
    )
    current = {
        row.skill_id: row
        for row in MasteryEstimate.objects.filter(
            student=student, skill__course=course, is_current=True
        )
        .select_related("model_version")
        .annotate(baseline=Subquery(baseline))
    }
    skills = []
    for skill_id, name in (
        Skill.objects.filter(course=course).order_by("name", "pk").values_list("id", "name")
    ):
        row = current.get(skill_id)
        if row is None:
            skills.append(
                SkillProgress(
                    skill_id=skill_id,
                    skill_name=name,
                    probability=None,
                    evidence_count=0,
                    change=None,
                    as_of=None,
                    method=NO_ESTIMATE_METHOD,
                    model_version=None,
                    needs_attention=False,
                )
            )
            continue
        change = None if row.baseline is None else row.probability - row.baseline
        reasons = rule.reasons(
            probability=row.probability, evidence_count=row.evidence_count, change=change
        )
        skills.append(
            SkillProgress(
                skill_id=skill_id,
                skill_name=name,
                probability=row.probability,
                evidence_count=row.evidence_count,
                change=change,
                as_of=row.as_of,
                method=_method_of(row.model_version),
                model_version=row.model_version.version if row.model_version else None,
                needs_attention=bool(reasons),
                attention_reasons=reasons,
            )
        )
    flagged = sorted(
        (skill for skill in skills if skill.needs_attention),
        key=lambda skill: (skill.probability, skill.skill_name),
    )
    return StudentProgress(
        student_id=student.pk,
        course_id=course.pk,
        window_days=window_days,
        window_start=window_start,
        skills=skills,
        needing_attention=flagged,
        attention_rule=rule.describe(),
        methods=sorted({skill.method for skill in skills if skill.probability is not None}),
    )


# --- The course's heatmap ------------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixLabel:
    id: int
    name: str


@dataclass(frozen=True)
class MasteryCell:
    probability: float | None  # None: no estimate yet
    evidence_count: int
    model_version: int | None  # None: the smoothed success rate (or no estimate)


EMPTY_CELL = MasteryCell(probability=None, evidence_count=0, model_version=None)


@dataclass(frozen=True)
class MasteryMatrix:
    course_id: int
    students: list[MatrixLabel]  # rows, by username
    skills: list[MatrixLabel]  # columns, by name
    cells: list[list[MasteryCell]]  # cells[row][column]
    methods: dict[str, int]  # how many cells each method estimated

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def course_mastery_matrix(*, viewer: UserLike, course: Course) -> MasteryMatrix:
    """Every student's current mastery of every skill of the course, for the heatmap: course
    staff only (others: not found). Three queries whatever the class size (plus the role
    check, cached on the viewer)."""
    if not course_is_staff(user=viewer, course=course):
        raise NotFound("No such course.")
    user_model = get_user_model()
    students = [
        MatrixLabel(pk, username)
        for pk, username in user_model.objects.filter(
            edu_enrollments__course=course, edu_enrollments__role=Enrollment.Role.STUDENT
        )
        .order_by(user_model.USERNAME_FIELD, "pk")
        .values_list("pk", user_model.USERNAME_FIELD)
    ]
    skills = [
        MatrixLabel(pk, name)
        for pk, name in Skill.objects.filter(course=course)
        .order_by("name", "pk")
        .values_list("pk", "name")
    ]
    row_of = {student.id: row for row, student in enumerate(students)}
    column_of = {skill.id: column for column, skill in enumerate(skills)}
    cells = [[EMPTY_CELL] * len(skills) for _ in students]
    methods: dict[str, int] = {}
    estimates = MasteryEstimate.objects.filter(skill__course=course, is_current=True).values_list(
        "student_id",
        "skill_id",
        "probability",
        "evidence_count",
        "model_version__version",
        "model_version__architecture",
    )
    for student_id, skill_id, probability, evidence, version, architecture in estimates:
        row = row_of.get(student_id)
        if row is None:  # no longer a student of the course
            continue
        cells[row][column_of[skill_id]] = MasteryCell(probability, evidence, version)
        method = estimate_method(version=version, architecture=architecture or "")
        methods[method] = methods.get(method, 0) + 1
    return MasteryMatrix(
        course_id=course.pk, students=students, skills=skills, cells=cells, methods=methods
    )
