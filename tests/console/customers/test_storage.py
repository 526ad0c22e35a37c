"""How the customers and events tables are stored (indexes and options on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import needs_real_stack

pytestmark = pytest.mark.django_db


def _index_definitions(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return [row[0] for row in cursor.fetchall()]


@needs_real_stack
def test_customer_pages_keep_room_for_in_place_profile_updates():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'customers_customer'")
        assert "fillfactor=70" in cursor.fetchone()[0]


@needs_real_stack
def test_decisions_by_campaign_and_customer_use_the_dated_indexes_only():
    definitions = _index_definitions("decisioning_decision")
    # the campaign index carries attributed_at too (the dashboard's per-day fingerprints)
    assert any("(campaign_id, decided_at, attributed_at)" in d for d in definitions)
    assert any("(customer_id, decided_at)" in d for d in definitions)
    assert not any(d.endswith("(campaign_id)") or d.endswith("(customer_id)") for d in definitions)


@needs_real_stack
def test_event_inserts_maintain_no_redundant_index():
    definitions = _index_definitions("customers_event")
    assert any("(customer_id, \"timestamp\")" in d for d in definitions)
    assert any(d.startswith("CREATE UNIQUE INDEX") and d.endswith("(message_id)")
               for d in definitions)  # the idempotency key
    assert not any(d.endswith("(customer_id)") for d in definitions)
    assert not any("varchar_pattern_ops" in d for d in definitions)


def test_a_replayed_message_id_is_refused_by_the_database():
    from django.db import IntegrityError, transaction

    from crm_console.customers.models import Customer, Event

    customer = Customer.objects.create(external_id="c1", time_zone="UTC")
    Event.objects.create(message_id="m-1", customer=customer, type="track", name="Email Opened",
                         timestamp="2026-12-01T10:00:00Z")
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(message_id="m-1", customer=customer, type="track",
                             name="Email Opened", timestamp="2026-12-01T10:00:00Z")
