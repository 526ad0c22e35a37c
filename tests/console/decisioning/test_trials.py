"""Trials: the candidate decides for its share of the customers, and goes live only on what the
two groups did (`promotion.trial_verdict`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from crm_console.compliance.models import AuditEntry
from crm_console.dashboards.selectors import trial_evidence, trial_evidence_for
from crm_console.decisioning.holdout import in_holdout, in_trial
from crm_console.decisioning.models import PolicyTrial, PolicyVersion
from crm_console.decisioning.promotion import (
    PromotionRefused, how_it_went_live, policy_version_promote, policy_version_shadow,
    trial_check, trial_verdict,
)
from crm_console.decisioning.services import decisions_create
from crm_console.decisioning.tasks import conclude_trials
from crm_console.decisioning.trials import (
    trial_promote, trial_start, trial_stop, trials_conclude,
)
from crm_console.training.selectors import policy_version_shadow_agreement
from tests.console.api.helpers import customer_with_consent, live_campaign, policy_add
from tests.factories import CustomerFactory, DecisionFactory, UserFactory


def evidence(*, gain: float = 0.5, days: float = 28, customers: int = 2000,
             candidate_left: float = 0.05, live_left: float = 0.05, seed: int = 0):
    """Two groups of `customers` each, 20 customer-days apiece, the candidate's earning `gain`
    more per customer-day; `*_left`: the share of each group that left."""
    rng = np.random.default_rng(seed)
    reward = np.concatenate([rng.normal(20 * (1 + gain), 4, customers),
                             rng.normal(20, 4, customers)])
    left = np.concatenate([np.arange(customers) < round(candidate_left * customers),
                           np.arange(customers) < round(live_left * customers)])
    group = np.arange(2 * customers) < customers
    return trial_evidence(days=days, reward=reward, decisions=np.full(2 * customers, 20.0),
                          left=left, in_candidate_group=group)


# ------------------------------------------------------------------------------ the rule
def test_evidence_is_reward_per_customer_day_of_each_group():
    measured = trial_evidence(days=14, reward=np.array([10.0, 30.0, 5.0, 5.0]),
                              decisions=np.array([10.0, 10.0, 5.0, 5.0]),
                              left=np.array([False, True, False, False]),
                              in_candidate_group=np.array([True, True, False, False]))

    assert measured.customers == (2, 2) and measured.decisions == (20, 10)
    assert measured.reward == pytest.approx((2.0, 1.0))
    assert measured.retention == pytest.approx((0.5, 1.0))
    assert measured.gain[0] == pytest.approx(1.0)


def test_a_clear_gain_after_the_minimum_days_passes():
    verdict = trial_verdict(planned_days=28, evidence=evidence(gain=0.05))

    assert verdict.passed, verdict.reason
    assert "In 28 days of trial, 2,000 customers decided by the candidate earned 0.04 more" \
        in verdict.reason


def test_a_trial_is_refused_until_its_planned_days_have_passed():
    verdict = trial_verdict(planned_days=28, evidence=evidence(gain=0.05, days=9.5))

    assert not verdict.passed
    assert "the trial measures 28 days and has 19 to go" in verdict.reason


def test_a_trial_planned_shorter_than_the_minimum_days_is_refused(settings):
    settings.TRIAL_MIN_DAYS = 14

    verdict = trial_verdict(planned_days=7, evidence=evidence(gain=0.3, days=7))

    assert not verdict.passed and "at least 14 days" in verdict.reason


def test_a_group_below_the_minimum_customers_is_refused(settings):
    settings.TRIAL_MIN_CUSTOMERS = 500

    verdict = trial_verdict(planned_days=28, evidence=evidence(gain=0.3, customers=400))

    assert not verdict.passed and "at least 500 customers" in verdict.reason


def test_a_gain_whose_interval_reaches_zero_is_refused():
    verdict = trial_verdict(planned_days=28, evidence=evidence(gain=0.0))

    assert not verdict.passed and "lower bound is not above 0" in verdict.reason


def test_a_gain_that_may_cost_customers_is_refused(settings):
    settings.TRIAL_RETENTION_TOLERANCE = 0.01

    verdict = trial_verdict(planned_days=28, evidence=evidence(gain=0.05, candidate_left=0.09,
                                                               live_left=0.05))

    assert not verdict.passed
    assert "keeps fewer customers (retention -4.0 points" in verdict.reason


def test_a_retention_loss_over_the_tolerance_is_refused_even_when_not_significant(settings):
    settings.TRIAL_RETENTION_TOLERANCE, settings.TRIAL_MIN_CUSTOMERS = 0.01, 100

    verdict = trial_verdict(planned_days=28, evidence=evidence(
        gain=0.05, customers=200, candidate_left=0.07, live_left=0.05))

    assert not verdict.passed and "retention -2.0 points" in verdict.reason


def test_the_campaigns_retention_guardrail_lets_a_significant_small_loss_pass():
    measured = evidence(gain=0.05, customers=20000, candidate_left=0.059, live_left=0.05)

    assert not trial_verdict(planned_days=28, evidence=measured).passed
    assert trial_verdict(planned_days=28, evidence=measured, retention_tolerance=0.015).passed


def test_a_loss_beyond_the_campaigns_retention_guardrail_is_refused():
    verdict = trial_verdict(planned_days=28, retention_tolerance=0.015, evidence=evidence(
        gain=0.05, candidate_left=0.07, live_left=0.05))

    assert not verdict.passed
    assert "than the campaign's retention guardrail allows (1.5 points)" in verdict.reason


def test_a_trial_without_priced_decisions_in_both_groups_is_refused():
    measured = trial_evidence(days=30, reward=np.array([1.0]), decisions=np.array([1.0]),
                              left=np.array([False]), in_candidate_group=np.array([True]))

    verdict = trial_verdict(evidence=measured, planned_days=28)

    assert not verdict.passed and verdict.reason == "no priced decisions in both groups yet"
    assert measured.reward == (1.0, None)


def test_trial_groups_are_stable_near_their_share_and_differ_between_trials():
    keys = [f"customer-{i}" for i in range(4000)]
    first = np.array([in_trial(7, k, 0.2) for k in keys])

    assert np.array_equal(first, [in_trial(7, k, 0.2) for k in keys])
    assert 0.18 < first.mean() < 0.22
    assert not np.array_equal(first, [in_trial(8, k, 0.2) for k in keys])


# ------------------------------------------------------------------------------ services
@pytest.fixture
def campaign(db):
    return live_campaign(algorithm="random", holdout_share="0.2")


@pytest.fixture
def candidate(campaign):
    return policy_add(campaign, algorithm="rule_based", status="candidate")


@pytest.mark.django_db
def test_starting_a_trial_puts_the_candidate_in_shadow_against_the_live_version(campaign,
                                                                                candidate):
    live = PolicyVersion.objects.get(campaign=campaign, status="live")

    trial = trial_start(candidate=candidate, share="0.25", started_by=None)

    candidate.refresh_from_db()
    assert candidate.status == PolicyVersion.Status.SHADOW
    assert trial.live == live and trial.outcome == PolicyTrial.Outcome.RUNNING
    assert AuditEntry.objects.filter(verb="policy_trial.started", target_id=str(trial.pk)).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("share, message", [
    ("0", "between 1% and 50%"), ("0.6", "between 1% and 50%"), ("-0.1", "between 1% and 50%"),
    ("ten", "must be a number"), ("NaN", "between 1% and 50%"), ("0.1234", "a tenth of a percent"),
])
def test_a_share_out_of_range_is_refused_and_starts_nothing(candidate, share, message):
    with pytest.raises(ValidationError) as refused:
        trial_start(candidate=candidate, share=share, started_by=None)

    assert message in refused.value.message_dict["share"][0]
    candidate.refresh_from_db()
    assert candidate.status == "candidate" and not PolicyTrial.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("days", [7, 181, True, 14.5, "28"])
def test_trial_days_outside_the_minimum_and_a_half_year_are_refused(candidate, days, settings):
    settings.TRIAL_MIN_DAYS = 14

    with pytest.raises(ValidationError) as refused:
        trial_start(candidate=candidate, share="0.1", days=days, started_by=None)

    assert "between 14 and 180 whole days" in refused.value.message_dict["days"][0]
    assert not PolicyTrial.objects.exists()


@pytest.mark.django_db
def test_a_second_trial_on_the_campaign_is_refused(campaign, candidate):
    trial_start(candidate=candidate, share="0.1", started_by=None)
    other = policy_add(campaign, algorithm="rule_based", status="candidate", seed=1)

    with pytest.raises(ValidationError, match="already runs a trial"):
        trial_start(candidate=other, share="0.1", started_by=None)


@pytest.mark.django_db
def test_the_live_version_cannot_go_on_trial(campaign):
    live = PolicyVersion.objects.get(campaign=campaign, status="live")

    with pytest.raises(ValidationError, match="Only a candidate"):
        trial_start(candidate=live, share="0.1", started_by=None)


@pytest.mark.django_db
def test_a_user_without_the_promote_permission_cannot_start_a_trial(candidate, roles):
    from crm_console.accounts.roles import COMPLIANCE_REVIEWER

    with pytest.raises(PermissionDenied):
        trial_start(candidate=candidate, share="0.1",
                    started_by=UserFactory(role=COMPLIANCE_REVIEWER))
    assert not PolicyTrial.objects.exists()


@pytest.mark.django_db
def test_stopping_a_trial_sends_the_candidate_back_to_the_candidates(candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)

    trial_stop(trial=trial, stopped_by=None, reason="wrong audience")

    trial.refresh_from_db()
    candidate.refresh_from_db()
    assert trial.outcome == "stopped" and trial.end_reason == "wrong audience"
    assert candidate.status == "candidate"


@pytest.mark.django_db
def test_the_shadow_cannot_change_while_a_trial_runs(campaign, candidate):
    trial_start(candidate=candidate, share="0.1", started_by=None)
    other = policy_add(campaign, algorithm="rule_based", status="candidate", seed=1)

    with pytest.raises(ValidationError, match="A trial is running"):
        policy_version_shadow(policy_version=other, changed_by=None)


@pytest.mark.django_db
def test_the_trial_decides_for_its_customers_and_the_live_policy_for_the_rest(campaign,
                                                                               candidate):
    live = PolicyVersion.objects.get(campaign=campaign, status="live")
    trial = trial_start(candidate=candidate, share="0.5", started_by=None)
    keys = [customer_with_consent(f"c{i}").external_id for i in range(60)]

    outcomes = decisions_create(campaign=campaign, customer_external_ids=keys)

    for outcome in outcomes:
        decision, key = outcome.decision, outcome.decision.customer.external_id
        if in_holdout(campaign.pk, key, campaign.holdout_share):
            assert decision.policy_version is None and decision.holdout
        elif in_trial(trial.pk, key, trial.share):
            assert decision.policy_version == candidate
            assert decision.policy_name == "rule_based"
        else:
            assert decision.policy_version == live
    assert {o.decision.policy_version_id for o in outcomes} == {None, live.pk, candidate.pk}


@pytest.mark.django_db
def test_shadow_agreement_counts_only_the_decisions_the_candidate_did_not_take(campaign,
                                                                             candidate):
    trial_start(candidate=candidate, share="0.5", started_by=None)
    keys = [customer_with_consent(f"c{i}").external_id for i in range(40)]

    outcomes = decisions_create(campaign=campaign, customer_external_ids=keys)

    by_live = [o for o in outcomes if o.decision.policy_version_id not in (None, candidate.pk)]
    assert all("shadow" not in o.decision.context for o in outcomes
               if o.decision.policy_version_id == candidate.pk)
    assert policy_version_shadow_agreement(policy_version=candidate)["decisions"] == len(by_live)


@pytest.mark.django_db
def test_the_trial_candidates_decisions_are_explained_by_the_candidate(campaign, candidate):
    trial = trial_start(candidate=candidate, share="0.5", started_by=None)
    keys = [customer_with_consent(f"c{i}").external_id for i in range(30)]

    outcomes = decisions_create(campaign=campaign, customer_external_ids=keys, explain=True)

    trial_rows = [o for o in outcomes if o.decision.policy_version_id == candidate.pk]
    assert trial.share == 0.5
    assert trial_rows and all(o.explanation is not None for o in trial_rows)


def priced(campaign, version, *, customers: int, reward: float, since, left: bool = False):
    """`customers` customers of one group, each with two priced decisions after `since`."""
    for _ in range(customers):
        customer = CustomerFactory()
        for day in (1, 2):
            DecisionFactory(campaign=campaign, customer=customer, policy_version=version,
                            reward=reward, attributed_at=since + timedelta(days=day),
                            decided_at=since + timedelta(days=day),
                            reward_components={"churn": 1.0 if left and day == 2 else 0.0})


@pytest.mark.django_db
def test_trial_evidence_counts_each_groups_priced_decisions_since_the_start(campaign, candidate):
    live = PolicyVersion.objects.get(campaign=campaign, status="live")
    trial = trial_start(candidate=candidate, share="0.5", started_by=None)
    start = trial.started_at
    priced(campaign, candidate, customers=3, reward=2.0, since=start)
    priced(campaign, live, customers=4, reward=1.0, since=start, left=True)
    priced(campaign, live, customers=5, reward=9.0, since=start - timedelta(days=10))  # before
    DecisionFactory(campaign=campaign, policy_version=live, decided_at=start + timedelta(days=1))
    DecisionFactory(campaign=campaign, policy_version=candidate, reward=50.0,  # after its days
                    attributed_at=start + timedelta(days=29),
                    decided_at=start + timedelta(days=trial.days, minutes=1))
    DecisionFactory(campaign=campaign, policy_version=None, holdout=True, reward=5.0,
                    attributed_at=start, decided_at=start + timedelta(days=1))

    measured = trial_evidence_for(trial=trial)

    assert measured.customers == (3, 4) and measured.decisions == (6, 8)
    assert measured.reward == pytest.approx((2.0, 1.0))
    assert measured.retention == pytest.approx((1.0, 0.0))


@pytest.mark.django_db
def test_promotion_on_a_trial_without_evidence_is_refused_and_audited(candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)

    with pytest.raises(PromotionRefused, match="no priced decisions"):
        trial_promote(trial=trial, promoted_by=None)

    candidate.refresh_from_db()
    assert candidate.status == "shadow"
    assert AuditEntry.objects.filter(verb="policy_version.promotion_refused",
                                     target_id=str(candidate.pk)).exists()


def trial_with_a_gain(campaign, candidate, *, days: int, started_days_ago: int):
    """A trial that started `started_days_ago`, whose candidate's 4 + 4 customers earned about
    twice the live policy's 4 + 4 (TRIAL_MIN_CUSTOMERS must be at most 8)."""
    live = PolicyVersion.objects.get(campaign=campaign, status="live")
    trial = trial_start(candidate=candidate, share="0.5", days=days, started_by=None)
    trial.started_at = timezone.now() - timedelta(days=started_days_ago)
    trial.save(update_fields=["started_at"])
    for group, rewards in ((candidate, (2.0, 2.2)), (live, (1.0, 1.1))):
        for reward in rewards:
            priced(campaign, group, customers=4, reward=reward, since=trial.started_at)
    return trial, live


