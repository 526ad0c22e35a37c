"""seed_demo builds an honest demo workspace once; running it again duplicates nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from crm_console.campaigns.models import Action, Campaign
from crm_console.customers.models import Consent, Customer, Event
from crm_console.decisioning.models import Decision, PolicyVersion

pytestmark = pytest.mark.django_db

SMALL = {"seed": 0, "customers": 60, "days": 21, "force": True}  # tests run with DEBUG off


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Campaign, Action, Customer, Consent, Event, Decision, PolicyVersion)}


@pytest.fixture
def seeded(capsys):
    call_command("seed_demo", **SMALL)
    return capsys.readouterr().out


def test_seed_demo_twice_duplicates_nothing(seeded):
    before = counts()
    call_command("seed_demo", **SMALL)
    assert counts() == before


def test_seed_demo_prints_one_login_per_role(seeded):
    for username in ("marketer", "reviewer", "admin"):
        assert f"{username:<10} password:" in seeded
    users = get_user_model().objects.filter(username__in=["marketer", "reviewer", "admin"])
    assert {u.groups.get().name for u in users} == {"Marketer", "Compliance reviewer", "Admin"}


def test_demo_catalogue_is_four_channels_by_four_offers_by_three_windows_plus_no_contact(seeded):
    actions = Campaign.objects.get().actions
    assert actions.count() == 4 * 4 * 3 + 1
    assert actions.filter(channel=Action.NO_CONTACT_CHANNEL).count() == 1
    assert set(actions.exclude(channel="none").values_list("channel", flat=True)) == {
        "email", "sms", "push", "call_centre"}


def test_demo_campaign_is_live_with_contact_policy_caps_and_quiet_hours(seeded):
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.LIVE
    policy = campaign.contact_policy
    assert policy.quiet_hours == (21, 8)
    assert float(policy.min_gap_hours) == 48
    caps = {cap.channel: (cap.max_contacts, cap.window_days) for cap in policy.channel_caps.all()}
    assert caps["email"] == (2, 7) and caps["sms"] == (1, 7)


def test_demo_history_is_logged_decisions_with_true_propensities(seeded):
    decisions = Decision.objects.all()
    assert decisions.exists()
    assert not decisions.filter(propensity__lte=0).exists()
    for decision in decisions[:50]:
        probabilities = decision.action_probabilities
        assert abs(sum(probabilities) - 1) < 1e-4
        assert abs(probabilities[decision.action_index] - decision.propensity) < 1e-6
        assert decision.action_mask[decision.action_index] is True


def test_demo_history_never_breaks_a_contact_rule(seeded):
    for decision in Decision.objects.all():
        assert decision.action_mask[decision.action_index]


def test_demo_holdout_is_served_by_the_rules_alone(seeded):
    holdout = Decision.objects.filter(holdout=True)
    assert holdout.exists()
    assert not holdout.filter(policy_version__isnull=False).exists()
    assert set(holdout.values_list("propensity", flat=True)) == {1.0}


def test_demo_outcome_events_are_attributed_and_rewarded(seeded):
    outcomes = Event.objects.filter(name__in=["Message Opened", "Order Completed"])
    assert outcomes.exists()
    assert not outcomes.filter(decision__isnull=True, name="Message Opened").exists()
    rewarded = Decision.objects.filter(reward__isnull=False)
    assert rewarded.count() == Decision.objects.count()
    assert rewarded.filter(reward__gt=0).exists()


def test_demo_customers_have_five_hidden_segments_and_profiles(seeded):
    customers = Customer.objects.all()
    assert customers.count() == SMALL["customers"]
    segments = {c.traits["demo_segment"] for c in customers}
    assert len(segments) >= 4  # 60 customers from a 5-segment mixture
    assert all(c.profile_state for c in customers)


def test_seed_demo_refuses_production_settings(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("seed_demo", seed=0, customers=10, days=7)
    assert not Campaign.objects.exists()
