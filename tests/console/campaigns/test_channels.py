"""The workspace's own channels: records a marketer adds (WhatsApp), re-prices, switches off; the
per-channel arrays (profiles, consent, features) grow with them and older policies keep serving."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm_console.campaigns import services
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.campaigns.agents_bridge import catalogue_for_campaign, contact_rules_for
from crm_console.campaigns.models import Channel
from crm_console.compliance.models import AuditEntry
from crm_console.customers.models import Consent, Customer
from crm_console.customers.services import (
    consent_change, profile_states_empty, profile_states_load, profile_states_store,
)
from crm_console.decisioning.caps import contact_records_read
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, policy_add, signed_post, token_post, track,
)
from tests.factories import ContactPolicyFactory

pytestmark = pytest.mark.django_db


def _whatsapp(**overrides) -> Channel:
    return services.channel_create(**{"key": "whatsapp", "label": "WhatsApp",
                                      "cost": Decimal("0.03"), **overrides})


# ----------------------------------------------------------------------------- services
def test_a_new_workspace_starts_with_the_four_demo_channels_in_array_order():
    assert list(Channel.objects.values_list("key", flat=True)) == [
        "email", "sms", "push", "call_centre"]
    assert vocabulary().channel_index == {"email": 0, "sms": 1, "push": 2,
                                                    "call_centre": 3}


def test_a_new_channel_is_appended_to_the_feature_layout_and_audited():
    before = vocabulary().feature_layout
    _whatsapp()
    layout = vocabulary().feature_layout
    assert layout.channels == (*before.channels, "whatsapp")
    assert "whatsapp_consent" in layout.names
    assert "WhatsApp" in layout.labels["whatsapp_open_rate"]
    assert AuditEntry.objects.filter(verb="channel.created").count() == 1


def test_a_campaign_on_a_new_channel_prices_its_actions_at_the_channel_cost():
    _whatsapp()
    campaign = services.campaign_create(name="Chat", contact_policy=ContactPolicyFactory())
    created = services.catalogue_generate(campaign=campaign, channels=["whatsapp"],
                                          offers=["content"], send_windows=["morning"])
    assert [a.cost for a in created] == [Decimal("0.03")]
    catalogue = catalogue_for_campaign(campaign=campaign).catalogue
    assert catalogue.labels[1] == "WhatsApp - Content (no discount) - Morning 08:00-11:00"
    assert catalogue.channel("whatsapp").cost == 0.03


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"key": "email"}, "key", "already exists"),
    ({"key": "Whats App"}, "key", "lowercase"),
    ({"cost": Decimal("-1")}, "cost", "greater than or equal to 0"),
    ({"consent_key": "Phone!"}, "consent_key", "lowercase"),
])
def test_a_bad_channel_is_refused_field_by_field_and_nothing_is_written(fields, field, message):
    count = Channel.objects.count()
    with pytest.raises(ValidationError) as refused:
        _whatsapp(**fields)
    assert message in " ".join(refused.value.message_dict[field])
    assert Channel.objects.count() == count


def test_a_channel_in_use_cannot_be_deleted_but_can_be_switched_off():
    channel = _whatsapp()
    campaign = services.campaign_create(name="Chat", contact_policy=ContactPolicyFactory())
    services.catalogue_generate(campaign=campaign, channels=["whatsapp"], offers=["content"],
                                send_windows=["morning"])
    with pytest.raises(ValidationError, match="used by actions of Chat"):
        services.channel_delete(channel=channel)
    services.channel_update(channel=channel, enabled=False)
    assert not Channel.objects.get(key="whatsapp").enabled


def test_a_switched_off_channel_takes_no_new_actions():
    services.channel_update(channel=Channel.objects.get(key="push"), enabled=False)
    campaign = services.campaign_create(name="Push", contact_policy=ContactPolicyFactory())
    with pytest.raises(ValidationError) as refused:
        services.action_create(campaign=campaign, channel="push", offer="content",
                               send_window="morning")
    assert "switched off" in " ".join(refused.value.message_dict["channel"])


def test_only_the_newest_unused_channel_can_be_deleted():
    whatsapp = _whatsapp()
    services.channel_create(key="in_app", label="In-app", quiet_hours_apply=False)
    with pytest.raises(ValidationError, match="Only the newest channel"):
        services.channel_delete(channel=whatsapp)
    services.channel_delete(channel=Channel.objects.get(key="in_app"))
    services.channel_delete(channel=whatsapp)
    assert vocabulary().channel_keys == ("email", "sms", "push", "call_centre")


def test_a_channel_whose_consent_was_recorded_cannot_be_deleted():
    whatsapp = _whatsapp()
    consent_change(customer=Customer.objects.create(external_id="c1"), channel="whatsapp",
                   granted=True, source="test")
    with pytest.raises(ValidationError, match="consent records"):
        services.channel_delete(channel=whatsapp)


def test_a_capped_channels_key_cannot_change():
    whatsapp = _whatsapp()
    services.contact_policy_save(name="Chat caps", channel_caps=[
        {"channel": "whatsapp", "max_contacts": 2, "window_days": 7}])
    with pytest.raises(ValidationError) as refused:
        services.channel_update(channel=whatsapp, key="wa")
    assert "in use" in " ".join(refused.value.message_dict["key"])


# ----------------------------------------------------------------------------- rules and consent
def test_channels_exempt_from_quiet_hours_and_the_overall_cap_reach_the_contact_rules():
    services.channel_create(key="in_app", label="In-app", quiet_hours_apply=False,
                            counts_toward_overall_cap=False)
    rules = contact_rules_for(contact_policy=ContactPolicyFactory())
    assert rules.quiet_hours_exempt == frozenset({"in_app"})
    assert rules.overall_cap_exempt == frozenset({"in_app"})
    assert "in_app" in rules.consent_required


def test_a_channels_own_minimum_gap_in_the_contact_policy_reaches_the_rules():
    _whatsapp()
    policy = services.contact_policy_save(name="Chat caps", channel_caps=[
        {"channel": "whatsapp", "max_contacts": 2, "window_days": 7,
         "min_gap_hours": Decimal("72")}])
    rules = contact_rules_for(contact_policy=policy)
    assert rules.channel_caps["whatsapp"] == (2, 7)
    assert rules.channel_min_gap_hours == {"whatsapp": 72.0}


def test_a_negative_channel_gap_is_refused_and_the_policy_keeps_its_caps():
    policy = services.contact_policy_save(name="Caps", channel_caps=[
        {"channel": "sms", "max_contacts": 1, "window_days": 7}])
    with pytest.raises(ValidationError):
        services.contact_policy_save(contact_policy=policy, channel_caps=[
            {"channel": "sms", "max_contacts": 1, "window_days": 7, "min_gap_hours": Decimal("-1")}])
    assert list(policy.channel_caps.values_list("channel", "min_gap_hours")) == [("sms", 0)]


def test_a_consent_shared_by_two_channels_opens_both():
    _whatsapp(consent_key="phone")
    services.channel_update(channel=Channel.objects.get(key="sms"), consent_key="phone")
    customer = Customer.objects.create(external_id="c1")
    consent_change(customer=customer, channel="phone", granted=True, source="test")
    records = contact_records_read(customer_ids=[customer.pk], external_ids=["c1"],
                                   contact_policy_id=None, since=timezone.now() - timedelta(days=1))
    index = vocabulary().channel_index
    assert records.consent[0, index["sms"]] and records.consent[0, index["whatsapp"]]
    assert not records.consent[0, index["email"]]


def test_a_consent_given_for_a_channel_is_recorded_under_its_consent_key():
    _whatsapp(consent_key="phone")
    customer = Customer.objects.create(external_id="c1")
    consent_change(customer=customer, channel="whatsapp", granted=True, source="test")
    assert Consent.objects.get().channel == "phone"


def test_a_consent_for_an_unknown_channel_is_refused():
    with pytest.raises(ValidationError) as refused:
        consent_change(customer=Customer.objects.create(external_id="c1"), channel="fax",
                       granted=True, source="test")
    assert "fax" in " ".join(refused.value.message_dict["channel"])
    assert not Consent.objects.exists()


def test_a_profile_stored_before_a_channel_was_added_loads_with_the_new_channel_empty():
    customer = Customer.objects.create(external_id="c1")
    state = profile_states_empty(1)
    state.consent[0, 0] = 1.0
    profile_states_store([customer], state, np.array([timezone.now().timestamp()]))
    customer.save()
    stored_width = len(customer.profile_state["consent"][0])
    _whatsapp()
    profiles, _ = profile_states_load([customer], at=timezone.now())
    assert profiles.n_channels == stored_width + 1
    assert profiles.consent[0, 0] == 1.0 and profiles.consent[0, -1] == 0.0
    assert np.isinf(profiles.days_since_contact[0, -1])


# ----------------------------------------------------------------------------- serving
def test_a_policy_trained_before_a_channel_was_added_still_decides_and_logs_todays_layout(client):
    campaign = live_campaign(algorithm="rule_based")
    creds = integration(scopes=["decisions:write"])
    customer_with_consent("c1")
    _whatsapp()
    response = token_post(client, "/api/v1/decisions", {"customer": "c1",
                                                         "campaign": campaign.pk}, creds)
    assert response.status_code == 201, response.content
    decision = campaign.decisions.get()
    assert len(decision.features) == vocabulary().feature_layout.n_features


def test_a_decision_on_a_new_channel_names_it_in_the_answer(client):
    _whatsapp()
    campaign = services.campaign_create(name="Chat", contact_policy=ContactPolicyFactory(),
                                        time_zone="UTC")
    services.catalogue_generate(campaign=campaign, channels=["whatsapp"], offers=["content"],
                                send_windows=["morning", "midday", "evening"])
    services.campaign_update(campaign=campaign, status="live")
    policy_add(campaign)  # a random policy over "no contact" and the three WhatsApp messages
    creds = integration(scopes=["decisions:write"])
    contacts = []
    for i in range(8):
        customer_with_consent(f"c{i}", channels=("whatsapp",))
        body = token_post(client, "/api/v1/decisions", {"customer": f"c{i}",
                                                        "campaign": campaign.pk}, creds).json()
        if body["action"]["contact"]:
            contacts.append(body)
    assert contacts  # all eight choosing "no contact": once in 65,536 runs
    assert {b["action"]["channel"] for b in contacts} == {"whatsapp"}
    assert {b["action"]["channel_label"] for b in contacts} == {"WhatsApp"}


def test_an_event_may_name_a_new_channel_and_an_unknown_one_is_refused(client):
    _whatsapp()
    creds = integration(scopes=["events:write"])
    ok = signed_post(client, "/api/v1/events", {"batch": [track(
        "c1", "m1", "Consent Changed", {"channel": "whatsapp", "granted": True})]}, creds)
    assert ok.status_code in (200, 202), ok.content
    assert Consent.objects.get().channel == "whatsapp"
    bad = signed_post(client, "/api/v1/events", {"batch": [track(
        "c1", "m2", "Message Opened", {"channel": "fax"})]}, creds)
    assert bad.status_code == 400
    assert "fax" in bad.content.decode()


# ----------------------------------------------------------------------------- pages
def test_marketer_adds_a_channel_from_the_console(marketer_client):
    response = marketer_client.post("/campaigns/channels/new/", {
        "key": "whatsapp", "label": "WhatsApp", "cost": "0.03", "consent_key": "whatsapp",
        "quiet_hours_apply": "on", "counts_toward_overall_cap": "on", "enabled": "on"})
    assert response.status_code == 302
    assert Channel.objects.get(key="whatsapp").cost == Decimal("0.03")
    page = marketer_client.get("/campaigns/vocabulary/")
    assert b"WhatsApp" in page.content


def test_a_bad_channel_in_the_console_shows_the_field_error_and_saves_nothing(marketer_client):
    response = marketer_client.post("/campaigns/channels/new/", {
        "key": "sms", "label": "SMS again", "cost": "0.10"})
    assert response.status_code == 200
    assert response.context["form"].errors["key"]
    assert Channel.objects.filter(key="sms").count() == 1


def test_a_reviewer_reads_channels_but_cannot_add_one(reviewer_client):
    assert reviewer_client.get("/campaigns/vocabulary/").status_code == 200
    response = reviewer_client.post("/campaigns/channels/new/", {
        "key": "whatsapp", "label": "WhatsApp", "cost": "0.03"})
    assert response.status_code == 403
    assert not Channel.objects.filter(key="whatsapp").exists()