@pytest.mark.django_db
def test_a_trial_that_measured_a_gain_puts_its_candidate_live(campaign, candidate, settings):
    settings.TRIAL_MIN_CUSTOMERS, settings.TRIAL_MIN_DAYS = 5, 14
    trial, live = trial_with_a_gain(campaign, candidate, days=20, started_days_ago=21)

    trial_promote(trial=trial, promoted_by=None)

    candidate.refresh_from_db()
    live.refresh_from_db()
    trial.refresh_from_db()
    assert candidate.status == "live" and live.status == "retired"
    assert trial.outcome == "promoted" and "In 20 days of trial" in candidate.promotion_reason
    assert how_it_went_live(policy_version=candidate).startswith("went live through a trial")


@pytest.mark.django_db
def test_a_trial_candidate_forced_live_ends_its_trial_as_stopped(campaign, candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)

    policy_version_promote(policy_version=candidate, promoted_by=UserFactory(is_superuser=True),
                           reason="test", force=True)

    trial.refresh_from_db()
    candidate.refresh_from_db()
    assert trial.outcome == "stopped"
    assert trial.end_reason == "its candidate went live without the trial's verdict"
    assert "forced past the guardrail" in how_it_went_live(policy_version=candidate)


@pytest.mark.django_db
def test_a_trial_is_judged_with_its_campaigns_retention_guardrail(campaign, candidate):
    campaign.retention_guardrail_points = Decimal("1.5")
    campaign.save(update_fields=["retention_guardrail_points"])
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)
    measured = evidence(gain=0.05, customers=20000, candidate_left=0.059, live_left=0.05)

    assert trial_check(trial=PolicyTrial.objects.get(pk=trial.pk), evidence=measured).passed


