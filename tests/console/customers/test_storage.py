"""How the customers table is stored on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import needs_real_stack

pytestmark = pytest.mark.django_db


@needs_real_stack
def test_customer_pages_keep_room_for_in_place_profile_updates():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'customers_customer'")
        assert "fillfactor=70" in cursor.fetchone()[0]


@needs_real_stack
def test_decisions_by_campaign_and_customer_use_the_dated_indexes_only():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'decisioning_decision'")
        definitions = [row[0] for row in cursor.fetchall()]
    assert any("(campaign_id, decided_at)" in d for d in definitions)
    assert any("(customer_id, decided_at)" in d for d in definitions)
    assert not any(d.endswith("(campaign_id)") or d.endswith("(customer_id)") for d in definitions)
