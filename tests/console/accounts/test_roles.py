"""Roles: marketers shape campaigns, compliance reviewers own contact policies; everyone reads."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from crm_console.campaigns.models import Campaign, ContactPolicy
from tests.factories import CampaignFactory, ContactPolicyFactory

pytestmark = pytest.mark.django_db


def test_data_migration_created_the_three_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Marketer", "Compliance reviewer", "Admin",
    }


def test_marketer_gets_403_on_contact_policy_edit(marketer_client):
    policy = ContactPolicyFactory()
    response = marketer_client.get(f"/campaigns/contact-policies/{policy.pk}/edit/")
    assert response.status_code == 403


def test_marketer_post_to_contact_policy_changes_nothing(marketer_client):
    policy = ContactPolicyFactory(overall_max_contacts=4)
    response = marketer_client.post(
        f"/campaigns/contact-policies/{policy.pk}/edit/",
        {"name": policy.name, "overall_max_contacts": 99, "overall_window_days": 7,
         "min_gap_hours": "0", "caps-TOTAL_FORMS": 0, "caps-INITIAL_FORMS": 0},
    )
    assert response.status_code == 403
    policy.refresh_from_db()
    assert policy.overall_max_contacts == 4


def test_marketer_gets_403_on_contact_policy_in_admin(marketer_client):
    policy = ContactPolicyFactory()
    response = marketer_client.post(
        f"/admin/campaigns/contactpolicy/{policy.pk}/change/", {"name": "hijacked"}
    )
    assert response.status_code == 403


def test_reviewer_can_edit_contact_policy(reviewer_client):
    policy = ContactPolicyFactory()
    response = reviewer_client.post(
        f"/campaigns/contact-policies/{policy.pk}/edit/",
        {"name": policy.name, "overall_max_contacts": 3, "overall_window_days": 7,
         "min_gap_hours": "24", "quiet_hours_start": 22, "quiet_hours_end": 7,
         "caps-TOTAL_FORMS": 1, "caps-INITIAL_FORMS": 0, "caps-0-channel": "sms",
         "caps-0-max_contacts": 1, "caps-0-window_days": 7, "caps-0-min_gap_hours": 0,
         "caps-0-consent_required": "on"},
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.overall_max_contacts == 3
    assert policy.channel_caps.get().channel == "sms"


def test_bad_cap_value_shows_field_error_and_saves_nothing(reviewer_client):
    policy = ContactPolicyFactory(min_gap_hours=48)
    response = reviewer_client.post(
        f"/campaigns/contact-policies/{policy.pk}/edit/",
        {"name": policy.name, "overall_max_contacts": 3, "overall_window_days": 7,
         "min_gap_hours": "-5", "quiet_hours_start": 22, "quiet_hours_end": 7,
         "caps-TOTAL_FORMS": 1, "caps-INITIAL_FORMS": 0, "caps-0-channel": "sms",
         "caps-0-max_contacts": -1, "caps-0-window_days": 7},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["min_gap_hours"]
    assert response.context["caps"].forms[0].errors["max_contacts"]
    policy.refresh_from_db()
    assert policy.min_gap_hours == 48
    assert not policy.channel_caps.exists()


def test_reviewer_gets_403_on_campaign_edit(reviewer_client):
    campaign = CampaignFactory()
    response = reviewer_client.get(f"/campaigns/{campaign.pk}/edit/")
    assert response.status_code == 403


def test_marketer_can_edit_campaign(marketer_client):
    campaign = CampaignFactory(holdout_share="0.1")
    response = marketer_client.post(f"/campaigns/{campaign.pk}/edit/", {
        "name": campaign.name, "objective": "long_term_value", "status": "draft", "horizon_days": 60,
        "discount_factor": 0.98, "holdout_share": "0.2", "attribution_window_days": 7,
        "control_policy": "rule_based", "decision_mode": "sample", "exploration_share": "0.05",
        "time_zone": "Europe/Paris",
        "contact_policy": campaign.contact_policy_id,
    })
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert str(campaign.holdout_share) == "0.200"


def test_campaign_form_shows_field_error_for_holdout_above_half(marketer_client):
    campaign = CampaignFactory()
    response = marketer_client.post(f"/campaigns/{campaign.pk}/edit/", {
        "name": campaign.name, "objective": "long_term_value", "status": "draft", "horizon_days": 60,
        "discount_factor": 0.98, "holdout_share": "0.7", "attribution_window_days": 7,
        "control_policy": "rule_based", "decision_mode": "sample", "exploration_share": "0.05",
        "time_zone": "Europe/Paris",
    })
    assert response.status_code == 200
    assert "holdout_share" in response.context["form"].errors
    assert b"holdout_share_errors" in response.content


def test_every_role_reads_campaigns(client, marketer, reviewer, admin_user):
    CampaignFactory(name="Visible")
    for user in (marketer, reviewer, admin_user):
        client.force_login(user)
        assert b"Visible" in client.get("/campaigns/").content


def test_api_refuses_campaign_creation_by_reviewer(reviewer_client):
    response = reviewer_client.post("/api/v1/campaigns", {"name": "Nope"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Campaign.objects.filter(name="Nope").exists()


def test_api_creates_campaign_for_marketer(marketer_client):
    response = marketer_client.post(
        "/api/v1/campaigns", {"name": "Spring", "holdout_share": "0.2"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(name="Spring")
    assert campaign.actions.get().is_no_contact


def test_api_refuses_holdout_above_half_with_field_error_and_writes_nothing(marketer_client):
    response = marketer_client.post(
        "/api/v1/campaigns", {"name": "Greedy", "holdout_share": "0.6"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "holdout_share" in response.json()["error"]["fields"]
    assert not Campaign.objects.filter(name="Greedy").exists()


def test_api_refuses_unknown_time_zone_with_field_error(marketer_client):
    response = marketer_client.post(
        "/api/v1/campaigns", {"name": "Tz", "time_zone": "Nowhere/Land"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "time_zone" in response.json()["error"]["fields"]
    assert not ContactPolicy.objects.exists() and not Campaign.objects.filter(name="Tz").exists()


def test_api_refuses_exploration_share_above_half_with_field_error(marketer_client):
    response = marketer_client.post(
        "/api/v1/campaigns", {"name": "Explorer", "exploration_share": "0.8"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "exploration_share" in response.json()["error"]["fields"]
    assert not Campaign.objects.filter(name="Explorer").exists()


def test_api_refuses_a_retention_guardrail_above_100_points_with_field_error(marketer_client):
    response = marketer_client.post(
        "/api/v1/campaigns", {"name": "Guarded", "retention_guardrail_points": "150"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "retention_guardrail_points" in response.json()["error"]["fields"]
    assert not Campaign.objects.filter(name="Guarded").exists()


def test_api_sets_and_returns_a_campaigns_retention_guardrail(marketer_client):
    response = marketer_client.post(
        "/api/v1/campaigns", {"name": "Guarded", "retention_guardrail_points": "1.5"},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["retention_guardrail_points"] == "1.5"
    assert Campaign.objects.get(name="Guarded").retention_tolerance == pytest.approx(0.015)
