"""Model lifecycle: training runs, the versions they make, and the audit trail of every change."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from edu_dl.models.content import Item
from edu_dl.models.courses import Course


class ModelKind(models.TextChoices):
    KT = "kt", _("Knowledge tracing")
    GRADER = "grader", _("Grader")
    RECOMMENDER = "recommender", _("Recommender")


class ScopeType(models.TextChoices):
    COURSE = "course", _("Course")
    ITEM = "item", _("Item")
    GLOBAL = "global", _("Whole site")


class ScopedModel(models.Model):
    """What a model is for: a course, an item, or the whole site (the cross-item grader).

    ``scope_key`` ("course:12", "item:7", "global") is derived from the foreign keys by the
    services; it lets one index and one unique constraint cover every kind of scope.
    """

    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    scope_type = models.CharField(max_length=8, choices=ScopeType.choices)
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    scope_key = models.CharField(max_length=64, editable=False)

    class Meta:
        abstract = True


class TrainingRun(ScopedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = ("queued", "running")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # 0-100
    stage = models.CharField(max_length=200, blank=True)
    # One entry per finished epoch: {"epoch", "train_loss", "val_auc", ...}.
    epoch_metrics = models.JSONField(default=list, blank=True)
    # Overrides of the model's default configuration for this run (epochs, hidden size ...).
    params = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Set by a cancel request while running; the worker stops at the next epoch.
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="edu_training_runs",
    )
    # Open runs with the same key are one run: asking again returns it.
    idempotency_key = models.CharField(max_length=255)
    task_id = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    enqueue_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=models.Q(status__in=["queued", "running"]),
                name="training_run_one_open_per_key",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="training_run_progress_0_to_100"
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "scope_key", "-created_at"], name="training_run_scope"),
            models.Index(fields=["status", "heartbeat_at"], name="training_run_sweep"),
        ]

    def __str__(self) -> str:
        return f"Training {self.kind} {self.scope_key} #{self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class ModelVersion(ScopedModel):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", _("Candidate")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    # The registered model name in edu_dl.ml and its full configuration.
    architecture = models.CharField(max_length=64)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    # Why a candidate was not activated (the evaluation gate's verdict), or notes on activation.
    gate_reason = models.TextField(blank=True)
    artifact_path = models.CharField(max_length=500)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_size = models.PositiveBigIntegerField()
    # A hash of the training data (ids and labels), so two versions can be told apart by data.
    data_fingerprint = models.CharField(max_length=64)
    training_run = models.ForeignKey(
        TrainingRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="model_versions",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind", "scope_key", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "scope_key", "version"], name="model_version_number_once"
            ),
            models.UniqueConstraint(
                fields=["kind", "scope_key"],
                condition=models.Q(status="active"),
                name="model_version_one_active_per_scope",
            ),
        ]
        indexes = [models.Index(fields=["kind", "scope_key", "status"], name="model_version_scope")]

    def __str__(self) -> str:
        return f"{self.kind} {self.scope_key} v{self.version} ({self.status})"


class AuditEvent(models.Model):
    """Who changed which grade or model, when, from what to what. Never edited, never deleted."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="edu_audit_events",
    )
    action = models.CharField(max_length=64)  # "model.activate", "response.override" ...
    course = models.ForeignKey(
        Course, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(fields=["course", "-created_at"], name="audit_course_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id} by {self.actor_id}"
