"""Marketing Cloud Journey Builder: a campaign's custom split activity and the calls it receives.

A custom split (activity type `RestDecision`) lets Journey Builder ask the console which branch a
contact takes. Journey Builder signs every call (HS256 JWT) with the installed package's JWT
signing secret: Marketing Cloud generates that secret, so an admin pastes it here.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm_console.campaigns.models import Campaign


class SfmcActivity(models.Model):
    """One campaign's custom split activity: its JWT secret, its branches and its fall-backs."""

    class BranchBy(models.TextChoices):
        CHANNEL = "channel", "One branch per channel (plus no_contact)"
        ACTION = "action", "One branch per action (plus no_contact)"
        OFFER = "offer", "One branch per offer (plus no_contact)"

    class UnknownContact(models.TextChoices):
        NO_CONTACT = "no_contact", "Answer the no_contact branch (logged with why)"
        ERROR = "error", "Answer an error (Journey Builder takes the contact out of the journey)"

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE,
                                    related_name="sfmc_activity")
    name = models.CharField(max_length=120, default="Next best action",
                            help_text="What Journey Builder shows on the canvas.")
    jwt_signing_secret = models.CharField(
        max_length=255, blank=True,
        help_text="The installed package's JWT signing secret (Marketing Cloud generates it). "
                  "Blank: the SFMC_JWT_SIGNING_SECRET environment variable.",
    )
    application_extension_key = models.CharField(
        max_length=100, blank=True,
        help_text="The Journey Builder activity component's unique key from the installed package.",
    )
    branch_by = models.CharField(max_length=10, choices=BranchBy.choices,
                                 default=BranchBy.CHANNEL)
    unknown_contact = models.CharField(
        max_length=12, choices=UnknownContact.choices, default=UnknownContact.NO_CONTACT,
        help_text="What an unknown or erased contact key gets.",
    )
    retry_window_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="A retried call (same activity instance and contact) within this window gets "
                  "the first answer again, not a second decision.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "Journey Builder activity"
        verbose_name_plural = "Journey Builder activities"

    def __str__(self) -> str:
        return f"{self.name} ({self.campaign})"

    @property
    def signing_secret(self) -> str:
        return self.jwt_signing_secret or getattr(settings, "SFMC_JWT_SIGNING_SECRET", "")


class SfmcJourney(models.Model):
    """A journey (version) that placed the activity, as its save/validate/publish/stop calls say."""

    activity = models.ForeignKey(SfmcActivity, on_delete=models.CASCADE, related_name="journeys")
    journey_id = models.CharField(max_length=100, help_text="Journey Builder's interactionId.")
    journey_key = models.CharField(max_length=200, blank=True)
    journey_version = models.CharField(max_length=20, blank=True)
    activity_object_id = models.CharField(max_length=100, blank=True,
                                          help_text="The activity's id in the journey.")
    last_event = models.CharField(max_length=10, help_text="save, validate, publish or stop.")
    last_event_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_event_at"]
        constraints = [
            models.UniqueConstraint(fields=["activity", "journey_id", "activity_object_id"],
                                    name="sfmc_journey_unique_activity_placement"),
        ]

    def __str__(self) -> str:
        return f"journey {self.journey_id} v{self.journey_version}"


class SfmcCall(models.Model):
    """One call Journey Builder made that the console answered (execute and lifecycle alike).

    An execute call keeps its `retry_key` (a hash of activity instance + contact key) while its
    retry window lasts: a retry finds it and gets `branch` again; after the window the key is
    released. The contact key itself is not kept (it is the customer's id: erasure reaches the
    decision, and through it the customer, not this log).
    """

    class Endpoint(models.TextChoices):
        EXECUTE = "execute", "execute"
        SAVE = "save", "save"
        VALIDATE = "validate", "validate"
        PUBLISH = "publish", "publish"
        STOP = "stop", "stop"

    activity = models.ForeignKey(SfmcActivity, on_delete=models.CASCADE, related_name="calls")
    endpoint = models.CharField(max_length=10, choices=Endpoint.choices)
    received_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(default=200)
    journey_id = models.CharField(max_length=100, blank=True)
    activity_object_id = models.CharField(max_length=100, blank=True)
    activity_instance_id = models.CharField(max_length=100, blank=True)
    branch = models.CharField(max_length=80, blank=True)
    decision = models.ForeignKey("decisioning.Decision", null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    message = models.CharField(max_length=300, blank=True,
                               help_text="Why this answer (e.g. unknown contact key).")
    retry_key = models.CharField(max_length=64, null=True, blank=True)
    retries = models.PositiveIntegerField(default=0, help_text="Retries answered from this call.")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["activity", "-received_at"], name="sfmc_call_recent")]
        constraints = [
            models.UniqueConstraint(fields=["activity", "retry_key"],
                                    condition=Q(retry_key__isnull=False),
                                    name="sfmc_call_unique_retry_key"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.received_at:%Y-%m-%d %H:%M:%S}"
