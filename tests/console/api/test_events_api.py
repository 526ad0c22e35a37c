"""POST /api/v1/events: signed Segment batches in; every bad input refused with nothing written."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from crm_console.api.services import api_integration_revoke
from crm_console.api.signing import signature_header
from crm_console.customers.models import Consent, Customer, Event
from crm_console.decisioning.models import Decision
from tests.console.api.helpers import (
    customer_with_consent, identify, integration, live_campaign, signed_post, token_post, track,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


@pytest.fixture
def creds(db):
    return integration()


def batch(*events):
    return {"batch": list(events)}


def test_valid_batch_is_accepted_with_counts(client, creds):
    response = signed_post(client, URL, batch(
        identify("c1", "m1", {"email": "c1@example.com", "timezone": "Europe/Paris"}),
        track("c1", "m2", "Email Opened", {"channel": "email"}),
    ), creds)
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 2, "duplicates": 0}
    customer = Customer.objects.get(external_id="c1")
    assert customer.email == "c1@example.com" and customer.time_zone == "Europe/Paris"
    assert Event.objects.count() == 2


def test_path_without_trailing_slash_answers_without_redirect(client, creds):
    response = signed_post(client, URL, batch(track("c1", "m1", "Email Opened")), creds)
    assert response.status_code == 202
    assert "Location" not in response


def test_replayed_batch_writes_nothing_twice(client, creds):
    payload = batch(track("c1", "m1", "Order Completed", {"revenue": 30.0}),
                    track("c1", "m2", "Email Opened"))
    signed_post(client, URL, payload, creds)
    state_after_first = Customer.objects.get(external_id="c1").profile_state
    response = signed_post(client, URL, payload, creds)
    assert response.json() == {"accepted": 0, "duplicates": 2}
    assert Event.objects.count() == 2
    assert Customer.objects.get(external_id="c1").profile_state == state_after_first


def test_repeated_message_id_inside_one_batch_counts_as_duplicate(client, creds):
    response = signed_post(client, URL, batch(track("c1", "m1", "Email Opened"),
                                              track("c1", "m1", "Email Opened")), creds)
    assert response.json() == {"accepted": 1, "duplicates": 1}


def test_unknown_event_name_is_kept_as_generic_event(client, creds):
    signed_post(client, URL, batch(track("c1", "m1", "Wishlist Shared", {"item": 7})), creds)
    event = Event.objects.get()
    assert event.name == "Wishlist Shared" and event.properties == {"item": 7}


def test_invalid_item_among_valid_ones_writes_nothing(client, creds):
    response = signed_post(client, URL, batch(
        track("c1", "m1", "Email Opened"), track("c2", "m2", "Email Opened"),
        track("c3", "m3", "Email Opened", timestamp="yesterday"),
    ), creds)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]["batch"]) == ["2"]
    assert "timestamp" in error["fields"]["batch"]["2"]
    assert Event.objects.count() == 0 and Customer.objects.count() == 0


@pytest.mark.parametrize("item, field", [
    ({"type": "page", "userId": "c", "messageId": "m", "timestamp": "2026-11-22T10:00:00Z"}, "type"),
    ({"type": "track", "messageId": "m", "event": "X", "timestamp": "2026-11-22T10:00:00Z"}, "userId"),
    ({"type": "track", "userId": "c", "event": "X", "timestamp": "2026-11-22T10:00:00Z"}, "messageId"),
    ({"type": "track", "userId": "c", "messageId": "m", "timestamp": "2026-11-22T10:00:00Z"}, "event"),
    (track("c", "m", "Order Completed", {"revenue": -5}), "properties.revenue"),
    (track("c", "m", "Email Opened", {"channel": "pigeon"}), "properties.channel"),
    (track("c", "m", "Delivery Failed", {}), "properties.decision_id"),
    (track("c", "m", "Email Delivered", {}), "properties.decision_id"),
    (identify("c", "m", {"timezone": "Mars/Olympus"}), "traits.timezone"),
    (identify("c", "m", {"email": "not-an-email"}), "traits.email"),
    (identify("c", "m", {"email": 42}), "traits.email"),
    (identify("c", "m", {"email": {"a": "b"}}), "traits.email"),
    (identify("c", "m", {"email": "a" * 250 + "@x.io"}), "traits.email"),
    (track("c", "m", "Email Opened", {"channel": ["email"]}), "properties.channel"),
    (track("c", "m", "Email Opened", {"channel": {"email": 1}}), "properties.channel"),
    (track("c", "m", "Email Opened", {"decision_id": "²"}), "properties.decision_id"),
    (track("c", "m", "Email Opened", {"decision_id": 2**70}), "properties.decision_id"),
    (track("c", "m", "Order Completed", {"revenue": 1.7e308}), "properties.revenue"),
    (track("c", "m", "Email Opened", timestamp="9999-12-31T23:59:59-01:00"), "timestamp"),
    (track("c", "m", "Email Opened", timestamp="0001-01-01T00:00:00+01:00"), "timestamp"),
    (track("c", "m", "Email Opened", timestamp="9999-01-01T00:00:00Z"), "timestamp"),
    (track("c", "m", "Email Opened", timestamp="1969-07-20T20:17:00Z"), "timestamp"),
])
def test_each_bad_field_is_named(client, creds, item, field):
    response = signed_post(client, URL, batch(item), creds)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]["batch"]["0"]
    assert Event.objects.count() == 0


def test_not_a_batch_is_refused(client, creds):
    response = signed_post(client, URL, {"events": []}, creds)
    assert response.status_code == 400
    assert "batch" in response.json()["error"]["fields"]


def test_more_than_1000_events_is_413(client, creds):
    events = [track("c1", f"m{i}", "Email Opened") for i in range(1001)]
    response = signed_post(client, URL, batch(*events), creds)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert Event.objects.count() == 0


def test_body_over_the_byte_limit_is_413(client, creds):
    raw = json.dumps(batch(track("c1", "m1", "X", {"blob": "x" * (3 * 1024 * 1024)}))).encode()
    response = signed_post(client, URL, None, creds, raw=raw)
    assert response.status_code == 413


def test_missing_token_is_401(client, creds):
    response = client.post(URL, batch(track("c1", "m1", "X")), content_type="application/json")
    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_wrong_token_is_401(client, creds):
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds, token="nba_wrong")
    assert response.status_code == 401


def test_revoked_token_is_401(client, creds):
    api_integration_revoke(integration=creds.integration)
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert Event.objects.count() == 0


def test_token_revoked_after_use_is_refused_from_the_next_request(
        client, creds, django_capture_on_commit_callbacks):
    assert signed_post(client, URL, batch(track("c1", "m1", "X")), creds).status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        api_integration_revoke(integration=creds.integration)
    response = signed_post(client, URL, batch(track("c1", "m2", "X")), creds)
    assert response.status_code == 401
    assert Event.objects.count() == 1


def test_token_without_events_scope_is_403(client):
    creds = integration(scopes=["decisions:write"], name="decisions only")
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds)
    assert response.status_code == 403
    assert "events:write" in response.json()["error"]["message"]
    assert Event.objects.count() == 0


def test_missing_signature_is_401(client, creds):
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds, signature="")
    assert response.status_code == 401
    assert "X-Signature" in response.json()["error"]["message"]


def test_bad_signature_is_401(client, creds):
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds,
                           signature=f"t={int(time.time())},v1={'0' * 64}")
    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_signature_of_another_body_is_401(client, creds):
    from crm_console.api.signing import signature_header

    other = signature_header(creds.signing_secret, b'{"batch": []}')
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds, signature=other)
    assert response.status_code == 401


# well clear of the 300 s boundary (exact boundary: the signing unit tests): a slow request must not
# drift the timestamp back inside the tolerance
@pytest.mark.parametrize("offset, words", [(-360, "old"), (+360, "future")])
def test_stale_timestamp_is_401_with_reason_both_ways(client, creds, offset, words):
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds,
                           t=int(time.time()) + offset)
    assert response.status_code == 401
    assert words in response.json()["error"]["message"]
    assert Event.objects.count() == 0


def test_timestamp_inside_tolerance_is_accepted(client, creds):
    response = signed_post(client, URL, batch(track("c1", "m1", "X")), creds,
                           t=int(time.time()) - 240)
    assert response.status_code == 202


def test_order_updates_profile_so_the_next_decision_sees_it(client, creds):
    signed_post(client, URL, batch(track("c1", "m1", "Order Completed", {"revenue": 80.0},
                                         timestamp=timezone.now().isoformat())), creds)
    state = Customer.objects.get(external_id="c1").profile_state
    assert state["lifetime_revenue"] == [80.0]
    assert state["days_since_purchase"][0] < 0.01


def test_consent_changed_takes_effect_at_once(client, creds):
    customer_with_consent("c1")
    signed_post(client, URL, batch(track("c1", "m1", "Consent Changed",
                                         {"channel": "sms", "granted": False})), creds)
    latest = Consent.objects.filter(customer__external_id="c1", channel="sms").order_by(
        "-recorded_at", "-id").first()
    assert latest.granted is False
    assert Customer.objects.get(external_id="c1").profile_state["consent"][0][1] == 0.0


def test_unsubscribed_without_channel_withdraws_every_channel(client, creds):
    customer_with_consent("c1")
    signed_post(client, URL, batch(track("c1", "m1", "Unsubscribed",
                                         timestamp=timezone.now().isoformat())), creds)
    state = Customer.objects.get(external_id="c1").profile_state
    assert state["consent"] == [[0.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", ["Unsubscribed", "Email Unsubscribed"])
def test_unsubscribed_without_channel_withdraws_every_channel_whatever_decision_it_names(
        client, creds, contacted, name):
    signed_post(client, URL, batch(track("c1", "m1", name, {"decision_id": contacted.pk})), creds)
    state = Customer.objects.get(external_id="c1").profile_state
    assert state["consent"] == [[0.0, 0.0, 0.0, 0.0]]
    latest = {c.channel: c.granted for c in Consent.objects.filter(
        customer__external_id="c1").order_by("recorded_at", "id")}
    assert latest == {"email": False, "sms": False, "push": False, "call_centre": False}


@pytest.mark.parametrize("name", ["Unsubscribed", "Email Unsubscribed"])
def test_unsubscribed_with_a_channel_withdraws_that_channel_only(client, creds, name):
    customer_with_consent("c1")
    signed_post(client, URL, batch(track("c1", "m1", name, {"channel": "sms"})), creds)
    latest = {c.channel: c.granted for c in Consent.objects.filter(
        customer__external_id="c1").order_by("recorded_at", "id")}
    assert latest == {"email": True, "sms": False}


def scheduled_in(decision, hours):
    send_at = timezone.now() + timedelta(hours=hours)
    Decision.objects.filter(pk=decision.pk).update(send_at=send_at)
    return send_at


def test_an_unsubscribe_releases_the_message_still_scheduled_on_that_channel(
        client, creds, contacted):
    scheduled_in(contacted, 5)
    signed_post(client, URL, batch(track("c1", "m1", "Unsubscribed",
                                         {"channel": contacted.action.channel})), creds)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.RELEASED
    assert contacted.context["released"]["reason"] == "consent withdrawn"


def test_a_consent_change_releases_the_scheduled_message_too(client, creds, contacted):
    scheduled_in(contacted, 5)
    signed_post(client, URL, batch(track("c1", "m1", "Consent Changed", {
        "channel": contacted.action.channel, "granted": False})), creds)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.RELEASED


def test_an_unsubscribe_on_another_channel_leaves_the_scheduled_message(client, creds, contacted):
    scheduled_in(contacted, 5)
    other = "sms" if contacted.action.channel == "email" else "email"
    signed_post(client, URL, batch(track("c1", "m1", "Unsubscribed", {"channel": other})), creds)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DECIDED


def test_an_unsubscribe_after_the_message_went_out_releases_nothing(client, creds, contacted):
    scheduled_in(contacted, -2)
    signed_post(client, URL, batch(track("c1", "m1", "Unsubscribed")), creds)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DECIDED


def test_a_delivery_receipt_moves_the_send_time_to_when_it_went_out(client, creds, contacted):
    went_out = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    signed_post(client, URL, batch(track("c1", "m1", "Message Delivered",
                                         {"decision_id": contacted.pk},
                                         timestamp=went_out.isoformat())), creds)
    contacted.refresh_from_db()
    assert contacted.status == Decision.Status.DELIVERED and contacted.send_at == went_out


def test_delivery_failed_releases_the_decision(client, creds):
    from crm_console.decisioning.batching import decision_create

    campaign = live_campaign(algorithm="rule_based")
    customer_with_consent("c1")
    decision = None
    for _ in range(20):  # the rules may say no contact; find one that contacts
        decision = decision_create(campaign=campaign, customer_external_id="c1").decision
        if not decision.action.is_no_contact:
            break
        Decision.objects.filter(pk=decision.pk).update(status=Decision.Status.RELEASED)
    assert not decision.action.is_no_contact
    response = signed_post(client, URL, batch(track("c1", "m1", "Delivery Failed",
                                                    {"decision_id": decision.pk})), creds)
    assert response.status_code == 202
    decision.refresh_from_db()
    assert decision.status == Decision.Status.RELEASED


def contact_decision(campaign, external_id):
    from crm_console.decisioning.batching import decision_create

    for _ in range(20):  # the rules may say no contact; find one that contacts
        decision = decision_create(campaign=campaign, customer_external_id=external_id).decision
        if not decision.action.is_no_contact:
            return decision
        Decision.objects.filter(pk=decision.pk).update(status=Decision.Status.RELEASED)
    raise AssertionError("the policy never contacted")


@pytest.fixture
def contacted(db):
    """A decision of the rules that contacted customer c1."""
    campaign = live_campaign(algorithm="rule_based")
    customer_with_consent("c1")
    return contact_decision(campaign, "c1")


def test_delivery_receipt_marks_the_decision_delivered_and_release_is_then_refused(
        client, creds, contacted):
    decision = contacted
    response = signed_post(client, URL, batch(track("c1", "m1", "Email Delivered",
                                                    {"decision_id": decision.pk})), creds)
    assert response.status_code == 202
    decision.refresh_from_db()
    assert decision.status == Decision.Status.DELIVERED
    assert "delivered" in decision.context
    failed = signed_post(client, URL, batch(track("c1", "m2", "Delivery Failed",
                                                  {"decision_id": decision.pk})), creds)
    assert failed.status_code == 202
    decision.refresh_from_db()
    assert decision.status == Decision.Status.DELIVERED  # a late failure does not undo a receipt
    release = token_post(client, f"/api/v1/decisions/{decision.pk}/release", {},
                         integration(scopes=["decisions:write"], name="decisions"))
    assert release.status_code == 409


def test_delivery_receipt_after_a_release_counts_the_contact_again(client, creds, contacted):
    decision = contacted
    signed_post(client, URL, batch(track("c1", "m1", "Delivery Failed",
                                         {"decision_id": decision.pk})), creds)
    signed_post(client, URL, batch(track("c1", "m2", "Message Delivered",
                                         {"decision_id": decision.pk})), creds)
    decision.refresh_from_db()
    assert decision.status == Decision.Status.DELIVERED


def test_delivery_receipt_for_another_customers_decision_changes_nothing(client, creds, contacted):
    decision = contacted
    signed_post(client, URL, batch(track("someone-else", "m1", "Email Delivered",
                                         {"decision_id": decision.pk})), creds)
    decision.refresh_from_db()
    assert decision.status == Decision.Status.DECIDED


def test_decisions_endpoint_does_not_accept_events_token_only(client):
    creds = integration(scopes=["events:write"], name="events only")
    response = token_post(client, "/api/v1/decisions", {"customer": "c1", "campaign": 1}, creds)
    assert response.status_code == 403


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("properties, field", [
    ({"note": "nul \x00 inside"}, "properties.note"),
    ({"note": "lone \ud800 surrogate"}, "properties.note"),
    ({"bad\x00key": 1}, "properties"),
    ({"deep": _nested(40)}, None),
])
def test_text_the_database_cannot_store_is_refused_by_field(client, creds, properties, field):
    body = json.dumps(batch(track("c1", "m1", "Email Opened", properties))).encode()
    response = signed_post(client, URL, None, creds, raw=body)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]["batch"]["0"]
    assert field is None or field in fields
    assert Event.objects.count() == 0


def test_json_nested_thousands_deep_is_a_400_not_a_500(client, creds):
    body = ('{"batch": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    response = signed_post(client, URL, None, creds, raw=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_chunked_body_without_content_length_is_411_not_a_signature_error(client, creds):
    body = json.dumps(batch(track("c1", "m1", "Email Opened"))).encode()
    response = client.generic(
        "POST", URL, body, content_type="application/json", CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked", HTTP_AUTHORIZATION=f"Bearer {creds.token}",
        HTTP_X_SIGNATURE=signature_header(creds.signing_secret, body))
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert Event.objects.count() == 0
