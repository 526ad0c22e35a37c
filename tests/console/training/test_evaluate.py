"""Off-policy evaluation of a candidate on the campaign's logged decisions."""

from __future__ import annotations

import numpy as np
import pytest

from crm_console.compliance.models import AuditEntry
from crm_console.decisioning.logged_data import LoggedArrays
from crm_console.decisioning.models import PolicyVersion
from crm_console.decisioning.services import policy_version_create
from crm_console.training import agents_training
from crm_console.training.services import policy_version_evaluate

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluated(demo_campaign) -> PolicyVersion:
    simulator = agents_training.simulator_for_campaign(campaign=demo_campaign, customers=4)
    agent = agents_training.agent_make(algorithm="rule_based", simulator=simulator, seed=0,
                                       campaign=demo_campaign)
    version = policy_version_create(campaign=demo_campaign, agent=agent,
                                    action_ids=simulator.bridge.action_ids)
    policy_version_evaluate(policy_version=version)
    version.refresh_from_db()
    return version


def test_an_evaluation_someone_asked_for_is_audited_under_their_name(demo_campaign, demo_users):
    version = PolicyVersion.objects.filter(campaign=demo_campaign).first()
    policy_version_evaluate(policy_version=version, requested_by=demo_users["marketer"])
    entry = AuditEntry.objects.filter(verb="policy_version.evaluated").latest("created_at")
    assert entry.actor == demo_users["marketer"]


def test_an_evaluation_nobody_asked_for_is_audited_as_the_system(evaluated):
    entry = AuditEntry.objects.filter(verb="policy_version.evaluated").latest("created_at")
    assert entry.actor is None


def test_evaluation_stores_ips_snips_and_dr_with_intervals_for_candidate_live_and_control(evaluated):
    estimates = evaluated.ope_report["estimates"]
    assert set(estimates) == {"candidate", "live", "control"}
    for policy in estimates.values():
        for method in ("ips", "snips", "dr"):
            result = policy[method]
            assert result["lower"] <= result["value"] <= result["upper"]
            assert result["confidence"] == 0.95
            assert 0 < result["effective_sample_size"] <= result["n"]
            assert isinstance(result["warnings"], list)


def test_evaluation_uses_exploring_rows_and_reports_the_holdout_observed(evaluated):
    report = evaluated.ope_report
    logged = report["logged"]
    assert logged["exploring_rows"] + logged["holdout_rows"] == logged["rows"]
    assert report["estimates"]["candidate"]["dr"]["n"] == logged["exploring_rows"]
    assert report["holdout_observed"]["n"] == logged["holdout_rows"]


def test_guardrail_compares_candidate_and_live_as_a_paired_difference_on_the_same_rows(evaluated):
    report = evaluated.ope_report
    paired = report["paired"]
    assert paired["baseline"] == "live" and report["guardrail"]["baseline"] == "live"
    assert paired["rows"] == report["logged"]["exploring_rows"]
    estimates = report["estimates"]
    for method in ("dr", "snips"):
        assert paired[method]["value"] == pytest.approx(
            estimates["candidate"][method]["value"] - estimates["live"][method]["value"])
        assert paired[method]["lower"] < paired[method]["value"] < paired[method]["upper"]
    assert report["guardrail"]["passed"] == (
        paired["dr"]["lower"] > 0 and paired["snips"]["value"] > 0
        and paired["dr"]["effective_sample_size"] >= 50)
    assert report["guardrail"]["explanation"].startswith(f"On {paired['rows']:,} logged decisions")
    assert report["live_version_id"] == PolicyVersion.objects.get(status="live").pk


def test_the_live_policy_evaluated_on_its_own_logs_matches_the_observed_mean(evaluated):
    # IPS of the logging policy on its own rows is exactly the observed mean reward
    report = evaluated.ope_report
    assert report["estimates"]["live"]["ips"]["value"] == pytest.approx(
        report["logging_policy_observed"]["value"], rel=1e-3)


def test_paired_differences_say_on_what_share_of_rows_the_candidate_changes_the_choice():
    rows, actions = 8, np.array([0, 1, 2, 0, 1, 2, 0, 1])
    arrays = LoggedArrays(
        obs=np.zeros((rows, 3)), actions=actions, propensities=np.full(rows, 1 / 3),
        rewards=np.linspace(0.0, 1.0, rows), masks=np.ones((rows, 3), dtype=bool),
        logging_probs=None, holdout=np.zeros(rows, dtype=bool), customer_ids=np.arange(rows),
        decision_ids=np.arange(rows), churned=np.zeros(rows, dtype=bool),
        policy_version_ids=np.zeros(rows, dtype=np.int64))
    baseline = np.tile([0.8, 0.1, 0.1], (rows, 1))
    candidate = baseline.copy()
    candidate[:2] = [0.1, 0.1, 0.8]  # two of eight rows pick another action
    paired = agents_training.paired_differences(
        arrays=arrays, target_probs=candidate, baseline_probs=baseline,
        reward_model=np.zeros((rows, 3)))
    assert paired["changed_share"] == pytest.approx(0.25)