@pytest.mark.django_db
def test_promoting_another_version_stops_the_trial(campaign, candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)
    other = policy_add(campaign, algorithm="rule_based", status="candidate", seed=1)
    admin = UserFactory(is_superuser=True)

    policy_version_promote(policy_version=other, promoted_by=admin, reason="test", force=True)

    trial.refresh_from_db()
    assert trial.outcome == "stopped"
    assert trial.end_reason == f"version {other.version} went live instead"
    assert not PolicyTrial.objects.filter(~Q(outcome="stopped")).exists()


@pytest.mark.django_db
def test_a_trial_refused_at_the_end_of_its_days_is_stopped(campaign, candidate):
    trial = trial_start(candidate=candidate, share="0.1", days=14, started_by=None)
    end = trial.started_at + timedelta(days=14 + campaign.attribution_window_days, minutes=1)

    assert trials_conclude(now=end - timedelta(minutes=2)) == []
    assert trials_conclude(now=end) == [trial.pk]

    trial.refresh_from_db()
    candidate.refresh_from_db()
    assert trial.outcome == "stopped" and candidate.status == "candidate"
    assert trial.end_reason.startswith("refused at the end of its 14 days: no priced decisions")


@pytest.mark.django_db
def test_a_trial_that_passed_keeps_running_for_a_marketer_to_promote(campaign, candidate,
                                                                     settings):
    settings.TRIAL_MIN_CUSTOMERS, settings.TRIAL_MIN_DAYS = 5, 14
    trial, _ = trial_with_a_gain(campaign, candidate, days=14, started_days_ago=40)

    assert conclude_trials.delay().get() == []

    trial.refresh_from_db()
    assert trial.outcome == "running"


def test_concluding_trials_is_on_the_beat_schedule_every_hour():
    from crm_console.celery import app

    entry = app.conf.beat_schedule["decisioning-conclude-trials"]
    assert entry["task"] == conclude_trials.name
    assert entry["schedule"].minute == {17}
