"""The learning-event log and what the models make of it: mastery and recommendations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from edu_dl.models.content import Item, Resource
from edu_dl.models.courses import Course, Skill


class Interaction(models.Model):
    """One answer of a student to an item: the sequence that knowledge tracing reads.

    ``skill_ids`` repeats the item's skills (ids of :class:`Skill`) at the time of the answer:
    training reads millions of these rows in order, and a join per row would cost more than the
    few bytes it saves. The services that write interactions check that every id belongs to the
    course.
    """

    class Source(models.TextChoices):
        RESPONSE = "response", _("Graded response")
        IMPORT = "import", _("Import")
        XAPI = "xapi", _("xAPI statement")
        LTI = "lti", _("LTI")
        API = "api", _("API")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="interactions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_interactions"
    )
    item = models.ForeignKey(
        Item, on_delete=models.SET_NULL, null=True, blank=True, related_name="interactions"
    )
    skill_ids = models.JSONField(default=list, blank=True)
    correct = models.BooleanField()
    timestamp = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.RESPONSE)
    # The event's id at its source (file key, xAPI statement id): makes imports idempotent.
    external_id = models.CharField(max_length=255, blank=True)
    response = models.ForeignKey(
        "edu_dl.Response",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="interactions",
    )
    attempt = models.PositiveIntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "student", "timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "source", "external_id"],
                condition=~models.Q(external_id=""),
                name="interaction_external_id_once",
            ),
        ]
        indexes = [
            # Training and mastery read one course's (or student's) history in time order.
            models.Index(fields=["course", "student", "timestamp"], name="interaction_history"),
            # "How many new interactions since the last training run?"
            models.Index(fields=["course", "created_at"], name="interaction_course_created"),
        ]

    def __str__(self) -> str:
        return f"{self.student} {'✓' if self.correct else '✗'} item {self.item_id}"


class ResourceInteraction(models.Model):
    class Event(models.TextChoices):
        VIEWED = "viewed", _("Viewed")
        COMPLETED = "completed", _("Completed")
        HELPFUL = "helpful", _("Helpful")
        NOT_HELPFUL = "not_helpful", _("Not helpful")

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_resource_events"
    )
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="events")
    recommendation = models.ForeignKey(
        "edu_dl.Recommendation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
    )
    event = models.CharField(max_length=16, choices=Event.choices)
    timestamp = models.DateTimeField()
    external_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["student", "resource"], name="resource_event_student"),
            models.Index(fields=["resource", "event"], name="resource_event_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.student} {self.event} {self.resource}"


class MasteryEstimate(models.Model):
    """A student's probability of answering a typical item of a skill correctly, at ``as_of``.

    Rows are appended, so trends can be drawn; the newest row per (student, skill) has
    ``is_current`` set, which keeps the class heatmap a single indexed query.
    """

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_mastery"
    )
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="mastery_estimates")
    probability = models.FloatField()
    evidence_count = models.PositiveIntegerField(default=0)
    as_of = models.DateTimeField()
    is_current = models.BooleanField(default=True)
    model_version = models.ForeignKey(
        "edu_dl.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mastery_estimates",
    )

    class Meta:
        ordering = ["student", "skill", "-as_of"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "skill"],
                condition=models.Q(is_current=True),
                name="mastery_one_current_per_skill",
            ),
            models.CheckConstraint(
                condition=models.Q(probability__gte=0) & models.Q(probability__lte=1),
                name="mastery_probability_0_to_1",
            ),
        ]
        indexes = [
            models.Index(fields=["student", "skill", "as_of"], name="mastery_trend"),
            models.Index(fields=["skill", "is_current"], name="mastery_skill_current"),
            # The newest estimate of each skill (hence of a course: one probe per skill), which
            # tells the class overview whether its stored summary missed some.
            models.Index(fields=["skill", "id"], name="mastery_skill_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.student} {self.skill}: {self.probability:.0%}"


class CourseMasterySummary(models.Model):
    """What the class overview needs of every student's mastery, computed by a worker when
    mastery changes (and hourly, as the window moves) rather than on every page view: over
    100,000 estimates, the drops over the window alone take a fifth of a second.

    ``students`` maps each student id (a string: JSON keys are) with a current estimate in the
    course to ``{"overall": mean mastery, "estimates": how many skills have an estimate,
    "flagged": how many need attention, "lowest": the lowest mastery among those (None when
    none)}``, and for the first students in the attention order (those the overview
    describes, and a margin) ``"skills"``: ``[skill id, probability, evidence count, 1 when
    low else 0, the baseline when it dropped else None]`` per skill needing attention, lowest
    first. Not every flagged student's skills: a class of 1,000 can flag 50,000 skills, 2 MB of
    JSON that would cost a page 80 ms to parse and a worker a third of a second to write.
    Written by :func:`edu_dl.services.class_summary.course_mastery_summary_refresh` only.
    """

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="mastery_summary")
    computed_at = models.DateTimeField()
    # The attention rule it was computed with: the window and the thresholds.
    window_days = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    rule = models.JSONField(default=dict, blank=True)
    # The highest MasteryEstimate id of the course when computed: a newer one means the
    # summary may miss something.
    estimates_revision = models.PositiveBigIntegerField(default=0)
    students = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "course mastery summaries"

    def __str__(self) -> str:
        return f"mastery summary of {self.course} as of {self.computed_at:%Y-%m-%d %H:%M}"


class Recommendation(models.Model):
    """A suggestion shown to a student, kept with its rank and model version for evaluation."""

    class Feedback(models.TextChoices):
        HELPFUL = "helpful", _("Helpful")
        NOT_HELPFUL = "not_helpful", _("Not helpful")

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_recommendations"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="recommendations")
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, null=True, blank=True, related_name="recommendations"
    )
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, null=True, blank=True, related_name="recommendations"
    )
    # The skill the suggestion works on (None when the skill was deleted since).
    skill = models.ForeignKey(
        Skill, on_delete=models.SET_NULL, null=True, blank=True, related_name="recommendations"
    )
    rank = models.PositiveIntegerField()
    score = models.FloatField()
    reason = models.TextField()
    # The facts the reason was built from (mastery, chance of success, prerequisites ...), so
    # what was shown can be evaluated later.
    facts = models.JSONField(default=dict, blank=True)
    # The latest set shown to the student; older sets stay for evaluation.
    is_current = models.BooleanField(default=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    feedback = models.CharField(max_length=16, choices=Feedback.choices, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True)
    model_version = models.ForeignKey(
        "edu_dl.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recommendations",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["student", "-created_at", "rank"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(resource__isnull=False) & models.Q(item__isnull=True))
                | (models.Q(resource__isnull=True) & models.Q(item__isnull=False)),
                name="recommendation_resource_xor_item",
            ),
        ]
        indexes = [
            models.Index(fields=["student", "course", "-created_at"], name="recommendation_recent"),
            models.Index(fields=["student", "course", "is_current"], name="recommendation_current"),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} for {self.student}: {self.resource or self.item}"

    @property
    def kind(self) -> str:
        return "resource" if self.resource_id else "item"


class RecommendationRule(models.Model):
    """A teacher's pin (always suggest first) or hide (never suggest), for one student or for
    everyone in the course."""

    class Action(models.TextChoices):
        PIN = "pin", _("Pin")
        HIDE = "hide", _("Hide")

    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, related_name="recommendation_rules"
    )
    # None: every student of the course.
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="edu_recommendation_rules",
    )
    resource = models.ForeignKey(
        Resource, on_delete=models.CASCADE, null=True, blank=True, related_name="rules"
    )
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, null=True, blank=True, related_name="recommendation_rules"
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(resource__isnull=False) & models.Q(item__isnull=True))
                | (models.Q(resource__isnull=True) & models.Q(item__isnull=False)),
                name="recommendation_rule_resource_xor_item",
            ),
            # One rule per target and audience: a new pin replaces a hide, and the reverse.
            models.UniqueConstraint(
                fields=["course", "student", "resource"],
                condition=models.Q(student__isnull=False, resource__isnull=False),
                name="recommendation_rule_student_resource_once",
            ),
            models.UniqueConstraint(
                fields=["course", "student", "item"],
                condition=models.Q(student__isnull=False, item__isnull=False),
                name="recommendation_rule_student_item_once",
            ),
            models.UniqueConstraint(
                fields=["course", "resource"],
                condition=models.Q(student__isnull=True, resource__isnull=False),
                name="recommendation_rule_course_resource_once",
            ),
            models.UniqueConstraint(
                fields=["course", "item"],
                condition=models.Q(student__isnull=True, item__isnull=False),
                name="recommendation_rule_course_item_once",
            ),
        ]

    def __str__(self) -> str:
        audience = self.student or "everyone"
        return f"{self.action} {self.resource or self.item} for {audience}"
