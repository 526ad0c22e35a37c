"""A customer's data requests: access (export) and erasure.

Erasure reaches into every app (customers, decisioning, the API's stored answers), so it lives
apart from compliance.services, which every app calls to audit."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from crm_console.api.services import idempotent_answers_forget_time_zone
from crm_console.compliance.models import ErasureRecord
from crm_console.compliance.selectors import ErasureCounts, customer_data, customer_erasure_scope
from crm_console.compliance.services import audit_record
from crm_console.customers.models import Customer, Event
from crm_console.decisioning.models import Decision
from crm_console.decisioning.services import decision_context_console_part, decisions_release


# Event properties that describe the marketing action or the order amount, not the person: kept
# on erasure so decisions and revenue stay countable. Everything else is dropped.
NON_PERSONAL_EVENT_PROPERTIES = frozenset({
    "channel", "offer", "send_window", "variant", "decision_id", "action_id", "campaign_id",
    "revenue", "currency", "discount", "value",
})


def customer_data_export(*, customer: Any, requested_by: AbstractBaseUser | None) -> dict[str, Any]:
    """Everything held about one customer, as JSON-able data (the right of access); audited."""
    data = customer_data(customer=customer)
    audit_record(actor=requested_by, verb="customer.exported", target=customer)
    return data


@dataclass(frozen=True)
class CustomerErasure:
    """An erasure done: its record and what it changed (the counts its audit entry holds)."""

    record: ErasureRecord
    counts: ErasureCounts


ERASED_TIME_ZONE = "UTC"
ERASED_RELEASE_REASON = "customer erased"


@transaction.atomic
def customer_erase(*, customer: Any, requested_by: AbstractBaseUser | None,
                   reason: str = "") -> CustomerErasure:
    """Irreversibly anonymise a customer's personal and behavioural data (right to erasure).

    Under the customer's row lock, everything `customer_erasure_scope` names is changed, and
    counted by the same function the erase page shows:
    - the customer: name, email, phone, traits and the behaviour profile overwritten (never
      hidden), the time zone reset to UTC, the CRM id replaced by a random token stored nowhere
      else, so it cannot be mapped back (the suppression list only ever held a keyed hash);
    - decisions: the CRM's free-form context and the feature snapshot cleared (the console's own
      shadow record and status times stay); their explanations, made of those features, deleted;
      contacts still to be sent released; reviewer notes on them cleared (verdicts stay);
    - events: message ids replaced, properties stripped to the non-personal ones;
    - API answers stored for retries: their copy of the time zone replaced.
    Decisions (action, propensity, reward, holdout), events and consent history stay, keyed by the
    internal id, so KPIs still count them. An ErasureRecord and an AuditEntry with the counts prove
    it was done, without the personal data.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        raise ValidationError("This customer was already erased.")
    scope = customer_erasure_scope(customer=customer)
    counts = scope.counts()

    decisions = list(scope.decisions.only("id", "context", "features"))
    for decision in decisions:
        decision.context = decision_context_console_part(decision.context)
        decision.features = []
    Decision.objects.bulk_update(decisions, ["context", "features"], batch_size=1000)
    # released before the profile is cleared: a release corrects the profile's contact counts
    decisions_release(decision_ids=list(scope.scheduled_contacts.values_list("id", flat=True)),
                      reason=ERASED_RELEASE_REASON)
    scope.explanations.delete()
    scope.review_notes.update(note="")
    idempotent_answers_forget_time_zone(answers=scope.stored_answers,
                                        decision_ids={d.pk for d in decisions})

    # events are append-only through Event.save(); erasure is the one sanctioned rewrite
    events = list(scope.events.only("id", "type", "properties"))
    for event in events:
        props = event.properties if isinstance(event.properties, dict) else {}
        event.properties = {} if event.type == Event.Type.IDENTIFY else {
            k: v for k, v in props.items() if k in NON_PERSONAL_EVENT_PROPERTIES}
        event.message_id = f"erased-{secrets.token_hex(16)}"
    Event.objects.bulk_update(events, ["properties", "message_id"], batch_size=1000)

    customer.external_id = f"erased-{secrets.token_hex(16)}"
    customer.email = ""
    customer.phone = ""
    customer.name = ""
    customer.traits = {}
    customer.time_zone = ERASED_TIME_ZONE
    customer.profile_state = {}
    customer.profile_updated_at = None
    customer.erased_at = timezone.now()
    customer.save()

    record = ErasureRecord.objects.create(customer_id_erased=customer.pk, requested_by=requested_by,
                                          reason=reason[:200])
    audit_record(actor=requested_by, verb="customer.erased", target=customer,
                 details={"erasure_record": record.pk, **counts.as_dict()})
    return CustomerErasure(record, counts)
