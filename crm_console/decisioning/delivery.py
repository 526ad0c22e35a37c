"""What customers' events and consent changes mean for decisions, applied.

`customers.services` stores events, profiles and consent and says, as `DeliveryReceipts`, which
decisions were delivered or failed, which consents were withdrawn and whose outcomes need pricing;
it never imports decisioning's services (decisioning builds on customers). This module is the
entry point that stores and applies in one transaction, so a batch and its effects on decisions
are all or nothing, as when ingestion applied them itself.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db import transaction

from crm_console.customers.models import Consent, Customer
from crm_console.customers.services import (
    DeliveryReceipts, IncomingEvent, IngestResult, consent_change, consent_withdrawals,
    events_ingest,
)
from crm_console.decisioning.attribution import outcomes_pricing_queue
from crm_console.decisioning.services import (
    decisions_mark_delivered, decisions_release, decisions_release_scheduled,
)


@transaction.atomic
def events_record(*, events: list[IncomingEvent], source: str = "api") -> IngestResult:
    """Store a batch of events (`events_ingest`) and apply its receipts, in one transaction; the
    result counts the decisions released and marked delivered."""
    result = events_ingest(events=events, source=source)
    released, marked = delivery_receipts_apply(result.receipts)
    return dataclasses.replace(result, released_decisions=released, delivered_decisions=marked)


def delivery_receipts_apply(receipts: DeliveryReceipts) -> tuple[int, int]:
    """Apply what a batch said about decisions; returns (released, marked delivered).

    Call inside the transaction that stored the batch: pricing is queued on its commit.
    """
    released = marked = 0
    if receipts.delivered:  # a receipt is the last word: a failure reported earlier is overruled
        marked = decisions_mark_delivered(delivered_at=receipts.delivered)
    if receipts.failed:
        released = decisions_release(decision_ids=list(receipts.failed), reason="delivery failed")
    if receipts.withdrawals:  # a message scheduled before an unsubscribe must not go out after it
        released += decisions_release_scheduled(withdrawals=list(receipts.withdrawals))
    if receipts.outcome_customers:
        customer_ids = list(receipts.outcome_customers)
        # robust: the events are stored whatever pricing does; the schedule prices what this missed
        transaction.on_commit(lambda: outcomes_pricing_queue(customer_ids=customer_ids),
                              robust=True)
    return released, marked


@transaction.atomic
def consent_record(*, customer: Customer, channel: str, granted: bool, source: str,
                   recorded_at: datetime | None = None) -> Consent:
    """Record one consent change (`consent_change`) and stop the messages still scheduled on the
    channels a withdrawal closes, in one transaction: use it, not `consent_change`, to withdraw."""
    consent = consent_change(customer=customer, channel=channel, granted=granted, source=source,
                             recorded_at=recorded_at)
    delivery_receipts_apply(DeliveryReceipts(withdrawals=tuple(consent_withdrawals([consent]))))
    return consent
