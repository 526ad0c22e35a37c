"""Event ingestion: idempotent, incremental profile updates, consent at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from agents import features as agent_features
from crm_console.customers.models import Consent, Customer, Event
from crm_console.customers.services import IncomingEvent, consent_change, events_ingest

pytestmark = pytest.mark.django_db

T0 = datetime.now(dt_timezone.utc).replace(microsecond=0) - timedelta(days=120)


def track(user, mid, name, at=T0, **props):
    return IncomingEvent(type="track", user_id=user, message_id=mid, timestamp=at, name=name,
                         properties=props)


def identify(user, mid, at=T0, **traits):
    return IncomingEvent(type="identify", user_id=user, message_id=mid, timestamp=at, traits=traits)


def state_of(external_id):
    return agent_features.ProfileState.from_dict(Customer.objects.get(external_id=external_id).profile_state)


def test_new_customer_is_created_without_consent():
    events_ingest(events=[track("c1", "m1", "Wishlist Shared")])
    state = state_of("c1")
    assert state.consent.sum() == 0
    assert Event.objects.get().name == "Wishlist Shared"


def test_open_and_click_update_the_channel_counters():
    events_ingest(events=[track("c1", "m1", "Email Opened", channel="sms"),
                          track("c1", "m2", "Link Clicked", at=T0 + timedelta(minutes=5), channel="sms")])
    state = state_of("c1")
    assert state.opens[0, 1] == pytest.approx(1.0, rel=1e-3)
    assert state.clicks[0, 1] == pytest.approx(1.0, rel=1e-3)
    assert state.days_since_engagement[0] == 0.0


def test_time_between_events_decays_the_counters():
    events_ingest(events=[track("c1", "m1", "Order Completed", revenue=100.0)])
    events_ingest(events=[track("c1", "m2", "Wishlist Shared", at=T0 + timedelta(days=90))])
    state = state_of("c1")
    assert state.revenue[0] == pytest.approx(50.0, rel=1e-6)  # 90-day half-life
    assert state.lifetime_revenue[0] == 100.0
    assert state.days_since_purchase[0] == pytest.approx(90.0)


def test_events_in_one_batch_apply_in_time_order():
    later, earlier = T0 + timedelta(days=30), T0
    events_ingest(events=[track("c1", "m2", "Order Completed", at=later, revenue=10.0),
                          track("c1", "m1", "Order Completed", at=earlier, revenue=10.0)])
    state = state_of("c1")
    # the first order decayed 30 days (of a 90-day half-life) before the second
    assert state.revenue[0] == pytest.approx(10 * 0.5 ** (30 / 90) + 10, rel=1e-6)


def test_replay_changes_nothing():
    events = [track("c1", "m1", "Order Completed", revenue=10.0)]
    assert events_ingest(events=events).accepted == 1
    before = Customer.objects.get(external_id="c1").profile_state
    result = events_ingest(events=events)
    assert (result.accepted, result.duplicates) == (0, 1)
    assert Customer.objects.get(external_id="c1").profile_state == before


def test_identify_sets_contact_fields_time_zone_consent_and_other_traits():
    events_ingest(events=[identify("c1", "m1", email="a@example.com", timezone="Asia/Tokyo",
                                   consent={"email": True, "sms": False}, plan="gold")])
    customer = Customer.objects.get(external_id="c1")
    assert customer.email == "a@example.com" and customer.time_zone == "Asia/Tokyo"
    assert customer.traits == {"plan": "gold"}
    assert state_of("c1").utc_offset_hours[0] == 9.0
    assert dict(Consent.objects.values_list("channel", "granted")) == {"email": True, "sms": False}


def test_consent_change_service_updates_row_and_profile():
    events_ingest(events=[identify("c1", "m1", consent={"push": True})])
    customer = Customer.objects.get(external_id="c1")
    consent_change(customer=customer, channel="push", granted=False, source="preference centre")
    assert state_of("c1").consent[0, 2] == 0.0
    assert Consent.objects.filter(channel="push").order_by("-recorded_at", "-id").first().granted is False


def test_late_event_is_recorded_without_rewinding_time():
    events_ingest(events=[track("c1", "m1", "Wishlist Shared", at=T0 + timedelta(days=10))])
    events_ingest(events=[track("c1", "m2", "Order Completed", at=T0, revenue=5.0)])
    customer = Customer.objects.get(external_id="c1")
    assert customer.profile_updated_at == T0 + timedelta(days=10)
    assert state_of("c1").lifetime_revenue[0] == 5.0


def test_identify_does_not_restore_an_erased_customers_personal_data():
    from django.utils import timezone

    events_ingest(events=[identify("c1", "m1", email="a@example.com")])
    Customer.objects.filter(external_id="c1").update(email="", traits={}, erased_at=timezone.now())
    events_ingest(events=[identify("c1", "m2", email="a@example.com", name="Ada", plan="gold")])
    customer = Customer.objects.get(external_id="c1")
    assert (customer.email, customer.name, customer.traits) == ("", "", {})
