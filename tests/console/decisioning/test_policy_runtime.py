"""The policy runtime: one loader, one control policy per campaign, one explainer recipe."""

from __future__ import annotations

import pytest

from crm_console.decisioning import policy_runtime, serving
from crm_console.decisioning.models import Decision, Explanation
from crm_console.decisioning.selectors import decision_explanation
from crm_console.decisioning.services import decisions_create
from tests.console.api.helpers import customer_with_consent, live_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_caches():
    serving.clear_caches()
    yield
    serving.clear_caches()


def test_a_policy_version_is_loaded_once_per_process(django_assert_num_queries):
    campaign = live_campaign(algorithm="rule_based")
    version = campaign.policy_versions.get()
    first = policy_runtime.policy_agent(version)
    with django_assert_num_queries(0):
        assert policy_runtime.policy_agent(version) is first


def test_an_artifact_that_no_longer_matches_its_sha256_is_refused():
    campaign = live_campaign()
    version = campaign.policy_versions.get()
    version.artifact_sha256 = "0" * 64
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        policy_runtime.policy_agent(version)


def test_the_holdout_and_the_review_page_share_one_control_policy_agent():
    campaign = live_campaign(holdout_share="0.5")
    setup = serving.campaign_serving(campaign)
    served = policy_runtime.control_agent(campaign_id=campaign.pk, name=campaign.control_policy,
                                          bridge=setup.bridge)
    reviewed = policy_runtime.deciding_agent(campaign=campaign, bridge=setup.bridge, version=None,
                                             control_name=campaign.control_policy,
                                             n_actions=setup.bridge.catalogue.n_actions)
    assert reviewed is served


@pytest.mark.parametrize("holdout", [False, True], ids=["live policy", "control policy"])
def test_the_review_page_explains_against_the_baseline_the_decision_was_stored_with(holdout):
    campaign = live_campaign(algorithm="rule_based", holdout_share="0.5")
    customers = [f"c{i}" for i in range(16)]
    for external_id in customers:
        customer_with_consent(external_id)
    decisions_create(campaign=campaign, customer_external_ids=customers[:4], explain=False)
    outcomes = decisions_create(campaign=campaign, customer_external_ids=customers[4:])
    decision = next(o.decision for o in outcomes if o.decision.holdout == holdout)
    stored = Explanation.objects.get(decision=decision)
    Explanation.objects.filter(pk=stored.pk).delete()
    decision = Decision.objects.get(pk=decision.pk)

    recomputed = decision_explanation(decision=decision)

    assert not recomputed.stored and not recomputed.error
    assert recomputed.base_value == pytest.approx(stored.base_value, abs=1e-6)
    assert recomputed.shap_values == pytest.approx(stored.shap_values, abs=1e-6)


def test_a_young_campaign_is_explained_against_its_few_customers_weighted():
    campaign = live_campaign()
    for external_id in ("c1", "c2"):
        customer_with_consent(external_id)
    decisions_create(campaign=campaign, customer_external_ids=["c1", "c2"], explain=False)
    n_features = policy_runtime.policy_agent(campaign.policy_versions.get()).n_features
    background, weights = policy_runtime.explainer_background(campaign, n_features)
    assert len(background) <= 2 and weights is not None and weights.sum() == 2


def test_a_campaign_without_decisions_is_explained_against_a_new_customer():
    campaign = live_campaign()
    n_features = policy_runtime.policy_agent(campaign.policy_versions.get()).n_features
    background, weights = policy_runtime.explainer_background(campaign, n_features)
    assert background.shape == (1, n_features) and weights.tolist() == [1.0]
