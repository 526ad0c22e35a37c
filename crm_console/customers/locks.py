"""The customer row lock that ingestion and the decision loop share.

It lives with customers (not decisioning.caps, which re-exports it) so that customers' writes can
take it without importing decisioning: decisioning builds on customers, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import F

from crm_console.customers.models import Customer


def customers_lock(customer_ids: Sequence[int]) -> None:
    """Hold these customers' row locks until the surrounding transaction ends."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    if not connection.in_atomic_block:
        raise RuntimeError(
            "customers_lock needs a transaction (wrap the caller in transaction.atomic)")
    if connection.features.has_select_for_update:
        list(Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk")
             .values_list("pk", flat=True))
    else:
        Customer.objects.filter(pk__in=ids).update(profile_updated_at=F("profile_updated_at"))
