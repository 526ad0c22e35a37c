"""Campaign set-up and the suppression list are read-only in the admin: the console's services
validate, write and audit every change to them."""

from __future__ import annotations

import pytest

from crm_console.campaigns.models import Campaign, SuppressionEntry
from crm_console.compliance.models import AuditEntry
from tests.console.admin_helpers import admin_url
from tests.factories import (
    ActionFactory, CampaignFactory, ChannelCapFactory, ContactPolicyFactory,
    RewardWeightsFactory, SuppressionEntryFactory,
)

pytestmark = pytest.mark.django_db

CONSOLE_WRITTEN = {
    "campaign": CampaignFactory, "action": ActionFactory, "contact policy": ContactPolicyFactory,
    "channel cap": ChannelCapFactory, "reward weights": RewardWeightsFactory,
}


def test_admin_cannot_add_to_the_suppression_list(admin_client_role):
    policy = ContactPolicyFactory()
    response = admin_client_role.post(admin_url(SuppressionEntry, "add"), {
        "contact_policy": policy.pk, "external_id_hash": "0" * 64})
    assert response.status_code == 403
    assert not SuppressionEntry.objects.exists()


def test_admin_cannot_change_a_suppression_entry(admin_client_role):
    entry = SuppressionEntryFactory(reason="complaint")
    response = admin_client_role.post(admin_url(entry, "change"), {
        "contact_policy": entry.contact_policy_id, "external_id_hash": entry.external_id_hash,
        "reason": "edited"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.reason == "complaint"


def test_admin_cannot_take_a_customer_off_the_suppression_list(admin_client_role):
    entry = SuppressionEntryFactory()
    assert admin_client_role.post(admin_url(entry, "delete"), {"post": "yes"}).status_code == 403
    assert SuppressionEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.parametrize("kind", CONSOLE_WRITTEN)
def test_admin_cannot_change_what_the_console_writes_through_a_service(admin_client_role, kind):
    obj = CONSOLE_WRITTEN[kind]()
    assert admin_client_role.post(admin_url(obj, "change"), {}).status_code == 403
    assert admin_client_role.get(admin_url(type(obj), "add")).status_code == 403
    assert admin_client_role.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_campaign_made_in_the_admin_is_refused_without_an_unaudited_row(admin_client_role):
    response = admin_client_role.post(admin_url(Campaign, "add"), {"name": "Made in the admin"})
    assert response.status_code == 403
    assert not Campaign.objects.filter(name="Made in the admin").exists()
    assert not AuditEntry.objects.exists()
