"""The suppression list holds a keyed hash of each CRM id, never the id itself."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm_console.campaigns.models import SuppressionEntry
from crm_console.campaigns.services import suppression_add
from crm_console.campaigns.suppression import suppression_hash
from tests.factories import ContactPolicyFactory

BEFORE_HASHING = [("campaigns", "0004_offers_and_send_windows_as_records")]


@pytest.mark.django_db
def test_the_list_keeps_an_hmac_of_the_crm_id_keyed_by_the_settings_secret(settings):
    suppression_add(contact_policy=ContactPolicyFactory(), external_ids=["crm-4711"])
    expected = hmac.new(settings.SUPPRESSION_HASH_KEY.encode(), b"crm-4711",
                        hashlib.sha256).hexdigest()
    assert SuppressionEntry.objects.get().external_id_hash == expected


@pytest.mark.django_db
def test_no_suppression_row_holds_the_raw_crm_id():
    suppression_add(contact_policy=ContactPolicyFactory(), external_ids=["crm-4711"],
                    reason="complaint")
    assert "4711" not in json.dumps(list(SuppressionEntry.objects.values()), default=str)


def test_another_secret_gives_another_hash(settings):
    first = suppression_hash("crm-4711")
    settings.SUPPRESSION_HASH_KEY = "another secret"
    assert suppression_hash("crm-4711") != first


@pytest.mark.django_db
def test_an_id_already_on_the_list_is_not_added_twice():
    policy = ContactPolicyFactory()
    suppression_add(contact_policy=policy, external_ids=["crm-4711"])
    assert suppression_add(contact_policy=policy, external_ids=[" crm-4711 ", "crm-4712"]) == 1
    assert policy.suppressions.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_migration_hashes_existing_rows_and_drops_the_raw_ids():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_HASHING)
    old = executor.loader.project_state(BEFORE_HASHING).apps
    policy = old.get_model("campaigns", "ContactPolicy").objects.create(name="Standard")
    old.get_model("campaigns", "SuppressionEntry").objects.create(
        contact_policy=policy, external_id="crm-4711", reason="complaint")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    entry = SuppressionEntry.objects.get()
    assert (entry.external_id_hash, entry.reason) == (suppression_hash("crm-4711"), "complaint")
    columns = [c.name for c in connection.introspection.get_table_description(
        connection.cursor(), SuppressionEntry._meta.db_table)]
    assert "external_id" not in columns
