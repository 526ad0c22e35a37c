"""Writes for compliance: the audit trail and decision reviews.

Every app records its audit entries here, so this module imports no app's services; the
customer's own requests (access, erasure), which act on every app, are in data_requests."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction

from crm_console.compliance.models import AuditEntry, DecisionReview


def audit_record(
    *, actor: AbstractBaseUser | None, verb: str, target: models.Model, details: dict[str, Any] | None = None
) -> AuditEntry:
    """Append one line to the audit trail. `details` must not hold personal data."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb, target_type=target._meta.label_lower, target_id=str(target.pk),
        details={k: v if isinstance(v, (int, float, bool, type(None))) else str(v)
                 for k, v in (details or {}).items()},
    )


def audit_log_exported(*, start: date, end: date, exported_by: AbstractBaseUser) -> AuditEntry:
    """An export of the audit trail is on the trail itself: who took which period out."""
    return audit_record(actor=exported_by, verb="audit_log.exported", target=exported_by,
                        details={"start": start.isoformat(), "end": end.isoformat()})


@transaction.atomic
def decision_review_create(
    *, decision: Any, reviewer: AbstractBaseUser, verdict: str, note: str = ""
) -> DecisionReview:
    """Record a reviewer's verdict on a decision (approve or flag, with a note) and audit it."""
    review = DecisionReview(decision=decision, reviewer=reviewer, verdict=verdict, note=note.strip())
    review.full_clean()
    if verdict == DecisionReview.Verdict.FLAGGED and not review.note:
        raise ValidationError({"note": "Say what is wrong when you flag a decision."})
    review.save()
    audit_record(actor=reviewer, verb=f"decision.{verdict}", target=decision,
                 details={"review": review.pk})
    return review
