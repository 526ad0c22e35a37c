"""Customers, their consent history and the append-only event log.

Personal data lives in `Customer.external_id`, `email`, `phone`, `name`, `traits`, `time_zone` and
the behaviour profile, and in what other tables copied of it (event properties and message ids,
decisions' context and feature snapshots, explanations, reviewer notes, stored API answers):
erasure overwrites all of it (compliance.selectors.customer_erasure_scope names every place), while
decisions and events stay countable by internal id.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from crm_console.campaigns.models import validate_time_zone
from crm_console.campaigns.vocabulary import vocabulary


class Customer(models.Model):
    external_id = models.CharField(
        max_length=200, unique=True, help_text="The CRM's id (Segment userId)."
    )
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    name = models.CharField(max_length=200, blank=True)
    traits = models.JSONField(
        default=dict, blank=True, help_text="Attributes from identify calls (segment-free)."
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    profile_state = models.JSONField(
        default=dict, blank=True,
        help_text="Raw behaviour counters that agents.features turns into the state vector.",
    )
    profile_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"Customer #{self.pk}"

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class Consent(models.Model):
    """One consent change under one consent key (a channel's, e.g. `whatsapp`, or one several
    channels share); the latest row per key is the current consent."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=50, help_text="The consent key (Channel.consent).")
    granted = models.BooleanField()
    source = models.CharField(
        max_length=100, help_text="Where the consent came from (signup form, CRM webhook, ...)."
    )
    recorded_at = models.DateTimeField(help_text="When the customer gave or withdrew consent.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer", "channel", "-recorded_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "-recorded_at"])]

    def __str__(self) -> str:
        state = "granted" if self.granted else "withdrawn"
        return f"{self.get_channel_display()} consent {state}"

    def get_channel_display(self) -> str:
        return vocabulary().consent_label(self.channel)


class Event(models.Model):
    """A CRM event in the Segment spec's identify/track shape. Append-only, idempotent by message id."""

    class Type(models.TextChoices):
        IDENTIFY = "identify", "Identify"
        TRACK = "track", "Track"

    message_id = models.CharField(max_length=200)
    # no index of its own: (customer, timestamp) below serves every lookup by customer
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events",
                                 db_index=False)
    type = models.CharField(max_length=20, choices=Type.choices)
    name = models.CharField(max_length=200, blank=True, help_text="The track event's name.")
    properties = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(help_text="When it happened, per the sender.")
    received_at = models.DateTimeField(auto_now_add=True)
    decision = models.ForeignKey(
        "decisioning.Decision", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="outcome_events", help_text="The decision this outcome is attributed to.",
    )

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["customer", "timestamp"]),
            models.Index(fields=["name", "timestamp"]),
        ]
        # the idempotency key; a constraint, not unique=True, which on PostgreSQL also builds a
        # LIKE-pattern index nothing queries, one more index every event insert maintains
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="customers_event_message_id_key"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.type} at {self.timestamp:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        # Attribution links an event to its decision with a queryset update, never through here.
        if self.pk is not None:
            raise ValidationError("Events are append-only: they cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Events are append-only: they cannot be deleted.")
