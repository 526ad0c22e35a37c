"""Receipts applied: ingestion stores, decisioning marks delivered, releases and queues pricing."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from crm_console.customers import services as customer_services
from crm_console.customers.models import Consent, Event
from crm_console.customers.services import DeliveryReceipts, IncomingEvent, events_ingest
from crm_console.decisioning import delivery
from crm_console.decisioning.delivery import consent_record, delivery_receipts_apply, events_record
from crm_console.decisioning.models import Decision
from crm_console.decisioning.batching import decision_create
from tests.console.api.helpers import customer_with_consent, live_campaign

pytestmark = pytest.mark.django_db


def track(mid, name, at=None, **props):
    return IncomingEvent(type="track", user_id="c1", message_id=mid, name=name, properties=props,
                         timestamp=at or timezone.now().replace(microsecond=0))


@pytest.fixture
def contacted(db):
    """A decision of the rules that contacted customer c1."""
    campaign = live_campaign(algorithm="rule_based")
    customer_with_consent("c1")
    for _ in range(20):  # the rules may say no contact; find one that contacts
        decision = decision_create(campaign=campaign, customer_external_id="c1").decision
        if not decision.action.is_no_contact:
            return decision
        Decision.objects.filter(pk=decision.pk).update(status=Decision.Status.RELEASED)
    raise AssertionError("the policy never contacted")


def scheduled_in(decision, hours):
    Decision.objects.filter(pk=decision.pk).update(send_at=timezone.now() + timedelta(hours=hours))


def test_customers_services_imports_only_decisioning_models():
    tree = ast.parse(Path(customer_services.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert {m for m in imported if m and m.startswith("crm_console.decisioning")} == {
        "crm_console.decisioning.models"}


def test_ingest_only_stores_and_returns_the_receipts(contacted):
    went_out = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    result = events_ingest(events=[track("m1", "Email Delivered", at=went_out,
                                         decision_id=contacted.pk)])
    assert (result.accepted, result.released_decisions, result.delivered_decisions) == (1, 0, 0)
    assert result.receipts.delivered == {contacted.pk: went_out}
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DECIDED


def test_a_receipt_marks_the_decision_delivered_and_is_counted(contacted):
    result = events_record(events=[track("m1", "Email Delivered", decision_id=contacted.pk)])
    assert (result.accepted, result.released_decisions, result.delivered_decisions) == (1, 0, 1)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DELIVERED


def test_a_delivery_failure_releases_the_contact_and_is_counted(contacted):
    result = events_record(events=[track("m1", "Email Bounced", decision_id=contacted.pk)])
    assert (result.released_decisions, result.delivered_decisions) == (1, 0)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.RELEASED
    assert contacted.context["released"]["reason"] == "delivery failed"


def test_a_receipt_is_the_last_word_over_a_failure_in_the_same_batch(contacted):
    now = timezone.now().replace(microsecond=0)
    result = events_record(events=[
        track("m1", "Email Delivered", at=now - timedelta(minutes=2), decision_id=contacted.pk),
        track("m2", "Email Bounced", at=now - timedelta(minutes=1), decision_id=contacted.pk)])
    assert (result.released_decisions, result.delivered_decisions) == (0, 1)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DELIVERED


def test_an_unsubscribe_releases_the_scheduled_message_and_is_counted(contacted):
    scheduled_in(contacted, 5)
    result = events_record(events=[track("m1", "Unsubscribed", channel=contacted.action.channel)])
    assert result.released_decisions == 1
    assert result.receipts.withdrawals[0][:2] == (contacted.customer_id, contacted.action.channel)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.RELEASED
    assert contacted.context["released"]["reason"] == "consent withdrawn"


def test_outcome_events_queue_pricing_when_the_batch_commits(contacted, monkeypatch,
                                                             django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(delivery, "outcomes_pricing_queue",
                        lambda *, customer_ids: queued.append(customer_ids))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        events_record(events=[track("m1", "Order Completed", revenue=10.0),
                              track("m2", "Product Viewed")])
        assert queued == []  # nothing before the commit
    assert len(callbacks) == 1
    assert queued == [[contacted.customer_id]]


def test_no_outcome_events_queue_no_pricing(contacted, monkeypatch,
                                            django_capture_on_commit_callbacks):
    monkeypatch.setattr(delivery, "outcomes_pricing_queue",
                        lambda *, customer_ids: pytest.fail("priced"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        events_record(events=[track("m1", "Product Viewed")])
    assert callbacks == []


def test_a_failure_applying_receipts_stores_nothing(contacted, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("decisions unavailable")

    monkeypatch.setattr(delivery, "decisions_mark_delivered", broken)
    with pytest.raises(RuntimeError):
        events_record(events=[track("m1", "Email Delivered", decision_id=contacted.pk),
                              track("m2", "Unsubscribed")])
    assert not Event.objects.exists()
    assert not Consent.objects.filter(granted=False).exists()


def test_empty_receipts_change_nothing(contacted):
    assert delivery_receipts_apply(DeliveryReceipts()) == (0, 0)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DECIDED


def test_a_consent_withdrawal_releases_the_scheduled_message(contacted):
    scheduled_in(contacted, 5)
    customer = contacted.customer
    consent_record(customer=customer, channel=contacted.action.channel, granted=False,
                   source="preference centre")
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.RELEASED


def test_consent_change_alone_only_stores(contacted):
    scheduled_in(contacted, 5)
    customer_services.consent_change(customer=contacted.customer, channel=contacted.action.channel,
                                     granted=False, source="preference centre")
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DECIDED
