"""The statements the xAPI endpoint received, each with what it became in our records."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# The longest verb, activity or actor identifier kept, in bytes of UTF-8 (longer ones are
# refused): short enough for a database index on every backend.
MAX_IDENTIFIER_BYTES = 1024


class Statement(models.Model):
    """One xAPI statement as it was sent (``raw``), and what it became.

    Every valid statement is kept, including those that name an activity or a person we do not
    know, so a learning-record store can be told exactly what happened to each one. ``outcome``
    says what it became: an :class:`~edu_dl.models.Interaction` (an answer), a
    :class:`~edu_dl.models.ResourceInteraction` (a resource viewed or completed), nothing for a
    stated reason, or the voiding of another statement. ``course`` and ``student`` are set when
    the statement's activity and actor were recognised.
    """

    class Outcome(models.TextChoices):
        INTERACTION = "interaction", _("Answer recorded")
        RESOURCE_EVENT = "resource_event", _("Resource event recorded")
        UNKNOWN_ACTIVITY = "unknown_activity", _("Unknown activity")
        UNKNOWN_ACTOR = "unknown_actor", _("Unknown actor")
        IGNORED_VERB = "ignored_verb", _("Verb not used")
        VOIDING = "voiding", _("Voids another statement")

    statement_id = models.UUIDField(unique=True)
    course = models.ForeignKey(
        "edu_dl.Course",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="xapi_statements",
    )
    # The student the actor was recognised as (None when unknown, and for voiding statements).
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="xapi_statements",
    )
    # The actor's identifier: "mbox:mailto:...", "mbox_sha1sum:...", "openid:...",
    # "account:<homePage> <name>" or "group:anonymous".
    actor_key = models.CharField(max_length=MAX_IDENTIFIER_BYTES)
    verb = models.CharField(max_length=MAX_IDENTIFIER_BYTES)
    # The activity IRI; for other objects, the referenced statement id or the agent's key.
    object_id = models.CharField(max_length=MAX_IDENTIFIER_BYTES)
    raw = models.JSONField()
    stored_at = models.DateTimeField()
    # Who sent it (the xAPI "authority"): the signed-in user, or an OAuth application's owner.
    authority_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="xapi_statements_sent",
    )
    voided = models.BooleanField(default=False)
    voided_by = models.UUIDField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    interaction = models.ForeignKey(
        "edu_dl.Interaction",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="xapi_statements",
    )
    resource_event = models.ForeignKey(
        "edu_dl.ResourceInteraction",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="xapi_statements",
    )
    # Why a statement became nothing, and what voiding it undid.
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-stored_at", "-id"]
        indexes = [
            models.Index(fields=["course", "stored_at"], name="xapi_statement_course_stored"),
            models.Index(fields=["student", "stored_at"], name="xapi_statement_student"),
            models.Index(fields=["verb"], name="xapi_statement_verb"),
            models.Index(fields=["object_id"], name="xapi_statement_object"),
            models.Index(fields=["stored_at"], name="xapi_statement_stored"),
        ]

    def __str__(self) -> str:
        return f"statement {self.statement_id} ({self.outcome})"
