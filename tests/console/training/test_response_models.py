"""A campaign's customer-response model: fitted from its own logs, checked on held-out days,
trained in by default, refused while flagged, overridden only with a reason."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents.envs import PLANNING_DISCOUNT
from crm_console.compliance.models import AuditEntry
from crm_console.decisioning.models import Decision
from crm_console.decisioning.policy_runtime import policy_agent
from crm_console.training import services as training_services
from crm_console.training.models import CustomerResponseModel, TrainingRun
from crm_console.training.response_models import (
    response_model_create, response_model_fit, response_model_override,
)
from crm_console.campaigns.models import Campaign
from tests.factories import ActionFactory, CustomerResponseModelFactory

pytestmark = pytest.mark.django_db


def _fitted(campaign: Campaign) -> CustomerResponseModel:
    return response_model_fit(response_model_id=response_model_create(campaign=campaign).pk)


def _trainable(campaign: Campaign) -> CustomerResponseModel:
    """A fitted model training may use, whatever its check says (overridden where flagged)."""
    model = _fitted(campaign)
    if not model.trainable:
        response_model_override(response_model=model, user=None,
                                reason="test: train in it whatever its check says")
    return model


def test_fit_without_priced_decisions_fails_in_words(roles):
    campaign = ActionFactory(channel="none", offer="", send_window="", cost=0).campaign
    ActionFactory(campaign=campaign)

    model = _fitted(campaign)

    assert model.status == CustomerResponseModel.Status.FAILED
    assert "no priced decisions" in model.error
    assert not model.artifact


def test_fit_with_too_little_history_says_how_much_is_needed(demo_campaign):
    model = response_model_fit(response_model_id=response_model_create(
        campaign=demo_campaign, held_out_days=3).pk)

    assert model.status == CustomerResponseModel.Status.FAILED
    assert "at least" in model.error


def test_fit_on_logs_shorter_than_the_held_out_days_says_so(demo_campaign):
    # 21 days of logs, 7 not yet mature: the priced ones span 14 or 15 day indices, depending on
    # the hour the test runs at, so hold out well beyond either
    model = response_model_fit(response_model_id=response_model_create(
        campaign=demo_campaign, held_out_days=20).pk)

    assert model.status == CustomerResponseModel.Status.FAILED
    assert "fewer than 21 days" in model.error


def test_fit_on_logged_history_checks_the_model_on_days_it_did_not_see(logged_campaign):
    model = _fitted(logged_campaign)

    assert model.status == CustomerResponseModel.Status.READY, model.error
    priced = Decision.objects.filter(campaign=logged_campaign, reward__isnull=False).count()
    assert 0 < model.held_out_rows < model.training_rows
    assert model.training_rows + model.held_out_rows <= priced
    totals = model.validation["totals"]
    assert set(totals) >= {"open_rate", "conversion_rate", "revenue_per_decision"}
    assert model.within_tolerance == model.validation["within_tolerance"]
    assert AuditEntry.objects.filter(verb="response_model.fitted", target_id=str(model.pk)).exists()


def test_the_logs_a_model_learns_from_carry_each_decisions_propensity(logged_campaign):
    from crm_console.campaigns.agents_bridge import catalogue_for_campaign
    from crm_console.decisioning.logged_data import logged_arrays_for_campaign
    from crm_console.training.response_models import response_log_from_arrays

    bridge = catalogue_for_campaign(campaign=logged_campaign)
    arrays = logged_arrays_for_campaign(campaign=logged_campaign, action_ids=bridge.action_ids)

    log = response_log_from_arrays(arrays)

    assert log.propensities is not None
    assert (log.propensities == arrays.propensities).all()


def test_training_run_trains_in_the_fitted_model_and_says_so(logged_campaign):
    model = _trainable(logged_campaign)
    run = training_services.training_run_create(campaign=logged_campaign, budget_steps=1_000,
                                                warm_start=False, enqueue=False)

    run = training_services.training_run_execute(training_run_id=run.pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["customer_model"] == {
        "kind": "fitted", "id": model.pk, "fitted_at": model.fitted_at.isoformat(),
        "rows": model.training_rows, "within_tolerance": model.within_tolerance,
        "overridden": bool(model.override_reason)}
    assert run.policy_version.metrics["scenario"] == f"customer-response model #{model.pk}"


def test_a_policy_trained_in_the_fitted_model_plans_at_most_the_planning_discount(
        logged_campaign):
    _trainable(logged_campaign)
    assert logged_campaign.discount_factor > PLANNING_DISCOUNT
    run = training_services.training_run_create(campaign=logged_campaign, budget_steps=1_000,
                                                warm_start=False, enqueue=False)

    run = training_services.training_run_execute(training_run_id=run.pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert policy_agent(run.policy_version).config.gamma == PLANNING_DISCOUNT
    assert run.report["planning_discount"] == {
        "used": PLANNING_DISCOUNT, "campaign": logged_campaign.discount_factor}


def test_in_the_fitted_model_a_policy_is_held_to_the_controls_leave_rate_by_default(
        logged_campaign):
    _trainable(logged_campaign)
    assert logged_campaign.retention_guardrail_points is None
    run = training_services.training_run_create(campaign=logged_campaign, budget_steps=1_000,
                                                warm_start=False, enqueue=False)

    run = training_services.training_run_execute(training_run_id=run.pk)

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    constraint = run.report["retention_constraint"]
    assert constraint["tolerance"] == 0.0 and constraint["campaign_guardrail"] is False
    assert constraint["max_leave_rate"] == pytest.approx(max(constraint["control_leave_rate"], 1e-6))
    assert policy_agent(run.policy_version).config.max_leave_rate == constraint["max_leave_rate"]


def test_a_policy_trained_in_the_built_in_simulator_plans_with_the_campaigns_discount(
        demo_campaign):
    run = training_services.training_run_create(campaign=demo_campaign, budget_steps=1_000,
                                                warm_start=False, enqueue=False)

    run = training_services.training_run_execute(training_run_id=run.pk)

    assert policy_agent(run.policy_version).config.gamma == demo_campaign.discount_factor
    assert "planning_discount" not in run.report


def test_training_run_without_a_fitted_model_says_it_used_the_built_in_simulator(demo_campaign):
    run = training_services.training_run_create(campaign=demo_campaign, budget_steps=1_000,
                                                warm_start=False, enqueue=False)

    run = training_services.training_run_execute(training_run_id=run.pk)

    assert run.report["customer_model"]["kind"] == "built-in"
    assert "no fitted customer-response model" in run.report["customer_model"]["why"]


def test_training_is_refused_while_the_fitted_model_is_flagged(demo_campaign):
    CustomerResponseModelFactory(campaign=demo_campaign, within_tolerance=False)

    with pytest.raises(ValidationError, match="misses the observed KPIs .*orders per decision "
                                              "off by 80%"):
        training_services.training_run_create(campaign=demo_campaign, enqueue=False)
    assert not TrainingRun.objects.exists()


def test_training_is_refused_in_a_model_fitted_on_another_catalogue(demo_campaign):
    CustomerResponseModelFactory(campaign=demo_campaign, action_ids=[1, 2, 3])

    with pytest.raises(ValidationError, match="fitted on another catalogue"):
        training_services.training_run_create(campaign=demo_campaign, enqueue=False)


def test_override_needs_a_written_reason(demo_campaign, demo_users):
    model = CustomerResponseModelFactory(campaign=demo_campaign, within_tolerance=False)

    with pytest.raises(ValidationError, match="why policies may train"):
        response_model_override(response_model=model, user=demo_users["marketer"], reason=" ")
    model.refresh_from_db()
    assert not model.override_reason and not model.trainable


def test_override_lets_training_start_and_is_audited(demo_campaign, demo_users):
    model = CustomerResponseModelFactory(campaign=demo_campaign, within_tolerance=False)

    response_model_override(response_model=model, user=demo_users["marketer"],
                            reason="The held-out fortnight had a one-off flash sale.")

    model.refresh_from_db()
    assert model.trainable and model.overridden_by == demo_users["marketer"]
    entry = AuditEntry.objects.get(verb="response_model.overridden", target_id=str(model.pk))
    assert entry.details["reason"] == "The held-out fortnight had a one-off flash sale."
    training_services.training_run_create(campaign=demo_campaign, enqueue=False)


def test_a_validated_model_cannot_be_overridden(demo_campaign, demo_users):
    model = CustomerResponseModelFactory(campaign=demo_campaign, within_tolerance=True)

    with pytest.raises(ValidationError, match="nothing to override"):
        response_model_override(response_model=model, user=demo_users["marketer"],
                                reason="no reason at all, really")
