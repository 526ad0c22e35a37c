"""Customer timeline: events and decisions in order, consent history, features in words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm_console.customers.models import Customer
from tests.factories import ConsentFactory, CustomerFactory, DecisionFactory, EventFactory

pytestmark = pytest.mark.django_db


def test_timeline_merges_events_and_decisions_oldest_first(marketer_client):
    customer = CustomerFactory()
    now = timezone.now()
    decision = DecisionFactory(customer=customer, decided_at=now - timedelta(days=2))
    opened = EventFactory(customer=customer, name="Message Opened", timestamp=now - timedelta(days=1))
    signup = EventFactory(customer=customer, name="Signed Up", timestamp=now - timedelta(days=3))
    timeline = marketer_client.get(f"/customers/{customer.pk}/").context["timeline"]
    assert [(item.kind, item.obj.pk) for item in timeline] == [
        ("event", signup.pk), ("decision", decision.pk), ("event", opened.pk)]


def test_consent_history_lists_every_change(marketer_client):
    customer = CustomerFactory()
    ConsentFactory(customer=customer, channel="sms", granted=True, recorded_at=timezone.now() - timedelta(days=5))
    ConsentFactory(customer=customer, channel="sms", granted=False, source="unsubscribe link")
    response = marketer_client.get(f"/customers/{customer.pk}/")
    assert len(response.context["consent_history"]) == 2
    assert response.context["consents"]["sms"].granted is False
    assert b"unsubscribe link" in response.content


def test_current_features_use_marketer_labels(small_demo, demo_login):
    customer = Customer.objects.exclude(profile_state={}).first()
    response = demo_login("marketer").get(f"/customers/{customer.pk}/")
    features = response.context["features"]
    labels = {name: label for name, label, _, _ in features}
    assert labels["days_since_purchase"] == "days since last purchase"
    assert len(features) == 32
    assert b"What the policy sees now" in response.content


def test_customer_search_and_pagination(marketer_client):
    for i in range(55):
        CustomerFactory(external_id=f"shop-{i:03d}")
    assert len(marketer_client.get("/customers/").context["page"]) == 50
    found = marketer_client.get("/customers/", {"q": "shop-05"}).context["page"]
    assert {c.external_id for c in found} == {f"shop-05{i}" for i in range(5)}


def test_contact_counters_show_real_counts_beside_the_policys_weight(small_demo, demo_login):
    from crm_console.customers.selectors import customer_contact_counts

    customer = (Customer.objects.exclude(profile_state={})
                .filter(decisions__action__channel="email").distinct().first())
    counts = customer_contact_counts(customer=customer)
    features = demo_login("marketer").get(f"/customers/{customer.pk}/").context["features"]
    words = {name: w for name, _, w, _ in features}
    assert words["email_contacts"].startswith(f"{counts.get('email', 0)} sent in the last 30 days")
    assert "recent contacts count more" in words["email_contacts"]


def test_contact_counts_leave_out_released_old_and_no_contact_decisions():
    from crm_console.customers.selectors import customer_contact_counts

    customer = CustomerFactory()
    now = timezone.now()
    DecisionFactory(customer=customer, decided_at=now - timedelta(days=1))
    DecisionFactory(customer=customer, decided_at=now - timedelta(days=2))
    DecisionFactory(customer=customer, decided_at=now - timedelta(days=40))
    DecisionFactory(customer=customer, decided_at=now - timedelta(days=1), status="released")
    assert customer_contact_counts(customer=customer) == {"email": 2}
    assert customer_contact_counts(customer=CustomerFactory()) == {}
