"""What students answer and study: items (questions), assessments and resources."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from edu_dl.models.courses import Course, Skill


class Item(models.Model):
    """One question. Objective kinds are graded by rule; short answers and essays by models."""

    class Kind(models.TextChoices):
        SINGLE_CHOICE = "single_choice", _("Single choice")
        MULTIPLE_CHOICE = "multiple_choice", _("Multiple choice")
        NUMERIC = "numeric", _("Numeric")
        EXACT_TEXT = "exact_text", _("Exact text")
        SHORT_ANSWER = "short_answer", _("Short answer")
        ESSAY = "essay", _("Essay")

    class ToleranceMode(models.TextChoices):
        ABSOLUTE = "absolute", _("Absolute")
        RELATIVE = "relative", _("Relative")

    class MultipleChoiceCredit(models.TextChoices):
        ALL_OR_NOTHING = "all_or_nothing", _("All or nothing")
        # (right picks - wrong picks) / correct options, never below 0.
        PROPORTIONAL = "proportional", _("Proportional")

    class TextMatch(models.TextChoices):
        # Unicode NFKC, case folded, whitespace collapsed, against one or several accepted texts.
        NORMALIZED = "normalized", _("Normalized text")
        # The answer key is a regular expression that must match the whole (NFKC) answer.
        REGEX = "regex", _("Regular expression")

    class EmptyAnswerPolicy(models.TextChoices):
        # An empty answer gets min_score by rule and is released like any rule grade.
        MIN_SCORE = "min_score", _("Minimum score")
        # An empty answer waits for the teacher in the review queue.
        REVIEW = "review", _("Teacher review")

    RULE_GRADED_KINDS = frozenset({"single_choice", "multiple_choice", "numeric", "exact_text"})
    MODEL_GRADED_KINDS = frozenset({"short_answer", "essay"})

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    prompt = models.TextField(blank=True)
    # Choice items: [{"id": "a", "text": "..."}]; other kinds: [].
    options = models.JSONField(default=list, blank=True)
    # Rule-graded kinds: the correct option id(s), the number, the accepted text(s), or (text_match
    # "regex") one regular expression.
    answer_key = models.JSONField(default=None, null=True, blank=True)
    # Short answers and essays: the teacher's model answer (cold-start grading compares with it).
    reference_answer = models.TextField(blank=True)
    numeric_tolerance = models.FloatField(null=True, blank=True)
    tolerance_mode = models.CharField(
        max_length=10, choices=ToleranceMode.choices, default=ToleranceMode.ABSOLUTE
    )
    multiple_choice_credit = models.CharField(
        max_length=16,
        choices=MultipleChoiceCredit.choices,
        default=MultipleChoiceCredit.ALL_OR_NOTHING,
    )
    text_match = models.CharField(
        max_length=16, choices=TextMatch.choices, default=TextMatch.NORMALIZED
    )
    empty_answer_policy = models.CharField(
        max_length=16, choices=EmptyAnswerPolicy.choices, default=EmptyAnswerPolicy.MIN_SCORE
    )
    min_score = models.FloatField(default=0)
    max_score = models.FloatField(default=1)
    # Model-graded kinds: a model's grade is released without a teacher only when the grader's
    # quadratic weighted kappa on held-out teacher scores and its confidence in this grade reach
    # these; None = EDU_DL["GRADING_RELEASE_MIN_QWK"] / ["GRADING_RELEASE_MIN_CONFIDENCE"].
    release_min_qwk = models.FloatField(null=True, blank=True)
    release_min_confidence = models.FloatField(null=True, blank=True)
    skills = models.ManyToManyField(Skill, related_name="items", blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["course", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "external_id"],
                condition=~models.Q(external_id=""),
                name="item_unique_external_id_in_course",
            ),
            models.CheckConstraint(
                condition=models.Q(max_score__gt=models.F("min_score")),
                name="item_max_score_above_min",
            ),
            models.CheckConstraint(
                condition=models.Q(numeric_tolerance__isnull=True)
                | models.Q(numeric_tolerance__gte=0),
                name="item_tolerance_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(release_min_qwk__isnull=True)
                | (models.Q(release_min_qwk__gte=0) & models.Q(release_min_qwk__lte=1)),
                name="item_release_min_qwk_0_to_1",
            ),
            models.CheckConstraint(
                condition=models.Q(release_min_confidence__isnull=True)
                | (
                    models.Q(release_min_confidence__gte=0)
                    & models.Q(release_min_confidence__lte=1)
                ),
                name="item_release_min_confidence_0_to_1",
            ),
        ]
        indexes = [models.Index(fields=["course", "kind"], name="item_course_kind")]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_rule_graded(self) -> bool:
        return self.kind in self.RULE_GRADED_KINDS


class Assessment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assessments")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    items = models.ManyToManyField(Item, through="AssessmentItem", related_name="assessments")
    opens_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # When set, no score is shown to students before the due date, whatever graded it.
    hold_grades_until_due = models.BooleanField(default=False)
    is_published = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "due_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opens_at__isnull=True)
                | models.Q(due_at__isnull=True)
                | models.Q(due_at__gt=models.F("opens_at")),
                name="assessment_due_after_opens",
            ),
        ]
        indexes = [models.Index(fields=["course", "due_at"], name="assessment_course_due")]

    def __str__(self) -> str:
        return self.title


class AssessmentItem(models.Model):
    """An item's place in an assessment."""

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="entries")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="assessment_entries")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["assessment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assessment", "item"], name="assessment_item_once"),
            models.UniqueConstraint(
                fields=["assessment", "position"], name="assessment_item_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assessment} #{self.position}: {self.item}"


class Resource(models.Model):
    """Something to study: a video, a reading, an exercise set, an interactive page."""

    class Kind(models.TextChoices):
        VIDEO = "video", _("Video")
        READING = "reading", _("Reading")
        EXERCISE = "exercise", _("Exercise")
        INTERACTIVE = "interactive", _("Interactive")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="resources")
    external_id = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.READING)
    url = models.URLField(max_length=500, blank=True)
    body = models.TextField(blank=True)
    skills = models.ManyToManyField(Skill, through="ResourceSkill", related_name="resources")
    # 0 (easiest) to 1 (hardest).
    difficulty = models.FloatField(default=0.5)
    minutes = models.PositiveIntegerField(default=10)
    language = models.CharField(max_length=16, default="en")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "external_id"],
                condition=~models.Q(external_id=""),
                name="resource_unique_external_id_in_course",
            ),
            models.CheckConstraint(
                condition=models.Q(difficulty__gte=0) & models.Q(difficulty__lte=1),
                name="resource_difficulty_0_to_1",
            ),
        ]
        indexes = [models.Index(fields=["course", "is_active"], name="resource_course_active")]

    def __str__(self) -> str:
        return self.title


class ResourceSkill(models.Model):
    """How much a resource teaches a skill (weights let a resource cover several skills)."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="skill_links")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="resource_links")
    weight = models.FloatField(default=1.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "skill"], name="resource_skill_once"),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="resource_skill_weight"),
        ]

    def __str__(self) -> str:
        return f"{self.resource} teaches {self.skill} ({self.weight:g})"
