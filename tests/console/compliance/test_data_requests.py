"""Erasure reaches every place a customer's personal or behavioural data lives, and counts it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from crm_console.api.models import IdempotentRequest
from crm_console.campaigns.services import suppression_add
from crm_console.compliance.models import AuditEntry, DecisionReview
from crm_console.compliance.selectors import customer_erasure_counts
from crm_console.compliance.data_requests import customer_erase
from crm_console.customers.models import Event
from crm_console.decisioning.models import Decision, Explanation
from tests.factories import (
    ConsentFactory, ContactPolicyFactory, CustomerFactory, DecisionFactory, DecisionReviewFactory,
    EventFactory, ExplanationFactory, IdempotentRequestFactory,
)

pytestmark = pytest.mark.django_db

SHADOW = {"version": 2, "action_index": 1, "agrees": True}
SECRETS = ("crm-4711", "ada@example.com", "Lovelace", "20 7946 0000", "Marylebone", "New_York",
           "219 days", "Ada rang", "VIP since")


@pytest.fixture
def subject():
    """A customer with personal data in every place the console keeps any."""
    customer = CustomerFactory(
        external_id="crm-4711", email="ada@example.com", phone="+44 20 7946 0000",
        name="Ada Lovelace", time_zone="America/New_York", traits={"street": "Marylebone"},
        profile_state={"contacts": [[1, 0, 0, 0]]})
    ConsentFactory(customer=customer, channel="email", granted=True)
    decision = DecisionFactory(customer=customer,
                               context={"crm_note": "Ada rang about her order", "shadow": SHADOW})
    ExplanationFactory(decision=decision,
                       sentence="Email chosen: last purchase 219 days ago, time zone UTC-5",
                       top_reasons=["last purchase 219 days ago", "time zone UTC-5"])
    DecisionReviewFactory(decision=decision, verdict="flagged", note="Ada Lovelace, VIP since 2019")
    IdempotentRequestFactory(response={
        "decision_id": decision.pk,
        "action": {"send_window": {"name": "morning", "time_zone": "America/New_York"}}})
    EventFactory(customer=customer, message_id="crm-4711-identify-1", type="identify", name="",
                 properties={"email": "ada@example.com"})
    EventFactory(customer=customer, message_id="crm-4711-order-1", name="Order Completed",
                 decision=decision, properties={"revenue": 42.0, "address": "12 Marylebone"})
    suppression_add(contact_policy=ContactPolicyFactory(), external_ids=["crm-4711"])
    return customer


def every_row() -> str:
    """Every row of every console table, as one JSON text."""
    rows = [list(model.objects.values()) for model in apps.get_models()
            if model.__module__.startswith("crm_console.")]
    return json.dumps(rows, default=str)


def test_no_console_table_keeps_the_subjects_personal_data(subject, reviewer):
    assert all(secret in every_row() for secret in SECRETS)
    customer_erase(customer=subject, requested_by=reviewer, reason="ticket 991")
    left = every_row()
    assert [secret for secret in SECRETS if secret in left] == []


def test_the_customers_time_zone_is_reset(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    subject.refresh_from_db()
    assert subject.time_zone == "UTC"


def test_decisions_keep_only_the_context_the_console_wrote(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    assert Decision.objects.get(customer=subject).context == {"shadow": SHADOW}


def test_decisions_lose_their_feature_snapshots(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    assert Decision.objects.get(customer=subject).features == []


def test_decisions_stay_countable_with_action_reward_and_holdout(subject, reviewer):
    Decision.objects.filter(customer=subject).update(reward=3.5)
    customer_erase(customer=subject, requested_by=reviewer)
    decision = Decision.objects.get(customer=subject)
    assert (decision.action.channel, decision.reward, decision.holdout) == ("email", 3.5, False)


def test_explanations_are_deleted(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    assert not Explanation.objects.filter(decision__customer=subject).exists()


def test_reviewer_notes_are_cleared_and_verdicts_kept(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    review = DecisionReview.objects.get(decision__customer=subject)
    assert (review.verdict, review.note) == ("flagged", "")


def test_event_message_ids_are_replaced(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    ids = list(Event.objects.filter(customer=subject).values_list("message_id", flat=True))
    assert len(ids) == 2 and all(i.startswith("erased-") for i in ids)


def test_stored_api_answers_lose_the_customers_time_zone(subject, reviewer):
    customer_erase(customer=subject, requested_by=reviewer)
    answer = IdempotentRequest.objects.get().response
    assert answer["action"]["send_window"] == {"name": "morning", "time_zone": "UTC"}


def test_stored_batch_answers_lose_only_the_subjects_time_zone(subject, reviewer):
    mine = Decision.objects.get(customer=subject)
    other = DecisionFactory(campaign=mine.campaign, decided_at=mine.decided_at)
    window = {"name": "morning", "time_zone": "Asia/Tokyo"}
    IdempotentRequestFactory(operation="decisions_create_batch", response={"decisions": [
        {"decision_id": other.pk, "action": {"send_window": dict(window)}},
        {"decision_id": mine.pk, "action": {"send_window": dict(window)}}]})
    customer_erase(customer=subject, requested_by=reviewer)
    batch = IdempotentRequest.objects.get(operation="decisions_create_batch").response
    zones = [d["action"]["send_window"]["time_zone"] for d in batch["decisions"]]
    assert zones == ["Asia/Tokyo", "UTC"]


def test_contacts_still_to_be_sent_are_released(subject, reviewer):
    campaign = Decision.objects.get(customer=subject).campaign
    later = DecisionFactory(customer=subject, campaign=campaign,
                            send_at=timezone.now() + timedelta(hours=5))
    customer_erase(customer=subject, requested_by=reviewer)
    later.refresh_from_db()
    assert later.status == Decision.Status.RELEASED
    assert later.context["released"]["reason"] == "customer erased"


def test_the_audit_counts_what_the_erase_page_counted(subject, reviewer):
    DecisionFactory(customer=subject, send_at=timezone.now() + timedelta(hours=5))
    before = customer_erasure_counts(customer=subject)
    erasure = customer_erase(customer=subject, requested_by=reviewer)
    entry = AuditEntry.objects.get(verb="customer.erased")
    assert erasure.counts == before
    assert entry.details == {"erasure_record": erasure.record.pk, **before.as_dict()}


def test_the_counts_say_what_erasure_changes(subject):
    counts = customer_erasure_counts(customer=subject)
    assert counts.as_dict() == {
        "events": 2, "decisions": 1, "explanations": 1, "review_notes": 1, "stored_answers": 1,
        "scheduled_contacts": 0, "consents_kept": 1}
