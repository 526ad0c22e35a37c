"""Event ingestion: idempotent, incremental profile updates, consent at once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from types import SimpleNamespace

import numpy as np
import pytest
from django.db import connection

from agents import features as agent_features
from crm_console import recordsets
from crm_console.customers import services
from crm_console.customers.models import Consent, Customer, Event
from crm_console.customers.services import (
    IncomingEvent, consent_change, customers_save_fields, events_ingest, profile_states_load,
    profile_states_store,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

T0 = datetime.now(dt_timezone.utc).replace(microsecond=0) - timedelta(days=120)
POSTGRESQL = connection.vendor == "postgresql"
needs_postgresql = pytest.mark.skipif(not POSTGRESQL, reason="PostgreSQL's set-based SQL")


@pytest.fixture(autouse=True, params=["set-based", "portable"] if POSTGRESQL else ["portable"])
def ingest_path(request, monkeypatch):
    """On PostgreSQL each test runs twice: set-based SQL, and the ORM path other databases use."""
    if request.param == "portable":
        monkeypatch.setattr(recordsets, "set_based_sql", lambda: False)
    return request.param


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


def test_identify_does_not_restore_an_erased_customers_time_zone():
    from django.utils import timezone

    CustomerFactory(external_id="c1", time_zone="UTC", erased_at=timezone.now())
    events_ingest(events=[identify("c1", "m1", timezone="America/New_York")])
    assert Customer.objects.get(external_id="c1").time_zone == "UTC"


def test_batch_with_new_and_known_customers_creates_only_the_new_ones():
    CustomerFactory(external_id="known")
    result = events_ingest(events=[track("known", "m1", "Email Opened"),
                                   track("new", "m2", "Email Opened")])
    assert result.customers_created == 1
    assert Customer.objects.filter(external_id__in=["known", "new"]).count() == 2
    assert state_of("known").opens[0, 0] == 1.0 and state_of("new").opens[0, 0] == 1.0


def test_repeated_message_id_inside_a_batch_is_applied_once():
    result = events_ingest(events=[track("c1", "m1", "Order Completed", revenue=10.0),
                                   track("c1", "m1", "Order Completed", revenue=10.0)])
    assert (result.accepted, result.duplicates) == (1, 1)
    assert Event.objects.count() == 1
    assert state_of("c1").lifetime_revenue[0] == 10.0


def test_events_of_several_customers_in_one_batch_each_count_for_their_own_customer():
    events_ingest(events=[track("a", "m1", "Email Opened", channel="push"),
                          track("b", "m2", "Link Clicked", channel="sms"),
                          track("c", "m3", "Order Completed", revenue=7.0, coupon="WELCOME"),
                          track("a", "m4", "Order Completed", at=T0 + timedelta(minutes=1),
                                revenue=3.0)])
    a, b, c = state_of("a"), state_of("b"), state_of("c")
    assert a.opens[0, 2] == pytest.approx(1.0, rel=1e-3) and a.opens.sum() == a.opens[0, 2]
    assert (a.lifetime_revenue[0], a.discounted_purchases[0]) == (3.0, 0.0)
    assert b.clicks[0, 1] == 1.0 and b.opens.sum() == 0.0 and b.lifetime_revenue[0] == 0.0
    assert (c.lifetime_revenue[0], c.discounted_purchases[0]) == (7.0, 1.0)


def test_identify_merges_new_traits_over_stored_ones_and_keeps_contact_fields_it_does_not_send():
    CustomerFactory(external_id="c1", email="old@example.com", phone="123",
                    traits={"plan": "silver", "region": "north"})
    events_ingest(events=[identify("c1", "m1", name="Ada", plan="gold", seats=3)])
    customer = Customer.objects.get(external_id="c1")
    assert (customer.email, customer.phone, customer.name) == ("old@example.com", "123", "Ada")
    assert customer.time_zone == "Europe/London"
    assert customer.traits == {"plan": "gold", "region": "north", "seats": 3}


def test_later_identify_in_one_batch_wins():
    later = T0 + timedelta(minutes=1)
    events_ingest(events=[identify("c1", "m2", at=later, email="new@example.com", plan="gold"),
                          identify("c1", "m1", email="old@example.com", plan="silver", seats=3)])
    customer = Customer.objects.get(external_id="c1")
    assert customer.email == "new@example.com"
    assert customer.traits == {"plan": "gold", "seats": 3}


def test_customers_save_fields_writes_only_the_named_fields():
    customer = CustomerFactory(external_id="c1", email="a@example.com")
    customer.profile_state, customer.profile_updated_at = {"revenue": [1.5]}, T0
    customer.email = "unsaved@example.com"
    customers_save_fields([customer], ["profile_state", "profile_updated_at"])
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.profile_state, stored.profile_updated_at) == ({"revenue": [1.5]}, T0)
    assert stored.email == "a@example.com"


def test_profile_of_another_shape_is_refused_with_nothing_written():
    stored = agent_features.ProfileState.empty(1).to_dict()
    stored["opens"] = [[0.0] * 5]  # five channels: not today's profile
    CustomerFactory(external_id="c1", profile_state=stored, profile_updated_at=T0)
    with pytest.raises(ValueError):
        events_ingest(events=[track("c1", "m1", "Email Opened")])
    assert Event.objects.count() == 0


# ------------------------------------------------------- PostgreSQL's flat profiles, both ways
def profile_example() -> agent_features.ProfileState:
    """Two customers whose counters hold inf, zeros and floats that need all 17 digits."""
    state = agent_features.ProfileState.empty(2, consent=False)
    state.revenue[:] = [1 / 3, 12.5]
    state.opens[0, 1] = 0.1 + 0.2
    state.days_since_contact[1, 3] = 2.000000000000001
    state.recent_contacts[1, 29] = 1e-300
    state.contacts[1, 0] = -0.0
    return state


@needs_postgresql
def test_the_flat_profile_write_stores_what_profile_states_store_writes():
    state = profile_example()
    state.tenure_days[0], state.day_clock[1] = -np.inf, np.nan  # never held; written as null too
    expected = [SimpleNamespace(), SimpleNamespace()]
    clocks = np.array([T0.timestamp(), T0.timestamp() + 60])
    profile_states_store(expected, state, clocks)
    customers = [CustomerFactory(), CustomerFactory()]
    rows = [services._BatchCustomer(c.pk, c.external_id, None, None, None) for c in customers]

    services._customers_write(rows, state, clocks)

    stored = [Customer.objects.get(pk=c.pk) for c in customers]
    assert [c.profile_state for c in stored] == [json.loads(json.dumps(e.profile_state))
                                                for e in expected]
    assert [c.profile_updated_at for c in stored] == [e.profile_updated_at for e in expected]


def test_a_stored_profile_reads_back_exactly_inf_and_all_17_digits_included():
    state = profile_example()
    customers = [CustomerFactory(), CustomerFactory()]
    clocks = np.array([T0.timestamp(), T0.timestamp() + 60])
    profile_states_store(customers, state, clocks)
    customers_save_fields(customers, ["profile_state", "profile_updated_at"])

    read, read_clocks = profile_states_load(list(Customer.objects.order_by("pk")), at=T0)

    for name in services.PROFILE_FIELDS:
        np.testing.assert_array_equal(getattr(read, name), getattr(state, name), err_msg=name)
    assert np.isinf(read.days_since_contact).any()
    np.testing.assert_array_equal(read_clocks, clocks)


@needs_postgresql
def test_flat_profile_read_gives_what_profile_states_load_gives():
    state = profile_example()
    stored = [SimpleNamespace(), SimpleNamespace()]
    profile_states_store(stored, state, np.array([T0.timestamp(), T0.timestamp() + 60]))
    partial = {k: v for k, v in stored[0].profile_state.items() if k != "revenue"}
    customers = [CustomerFactory(profile_state=s.profile_state,
                                 profile_updated_at=s.profile_updated_at) for s in stored]
    customers += [CustomerFactory(), CustomerFactory(profile_state=partial)]
    at = T0 + timedelta(days=1, seconds=5)
    rows = services._customers_read_locked([c.external_id for c in customers])
    flat_state, flat_clocks = services._profile_states_from_fields(
        [row.profile_state for row in rows], [row.profile_updated_at for row in rows], at=at)
    state, clocks = profile_states_load(list(Customer.objects.order_by("pk")), at=at)
    for name in services.PROFILE_FIELDS:
        np.testing.assert_array_equal(getattr(flat_state, name), getattr(state, name), err_msg=name)
    np.testing.assert_array_equal(flat_clocks, clocks)


def test_flat_profile_of_another_shape_is_refused():
    assert services._profile_states_from_fields(["[[1.0, 2.0], 3.0]"], [None], at=T0) is None
    assert services._profile_states_from_fields(['["x"]'], [None], at=T0) is None
    assert services._profile_states_from_fields(["[1.0]"], [None], at=T0) is None
