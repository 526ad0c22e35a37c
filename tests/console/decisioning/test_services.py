"""The live decision loop: masks always win, holdout is stable, caps count, explanations stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
import pytest
from django.db import connection

from crm_console.campaigns.services import suppression_add
from crm_console.decisioning.delivery import consent_record
from crm_console.decisioning.holdout import in_holdout
from crm_console.decisioning.models import Decision
from crm_console.decisioning.batching import decision_create
from crm_console.decisioning.services import DecisionError, decisions_create, decisions_release
from tests.conftest import needs_real_stack
from tests.console.api.helpers import customer_with_consent, live_campaign, policy_add

pytestmark = pytest.mark.django_db


def decide(campaign, external_id, **kwargs):
    return decision_create(campaign=campaign, customer_external_id=external_id, **kwargs).decision


def test_decision_never_picks_a_masked_action():
    campaign = live_campaign(caps={"email": (50, 7), "sms": (0, 7)}, overall=(50, 7))
    customers = [customer_with_consent(f"c{i}", channels=("email",) if i % 2 else ()) for i in range(40)]
    outcomes = decisions_create(campaign=campaign, customer_external_ids=[c.external_id for c in customers])
    for outcome in outcomes:
        decision = outcome.decision
        assert decision.action_mask[decision.action_index] is True
        assert decision.action.channel != "sms"  # SMS cap 0 closes the channel
        if decision.customer.external_id in {f"c{i}" for i in range(0, 40, 2)}:
            assert decision.action.is_no_contact  # no consent anywhere


def test_consent_revoked_means_no_contact_on_that_channel_from_the_next_request():
    campaign = live_campaign(caps={"email": (0, 7), "sms": (100, 7)}, overall=(100, 7))
    customer = customer_with_consent("c1")
    consent_record(customer=customer, channel="sms", granted=False, source="test")
    for _ in range(15):
        decision = decide(campaign, "c1")
        assert decision.action.channel != "sms"
        assert decision.mask_reasons["CONSENT"]


def test_suppressed_customer_only_gets_no_contact():
    campaign = live_campaign(caps={"email": (100, 7), "sms": (100, 7)}, overall=(100, 7))
    customer_with_consent("c1")
    suppression_add(contact_policy=campaign.contact_policy, external_ids=["c1"], reason="complaint")
    for _ in range(10):
        decision = decide(campaign, "c1")
        assert decision.action.is_no_contact
        assert decision.mask_reasons["SUPPRESSED"]


def test_disabled_action_is_never_chosen():
    campaign = live_campaign(caps={"email": (100, 7), "sms": (100, 7)}, overall=(100, 7))
    campaign.actions.exclude(channel="none").exclude(channel="sms", send_window="evening").update(enabled=False)
    customer_with_consent("c1")
    for _ in range(10):
        decision = decide(campaign, "c1")
        assert decision.action.is_no_contact or (decision.action.channel, decision.action.send_window) == ("sms", "evening")
        Decision.objects.filter(pk=decision.pk).update(status=Decision.Status.RELEASED)


def _only_email_morning(campaign):
    campaign.actions.exclude(channel="none").exclude(
        channel="email", send_window="morning", offer="content").update(enabled=False)


def test_a_message_is_sent_in_the_customers_own_morning():
    # at 07:30 UTC on 1 June it is 00:30 in Los Angeles (morning 08:00 PDT = 15:00 UTC today)
    # and 16:30 in Tokyo (its morning has passed: 08:00 JST tomorrow = 23:00 UTC today)
    campaign = live_campaign(caps={"email": (100, 7), "sms": (100, 7)}, overall=(100, 7))
    _only_email_morning(campaign)
    customer_with_consent("la", time_zone="America/Los_Angeles")
    customer_with_consent("tokyo", time_zone="Asia/Tokyo")
    now = datetime(2026, 6, 1, 7, 30, tzinfo=dt_timezone.utc)
    sent = {}
    for attempt in range(40):  # the policy may choose no contact; only the morning email is on
        for outcome in decisions_create(campaign=campaign, customer_external_ids=["la", "tokyo"],
                                        now=now):
            decision = outcome.decision
            if not decision.action.is_no_contact:
                sent.setdefault(decision.customer.external_id, decision.send_at)
                Decision.objects.filter(pk=decision.pk).update(status=Decision.Status.RELEASED)
        if len(sent) == 2:
            break
    assert sent == {"la": datetime(2026, 6, 1, 15, tzinfo=dt_timezone.utc),
                    "tokyo": datetime(2026, 6, 1, 23, tzinfo=dt_timezone.utc)}


def test_a_no_contact_decision_has_no_send_time():
    campaign = live_campaign(caps={"email": (0, 7), "sms": (0, 7)}, overall=(100, 7))
    customer_with_consent("c1")
    decision = decide(campaign, "c1")
    assert decision.action.is_no_contact and decision.send_at is None


def test_a_window_inside_local_quiet_hours_is_blocked_in_every_time_zone():
    campaign = live_campaign(quiet_hours=(20, 9), caps={"email": (100, 7), "sms": (100, 7)},
                             overall=(100, 7))
    customer_with_consent("la", time_zone="America/Los_Angeles")
    customer_with_consent("tokyo", time_zone="Asia/Tokyo")
    la, tokyo = (o.decision for o in decisions_create(
        campaign=campaign, customer_external_ids=["la", "tokyo"]))
    morning = {i for i, a in enumerate(_actions(campaign)) if a.send_window == "morning"}
    midday = {i for i, a in enumerate(_actions(campaign)) if a.send_window == "midday"}
    for decision in (la, tokyo):
        assert morning <= set(decision.mask_reasons.get("QUIET_HOURS", []))
        assert not midday & set(decision.mask_reasons.get("QUIET_HOURS", []))


def _actions(campaign):
    from crm_console.campaigns.agents_bridge import catalogue_for_campaign

    ids = catalogue_for_campaign(campaign=campaign).action_ids
    by_id = {a.pk: a for a in campaign.actions.all()}
    return [by_id[i] for i in ids]


def test_channel_cap_counts_contacts_in_the_rolling_window():
    campaign = live_campaign(caps={"email": (2, 7), "sms": (0, 7)}, overall=(10, 7))
    customer_with_consent("c1")
    contacts = 0
    for _ in range(40):
        decision = decide(campaign, "c1")
        contacts += not decision.action.is_no_contact
    assert contacts == 2  # a random policy fills the cap and never passes it


def test_released_contacts_no_longer_count():
    campaign = live_campaign(caps={"email": (1, 7), "sms": (0, 7)}, overall=(10, 7))
    customer_with_consent("c1")
    sent = [d for d in (decide(campaign, "c1") for _ in range(30)) if not d.action.is_no_contact]
    assert len(sent) == 1
    assert decisions_release(decision_ids=[sent[0].pk], reason="bounced") == 1
    assert decisions_release(decision_ids=[sent[0].pk], reason="bounced again") == 0
    again = [d for d in (decide(campaign, "c1") for _ in range(30)) if not d.action.is_no_contact]
    assert len(again) == 1


def _profile_of(external_id):
    from crm_console.customers.models import Customer

    return Customer.objects.get(external_id=external_id).profile_state


def _first_contact(campaign, external_id):
    for _ in range(30):
        decision = decide(campaign, external_id)
        if not decision.action.is_no_contact:
            return decision
    raise AssertionError("no contact decided")


def test_a_released_contact_leaves_the_customers_features():
    from crm_console.campaigns.vocabulary import vocabulary

    campaign = live_campaign(caps={"email": (1, 7), "sms": (1, 7)}, overall=(10, 7))
    customer_with_consent("c1")
    decision = _first_contact(campaign, "c1")
    channel = vocabulary().channel_index[decision.action.channel]
    assert _profile_of("c1")["days_since_contact"][0][channel] == 0.0
    decisions_release(decision_ids=[decision.pk], reason="bounced")
    profile = _profile_of("c1")
    assert profile["days_since_contact"][0][channel] is None  # never contacted (inf)
    assert profile["contacts"][0][channel] == pytest.approx(0.0, abs=1e-12)
    assert sum(profile["recent_contacts"][0]) == pytest.approx(0.0, abs=1e-12)


def test_a_receipt_after_a_release_puts_the_contact_back_in_the_features():
    from crm_console.campaigns.vocabulary import vocabulary

    from crm_console.decisioning.services import decisions_mark_delivered

    campaign = live_campaign(caps={"email": (1, 7), "sms": (1, 7)}, overall=(10, 7))
    customer_with_consent("c1")
    decision = _first_contact(campaign, "c1")
    channel = vocabulary().channel_index[decision.action.channel]
    decided = _profile_of("c1")
    decisions_release(decision_ids=[decision.pk], reason="bounced")
    assert _profile_of("c1")["days_since_contact"][0][channel] is None
    assert decisions_mark_delivered(delivered_at={decision.pk: decision.send_at}) == 1
    restored = _profile_of("c1")
    assert restored["days_since_contact"][0][channel] == pytest.approx(0.0, abs=1e-3)
    assert restored["contacts"][0][channel] == pytest.approx(decided["contacts"][0][channel], rel=1e-3)


def test_releasing_a_later_contact_gives_the_channel_back_its_earlier_one():
    from crm_console.campaigns.vocabulary import vocabulary

    campaign = live_campaign(caps={"email": (5, 7), "sms": (5, 7)}, overall=(10, 7))
    customer_with_consent("c1")
    now = datetime(2026, 11, 2, 10, tzinfo=dt_timezone.utc)
    first = next(d for d in (decide(campaign, "c1", now=now) for _ in range(30))
                 if not d.action.is_no_contact)
    later = now + timedelta(days=2)
    channel = first.action.channel
    second = next(d for d in (decide(campaign, "c1", now=later) for _ in range(60))
                  if d.action.channel == channel)
    decisions_release(decision_ids=[second.pk], reason="bounced")
    days_since = _profile_of("c1")["days_since_contact"][0][vocabulary().channel_index[channel]]
    assert days_since == pytest.approx(2.0, abs=1e-3)


def test_minimum_gap_blocks_a_second_contact_the_same_day():
    campaign = live_campaign(caps={"email": (10, 7), "sms": (10, 7)}, overall=(10, 7),
                             min_gap_hours="48")
    customer_with_consent("c1")
    decisions = [decide(campaign, "c1") for _ in range(30)]
    assert sum(not d.action.is_no_contact for d in decisions) == 1


def test_the_explanation_says_how_close_the_last_contact_is_to_this_send():
    # a message decided at 07:00 for the 08:00 window; an hour later the minimum gap masks the
    # evening window too, and the explanation says the last contact is 10 h before that send
    campaign = live_campaign(caps={"email": (10, 7), "sms": (10, 7)}, overall=(10, 7),
                             min_gap_hours="48")
    campaign.actions.exclude(channel="none").exclude(send_window="morning").update(enabled=False)
    customer_with_consent("c1")
    morning = datetime(2026, 11, 2, 7, tzinfo=dt_timezone.utc)
    first = next(d for d in (decide(campaign, "c1", now=morning) for _ in range(30))
                 if not d.action.is_no_contact)
    assert first.send_at == datetime(2026, 11, 2, 8, tzinfo=dt_timezone.utc)
    campaign.actions.exclude(channel="none").update(enabled=True)
    later = decide(campaign, "c1", now=morning + timedelta(hours=1))
    texts = {group["text"] for group in later.explanation.masked_actions}
    assert any(text.startswith("Last contact 10 h before this send (minimum gap of 48 h)")
               for text in texts), texts


def test_holdout_is_stable_and_close_to_the_share():
    campaign = live_campaign(holdout_share="0.2")
    ids = [f"h{i}" for i in range(300)]
    for external_id in ids:
        customer_with_consent(external_id)
    first = {o.decision.customer.external_id: o.decision.holdout
             for o in decisions_create(campaign=campaign, customer_external_ids=ids)}
    second = {o.decision.customer.external_id: o.decision.holdout
              for o in decisions_create(campaign=campaign, customer_external_ids=ids)}
    assert first == second
    assert first == {e: in_holdout(campaign.pk, e, campaign.holdout_share) for e in ids}
    share = np.mean(list(first.values()))
    assert 0.13 < share < 0.27  # 300 draws of p = 0.2: +/- 3.5 standard errors


def test_holdout_decisions_are_logged_under_the_control_policy():
    campaign = live_campaign(holdout_share="0.5")
    ids = [f"h{i}" for i in range(40)]
    for external_id in ids:
        customer_with_consent(external_id)
    outcomes = decisions_create(campaign=campaign, customer_external_ids=ids)
    control = [o.decision for o in outcomes if o.decision.holdout]
    assert control
    for decision in control:
        assert decision.policy_version is None
        assert decision.policy_name == "rule_based"
        assert decision.propensity == 1.0 and decision.greedy


def test_holdout_no_contact_answers_with_the_rule_and_the_blocks_as_reasons():
    campaign = live_campaign(holdout_share="0.5")
    external_id = next(f"h{i}" for i in range(100)
                       if in_holdout(campaign.pk, f"h{i}", campaign.holdout_share))
    customer_with_consent(external_id, channels=())  # no consent: only "no contact" is left
    outcome = decision_create(campaign=campaign, customer_external_id=external_id)
    assert outcome.decision.holdout and outcome.decision.action.is_no_contact
    assert outcome.reasons[0].startswith("decided by the rule: no contact")
    assert any("consent" in reason.lower() for reason in outcome.reasons[1:])
    assert outcome.explanation.top_reasons == outcome.reasons


def test_greedy_campaign_logs_propensity_one():
    campaign = live_campaign(decision_mode="greedy", algorithm="rule_based")
    customer_with_consent("c1")
    decision = decide(campaign, "c1")
    assert decision.greedy and decision.propensity == 1.0


def test_sampled_decision_logs_the_policy_probability():
    campaign = live_campaign()
    customer_with_consent("c1")
    decision = decide(campaign, "c1")
    allowed = sum(decision.action_mask)
    assert decision.propensity == pytest.approx(1 / allowed, abs=1e-6)  # random: uniform over allowed


def test_explanation_is_stored_with_top_reasons():
    campaign = live_campaign(algorithm="rule_based")
    customer_with_consent("c1")
    outcome = decision_create(campaign=campaign, customer_external_id="c1")
    explanation = outcome.decision.explanation
    assert explanation.sentence
    assert outcome.reasons == explanation.top_reasons[:3]
    assert explanation.compute_ms is not None


def test_explanations_still_work_once_a_logged_customer_was_erased(reviewer):
    from crm_console.compliance.data_requests import customer_erase
    from crm_console.decisioning import serving

    campaign = live_campaign(algorithm="rule_based")
    for external_id in ("c1", "c2", "c3"):
        customer_with_consent(external_id)
    decisions_create(campaign=campaign, customer_external_ids=["c1", "c2"], explain=False)
    customer_erase(customer=Decision.objects.get(customer__external_id="c1").customer,
                   requested_by=reviewer)
    serving.clear_caches()  # the explainer reads the logged snapshots when it is built
    assert decision_create(campaign=campaign, customer_external_id="c3").explanation is not None


def test_decision_stands_unexplained_when_its_explanation_fails(monkeypatch):
    from crm_console.decisioning import policy_runtime

    def broken(*args, **kwargs):
        raise RuntimeError("explainer unavailable")

    monkeypatch.setattr(policy_runtime, "policy_explainer", broken)
    campaign = live_campaign()
    customer_with_consent("c1")
    outcome = decision_create(campaign=campaign, customer_external_id="c1")
    assert Decision.objects.filter(pk=outcome.decision.pk).exists()
    assert outcome.explanation is None and outcome.reasons == []
    assert not hasattr(Decision.objects.get(pk=outcome.decision.pk), "explanation")


def test_explanation_with_a_non_finite_value_is_not_stored(monkeypatch):
    from agents.explain import Explainer

    explain = Explainer.explain

    def with_nan(self, *args, **kwargs):
        results = explain(self, *args, **kwargs)
        results[0].base_value = float("nan")
        return results

    monkeypatch.setattr(Explainer, "explain", with_nan)
    campaign = live_campaign()
    customer_with_consent("c1")
    outcome = decision_create(campaign=campaign, customer_external_id="c1")
    assert outcome.explanation is None
    assert Decision.objects.filter(pk=outcome.decision.pk, explanation__isnull=True).exists()


def test_paused_campaign_refuses_decisions():
    from crm_console.campaigns.services import campaign_update

    campaign = live_campaign()
    campaign_update(campaign=campaign, status="paused")
    from crm_console.decisioning.services import campaign_for_decisions

    with pytest.raises(DecisionError, match="paused"):
        campaign_for_decisions(campaign_id=campaign.pk)


def test_a_campaign_without_a_learned_policy_decides_with_its_rules_from_day_one():
    campaign = live_campaign(caps={"email": (100, 7), "sms": (100, 7)}, overall=(100, 7),
                             exploration_share="0.1")
    campaign.policy_versions.update(status="retired")
    customer_with_consent("c1")
    decision = decide(campaign, "c1")
    assert decision.policy_version is None and decision.policy_name == "rule_based"
    assert not decision.holdout
    # the rules with the exploration share: every allowed action keeps a chance above zero
    allowed = [p for p, ok in zip(decision.action_probabilities, decision.action_mask) if ok]
    assert min(allowed) > 0 and decision.propensity > 0
    assert decision.explanation.sentence


def test_policy_trained_on_an_older_catalogue_still_serves_and_never_picks_new_actions():
    campaign = live_campaign(caps={"email": (100, 7), "sms": (100, 7)}, overall=(100, 7))
    from crm_console.campaigns.services import action_create

    new = action_create(campaign=campaign, channel="email", offer="discount_20", send_window="midday")
    customer_with_consent("c1")
    for _ in range(15):
        decision = decide(campaign, "c1")
        assert decision.action_id != new.pk
        Decision.objects.filter(pk=decision.pk).update(status=Decision.Status.RELEASED)


def test_contact_decision_counts_in_the_profile():
    campaign = live_campaign(caps={"email": (5, 7), "sms": (0, 7)}, overall=(5, 7))
    customer = customer_with_consent("c1")
    for _ in range(20):
        decision = decide(campaign, "c1")
        if not decision.action.is_no_contact:
            break
    customer.refresh_from_db()
    assert customer.profile_state["recent_contacts"][0][0] == 1.0
    assert customer.profile_updated_at is not None
    assert decision.decided_at - customer.profile_updated_at < timedelta(seconds=1)


def test_shadow_agreement_is_recorded():
    campaign = live_campaign()
    policy_add(campaign, algorithm="random", status="shadow", seed=3)
    customer_with_consent("c1")
    decision = decide(campaign, "c1")
    assert set(decision.context["shadow"]) == {"version", "action_index", "agrees"}


def test_exploration_floor_gives_every_allowed_action_a_logged_chance():
    campaign = live_campaign(algorithm="rule_based", exploration_share="0.1")
    customer_with_consent("c1")
    decision = decide(campaign, "c1")
    allowed = np.array(decision.action_mask)
    probabilities = np.array(decision.action_probabilities)
    assert (probabilities[allowed] >= 0.1 / allowed.sum() - 1e-6).all()
    assert (probabilities[~allowed] == 0).all()
    assert decision.propensity < 1.0 and not decision.greedy


def test_no_exploration_floor_leaves_a_deterministic_policy_deterministic():
    campaign = live_campaign(algorithm="rule_based", exploration_share="0")
    customer_with_consent("c1")
    assert decide(campaign, "c1").propensity == 1.0


def test_batch_writes_each_decision_with_its_own_explanation_and_profile():
    campaign = live_campaign(caps={"email": (50, 7), "sms": (50, 7)}, overall=(50, 7))
    customers = [customer_with_consent(f"c{i}") for i in range(12)]
    now = datetime(2026, 11, 23, 12, 0, tzinfo=dt_timezone.utc)
    outcomes = decisions_create(campaign=campaign, now=now,
                                customer_external_ids=[c.external_id for c in reversed(customers)])
    assert len({o.decision.pk for o in outcomes}) == 12
    for outcome in outcomes:
        stored = Decision.objects.select_related("explanation", "customer").get(pk=outcome.decision.pk)
        assert stored.customer_id == outcome.decision.customer_id
        assert stored.explanation.pk == outcome.explanation.pk
        assert stored.explanation.sentence == outcome.explanation.sentence
        assert stored.features == outcome.decision.features
        assert stored.customer.profile_updated_at == now
        assert stored.customer.profile_state == outcome.decision.customer.profile_state


def test_an_empty_batch_decides_nothing():
    assert decisions_create(campaign=live_campaign(), customer_external_ids=[]) == []


@needs_real_stack
def test_repeated_decisions_reuse_prepared_statements_on_postgresql():
    campaign = live_campaign()
    customer_with_consent("c1")
    for _ in range(4):
        decide(campaign, "c1", explain=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("FOR UPDATE" in statement for statement in prepared)  # the customers' locked read
    assert any("UNION ALL" in statement for statement in prepared)  # consent, suppression, caps


def test_a_decision_walks_through_each_module_once():
    """lock -> holdout -> serving (scores and explainers) -> choice -> write: services calls into
    serving once, into choice once, into storage twice (the locked read and the write), and
    never loads or scores a policy itself."""
    import sys
    from collections import Counter

    campaign = live_campaign(algorithm="rule_based", holdout_share="0.5")
    for external_id in ("c1", "c2", "c3", "c4"):
        customer_with_consent(external_id)
    decisions_create(campaign=campaign, customer_external_ids=["c1"])  # caches warm
    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_back is not None:
            caller = frame.f_back.f_globals.get("__name__", "")
            callee = frame.f_globals.get("__name__", "")
            if caller == "crm_console.decisioning.services" and callee != caller:
                calls[callee.rsplit(".", 1)[-1]] += 1

    sys.setprofile(profile)
    try:
        decisions_create(campaign=campaign, customer_external_ids=["c2", "c3", "c4"])
    finally:
        sys.setprofile(None)
    assert calls["serving"] == 1 and calls["choice"] == 1 and calls["storage"] == 2
    assert calls["policy_runtime"] == 0
