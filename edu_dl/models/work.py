"""What students hand in: submissions of an assessment, the response to each item, and the
history of every grade a response was given."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from edu_dl.models.content import Assessment, Item


class Submission(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted, being graded")
        NEEDS_REVIEW = "needs_review", _("Waiting for the teacher")
        GRADED = "graded", _("Graded")

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_submissions"
    )
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="submissions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # A client's retry of the same POST returns the first submission (Idempotency-Key header).
    idempotency_key = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="submission_idempotency_key_once",
            ),
        ]
        indexes = [
            models.Index(fields=["assessment", "status"], name="submission_assessment_status"),
            models.Index(fields=["student", "-submitted_at"], name="submission_student_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.student} - {self.assessment} ({self.status})"


class Response(models.Model):
    """A student's answer to one item and its current grade.

    The grade fields hold the latest grade only; every grade a response was ever given (rule,
    model, a teacher's accept or override, a regrade) is one :class:`ResponseGrade` row.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Being graded")
        GRADED = "graded", _("Graded")
        NEEDS_REVIEW = "needs_review", _("Needs review")

    class GradeSource(models.TextChoices):
        RULE = "rule", _("Rule")
        MODEL = "model", _("Model")
        TEACHER = "teacher", _("Teacher")

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="responses")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="responses")
    # As written by the student: an option id, a list of ids, a number or a text.
    answer = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    score = models.FloatField(null=True, blank=True)
    grade_source = models.CharField(max_length=8, choices=GradeSource.choices, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        "edu_dl.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="graded_responses",
    )
    # Why the model gave this score (similar graded responses, key phrases); empty for rules.
    explanation = models.JSONField(default=dict, blank=True)
    feedback = models.TextField(blank=True)
    released = models.BooleanField(default=False)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="edu_reviewed_responses",
    )
    graded_at = models.DateTimeField(null=True, blank=True)
    # Written by the model grader: higher = the teacher should see it sooner in the review queue.
    review_priority = models.FloatField(null=True, blank=True)
    # Why the response waits for a teacher ("empty answer", "low confidence", ...).
    review_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["submission", "id"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "item"], name="response_one_per_item"),
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | (models.Q(confidence__gte=0) & models.Q(confidence__lte=1)),
                name="response_confidence_0_to_1",
            ),
            models.CheckConstraint(
                condition=models.Q(released=False) | models.Q(score__isnull=False),
                name="response_released_has_score",
            ),
        ]
        indexes = [
            # The review queue: an item's responses waiting for the teacher.
            models.Index(fields=["item", "status"], name="response_item_status"),
            models.Index(fields=["status", "created_at"], name="response_status_created"),
        ]

    def __str__(self) -> str:
        return f"Response {self.pk} to {self.item_id} ({self.status})"


class ResponseGrade(models.Model):
    """One grade given to a response: the grade history, appended to, never edited or deleted.

    Every time a response gets a score - by rule, by a model, or by a teacher accepting or
    overriding it - one row is written beside the update of :class:`Response`, whose fields hold
    the latest grade only.
    """

    class Action(models.TextChoices):
        RULE = "rule", _("Graded by rule")
        MODEL = "model", _("Graded by a model")
        ACCEPT = "accept", _("Accepted by a teacher")
        OVERRIDE = "override", _("Overridden by a teacher")
        REGRADE = "regrade", _("Regraded")

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="grades")
    score = models.FloatField()
    grade_source = models.CharField(max_length=8, choices=Response.GradeSource.choices)
    confidence = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(
        "edu_dl.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="response_grades",
    )
    # The teacher who accepted or overrode the grade; None for rule and model grades.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="edu_response_grades",
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    released = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | (models.Q(confidence__gte=0) & models.Q(confidence__lte=1)),
                name="response_grade_confidence_0_to_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.score:g} for response {self.response_id}"


class AssessmentDraft(models.Model):
    """A student's answers to an assessment, saved without handing them in.

    One per student and assessment: saving again replaces the answers, handing in deletes it.
    ``answers`` maps item ids (as text: JSON keys are strings) to answers already validated by
    :func:`edu_dl.services.drafts.draft_save`; unanswered items are left out.
    """

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="edu_assessment_drafts"
    )
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="drafts")
    answers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["student", "assessment"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "assessment"], name="assessment_draft_once_per_student"
            ),
        ]

    def __str__(self) -> str:
        return f"Draft of {self.student} for {self.assessment}"
