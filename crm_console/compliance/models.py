"""Compliance: reviews of decisions, the audit trail and data-subject request records."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from crm_console.decisioning.models import Decision


class DecisionReview(models.Model):
    """A reviewer's verdict on one decision; several reviews of one decision are kept in order."""

    class Verdict(models.TextChoices):
        APPROVED = "approved", "Approved"
        FLAGGED = "flagged", "Flagged"

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} decision #{self.decision_id}"


class AuditEntry(models.Model):
    """Who changed what and when: policy edits, promotions, erasures. Never holds personal data."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=60)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=60)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.verb} {self.target_type} #{self.target_id}"


class ErasureRecord(models.Model):
    """Proof that a customer's personal data was erased, without the personal data itself."""

    customer_id_erased = models.PositiveBigIntegerField(help_text="Internal id of the erased customer.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)
    erased_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Erasure of customer #{self.customer_id_erased}"
