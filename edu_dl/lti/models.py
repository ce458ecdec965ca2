"""The tables of the LTI 1.3 tool: who may launch us (platforms), our own signing keys, and how
the platform's contexts, resource links and people map onto our courses, assessments and users.

Deleting a platform registration is refused while anything refers to it (``PROTECT``): its
mappings are how the next launch finds the same course and the same user again. Turn
``is_active`` off instead.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from edu_dl.encryption import EncryptedTextField
from edu_dl.models import Assessment, Course, Submission


class Platform(models.Model):
    """An LMS registered by an administrator: the values the LMS shows once the tool is added."""

    name = models.CharField(max_length=200)
    # The platform's issuer (``iss`` of its id tokens), as the LMS shows it, case-sensitive.
    issuer = models.CharField(max_length=255)
    # The id the LMS gave this tool (``aud`` of its id tokens).
    client_id = models.CharField(max_length=255)
    # The LMS's OIDC authorisation endpoint, where our login step sends the browser.
    auth_login_url = models.URLField(max_length=500)
    # The LMS's OAuth 2 token endpoint (client credentials, for grades and rosters).
    auth_token_url = models.URLField(max_length=500)
    # ``aud`` of the token request's signed assertion when the LMS wants another value than
    # the token endpoint (Moodle and Canvas take the token endpoint: leave it empty).
    auth_audience = models.CharField(max_length=500, blank=True)
    # Where the LMS publishes its public keys (JWKS); or ``key_set``, pasted by hand.
    key_set_url = models.URLField(max_length=500, blank=True)
    key_set = models.JSONField(null=True, blank=True)
    # The deployment ids of the tool in this LMS; a launch from any other is refused.
    deployment_ids = models.JSONField(default=list, blank=True)
    # Launches from a context not seen before (or without one) land in this course; without
    # it, a new course is made for each new context.
    course = models.ForeignKey(
        Course,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="lti_platforms",
        help_text=_("New contexts land here; empty: a new course each."),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_once"),
            models.CheckConstraint(
                condition=~models.Q(key_set_url="") | models.Q(key_set__isnull=False),
                name="lti_platform_has_keys",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """What the admin form checks beyond the fields: keys and deployment ids."""
        errors: dict[str, Any] = {}
        if not self.key_set_url and self.key_set is None:
            errors["key_set_url"] = _("Give the platform's key set URL, or paste its key set.")
        if self.key_set is not None and not (
            isinstance(self.key_set, dict) and isinstance(self.key_set.get("keys"), list)
        ):
            errors["key_set"] = _('A key set is {"keys": [...]}.')
        if not isinstance(self.deployment_ids, list) or not all(
            isinstance(value, str) and value for value in self.deployment_ids
        ):
            errors["deployment_ids"] = _('A list of deployment ids: ["1", "2"].')
        if errors:
            raise ValidationError(errors)


class ToolKey(models.Model):
    """A key pair of this tool: it signs deep-linking answers and token requests.

    The newest active key signs; every active key is published at the JWKS endpoint, so a key
    can be replaced by adding a new one and retiring the old one after the platforms' caches
    have expired.
    """

    kid = models.CharField(max_length=64, unique=True)
    # PKCS#8 PEM; never shown in the admin; encrypted at rest (edu_dl.encryption).
    private_key_pem = EncryptedTextField()
    public_jwk = models.JSONField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.kid


class Context(models.Model):
    """A course of the LMS (LTI context) and the course of ours that stands for it."""

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="contexts")
    context_id = models.CharField(max_length=255)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lti_contexts")
    title = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True)
    # Names and Role Provisioning: where the LMS lists the members of the context.
    memberships_url = models.URLField(max_length=500, blank=True)
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "title"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "context_id"], name="lti_context_once"),
        ]

    def __str__(self) -> str:
        return self.title or self.context_id


class ResourceLink(models.Model):
    """A placement of the tool in the LMS, the assessment it opens and its gradebook column."""

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="resource_links")
    resource_link_id = models.CharField(max_length=255)
    context = models.ForeignKey(
        Context, on_delete=models.CASCADE, null=True, blank=True, related_name="resource_links"
    )
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lti_resource_links")
    assessment = models.ForeignKey(
        Assessment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="lti_resource_links",
    )
    title = models.CharField(max_length=255, blank=True)
    # Assignment and Grade Services, as the last launch announced them.
    lineitem_url = models.URLField(max_length=500, blank=True)
    lineitems_url = models.URLField(max_length=500, blank=True)
    ags_scopes = models.JSONField(default=list, blank=True)
    # The scopes hold ".../scope/score": the tool may post scores to ``lineitem_url``.
    accepts_scores = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "resource_link_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "resource_link_id"], name="lti_resource_link_once"
            ),
        ]
        indexes = [
            models.Index(fields=["assessment", "accepts_scores"], name="lti_link_assessment"),
        ]

    def __str__(self) -> str:
        return self.title or self.resource_link_id


class LtiUser(models.Model):
    """A person of an LMS (its ``sub``) and the user of ours made for them on first launch."""

    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="users")
    sub = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities"
    )
    last_launch_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "sub"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "sub"], name="lti_user_once"),
            models.UniqueConstraint(fields=["platform", "user"], name="lti_user_one_per_platform"),
        ]

    def __str__(self) -> str:
        return f"{self.sub} on {self.platform_id}"


class GradeSync(models.Model):
    """The score of a submission sent (or to be sent) to one line item of an LMS gradebook.

    One row per submission and resource link; a new grade of the submission updates the row
    and sends it again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        # The assessment hides grades until its due date: sent once it has passed.
        HELD = "held", _("Held until the due date")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="lti_grade_syncs"
    )
    resource_link = models.ForeignKey(
        ResourceLink, on_delete=models.CASCADE, related_name="grade_syncs"
    )
    lineitem_url = models.URLField(max_length=500)
    # The student's ``sub`` on the platform (``userId`` of the score).
    user_sub = models.CharField(max_length=255)
    score_given = models.FloatField()
    score_maximum = models.FloatField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "resource_link"], name="lti_grade_sync_once"
            ),
        ]
        indexes = [models.Index(fields=["status", "not_before"], name="lti_grade_sync_due")]

    def __str__(self) -> str:
        return f"{self.score_given:g}/{self.score_maximum:g} to {self.lineitem_url}"
