"""Reads of customers and their consent."""

from __future__ import annotations

from django.db.models import QuerySet

from crm_console.customers.models import Consent, Customer


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
