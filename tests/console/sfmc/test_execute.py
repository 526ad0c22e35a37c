"""POST /integrations/sfmc/<campaign id>/execute: the branch for one contact, decided and logged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm_console.customers.models import Customer
from crm_console.decisioning.models import Decision, Explanation
from crm_console.sfmc.models import SfmcActivity, SfmcCall
from crm_console.sfmc.selectors import activity_branches, branch_for_action
from tests.console.api.helpers import customer_with_consent, live_campaign
from tests.console.sfmc.helpers import execute_claims, post_jwt, sign, url
from tests.factories import SfmcActivityFactory

pytestmark = pytest.mark.django_db


def execute(client, activity, claims):
    return post_jwt(client, url(activity.campaign_id, "execute"), sign(claims))


def test_execute_answers_the_branch_of_the_decided_action(client, activity):
    customer_with_consent("c1")
    response = execute(client, activity, execute_claims("c1"))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    decision = Decision.objects.get()
    assert response.json() == {"branchResult": branch_for_action(activity=activity,
                                                                 action=decision.action)}
    assert response.json()["branchResult"] in {b.key for b in activity_branches(activity=activity)}


def test_execute_logs_the_decision_with_its_explanation_and_journey_context(client, activity):
    customer_with_consent("c1")
    claims = execute_claims(in_arguments=[{"contactKey": "c1", "tier": "gold"}])
    execute(client, activity, claims)
    decision = Decision.objects.get()
    assert decision.customer.external_id == "c1"
    assert decision.campaign_id == activity.campaign_id
    assert decision.context["source"] == "sfmc"
    assert decision.context["in_arguments"] == {"tier": "gold"}
    assert decision.context["sfmc"]["journey_id"] == "9f8e7d6c-journey"
    assert decision.context["sfmc"]["activity_instance_id"] == "inst-1"
    assert decision.policy_version.status == "live"
    assert Explanation.objects.filter(decision=decision).exists()


def test_execute_keeps_the_decision_id_on_the_call(client, activity):
    customer_with_consent("c1")
    execute(client, activity, execute_claims("c1"))
    call = SfmcCall.objects.get()
    assert call.decision_id == Decision.objects.get().pk
    assert call.endpoint == "execute" and call.status_code == 200
    assert call.branch == execute(client, activity, execute_claims("c1")).json()["branchResult"]


def test_a_customer_without_consent_takes_the_no_contact_branch(client, activity):
    customer_with_consent("c1", channels=())
    response = execute(client, activity, execute_claims("c1"))
    assert response.json() == {"branchResult": "no_contact"}
    assert Decision.objects.get().action.is_no_contact


def test_a_retry_gets_the_first_answer_and_no_second_decision(client, activity):
    customer_with_consent("c1")
    first = execute(client, activity, execute_claims("c1"))
    second = execute(client, activity, execute_claims("c1"))
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Decision.objects.count() == 1
    assert SfmcCall.objects.get().retries == 1


def test_another_activity_instance_is_decided_again(client, activity):
    customer_with_consent("c1")
    execute(client, activity, execute_claims("c1", instance="inst-1"))
    execute(client, activity, execute_claims("c1", instance="inst-2"))
    assert Decision.objects.count() == 2


def test_another_contact_at_the_same_instance_is_decided(client, activity):
    customer_with_consent("c1")
    customer_with_consent("c2")
    execute(client, activity, execute_claims("c1"))
    execute(client, activity, execute_claims("c2"))
    assert Decision.objects.count() == 2


def test_a_retry_after_the_window_is_decided_again(client, activity):
    customer_with_consent("c1")
    execute(client, activity, execute_claims("c1"))
    SfmcCall.objects.update(received_at=timezone.now() - timedelta(
        minutes=activity.retry_window_minutes + 1))
    execute(client, activity, execute_claims("c1"))
    assert Decision.objects.count() == 2
    assert SfmcCall.objects.filter(retry_key__isnull=False).count() == 1


def test_the_contact_key_falls_back_to_key_value(client, activity):
    customer_with_consent("c1")
    response = execute(client, activity, execute_claims("c1", in_arguments=[]))
    assert response.status_code == 200
    assert Decision.objects.get().customer.external_id == "c1"


def test_an_unknown_contact_key_takes_no_contact_and_says_why(client, activity):
    response = execute(client, activity, execute_claims("ghost"))
    assert response.status_code == 200
    assert response.json() == {"branchResult": "no_contact"}
    assert Decision.objects.count() == 0
    call = SfmcCall.objects.get()
    assert call.branch == "no_contact" and "Unknown contact key" in call.message


def test_an_unknown_contact_key_is_an_error_when_the_marketer_chose_so(client, campaign):
    activity = SfmcActivityFactory(campaign=campaign,
                                   unknown_contact=SfmcActivity.UnknownContact.ERROR)
    response = execute(client, activity, execute_claims("ghost"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_contact"
    assert Decision.objects.count() == 0
    assert SfmcCall.objects.get().retry_key is None  # a retry is looked at afresh


def test_an_erased_contact_takes_no_contact_without_a_decision(client, activity):
    customer = customer_with_consent("c1")
    Customer.objects.filter(pk=customer.pk).update(erased_at=timezone.now())
    response = execute(client, activity, execute_claims("c1"))
    assert response.json() == {"branchResult": "no_contact"}
    assert Decision.objects.count() == 0
    assert "erased" in SfmcCall.objects.get().message


def test_without_a_live_policy_the_control_policy_decides_logged_as_such(client, campaign):
    campaign.policy_versions.update(status="retired")
    activity = SfmcActivityFactory(campaign=campaign)
    customer_with_consent("c1")
    response = execute(client, activity, execute_claims("c1"))
    assert response.status_code == 200, response.content
    decision = Decision.objects.get()
    assert decision.policy_version is None
    assert decision.policy_name == campaign.control_policy
    assert "control policy" in SfmcCall.objects.get().message


def test_a_campaign_that_is_not_live_is_refused_with_409(client, campaign):
    campaign.status = "paused"
    campaign.save(update_fields=["status"])
    activity = SfmcActivityFactory(campaign=campaign)
    customer_with_consent("c1")
    response = execute(client, activity, execute_claims("c1"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "cannot_decide"
    assert Decision.objects.count() == 0


def test_in_arguments_over_the_size_limit_are_413_and_write_nothing(client, activity):
    customer_with_consent("c1")
    claims = execute_claims(in_arguments=[{"contactKey": "c1", "note": "x" * 9000}])
    response = execute(client, activity, claims)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert Decision.objects.count() == 0 and SfmcCall.objects.count() == 0


def test_a_missing_contact_key_is_400_and_writes_nothing(client, activity):
    claims = execute_claims(None, in_arguments=[{"tier": "gold"}])
    response = execute(client, activity, claims)
    assert response.status_code == 400
    assert "contactKey" in response.json()["error"]["message"]
    assert SfmcCall.objects.count() == 0


def test_in_arguments_that_are_not_a_list_of_objects_are_400(client, activity):
    response = execute(client, activity, execute_claims("c1", inArguments={"contactKey": "c1"}))
    assert response.status_code == 400
    assert SfmcCall.objects.count() == 0


def test_in_arguments_the_database_cannot_store_are_400(client, activity):
    customer_with_consent("c1")
    claims = execute_claims(in_arguments=[{"contactKey": "c1", "note": "a\x00b"}])
    response = execute(client, activity, claims)
    assert response.status_code == 400
    assert Decision.objects.count() == 0


def test_execute_is_post_only(client, activity):
    assert client.get(url(activity.campaign_id, "execute")).status_code == 405


def test_each_campaign_decides_for_its_own_activity(client, activity):
    other = live_campaign(name="Other campaign")
    other_activity = SfmcActivityFactory(campaign=other)
    customer_with_consent("c1")
    execute(client, other_activity, execute_claims("c1"))
    assert Decision.objects.get().campaign_id == other.pk


def test_a_retry_racing_the_first_call_gets_its_answer(client, activity, monkeypatch):
    """The first call committed between the retry's look-up and its claim: the claim fails on
    the retry key and the retry answers the first call's branch."""
    from crm_console.sfmc import services

    customer_with_consent("c1")
    first = execute(client, activity, execute_claims("c1")).json()
    real_first_answer = services._first_answer
    looked = []

    def first_look_misses(**kwargs):
        looked.append(1)
        return None if len(looked) == 1 else real_first_answer(**kwargs)

    monkeypatch.setattr(services, "_first_answer", first_look_misses)
    response = execute(client, activity, execute_claims("c1"))
    assert response.json() == first
    assert Decision.objects.count() == 1
    assert SfmcCall.objects.count() == 1


