"""Writes for compliance: the audit trail, decision reviews and data-subject requests."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from crm_console.compliance.models import AuditEntry, DecisionReview, ErasureRecord


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


# Event properties that describe the marketing action or the order amount, not the person: kept
# on erasure so decisions and revenue stay countable. Everything else is dropped.
NON_PERSONAL_EVENT_PROPERTIES = frozenset({
    "channel", "offer", "send_window", "variant", "decision_id", "action_id", "campaign_id",
    "revenue", "currency", "discount", "value",
})


def customer_data_export(*, customer: Any, requested_by: AbstractBaseUser | None) -> dict[str, Any]:
    """Everything held about one customer, as JSON-able data (the right of access); audited."""
    from crm_console.compliance.selectors import customer_data

    data = customer_data(customer=customer)
    audit_record(actor=requested_by, verb="customer.exported", target=customer)
    return data


@transaction.atomic
def customer_erase(*, customer: Any, requested_by: AbstractBaseUser | None, reason: str = "") -> ErasureRecord:
    """Irreversibly anonymise a customer's personal data (right to erasure).

    Overwrites (never hides) name, email, phone and traits; replaces the CRM id with a random token
    that is stored nowhere else, so it cannot be mapped back; clears the behaviour profile; strips
    every event's properties to the non-personal ones. Decisions, consent history and events stay,
    keyed by the internal id, so KPIs still count them. An ErasureRecord and an AuditEntry prove it
    was done, without the personal data.
    """
    from crm_console.customers.models import Customer, Event

    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        raise ValidationError("This customer was already erased.")
    customer.external_id = f"erased-{secrets.token_hex(16)}"
    customer.email = ""
    customer.phone = ""
    customer.name = ""
    customer.traits = {}
    customer.profile_state = {}
    customer.profile_updated_at = None
    customer.erased_at = timezone.now()
    customer.save()

    # events are append-only through Event.save(); erasure is the one sanctioned rewrite
    stripped = []
    for event in Event.objects.filter(customer=customer).only("id", "type", "properties"):
        props = event.properties if isinstance(event.properties, dict) else {}
        keep = {} if event.type == Event.Type.IDENTIFY else {
            k: v for k, v in props.items() if k in NON_PERSONAL_EVENT_PROPERTIES}
        if keep != props:
            event.properties = keep
            stripped.append(event)
    Event.objects.bulk_update(stripped, ["properties"], batch_size=1000)

    record = ErasureRecord.objects.create(customer_id_erased=customer.pk, requested_by=requested_by,
                                          reason=reason[:200])
    audit_record(actor=requested_by, verb="customer.erased", target=customer,
                 details={"erasure_record": record.pk, "events_stripped": len(stripped)})
    return record
