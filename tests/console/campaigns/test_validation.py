"""Every invariant of campaigns, catalogues, reward weights and contact policies, with a bad input."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from crm_console.campaigns import services
from crm_console.campaigns.models import Action, Campaign, ChannelCap, ContactPolicy, RewardWeights
from tests.factories import (
    ActionFactory, CampaignFactory, ChannelCapFactory, ContactPolicyFactory,
)

pytestmark = pytest.mark.django_db


def field_errors(excinfo) -> dict:
    return excinfo.value.message_dict


def test_negative_channel_cap_is_refused_with_field_message():
    cap = ChannelCap(contact_policy=ContactPolicyFactory(), channel="sms", max_contacts=-1, window_days=7)
    with pytest.raises(ValidationError) as excinfo:
        cap.full_clean()
    assert "max_contacts" in field_errors(excinfo)


def test_zero_day_cap_window_is_refused():
    cap = ChannelCap(contact_policy=ContactPolicyFactory(), channel="sms", max_contacts=1, window_days=0)
    with pytest.raises(ValidationError) as excinfo:
        cap.full_clean()
    assert "window_days" in field_errors(excinfo)


def test_negative_overall_cap_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        ContactPolicyFactory.build(overall_max_contacts=-3).full_clean()
    assert "overall_max_contacts" in field_errors(excinfo)


def test_negative_minimum_gap_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        ContactPolicyFactory.build(min_gap_hours=Decimal("-1")).full_clean()
    assert "min_gap_hours" in field_errors(excinfo)


def test_minimum_gap_of_zero_is_allowed():
    ContactPolicyFactory.build(min_gap_hours=Decimal("0")).full_clean()


def test_quiet_hours_that_start_and_end_together_are_refused():
    with pytest.raises(ValidationError) as excinfo:
        ContactPolicyFactory.build(quiet_hours_start=21, quiet_hours_end=21).full_clean()
    assert "quiet_hours_end" in field_errors(excinfo)


def test_quiet_hours_with_only_a_start_are_refused():
    with pytest.raises(ValidationError) as excinfo:
        ContactPolicyFactory.build(quiet_hours_start=21, quiet_hours_end=None).full_clean()
    assert "quiet_hours_end" in field_errors(excinfo)


def test_quiet_hour_outside_the_day_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        ContactPolicyFactory.build(quiet_hours_start=24, quiet_hours_end=8).full_clean()
    assert "quiet_hours_start" in field_errors(excinfo)


@pytest.mark.parametrize(("hour", "quiet"), [(21, True), (23, True), (0, True), (7, True), (8, False),
                                             (12, False), (20, False)])
def test_quiet_hours_wrap_midnight(hour, quiet):
    policy = ContactPolicyFactory.build(quiet_hours_start=21, quiet_hours_end=8)
    assert policy.is_quiet_hour(hour) is quiet


@pytest.mark.parametrize(("hour", "quiet"), [(12, True), (13, True), (14, False), (11, False)])
def test_quiet_hours_within_one_day(hour, quiet):
    policy = ContactPolicyFactory.build(quiet_hours_start=12, quiet_hours_end=14)
    assert policy.is_quiet_hour(hour) is quiet


def test_database_refuses_quiet_hours_that_start_and_end_together():
    policy = ContactPolicyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactPolicy.objects.filter(pk=policy.pk).update(quiet_hours_start=5, quiet_hours_end=5)


@pytest.mark.parametrize("share", [Decimal("0.51"), Decimal("-0.01"), Decimal("1")])
def test_holdout_share_outside_zero_to_half_is_refused(share):
    with pytest.raises(ValidationError) as excinfo:
        CampaignFactory.build(holdout_share=share, contact_policy=None).full_clean()
    assert "holdout_share" in field_errors(excinfo)


@pytest.mark.parametrize("points", [Decimal("-0.5"), Decimal("100.1")])
def test_a_retention_guardrail_outside_0_to_100_points_is_refused(points):
    with pytest.raises(ValidationError) as excinfo:
        CampaignFactory.build(retention_guardrail_points=points, contact_policy=None).full_clean()
    assert "retention_guardrail_points" in field_errors(excinfo)


def test_database_refuses_a_negative_retention_guardrail():
    campaign = CampaignFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(retention_guardrail_points=Decimal("-1"))


def test_database_refuses_holdout_share_above_half():
    campaign = CampaignFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(holdout_share=Decimal("0.9"))


@pytest.mark.parametrize("weight", [math.nan, math.inf, -math.inf])
def test_non_finite_reward_weight_is_refused(weight):
    weights = RewardWeights(campaign=CampaignFactory(), revenue=weight)
    with pytest.raises(ValidationError) as excinfo:
        weights.full_clean()
    assert "revenue" in field_errors(excinfo)


def test_reward_weights_update_with_nan_changes_nothing():
    campaign = services.campaign_create(name="Weights")
    with pytest.raises(ValidationError):
        services.reward_weights_update(campaign=campaign, revenue=1.5, churn=math.nan)
    campaign.reward_weights.refresh_from_db()
    assert campaign.reward_weights.revenue == 1.0


def test_campaign_without_contact_policy_cannot_go_live():
    campaign = services.campaign_create(name="No policy")
    ActionFactory(campaign=campaign)
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)
    assert "contact_policy" in field_errors(excinfo)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_campaign_without_enabled_action_cannot_go_live():
    campaign = services.campaign_create(name="No actions", contact_policy=ContactPolicyFactory())
    ActionFactory(campaign=campaign, enabled=False)
    with pytest.raises(ValidationError) as excinfo:
        services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)
    assert "status" in field_errors(excinfo)


def test_campaign_with_action_and_policy_goes_live():
    campaign = services.campaign_create(name="Ready", contact_policy=ContactPolicyFactory())
    ActionFactory(campaign=campaign)
    services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.LIVE


def test_duplicate_catalogue_entry_is_refused():
    action = ActionFactory()
    duplicate = Action(campaign=action.campaign, channel=action.channel, offer=action.offer,
                       variant=action.variant, send_window=action.send_window)
    with pytest.raises(ValidationError, match="already has an action"):
        duplicate.full_clean()


def test_same_action_in_another_campaign_is_allowed():
    action = ActionFactory()
    other = Action(campaign=CampaignFactory(), channel=action.channel, offer=action.offer,
                   variant=action.variant, send_window=action.send_window)
    other.full_clean()


def test_action_without_send_window_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        Action(campaign=CampaignFactory(), channel="sms", offer="content", send_window="").full_clean()
    assert "send_window" in field_errors(excinfo)


def test_negative_action_cost_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        ActionFactory.build(campaign=CampaignFactory(), cost=Decimal("-0.01")).full_clean()
    assert "cost" in field_errors(excinfo)


def test_no_contact_cannot_be_disabled():
    campaign = services.campaign_create(name="Built-in")
    no_contact = campaign.actions.get(channel=Action.NO_CONTACT_CHANNEL)
    with pytest.raises(ValidationError) as excinfo:
        services.action_update(action=no_contact, enabled=False)
    assert "enabled" in field_errors(excinfo)


def test_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        CampaignFactory.build(time_zone="Mars/Olympus", contact_policy=None).full_clean()
    assert "time_zone" in field_errors(excinfo)


def test_discount_factor_above_one_is_refused():
    with pytest.raises(ValidationError) as excinfo:
        CampaignFactory.build(discount_factor=1.5, contact_policy=None).full_clean()
    assert "discount_factor" in field_errors(excinfo)


def test_second_cap_for_the_same_channel_is_refused():
    cap = ChannelCapFactory(channel="sms")
    with pytest.raises(ValidationError, match="already has a cap"):
        ChannelCap(contact_policy=cap.contact_policy, channel="sms", max_contacts=1,
                   window_days=7).full_clean()


def test_contact_policy_save_with_bad_cap_writes_nothing():
    with pytest.raises(ValidationError):
        services.contact_policy_save(
            name="Half written", min_gap_hours=Decimal("24"),
            channel_caps=[{"channel": "email", "max_contacts": 2, "window_days": 7},
                          {"channel": "sms", "max_contacts": -1, "window_days": 7}],
        )
    assert not ContactPolicy.objects.filter(name="Half written").exists()
    assert not ChannelCap.objects.exists()


def test_catalogue_generate_adds_every_combination_once():
    campaign = services.campaign_create(name="Generated")
    created = services.catalogue_generate(
        campaign=campaign, channels=["email", "sms"], offers=["content", "discount_10"],
        send_windows=["morning", "evening"],
    )
    again = services.catalogue_generate(
        campaign=campaign, channels=["email", "sms"], offers=["content", "discount_10"],
        send_windows=["morning", "evening"],
    )
    assert len(created) == 8
    assert again == []
    assert campaign.actions.count() == 9  # + no contact


@pytest.mark.parametrize("share", [Decimal("0.51"), Decimal("-0.01")])
def test_exploration_share_outside_zero_to_half_is_refused(share):
    with pytest.raises(ValidationError) as excinfo:
        CampaignFactory.build(exploration_share=share, contact_policy=None).full_clean()
    assert "exploration_share" in field_errors(excinfo)
