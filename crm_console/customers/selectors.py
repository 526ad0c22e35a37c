"""Reads of customers and their consent."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from crm_console.campaigns.models import Action
from crm_console.customers.models import Consent, Customer
from crm_console.decisioning.models import Decision


def customer_list(*, search: str = "") -> QuerySet[Customer]:
    customers = Customer.objects.order_by("id")
    if search:
        customers = customers.filter(external_id__icontains=search)
    return customers


def customer_current_consent(*, customer: Customer) -> dict[str, Consent]:
    """Channel -> the latest consent record (the one in force)."""
    current: dict[str, Consent] = {}
    for consent in customer.consents.order_by("channel", "-recorded_at", "-id"):
        current.setdefault(consent.channel, consent)
    return current


def customer_contact_counts(*, customer: Customer, days: int = 30,
                            now: datetime | None = None) -> dict[str, int]:
    """Channel key -> contacts sent (or scheduled) to the customer in the last `days` days, counted
    from the decision log as the caps count them (by send time, released contacts left out).
    The profile's per-channel counters decay, so they are weights, not counts: this is the count."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (Decision.objects.filter(customer=customer, send_at__gte=since,
                                    send_at__lte=now or timezone.now())
            .exclude(status=Decision.Status.RELEASED)
            .exclude(action__channel=Action.NO_CONTACT_CHANNEL)
            .order_by().values("action__channel").annotate(n=Count("id")))
    return {row["action__channel"]: row["n"] for row in rows}
