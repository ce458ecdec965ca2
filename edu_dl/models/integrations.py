"""What other systems hold with us: API clients' course limits, webhook subscriptions and the
log of their deliveries."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from oauth2_provider.settings import oauth2_settings

from edu_dl.encryption import EncryptedTextField
from edu_dl.models.courses import Course


class ApiClient(models.Model):
    """The limits of an OAuth 2 application (django-oauth-toolkit): which courses its tokens may
    reach. The application acts as its owner (``application.user``) and never sees more than the
    owner may; no course listed = all of the owner's courses."""

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="edu_dl_client",
    )
    courses = models.ManyToManyField(Course, blank=True, related_name="api_clients")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"API client {self.application}"


class WebhookSubscription(models.Model):
    """A URL that receives a course's events, each delivery signed with HMAC-SHA256 over its
    timestamp and body with this subscription's secret (see edu_dl.services.webhooks)."""

    class Event(models.TextChoices):
        GRADE_RELEASED = "grade.released", _("Grade released")
        TRAINING_FINISHED = "training.finished", _("Training finished")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    # Signs every delivery, so it is read back in the clear: encrypted at rest, not hashed.
    secret = EncryptedTextField()
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "created_at"]
        indexes = [models.Index(fields=["course", "is_active"], name="webhook_course_active")]

    def __str__(self) -> str:
        return f"{self.course} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one subscription, with every attempt's outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32)
    # The event's own id (also sent as a header): receivers use it to ignore repeats.
    event_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="webhook_delivery_once_per_event"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]

    def __str__(self) -> str:
        return f"{self.event} to {self.subscription.url}: {self.status}"
