"""Promotion: the guardrail, forced promotion with permission and reason, one live version, shadow."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm_console.compliance.models import AuditEntry
from crm_console.decisioning.models import Decision, PolicyVersion
from crm_console.decisioning.promotion import (
    PromotionRefused, guardrail_check, policy_version_promote, policy_version_shadow,
)
from crm_console.decisioning.services import policy_version_create
from crm_console.training import agents_training
from crm_console.training.selectors import policy_version_shadow_agreement
from crm_console.training.services import policy_version_evaluate

pytestmark = pytest.mark.django_db


def candidate(campaign, algorithm: str = "random") -> PolicyVersion:
    simulator = agents_training.simulator_for_campaign(campaign=campaign, customers=4)
    agent = agents_training.agent_make(algorithm=algorithm, simulator=simulator, seed=0,
                                       campaign=campaign)
    return policy_version_create(campaign=campaign, agent=agent,
                                 action_ids=simulator.bridge.action_ids)


def passing_report(version: PolicyVersion) -> PolicyVersion:
    """An evaluation in which the candidate clearly beats the live policy."""
    live = PolicyVersion.objects.get(campaign=version.campaign, status="live")
    version.ope_report = {"live_version_id": live.pk, "paired": {
        "baseline": "live", "rows": 5000,
        "dr": {"value": 1.0, "lower": 0.5, "upper": 1.5, "effective_sample_size": 900.0},
        "snips": {"value": 0.9, "lower": 0.3, "upper": 1.5, "effective_sample_size": 900.0}}}
    version.save(update_fields=["ope_report"])
    return version


def test_guardrail_refuses_a_dr_pass_that_snips_does_not_confirm(demo_campaign):
    version = passing_report(candidate(demo_campaign))
    version.ope_report["paired"]["snips"]["value"] = -0.12
    version.save(update_fields=["ope_report"])

    verdict = guardrail_check(policy_version=version)

    assert not verdict.passed
    assert "(SNIPS) is not above 0" in verdict.reason and "SNIPS: -0.12" in verdict.reason


def test_guardrail_refuses_a_dr_pass_with_no_snips_estimate(demo_campaign):
    version = passing_report(candidate(demo_campaign))
    del version.ope_report["paired"]["snips"]
    version.save(update_fields=["ope_report"])

    verdict = guardrail_check(policy_version=version)

    assert not verdict.passed and "no SNIPS estimate" in verdict.reason


def live_versions(campaign) -> list[int]:
    return list(PolicyVersion.objects.filter(campaign=campaign, status="live")
                .values_list("pk", flat=True))


def test_guardrail_refuses_a_worse_candidate_and_records_why(demo_campaign, demo_users):
    version = candidate(demo_campaign, "random")
    policy_version_evaluate(policy_version=version)
    version.refresh_from_db()
    before = live_versions(demo_campaign)

    with pytest.raises(PromotionRefused, match="not enough evidence|speak for the candidate"):
        policy_version_promote(policy_version=version, promoted_by=demo_users["marketer"])

    version.refresh_from_db()
    assert version.status == PolicyVersion.Status.CANDIDATE
    assert live_versions(demo_campaign) == before
    refusal = AuditEntry.objects.get(verb="policy_version.promotion_refused", target_id=str(version.pk))
    assert "than the live policy" in refusal.details["reason"]
    assert refusal.actor == demo_users["marketer"]


def test_unevaluated_candidate_is_refused(demo_campaign, demo_users):
    with pytest.raises(PromotionRefused, match="not evaluated yet"):
        policy_version_promote(policy_version=candidate(demo_campaign),
                               promoted_by=demo_users["marketer"])


def test_candidate_that_passes_the_guardrail_goes_live_and_the_old_one_retires(demo_campaign,
                                                                                 demo_users):
    old_live = live_versions(demo_campaign)[0]
    version = passing_report(candidate(demo_campaign))
    assert guardrail_check(policy_version=version).passed

    policy_version_promote(policy_version=version, promoted_by=demo_users["marketer"])

    version.refresh_from_db()
    assert live_versions(demo_campaign) == [version.pk]
    assert PolicyVersion.objects.get(pk=old_live).status == PolicyVersion.Status.RETIRED
    assert version.promoted_by == demo_users["marketer"] and version.promoted_at is not None
    assert not version.forced_promotion
    assert AuditEntry.objects.filter(verb="policy_version.promoted", target_id=str(version.pk)).exists()


def test_evaluation_made_against_an_older_live_version_must_be_redone(demo_campaign, demo_users):
    first, second = passing_report(candidate(demo_campaign)), passing_report(candidate(demo_campaign))
    policy_version_promote(policy_version=first, promoted_by=demo_users["marketer"])
    with pytest.raises(PromotionRefused, match="evaluate the candidate again"):
        policy_version_promote(policy_version=second, promoted_by=demo_users["marketer"])


def test_marketer_cannot_force_a_promotion(demo_campaign, demo_users):
    version = candidate(demo_campaign)
    with pytest.raises(PermissionDenied):
        policy_version_promote(policy_version=version, promoted_by=demo_users["marketer"],
                               reason="I like it", force=True)
    assert PolicyVersion.objects.get(pk=version.pk).status == PolicyVersion.Status.CANDIDATE


def test_reviewer_cannot_promote_at_all(demo_campaign, demo_users):
    with pytest.raises(PermissionDenied):
        policy_version_promote(policy_version=passing_report(candidate(demo_campaign)),
                               promoted_by=demo_users["reviewer"])


@pytest.mark.parametrize("reason", ["", "   "])
def test_admin_forced_promotion_needs_a_written_reason(demo_campaign, demo_users, reason):
    version = candidate(demo_campaign)
    with pytest.raises(ValidationError, match="written reason"):
        policy_version_promote(policy_version=version, promoted_by=demo_users["admin"],
                               reason=reason, force=True)
    assert PolicyVersion.objects.get(pk=version.pk).status == PolicyVersion.Status.CANDIDATE


def test_admin_forced_promotion_with_a_reason_is_marked_and_audited(demo_campaign, demo_users):
    version = candidate(demo_campaign)  # never evaluated: only a forced promotion can take it live
    policy_version_promote(policy_version=version, promoted_by=demo_users["admin"],
                           reason="Black Friday: the rules are known to be wrong", force=True)
    version.refresh_from_db()
    assert version.status == PolicyVersion.Status.LIVE and version.forced_promotion
    assert version.promotion_reason.startswith("Black Friday")
    entry = AuditEntry.objects.get(verb="policy_version.promoted", target_id=str(version.pk))
    assert entry.details["forced"] is True and entry.actor == demo_users["admin"]


def test_exactly_one_live_version_after_several_promotions(demo_campaign, demo_users):
    for _ in range(3):
        policy_version_promote(policy_version=candidate(demo_campaign), promoted_by=demo_users["admin"],
                               reason="rotation test", force=True)
    assert len(live_versions(demo_campaign)) == 1
    assert PolicyVersion.objects.filter(campaign=demo_campaign, status="retired").count() == 3


def test_shadow_mode_and_agreement_rate(demo_campaign, demo_users):
    shadow = policy_version_shadow(policy_version=candidate(demo_campaign),
                                   changed_by=demo_users["marketer"])
    assert shadow.status == PolicyVersion.Status.SHADOW
    decisions = list(Decision.objects.filter(campaign=demo_campaign, holdout=False)[:10])
    for i, decision in enumerate(decisions):  # what the live decision service writes
        agreed_index = decision.action_index if i < 7 else decision.action_index + 1
        decision.context = {**decision.context,
                            "shadow": {"version": shadow.version, "action_index": agreed_index,
                                       "agrees": i < 7}}
        decision.save(update_fields=["context"])

    agreement = policy_version_shadow_agreement(policy_version=shadow)

    assert agreement["decisions"] == 10
    assert agreement["agreement_rate"] == pytest.approx(0.7)


def test_a_second_shadow_ends_the_first(demo_campaign, demo_users):
    first = policy_version_shadow(policy_version=candidate(demo_campaign), changed_by=None)
    policy_version_shadow(policy_version=candidate(demo_campaign), changed_by=None)
    assert PolicyVersion.objects.get(pk=first.pk).status == PolicyVersion.Status.CANDIDATE
