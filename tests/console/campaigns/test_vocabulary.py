"""The workspace's own offers and send windows: records a marketer adds, edits, switches off, and
that every campaign's catalogue, the agents and the API use."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from crm_console.campaigns import services
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.campaigns.agents_bridge import catalogue_for_campaign
from crm_console.campaigns.models import Offer, SendWindow
from crm_console.compliance.models import AuditEntry
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, policy_add, token_post,
)
from tests.factories import ContactPolicyFactory

pytestmark = pytest.mark.django_db


def _free_gift(**overrides):
    return services.offer_create(**{"key": "free_gift", "label": "Free gift", "kind": "gift",
                                    "redemption_cost": Decimal("4.00"), **overrides})


def _lunch(**overrides):
    return services.send_window_create(**{"key": "lunch", "label": "Lunch 12:30-13:30",
                                          "start": time(12, 30), "end": time(13, 30), **overrides})


# ----------------------------------------------------------------------------- services
def test_a_new_workspace_starts_with_the_demo_offers_and_windows():
    assert list(Offer.objects.values_list("key", flat=True)) == [
        "content", "discount_10", "discount_20", "free_shipping"]
    assert list(SendWindow.objects.values_list("key", flat=True)) == [
        "morning", "midday", "evening"]


def test_a_custom_offer_and_window_reach_the_agents_catalogue():
    _free_gift()
    _lunch(days=[0, 1, 2, 3, 4])
    campaign = services.campaign_create(name="Gifts", contact_policy=ContactPolicyFactory())
    services.catalogue_generate(campaign=campaign, channels=["email"], offers=["free_gift"],
                                send_windows=["lunch"])
    catalogue = catalogue_for_campaign(campaign=campaign).catalogue
    assert catalogue.labels[1] == "Email - Free gift - Lunch 12:30-13:30"
    assert catalogue.offer("free_gift").kind == "gift"
    assert catalogue.offer("free_gift").redemption_cost == 4.0
    window = catalogue.send_window("lunch")
    assert (window.start_hour, window.end_hour, window.days) == (12.5, 13.5, (0, 1, 2, 3, 4))


def test_saving_an_offer_is_audited_with_what_changed():
    offer = _free_gift()
    services.offer_update(offer=offer, label="Free tote bag", redemption_cost=Decimal("3.50"))
    entry = AuditEntry.objects.filter(verb="offer.updated").get()
    assert entry.details == {"label": "Free gift -> Free tote bag",
                             "redemption_cost": "4.00 -> 3.50"}
    assert AuditEntry.objects.filter(verb="offer.created", target_id=str(offer.pk)).exists()


def test_a_renamed_offer_is_read_afresh_by_labels():
    offer = _free_gift()
    assert vocabulary().offer_label("free_gift") == "Free gift"
    services.offer_update(offer=offer, label="Free tote bag")
    assert vocabulary().offer_label("free_gift") == "Free tote bag"


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"kind": "percent_off", "value": Decimal("120")}, "value", "between 0 and 100"),
    ({"kind": "percent_off", "value": Decimal("0")}, "value", "between 0 and 100"),
    ({"kind": "amount_off", "value": Decimal("0")}, "value", "above 0"),
    ({"kind": "points_multiplier", "value": Decimal("1")}, "value", "above 1"),
    ({"kind": "gift", "value": Decimal("5")}, "value", "redemption cost"),
    ({"value": Decimal("-5"), "kind": "amount_off"}, "value", "greater than or equal to 0"),
    ({"key": "Free Gift"}, "key", "lowercase"),
    ({"key": "content"}, "key", "already exists"),
    ({"validity_days": 0}, "validity_days", "greater than or equal to 1"),
    ({"colour": "red"}, "colour", "Not a field"),
])
def test_a_bad_offer_is_refused_field_by_field_and_nothing_is_written(fields, field, message):
    before = Offer.objects.count()
    with pytest.raises(ValidationError) as refused:
        _free_gift(**fields)
    assert message in " ".join(refused.value.message_dict[field])
    assert Offer.objects.count() == before
    assert not AuditEntry.objects.filter(verb="offer.created").exists()


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"start": time(14, 0), "end": time(13, 0)}, "end", "end after it starts"),
    ({"start": time(13, 0), "end": time(13, 0)}, "end", "end after it starts"),
    ({"days": []}, "days", "at least one weekday"),
    ({"days": [0, 7]}, "days", "at least one weekday"),
    ({"days": [1, 1]}, "days", "Each weekday once"),
    ({"key": "morning"}, "key", "already exists"),
])
def test_a_bad_send_window_is_refused_field_by_field(fields, field, message):
    before = SendWindow.objects.count()
    with pytest.raises(ValidationError) as refused:
        _lunch(**fields)
    assert message in " ".join(refused.value.message_dict[field])
    assert SendWindow.objects.count() == before


def test_an_offer_in_use_cannot_be_deleted_but_can_be_switched_off():
    campaign = live_campaign(name="Spring")
    offer = Offer.objects.get(key="discount_10")
    with pytest.raises(ValidationError, match="used by actions of Spring"):
        services.offer_delete(offer=offer)
    assert Offer.objects.filter(key="discount_10").exists()
    services.offer_update(offer=offer, enabled=False)
    # its actions keep working; a new action may not use it
    assert catalogue_for_campaign(campaign=campaign).catalogue.offer("discount_10")
    with pytest.raises(ValidationError, match="switched off"):
        services.action_create(campaign=campaign, channel="push", offer="discount_10",
                               send_window="morning")


def test_a_window_in_use_cannot_be_deleted_and_its_key_cannot_change():
    live_campaign(name="Spring")
    window = SendWindow.objects.get(key="morning")
    with pytest.raises(ValidationError, match="used by actions"):
        services.send_window_delete(send_window=window)
    with pytest.raises(ValidationError) as refused:
        services.send_window_update(send_window=window, key="early")
    assert "cannot change" in refused.value.message_dict["key"][0]


def test_an_unused_offer_can_be_deleted():
    offer = _free_gift()
    services.offer_delete(offer=offer)
    assert not Offer.objects.filter(key="free_gift").exists()
    assert AuditEntry.objects.filter(verb="offer.deleted").exists()


def test_an_action_naming_a_missing_offer_or_window_is_refused():
    campaign = services.campaign_create(name="Typos", contact_policy=ContactPolicyFactory())
    with pytest.raises(ValidationError) as refused:
        services.action_create(campaign=campaign, channel="email", offer="bogof",
                               send_window="midnight")
    assert "no offer 'bogof'" in refused.value.message_dict["offer"][0]
    assert "no send window 'midnight'" in refused.value.message_dict["send_window"][0]


# ----------------------------------------------------------------------------- the decision API
def test_a_decision_for_a_custom_offer_and_window_names_them_and_sends_at_the_window(client):
    _free_gift()
    _lunch()
    campaign = services.campaign_create(name="Lunch gifts", contact_policy=ContactPolicyFactory(),
                                        time_zone="UTC")
    services.catalogue_generate(campaign=campaign, channels=["email"], offers=["free_gift"],
                                send_windows=["lunch"])
    campaign = services.campaign_update(campaign=campaign, status="live")
    policy_add(campaign)  # a random policy over "no contact" and the one gift message
    creds = integration(scopes=["decisions:write"])
    contacts = []
    for i in range(40):  # fair coins of a seedless policy: ask until three customers are contacted
        customer_with_consent(f"c{i}")
        body = token_post(client, "/api/v1/decisions", {"customer": f"c{i}",
                                                        "campaign": campaign.pk}, creds).json()
        if body["action"]["contact"]:
            contacts.append(body)
        if len(contacts) == 3:
            break
    assert contacts  # 40 fair coins all tails: once in 10^12 runs (8 failed once in 256)
    for body in contacts:
        assert body["action"]["offer"] == "free_gift"
        assert body["action"]["offer_label"] == "Free gift"
        assert body["action"]["channel_label"] == "Email"
        assert body["action"]["send_window"]["label"] == "Lunch 12:30-13:30"
        assert body["action"]["send_window"]["days"] == [0, 1, 2, 3, 4, 5, 6]
        assert body["action"]["label"] == "Email - Free gift - Lunch 12:30-13:30"
        assert body["action"]["send_window"]["start_hour"] == 12.5
        assert body["action"]["send_window"]["end_hour"] == 13.5
        send_at = datetime.fromisoformat(body["send_at"].replace("Z", "+00:00"))
        in_window = time(12, 30) <= send_at.time() < time(13, 30)
        assert send_at.time() == time(12, 30) or in_window  # at the start, or now while open


# ----------------------------------------------------------------------------- pages
def test_marketer_adds_a_send_window_from_the_console(marketer_client):
    response = marketer_client.post("/campaigns/send-windows/new/", {
        "key": "lunch", "label": "Lunch 12:30-13:30", "start": "12:30", "end": "13:30",
        "days": ["0", "1", "2", "3", "4"], "enabled": "on"})
    assert response.status_code == 302
    window = SendWindow.objects.get(key="lunch")
    assert window.days == [0, 1, 2, 3, 4] and window.start == time(12, 30)
    page = marketer_client.get("/campaigns/vocabulary/")
    assert b"Lunch 12:30-13:30" in page.content


def test_a_bad_offer_in_the_console_shows_the_field_error_and_saves_nothing(marketer_client):
    response = marketer_client.post("/campaigns/offers/new/", {
        "key": "big", "label": "Big", "kind": "percent_off", "value": "150",
        "redemption_cost": "0", "validity_days": "7"})
    assert response.status_code == 200
    assert "between 0 and 100" in " ".join(response.context["form"].errors["value"])
    assert b"id_value_errors" in response.content
    assert not Offer.objects.filter(key="big").exists()


def test_a_reviewer_reads_offers_but_cannot_add_one(reviewer_client):
    assert reviewer_client.get("/campaigns/vocabulary/").status_code == 200
    response = reviewer_client.post("/campaigns/offers/new/", {
        "key": "x", "label": "X", "kind": "none", "value": "0", "redemption_cost": "0",
        "validity_days": "7"})
    assert response.status_code == 403
    assert not Offer.objects.filter(key="x").exists()


def test_deleting_an_offer_in_use_says_why_and_keeps_it(marketer_client):
    live_campaign(name="Spring")
    offer = Offer.objects.get(key="content")
    response = marketer_client.post(f"/campaigns/offers/{offer.pk}/delete/", follow=True)
    assert b"switch it off instead" in response.content
    assert Offer.objects.filter(pk=offer.pk).exists()


# ----------------------------------------------------------------------------- audit
def test_each_catalogue_and_policy_change_is_audited_with_before_and_after(marketer):
    campaign = live_campaign(name="Audited")
    action = campaign.actions.get(channel="sms", offer="content", send_window="morning")
    services.action_update(action=action, updated_by=marketer, cost=Decimal("0.45"))
    entry = AuditEntry.objects.get(verb="action.updated")
    assert entry.details == {"cost": "0.40 -> 0.45"} and entry.actor == marketer
    services.reward_weights_update(campaign=campaign, updated_by=marketer, churn=-75.0)
    assert AuditEntry.objects.get(verb="reward_weights.updated").details == {
        "churn": "-50.0 -> -75.0"}
    policy = campaign.contact_policy
    services.contact_policy_save(contact_policy=policy, updated_by=marketer, min_gap_hours=12,
                                 channel_caps=[{"channel": "email", "max_contacts": 3,
                                                "window_days": 7}])
    details = AuditEntry.objects.filter(verb="contact_policy.saved").latest("id").details
    assert details["min_gap_hours"] == "0.0 -> 12"
    assert details["channel_caps"] == "email 2 per 7 d; sms 1 per 7 d -> email 3 per 7 d"


def test_a_save_that_changes_nothing_writes_no_audit_entry():
    campaign = live_campaign(name="Quiet")
    before = AuditEntry.objects.count()
    services.campaign_update(campaign=campaign, holdout_share=campaign.holdout_share)
    assert AuditEntry.objects.count() == before


def test_bulk_generate_writes_one_audit_entry():
    campaign = services.campaign_create(name="Bulk", contact_policy=ContactPolicyFactory())
    created = services.catalogue_generate(campaign=campaign, channels=["email", "sms"],
                                          offers=["content"], send_windows=["morning", "evening"])
    entry = AuditEntry.objects.get(verb="catalogue.generated")
    assert len(created) == 4 and entry.details["actions"] == 4
