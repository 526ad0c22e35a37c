"""Attribution prices each decision with the campaign's weights through agents.rewards."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_console.campaigns import services as campaign_services
from crm_console.customers.models import Event
from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.batching import decision_create
from tests.console.api.helpers import customer_with_consent, live_campaign

pytestmark = pytest.mark.django_db


def test_order_in_the_window_is_priced_with_the_campaign_weights():
    campaign = live_campaign(algorithm="rule_based")
    campaign_services.reward_weights_update(campaign=campaign, revenue=2.0, conversion=5.0,
                                            contact_cost=-1.0)
    customer = customer_with_consent("c1")
    decision = decision_create(campaign=campaign, customer_external_id="c1",
                               explain=False).decision
    Event.objects.create(message_id="order-1", customer=customer, type="track",
                         name="Order Completed", properties={"revenue": 40.0},
                         timestamp=decision.decided_at + timedelta(days=2))

    assert decisions_attribute(campaign=campaign) == 1
    decision.refresh_from_db()
    cost = float(decision.action.cost) if not decision.action.is_no_contact else 0.0
    assert decision.reward == pytest.approx(2.0 * 40.0 + 5.0 - cost)
    assert decision.reward_components["revenue"] == 40.0


def test_order_after_the_window_is_not_credited():
    campaign = live_campaign(algorithm="rule_based")
    customer = customer_with_consent("c1")
    decision = decision_create(campaign=campaign, customer_external_id="c1",
                               explain=False).decision
    Event.objects.create(message_id="order-late", customer=customer, type="track",
                         name="Order Completed", properties={"revenue": 40.0},
                         timestamp=decision.decided_at + timedelta(days=30))

    assert decisions_attribute(campaign=campaign) == 0
    decision.refresh_from_db()
    assert decision.reward_components["revenue"] == 0.0


def test_repricing_in_chunks_prices_every_decision_once(monkeypatch):
    from crm_console.decisioning import attribution
    from crm_console.decisioning.models import Decision
    from tests.factories import DecisionFactory

    first = DecisionFactory()
    for _ in range(6):
        DecisionFactory(campaign=first.campaign, customer=first.customer)
    monkeypatch.setattr(attribution, "REPRICE_CHUNK", 3)
    assert attribution.decisions_reprice(campaign=first.campaign) == 7
    priced = Decision.objects.filter(campaign=first.campaign)
    assert not priced.filter(reward__isnull=True).exists()
    assert [d.reward for d in priced] == pytest.approx([-0.02] * 7)  # the email's contact cost
