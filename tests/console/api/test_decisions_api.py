"""POST /api/v1/decisions, /decisions/batch and /decisions/<id>/release."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from crm_console.decisioning.models import Decision, Explanation
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, policy_add, token_post,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/decisions"


@pytest.fixture
def creds(db):
    return integration(scopes=["decisions:write"])


@pytest.fixture
def campaign(db):
    return live_campaign()


def test_decision_answers_action_propensity_reasons_and_explanation_url(client, creds, campaign):
    customer_with_consent("c1")
    response = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk,
                                        "context": {"page": "home"}}, creds)
    assert response.status_code == 201, response.content
    body = response.json()
    decision = Decision.objects.get(pk=body["decision_id"])
    assert body["action"]["id"] == decision.action_id
    assert 0 < body["propensity"] <= 1 and body["propensity"] == decision.propensity
    assert body["explanation_url"] == f"/decisions/{decision.pk}/"
    assert len(body["reasons"]) <= 3
    assert decision.context == {"page": "home"}
    assert decision.policy_version.status == "live"
    assert Explanation.objects.filter(decision=decision).exists()
    assert "Location" not in response


def test_decision_logs_features_mask_and_mask_reasons(client, creds, campaign):
    customer_with_consent("c1", channels=("email",))
    body = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
    decision = Decision.objects.get(pk=body["decision_id"])
    assert len(decision.features) == 32
    assert len(decision.action_mask) == len(decision.action_probabilities)
    assert decision.mask_reasons.get("CONSENT")  # no SMS consent: the SMS actions were blocked


def test_unknown_customer_is_400_and_writes_nothing(client, creds, campaign):
    response = token_post(client, URL, {"customer": "nobody", "campaign": campaign.pk}, creds)
    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]
    assert Decision.objects.count() == 0


def test_unknown_campaign_is_400(client, creds):
    customer_with_consent("c1")
    response = token_post(client, URL, {"customer": "c1", "campaign": 9999}, creds)
    assert response.status_code == 400
    assert "campaign" in response.json()["error"]["fields"]


def test_missing_fields_are_named(client, creds):
    response = token_post(client, URL, {}, creds)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"customer", "campaign"}


def test_missing_token_is_401(client, campaign):
    customer_with_consent("c1")
    response = client.post(URL, {"customer": "c1", "campaign": campaign.pk},
                           content_type="application/json")
    assert response.status_code == 401
    assert Decision.objects.count() == 0


def test_events_only_token_cannot_decide(client, campaign):
    creds = integration(scopes=["events:write"], name="events only")
    customer_with_consent("c1")
    response = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds)
    assert response.status_code == 403
    assert Decision.objects.count() == 0


def test_batch_decides_for_every_customer(client, creds, campaign):
    for i in range(5):
        customer_with_consent(f"c{i}")
    response = token_post(client, f"{URL}/batch", {
        "campaign": campaign.pk, "customers": [f"c{i}" for i in range(5)]}, creds)
    assert response.status_code == 201, response.content
    assert len(response.json()["decisions"]) == 5
    assert Decision.objects.count() == 5


def test_batch_with_an_unknown_customer_writes_nothing(client, creds, campaign):
    customer_with_consent("c0")
    response = token_post(client, f"{URL}/batch", {
        "campaign": campaign.pk, "customers": ["c0", "ghost"]}, creds)
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["customers"].keys() == {"1"}
    assert Decision.objects.count() == 0


def test_batch_over_1000_is_413(client, creds, campaign):
    response = token_post(client, f"{URL}/batch", {
        "campaign": campaign.pk, "customers": [f"c{i}" for i in range(1001)]}, creds)
    assert response.status_code == 413


def test_release_frees_the_contact(client, creds):
    campaign = live_campaign(caps={"email": (1, 7), "sms": (0, 7)}, overall=(1, 7))
    customer_with_consent("c1")
    decision = None
    for _ in range(30):
        body = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
        if body["action"]["contact"]:
            decision = Decision.objects.get(pk=body["decision_id"])
            break
    assert decision is not None
    # the cap (1 contact) is now used: nothing but "no contact" can be chosen
    blocked = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
    assert blocked["action"]["contact"] is False
    response = token_post(client, f"{URL}/{decision.pk}/release", {"reason": "bounced"}, creds)
    assert response.status_code == 200
    assert response.json()["status"] == "released"
    allowed = Decision.objects.latest("id")
    mask_after = None
    for _ in range(30):
        body = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
        mask_after = Decision.objects.get(pk=body["decision_id"]).action_mask
        if body["action"]["contact"]:
            break
    assert any(mask_after[1:]), "after the release the email actions are allowed again"
    assert allowed.pk


def _contact_answer(client, creds, campaign, customer="c1"):
    for _ in range(30):  # the policy may choose no contact
        body = token_post(client, URL, {"customer": customer, "campaign": campaign.pk},
                          creds).json()
        if body["action"]["contact"]:
            return body
        Decision.objects.filter(pk=body["decision_id"]).update(status=Decision.Status.RELEASED)
    raise AssertionError("the policy never contacted")


def test_a_contact_answer_says_when_to_send_in_the_customers_time_zone(client, creds, campaign):
    customer_with_consent("c1", time_zone="Asia/Tokyo")
    body = _contact_answer(client, creds, campaign)
    decision = Decision.objects.get(pk=body["decision_id"])
    assert datetime.fromisoformat(body["send_at"]) == decision.send_at
    window = body["action"]["send_window"]
    assert window["time_zone"] == "Asia/Tokyo"
    local = decision.send_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert window["start_hour"] <= local.hour < window["end_hour"]
    assert decision.send_at >= decision.decided_at


def test_a_no_contact_answer_has_no_send_time(client, creds, campaign):
    customer_with_consent("c1", channels=())
    body = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
    assert body["action"]["contact"] is False and body["send_at"] is None


def test_decision_status_says_decided_then_released_with_the_reason(client, creds, campaign):
    customer_with_consent("c1")
    body = _contact_answer(client, creds, campaign)
    path = f"{URL}/{body['decision_id']}"
    status = client.get(path, HTTP_AUTHORIZATION=f"Bearer {creds.token}").json()
    assert status == {"decision_id": body["decision_id"], "status": "decided",
                      "send_at": body["send_at"], "contact": True,
                      "released_reason": None}
    token_post(client, f"{path}/release", {"reason": "bounced"}, creds)
    status = client.get(path, HTTP_AUTHORIZATION=f"Bearer {creds.token}").json()
    assert status["status"] == "released" and status["released_reason"] == "bounced"


def test_decision_status_of_an_unknown_decision_is_404(client, creds):
    response = client.get(f"{URL}/424242", HTTP_AUTHORIZATION=f"Bearer {creds.token}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_decision_status_needs_a_decisions_token(client, campaign):
    events_only = integration(scopes=["events:write"], name="events only")
    assert client.get(f"{URL}/1").status_code == 401
    response = client.get(f"{URL}/1", HTTP_AUTHORIZATION=f"Bearer {events_only.token}")
    assert response.status_code == 403


def test_release_of_unknown_decision_is_404(client, creds):
    response = token_post(client, f"{URL}/424242/release", {}, creds)
    assert response.status_code == 404


def test_release_of_no_contact_decision_is_409(client, creds, campaign):
    customer_with_consent("c1", channels=())  # no consent at all: only "no contact" is possible
    body = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
    assert body["action"]["contact"] is False
    response = token_post(client, f"{URL}/{body['decision_id']}/release", {}, creds)
    assert response.status_code == 409


def test_shadow_policy_choice_is_stored_in_context(client, creds, campaign):
    shadow = policy_add(campaign, algorithm="rule_based", status="shadow")
    customer_with_consent("c1")
    body = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds).json()
    context = Decision.objects.get(pk=body["decision_id"]).context
    assert context["shadow"]["version"] == shadow.version
    assert context["shadow"]["agrees"] == (context["shadow"]["action_index"] ==
                                           body["action"]["index"])


def test_schema_and_docs_render(admin_client_role):
    schema = admin_client_role.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/events" in text and "X-Signature" in text and "bearer" in text
    docs = admin_client_role.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn.jsdelivr" not in docs.content


def test_each_integration_is_throttled_separately(client, campaign, monkeypatch):
    from django.core.cache import cache
    from crm_console.api.throttling import IntegrationRateThrottle

    monkeypatch.setattr(IntegrationRateThrottle, "THROTTLE_RATES", {"integration": "2/day"})
    cache.clear()
    customer_with_consent("c1")
    first, second = integration(name="CRM A"), integration(name="CRM B")
    payload = {"customer": "c1", "campaign": campaign.pk}
    statuses = [token_post(client, URL, payload, first).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert token_post(client, URL, payload, second).status_code == 201
    throttled = token_post(client, URL, payload, first)
    assert throttled.json()["error"]["code"] == "throttled" and "Retry-After" in throttled
    cache.clear()


def test_an_unknown_api_path_answers_the_error_json(client, creds):
    response = client.get("/api/v1/no-such-thing", HTTP_AUTHORIZATION=f"Bearer {creds.token}")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_a_console_404_stays_a_page(admin_client):
    response = admin_client.get("/campaigns/999999/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_failure_inside_the_api_answers_the_error_json(client, creds, campaign, monkeypatch):
    from crm_console.decisioning import batching

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(batching, "decision_create", broken)
    customer_with_consent("c1")
    client.raise_request_exception = False
    response = token_post(client, URL, {"customer": "c1", "campaign": campaign.pk}, creds)
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"


def test_a_decision_context_the_database_cannot_store_is_refused(client, creds, campaign):
    customer_with_consent("c1")
    body = json.dumps({"customer": "c1", "campaign": campaign.pk,
                       "context": {"page": "home\x00"}}).encode()
    response = client.generic("POST", URL, body, content_type="application/json",
                              HTTP_AUTHORIZATION=f"Bearer {creds.token}")
    assert response.status_code == 400
    assert "context" in response.json()["error"]["fields"]
    assert Decision.objects.count() == 0


def _post_with_key(client, creds, payload, key, path=URL):
    return client.generic("POST", path, json.dumps(payload).encode(),
                          content_type="application/json", HTTP_IDEMPOTENCY_KEY=key,
                          HTTP_AUTHORIZATION=f"Bearer {creds.token}")


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(client, creds, campaign):
    customer_with_consent("c1")
    payload = {"customer": "c1", "campaign": campaign.pk}
    first = _post_with_key(client, creds, payload, "retry-1")
    again = _post_with_key(client, creds, payload, "retry-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Decision.objects.count() == 1


def test_the_same_idempotency_key_with_another_request_is_422(client, creds, campaign):
    customer_with_consent("c1")
    customer_with_consent("c2")
    _post_with_key(client, creds, {"customer": "c1", "campaign": campaign.pk}, "k")
    other = _post_with_key(client, creds, {"customer": "c2", "campaign": campaign.pk}, "k")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert Decision.objects.count() == 1


def test_a_refused_request_does_not_use_up_its_idempotency_key(client, creds, campaign):
    payload = {"customer": "c1", "campaign": campaign.pk}
    assert _post_with_key(client, creds, payload, "early").status_code == 400  # unknown yet
    customer_with_consent("c1")
    assert _post_with_key(client, creds, payload, "early").status_code == 201


def test_batch_decisions_honour_the_idempotency_key(client, creds, campaign):
    for name in ("c1", "c2"):
        customer_with_consent(name)
    payload = {"campaign": campaign.pk, "customers": ["c1", "c2"]}
    first = _post_with_key(client, creds, payload, "b-1", path=f"{URL}/batch")
    again = _post_with_key(client, creds, payload, "b-1", path=f"{URL}/batch")
    assert again.json() == first.json() and Decision.objects.count() == 2


def test_another_integration_may_use_the_same_idempotency_key(client, creds, campaign):
    customer_with_consent("c1")
    other = integration(scopes=["decisions:write"], name="Other CRM")
    payload = {"customer": "c1", "campaign": campaign.pk}
    _post_with_key(client, creds, payload, "shared")
    assert _post_with_key(client, other, payload, "shared").status_code == 201
    assert Decision.objects.count() == 2


@pytest.mark.parametrize("key", ["", " ", "k" * 256])
def test_a_bad_idempotency_key_is_named(client, creds, campaign, key):
    customer_with_consent("c1")
    response = _post_with_key(client, creds, {"customer": "c1", "campaign": campaign.pk}, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert Decision.objects.count() == 0
