"""Caps hold under concurrency on the real stack: 50 parallel decisions for one customer.

Threads, each with its own PostgreSQL connection, call the API at once; the customer's row lock
serialises them, so the logged contacts never exceed the channel caps or the overall cap.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client

from crm_console.customers.models import Event
from crm_console.decisioning.models import Decision
from tests.conftest import needs_real_stack
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, signed_post, track,
)

pytestmark = [needs_real_stack, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PARALLEL = 50


def run_in_threads(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc
        finally:
            connection.close()  # each thread opened its own connection

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_fifty_parallel_decisions_for_one_customer_respect_every_cap():
    campaign = live_campaign(caps={"email": (2, 7), "sms": (1, 7)}, overall=(3, 7),
                             name="Concurrency campaign")
    customer_with_consent("hot-customer")
    creds = integration(scopes=["decisions:write"], name="Concurrency CRM")
    body = json.dumps({"customer": "hot-customer", "campaign": campaign.pk})

    def decide(_: int) -> int:
        response = Client().generic("POST", "/api/v1/decisions", body,
                                    content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Bearer {creds.token}")
        return response.status_code

    statuses = run_in_threads(PARALLEL, decide)
    assert statuses == [201] * PARALLEL, statuses
    decisions = Decision.objects.filter(customer__external_id="hot-customer").select_related("action")
    assert decisions.count() == PARALLEL
    per_channel = Counter(d.action.channel for d in decisions if not d.action.is_no_contact)
    assert per_channel["email"] <= 2
    assert per_channel["sms"] <= 1
    assert sum(per_channel.values()) <= 3
    # and the caps were really contested: a random policy fills them within 50 tries
    assert sum(per_channel.values()) == 3


def test_fifty_parallel_decisions_with_min_gap_allow_one_contact():
    campaign = live_campaign(caps={"email": (10, 7), "sms": (10, 7)}, overall=(10, 7),
                             min_gap_hours="48", name="Gap campaign")
    customer_with_consent("gap-customer")
    from crm_console.decisioning.batching import decision_create

    def decide(_: int) -> bool:
        outcome = decision_create(campaign=campaign, customer_external_id="gap-customer")
        return not outcome.decision.action.is_no_contact

    contacted = run_in_threads(PARALLEL, decide)
    assert all(isinstance(c, bool) for c in contacted), contacted
    assert sum(contacted) == 1


def test_parallel_replays_of_one_batch_store_each_event_once():
    creds = integration(scopes=["events:write"], name="Replay CRM")
    payload = {"batch": [track(f"r{i % 5}", f"replay-{i}", "Order Completed", {"revenue": 10.0})
                         for i in range(40)]}

    def send(_: int) -> dict:
        return signed_post(Client(), "/api/v1/events", payload, creds).json()

    answers = run_in_threads(10, send)
    assert Event.objects.filter(message_id__startswith="replay-").count() == 40
    assert sum(a["accepted"] for a in answers) == 40
    assert sum(a["duplicates"] for a in answers) == 40 * 9
    from crm_console.customers.models import Customer

    for customer in Customer.objects.filter(external_id__startswith="r"):
        assert customer.profile_state["lifetime_revenue"] == [80.0]  # 8 orders each, none twice


def test_parallel_batches_over_shared_new_and_known_customers_count_every_event():
    from crm_console.customers.models import Customer

    for i in range(5):
        customer_with_consent(f"known-{i}")
    creds = integration(scopes=["events:write"], name="Busy CRM")
    shared = [f"known-{i}" for i in range(5)] + [f"new-{i}" for i in range(5)]

    def send(n: int) -> int:
        # every batch locks the same rows and creates the same new customers, each in its own order
        users = shared[n % 10:] + shared[:n % 10]
        payload = {"batch": [track(user, f"busy-{n}-{user}", "Order Completed", {"revenue": 1.0})
                             for user in users]}
        return signed_post(Client(), "/api/v1/events", payload, creds).status_code

    statuses = run_in_threads(PARALLEL // 5, send)
    assert statuses == [202] * (PARALLEL // 5), statuses
    assert Event.objects.filter(message_id__startswith="busy-").count() == len(shared) * PARALLEL // 5
    for customer in Customer.objects.filter(external_id__in=shared):
        assert customer.profile_state["lifetime_purchases"] == [PARALLEL // 5]  # none lost
