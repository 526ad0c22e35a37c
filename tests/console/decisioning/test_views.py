"""Decision explorer (filters, pagination) and decision detail (odds, masks and rules, SHAP)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from crm_console.decisioning.models import Decision, Explanation
from tests.factories import ActionFactory, DecisionFactory, PolicyVersionFactory

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    return [d.pk for d in response.context["page"]]


def test_explorer_filters_by_channel_and_holdout(marketer_client):
    email = DecisionFactory()
    sms = DecisionFactory(campaign=email.campaign, holdout=True,
                          action=ActionFactory(campaign=email.campaign, channel="sms"))
    assert ids(marketer_client.get("/decisions/", {"channel": "sms"})) == [sms.pk]
    assert ids(marketer_client.get("/decisions/", {"holdout": "no"})) == [email.pk]
    assert set(ids(marketer_client.get("/decisions/"))) == {email.pk, sms.pk}


def test_explorer_filters_by_campaign_offer_policy_version_and_date(marketer_client):
    old = DecisionFactory(decided_at=timezone.now() - timedelta(days=10))
    version = PolicyVersionFactory(campaign=old.campaign)
    new = DecisionFactory(campaign=old.campaign, policy_version=version,
                          action=ActionFactory(campaign=old.campaign, offer="discount_20"))
    other = DecisionFactory()
    assert set(ids(marketer_client.get("/decisions/", {"campaign": old.campaign_id}))) == {old.pk, new.pk}
    assert ids(marketer_client.get("/decisions/", {"offer": "discount_20"})) == [new.pk]
    assert ids(marketer_client.get("/decisions/", {"policy_version": version.pk})) == [new.pk]
    since = (timezone.localdate() - timedelta(days=2)).isoformat()
    assert set(ids(marketer_client.get("/decisions/", {"date_from": since}))) == {new.pk, other.pk}


def test_explorer_paginates_and_keeps_the_filters_in_page_links(marketer_client):
    first = DecisionFactory()
    for _ in range(54):
        DecisionFactory(campaign=first.campaign)
    response = marketer_client.get("/decisions/", {"channel": "email"})
    assert len(response.context["page"]) == 50
    assert b"channel=email&amp;page=2" in response.content
    assert len(marketer_client.get("/decisions/", {"channel": "email", "page": 2}).context["page"]) == 5


def test_explorer_shows_a_field_error_for_reversed_dates(marketer_client):
    response = marketer_client.get("/decisions/", {"date_from": "2026-02-02", "date_to": "2026-01-01"})
    assert response.status_code == 200
    assert "date_to" in response.context["form"].errors


def test_detail_reads_the_stored_explanation(reviewer_client):
    decision = DecisionFactory()
    Explanation.objects.create(
        decision=decision, method="linear", base_value=0.2, explained_value=0.9,
        shap_values={"email_open_rate": 0.5, "days_since_purchase": 0.2, "sms_consent": 0.0},
        sentence="Email chosen: opened 3 of the last 5 emails (+0.50)",
        runner_up={"label": "No contact", "probability": 0.1},
    )
    response = reviewer_client.get(f"/decisions/{decision.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Email chosen: opened 3 of the last 5 emails (+0.50)" in html
    chart = json.loads(re.search(r'<script id="shap-chart-data" type="application/json">(.*?)</script>',
                                 html, re.S).group(1))
    waterfall = chart["data"][0]
    assert waterfall["type"] == "waterfall"
    # marketer words, not codes, with the customer's own value beside each reason
    assert "email open rate 50 %" in waterfall["y"]
    assert "last purchase 18 days ago" in waterfall["y"]
    assert "The customer's value" in html and "last purchase 18 days ago" in html
    assert waterfall["x"][-1] == pytest.approx(0.9)


def test_detail_of_an_erased_customers_decision_says_its_explanation_was_erased(reviewer_client,
                                                                                reviewer):
    from crm_console.compliance.data_requests import customer_erase

    decision = DecisionFactory()
    customer_erase(customer=decision.customer, requested_by=reviewer)
    response = reviewer_client.get(f"/decisions/{decision.pk}/")
    assert response.status_code == 200
    assert "erased" in response.context["explanation"].error
    assert response.context["detail"].features == []


def test_detail_says_when_the_message_goes_out_in_the_customers_time(reviewer_client):
    from datetime import datetime
    from datetime import timezone as dt_timezone

    decision = DecisionFactory(send_at=datetime(2026, 6, 1, 23, tzinfo=dt_timezone.utc))
    decision.customer.time_zone = "Asia/Tokyo"
    decision.customer.save()
    html = reviewer_client.get(f"/decisions/{decision.pk}/").content.decode()
    assert "Sends at" in html
    assert "2026-06-01 23:00 UTC, 08:00 in the customer's time zone (Asia/Tokyo)" in html


def test_detail_names_the_rule_that_masked_each_action(reviewer_client):
    decision = DecisionFactory(action_mask=[True, True, False],
                               action_probabilities=[0.1, 0.9, 0.0],
                               mask_reasons={"CONSENT": [2], "QUIET_HOURS": [2]})
    ActionFactory(campaign=decision.campaign, channel="sms")
    Explanation.objects.create(decision=decision, method="linear", base_value=0, explained_value=1,
                               shap_values={"email_open_rate": 1.0}, sentence="Because.")
    detail = reviewer_client.get(f"/decisions/{decision.pk}/").context["detail"]
    (masked,) = detail.masked
    assert masked.index == 2 and masked.label.startswith("SMS")
    assert set(masked.rules) == {"consent", "quiet hours"}
    assert any("consent" in reason for reason in masked.reasons)
    assert detail.runner_up.label == "No contact"


def test_detail_computes_an_explanation_on_the_fly_when_none_was_logged(small_demo, demo_login):
    decision = Decision.objects.filter(holdout=False).exclude(action__channel="none").first()
    response = demo_login("reviewer").get(f"/decisions/{decision.pk}/")
    explanation = response.context["explanation"]
    assert not explanation.stored and not explanation.error
    assert decision.action.label.split(" - ")[0] in explanation.sentence
    assert explanation.shap_values and response.context["shap_chart"]
    assert not Explanation.objects.filter(decision=decision).exists()  # display only


@pytest.mark.parametrize("control_policy", ["no_contact", "random", "rule_based"])
def test_a_holdout_decision_is_explained_by_the_control_policy_it_was_logged_under(
        small_demo, demo_login, control_policy):
    decision = Decision.objects.filter(holdout=False).exclude(action__channel="none").first()
    Decision.objects.filter(pk=decision.pk).update(holdout=True, policy_version=None,
                                                   policy_name=control_policy)
    response = demo_login("reviewer").get(f"/decisions/{decision.pk}/")
    explanation = response.context["explanation"]
    assert not explanation.error, explanation.sentence


def test_reviewer_sees_the_review_form_and_marketer_does_not(client, marketer, reviewer):
    decision = DecisionFactory()
    client.force_login(reviewer)
    assert b'name="verdict" value="flagged"' in client.get(f"/decisions/{decision.pk}/").content
    client.force_login(marketer)
    assert b'name="verdict"' not in client.get(f"/decisions/{decision.pk}/").content


def test_detail_gives_the_customers_local_time_beside_the_masks(reviewer_client):
    from datetime import datetime
    from datetime import timezone as dt_timezone

    decision = DecisionFactory(decided_at=datetime(2026, 6, 1, 14, 5, tzinfo=dt_timezone.utc))
    decision.customer.time_zone = "America/New_York"
    decision.customer.save()
    html = reviewer_client.get(f"/decisions/{decision.pk}/").content.decode()
    assert ("Decided at 14:05 UTC, 10:05 in the customer&#x27;s time zone (America/New_York)" in html
            or "Decided at 14:05 UTC, 10:05 in the customer's time zone (America/New_York)" in html)
