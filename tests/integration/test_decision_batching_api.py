"""Parallel single-decision requests through the API on the real stack: batched, never mixed up.

Threads of one process call POST /api/v1/decisions at once, as a threaded web worker's do; the
batcher decides those that meet in one batch. Each answer must still be its own customer's.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from crm_console.decisioning.models import Decision
from tests.conftest import needs_real_stack
from tests.console.api.helpers import customer_with_consent, integration, live_campaign
from tests.integration.test_caps_concurrency import run_in_threads

pytestmark = [needs_real_stack, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PARALLEL = 24


def test_parallel_requests_for_different_customers_each_get_their_own_decision():
    campaign = live_campaign(name="Batching campaign")
    for i in range(PARALLEL):
        customer_with_consent(f"batch-{i}")
    creds = integration(scopes=["decisions:write"], name="Batching CRM")

    def decide(i: int) -> tuple[int, dict]:
        body = json.dumps({"customer": f"batch-{i}", "campaign": campaign.pk,
                           "context": {"request": i}})
        response = Client().generic("POST", "/api/v1/decisions", body,
                                    content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Bearer {creds.token}")
        return response.status_code, response.json()

    answers = run_in_threads(PARALLEL, decide)
    assert [status for status, _ in answers] == [201] * PARALLEL, answers
    for i, (_, answer) in enumerate(answers):
        decision = Decision.objects.select_related("customer").get(pk=answer["decision_id"])
        assert decision.customer.external_id == f"batch-{i}"
        assert decision.context == {"request": i}
        assert decision.action_id == answer["action"]["id"]
    assert len({answer["decision_id"] for _, answer in answers}) == PARALLEL


def test_an_unknown_customer_among_parallel_requests_fails_alone():
    campaign = live_campaign(name="Batching errors campaign")
    for i in range(8):
        customer_with_consent(f"known-{i}")
    creds = integration(scopes=["decisions:write"], name="Batching errors CRM")

    def decide(i: int) -> tuple[int, dict]:
        customer = "nobody" if i == 3 else f"known-{i}"
        body = json.dumps({"customer": customer, "campaign": campaign.pk})
        response = Client().generic("POST", "/api/v1/decisions", body,
                                    content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Bearer {creds.token}")
        return response.status_code, response.json()

    answers = run_in_threads(8, decide)
    assert [status for status, _ in answers] == [201, 201, 201, 400, 201, 201, 201, 201], answers
    assert "Unknown customer 'nobody'" in answers[3][1]["error"]["fields"]["customer"][0]
    assert Decision.objects.filter(campaign=campaign).count() == 7
