"""Outcomes are priced wherever the console runs: on ingest, on a schedule, before training and
evaluation (a real campaign's decisions are never left without a reward)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from crm_console.celery import app
from crm_console.customers.models import Event
from crm_console.decisioning import attribution, tasks
from crm_console.decisioning.attribution import campaigns_price_outcomes, outcomes_pricing_queue
from crm_console.decisioning.batching import decision_create
from crm_console.shared_cache import SharedCacheDown
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, signed_post, track,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def decided():
    """A live campaign that has decided for customer c1 (not priced yet)."""
    campaign = live_campaign(algorithm="rule_based")
    customer = customer_with_consent("c1")
    decision = decision_create(campaign=campaign, customer_external_id="c1", explain=False).decision
    return campaign, customer, decision


@pytest.fixture
def with_a_worker(monkeypatch):
    """Celery as on the real stack (not eager); the tasks queued are recorded, not sent."""
    queued = []
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    monkeypatch.setattr(tasks.price_outcomes_everywhere, "apply_async",
                        lambda countdown: queued.append(countdown))
    cache.clear()
    yield queued
    app.conf.task_always_eager = eager


def test_an_order_sent_to_the_events_api_prices_the_decision_it_follows(
        client, decided, django_capture_on_commit_callbacks):
    campaign, customer, decision = decided
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_post(client, "/api/v1/events", {"batch": [track(
            "c1", "order-1", "Order Completed", {"revenue": 40.0},
            timestamp=timezone.now().isoformat())]}, integration())
    assert response.status_code == 202, response.content
    decision.refresh_from_db()
    assert decision.reward is not None
    assert decision.reward_components["revenue"] == 40.0


def test_events_that_are_not_outcomes_price_nothing(client, decided,
                                                     django_capture_on_commit_callbacks):
    campaign, customer, decision = decided
    with django_capture_on_commit_callbacks(execute=True):
        signed_post(client, "/api/v1/events", {"batch": [track(
            "c1", "view-1", "Product Viewed", {}, timestamp=timezone.now().isoformat())]},
            integration())
    decision.refresh_from_db()
    assert decision.reward is None


def test_with_a_worker_one_pricing_waits_for_every_batch_that_arrives_meanwhile(decided,
                                                                               with_a_worker):
    campaign, customer, decision = decided
    assert outcomes_pricing_queue(customer_ids=[customer.pk]) is True
    assert outcomes_pricing_queue(customer_ids=[customer.pk]) is False
    assert with_a_worker == [attribution.PRICING_DELAY_SECONDS]
    decision.refresh_from_db()
    assert decision.reward is None  # priced by the queued task, not in the ingestion request


def test_with_redis_down_nothing_is_queued_and_the_schedule_catches_up(decided, with_a_worker,
                                                                       monkeypatch):
    campaign, customer, decision = decided

    def down(operation):
        raise SharedCacheDown("Redis did not answer")

    monkeypatch.setattr(attribution, "shared_cache_call", down)
    assert outcomes_pricing_queue(customer_ids=[customer.pk]) is False
    assert with_a_worker == []


def test_the_schedule_prices_every_campaign_that_has_decisions(decided):
    campaign, customer, decision = decided
    Event.objects.create(message_id="order-2", customer=customer, type="track",
                         name="Order Completed", properties={"revenue": 25.0},
                         timestamp=decision.decided_at + timedelta(hours=1))
    assert campaigns_price_outcomes() == {campaign.pk: 1}
    decision.refresh_from_db()
    assert decision.reward_components["revenue"] == 25.0


def test_pricing_is_on_the_beat_schedule_every_ten_minutes():
    entry = app.conf.beat_schedule["decisioning-price-outcomes"]
    assert entry["task"] == tasks.price_outcomes_everywhere.name
    assert entry["schedule"].minute == set(range(0, 60, 10))


def test_pricing_after_a_batch_reads_only_the_customers_it_touched(decided):
    from crm_console.decisioning.attribution import decisions_attribute

    campaign, customer, decision = decided
    customer_with_consent("c2")
    other = decision_create(campaign=campaign, customer_external_id="c2", explain=False).decision
    decisions_attribute(campaign=campaign, customer_ids=[customer.pk])
    decision.refresh_from_db()
    other.refresh_from_db()
    assert decision.reward is not None and other.reward is None
