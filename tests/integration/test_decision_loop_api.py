"""The API half of the loop on the real stack: identify -> decide -> outcome events -> reward."""

from __future__ import annotations

import pytest

from crm_console.customers.models import Event
from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.models import Decision
from tests.conftest import needs_real_stack
from tests.console.api.helpers import (
    identify, integration, live_campaign, signed_post, token_post, track,
)

pytestmark = [needs_real_stack, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_events_in_decisions_out_outcomes_attributed(client):
    campaign = live_campaign(algorithm="rule_based", caps={"email": (3, 7), "sms": (1, 7)},
                             name="Loop campaign")
    creds = integration()
    customers = [f"loop-{i}" for i in range(30)]
    response = signed_post(client, "/api/v1/events", {"batch": [
        identify(c, f"id-{c}", {"email": f"{c}@example.com", "timezone": "Europe/London",
                                "consent": {"email": True, "sms": True}})
        for c in customers]}, creds)
    assert response.status_code == 202 and response.json()["accepted"] == 30

    response = token_post(client, "/api/v1/decisions/batch",
                          {"campaign": campaign.pk, "customers": customers}, creds)
    assert response.status_code == 201, response.content
    decided = response.json()["decisions"]
    contacted = [d for d in decided if d["action"]["contact"]]
    assert contacted, "the rules send the weekly email to customers never contacted"

    outcomes = []
    for d in contacted:
        user = Decision.objects.get(pk=d["decision_id"]).customer.external_id
        outcomes += [track(user, f"open-{d['decision_id']}", "Email Opened",
                           {"decision_id": d["decision_id"], "channel": d["action"]["channel"]}),
                     track(user, f"order-{d['decision_id']}", "Order Completed",
                           {"decision_id": d["decision_id"], "revenue": 25.0})]
    failed = contacted[0]
    user = Decision.objects.get(pk=failed["decision_id"]).customer.external_id
    outcomes.append(track(user, "bounce-1", "Delivery Failed", {"decision_id": failed["decision_id"]}))
    response = signed_post(client, "/api/v1/events", {"batch": outcomes}, creds)
    assert response.status_code == 202
    assert response.json() == {"accepted": len(outcomes), "duplicates": 0}
    assert Decision.objects.get(pk=failed["decision_id"]).status == Decision.Status.RELEASED

    decisions_attribute(campaign=campaign)  # the ingestion may already have priced them
    assert Event.objects.filter(decision__campaign=campaign).count() == 2 * len(contacted)
    rewarded = Decision.objects.get(pk=contacted[-1]["decision_id"])
    assert rewarded.reward_components["revenue"] == 25.0
    assert Event.objects.filter(decision=rewarded).count() == 2