def test_per_action_branches_answer_the_decided_action(client, campaign):
    activity = SfmcActivityFactory(campaign=campaign, branch_by=SfmcActivity.BranchBy.ACTION)
    customer_with_consent("c1")
    branch = execute(client, activity, execute_claims("c1")).json()["branchResult"]
    action = Decision.objects.get().action
    assert branch == ("no_contact" if action.is_no_contact else f"action-{action.pk}")


def test_per_offer_branches_answer_the_decided_offer(client, campaign):
    activity = SfmcActivityFactory(campaign=campaign, branch_by=SfmcActivity.BranchBy.OFFER)
    customer_with_consent("c1")
    branch = execute(client, activity, execute_claims("c1")).json()["branchResult"]
    action = Decision.objects.get().action
    assert branch == ("no_contact" if action.is_no_contact else action.offer)


def test_the_rules_choosing_email_send_the_contact_down_the_email_branch(client):
    campaign = live_campaign(algorithm="rule_based", decision_mode="greedy", name="Rules")
    activity = SfmcActivityFactory(campaign=campaign)
    customer_with_consent("c1", channels=("email",))
    response = execute(client, activity, execute_claims("c1"))
    assert response.json() == {"branchResult": "email"}
    decision = Decision.objects.get()
    assert decision.action.channel == "email"
    assert decision.policy_name == "rule_based"


def test_a_contact_erased_while_deciding_takes_no_contact_and_its_key_is_not_logged(
        client, activity, monkeypatch):
    from crm_console.decisioning import batching, services as decision_services

    customer_with_consent("secret-key-1")

    def erased_meanwhile(**kwargs):
        raise decision_services.DecisionError(
            {"customer": ["Customer 'secret-key-1' was erased: no decisions."]})

    monkeypatch.setattr(batching, "decision_create", erased_meanwhile)
    response = execute(client, activity, execute_claims("secret-key-1"))
    assert response.json() == {"branchResult": "no_contact"}
    assert "secret-key-1" not in SfmcCall.objects.get().message


def test_a_contact_key_that_is_not_a_string_is_400(client, activity):
    response = execute(client, activity, execute_claims(None, in_arguments=[{"contactKey": 42}]))
    assert response.status_code == 400
    assert "non-empty string" in response.json()["error"]["message"]
    assert SfmcCall.objects.count() == 0


def test_redis_unreachable_where_the_decision_needs_it_is_503_with_retry_after(
        client, activity, monkeypatch):
    from crm_console.sfmc import services
    from crm_console.shared_cache import SharedCacheDown

    def redis_down(**kwargs):
        raise SharedCacheDown("down")

    customer_with_consent("c1")
    monkeypatch.setattr(services, "split_execute", redis_down)
    response = execute(client, activity, execute_claims("c1"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response["Retry-After"]) >= 1
