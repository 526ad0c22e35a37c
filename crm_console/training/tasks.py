"""Celery tasks of the training loop: thin wrappers that take ids and call a service.

Routed to the `training` queue by module (crm_console.celery). `acks_late` and
reject-on-worker-lost are set for every task in settings, so a message whose worker dies is
delivered again; the services are idempotent because of that (see training.services). Transient
database and broker errors retry with exponential backoff; a training error is not retried - it
ends the run as failed with its reason.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, transaction

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.models import PolicyVersion
from crm_console.decisioning.promotion import PromotionRefused, policy_version_promote
from crm_console.training import services
from crm_console.training.models import TrainingRun
from crm_console.training.response_models import response_model_fit
from crm_console.training.what_if import what_if_run

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY = dict(autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=600, retry_jitter=True,
             max_retries=5, acks_late=True)


@shared_task(bind=True, name="crm_console.training.tasks.train_policy", **RETRY)
def train_policy(self, training_run_id: int) -> dict:
    """Train one run (or one member of a population); on success queue its off-policy
    evaluation - for a member, the choice among its population once all members are done."""
    run = services.training_run_execute(training_run_id=training_run_id, task_id=self.request.id or "")
    if run.is_member:
        population_id = run.population_of_id
        if services.training_population_ready(training_run_id=population_id):
            transaction.on_commit(lambda: select_population.delay(population_id))
    else:
        _evaluate_new_candidate(run)
    return {"training_run_id": run.pk, "status": run.status,
            "policy_version_id": run.policy_version_id}


@shared_task(bind=True, name="crm_console.training.tasks.select_population", **RETRY)
def select_population(self, training_run_id: int) -> dict:
    """Keep the best member of a population on held-out customers; queue its evaluation."""
    run = services.training_population_select(training_run_id=training_run_id)
    _evaluate_new_candidate(run)
    return {"training_run_id": run.pk, "status": run.status,
            "policy_version_id": run.policy_version_id}


def _evaluate_new_candidate(run: TrainingRun) -> None:
    if run.status == TrainingRun.Status.SUCCEEDED and run.policy_version_id and \
            not run.policy_version.ope_report:
        version_id = run.policy_version_id
        transaction.on_commit(lambda: evaluate_policy.delay(version_id))


@shared_task(bind=True, name="crm_console.training.tasks.evaluate_policy", **RETRY)
def evaluate_policy(self, policy_version_id: int, promote_if_passes: bool = False,
                    requested_by_id: int | None = None) -> dict:
    """OPE of a version vs the live policy and the holdout; optionally promote through the guardrail.

    `requested_by_id`: the user who asked for it, named in the audit (none: the system).
    """
    version = PolicyVersion.objects.select_related("campaign").get(pk=policy_version_id)
    requested_by = (get_user_model().objects.filter(pk=requested_by_id).first()
                    if requested_by_id is not None else None)
    report = services.policy_version_evaluate(policy_version=version, requested_by=requested_by)
    result = {"policy_version_id": version.pk,
              "guardrail_passed": (report.get("guardrail") or {}).get("passed")}
    if promote_if_passes and result["guardrail_passed"]:
        result.update(_promote_through_guardrail(policy_version_id))
    return result


@shared_task(bind=True, name="crm_console.training.tasks.promote_policy", **RETRY)
def promote_policy(self, policy_version_id: int) -> dict:
    """System promotion through the guardrail only (forced promotions are made by people)."""
    return _promote_through_guardrail(policy_version_id)


def _promote_through_guardrail(policy_version_id: int) -> dict:
    version = PolicyVersion.objects.get(pk=policy_version_id)
    if version.status == PolicyVersion.Status.LIVE:  # a re-delivered message: already done
        return {"promoted": True, "policy_version_id": version.pk}
    try:
        policy_version_promote(policy_version=version, promoted_by=None)
    except PromotionRefused as refused:
        return {"promoted": False, "reason": refused.reason}
    return {"promoted": True, "policy_version_id": version.pk}


@shared_task(bind=True, name="crm_console.training.tasks.nightly_retrain", **RETRY)
def nightly_retrain(self, budget_steps: int = 200_000, auto_promote: bool = True) -> list[int]:
    """Beat: for every live campaign, retrain (warm start on the day's logs) then evaluate.

    The evaluation that follows promotes through the guardrail when `auto_promote` (never forced).
    """
    run_ids = []
    for campaign in Campaign.objects.filter(status=Campaign.Status.LIVE):
        live = PolicyVersion.objects.filter(campaign=campaign, status=PolicyVersion.Status.LIVE).first()
        algorithm = live.algorithm if live and live.algorithm not in ("rule_based", "random") \
            else "actor_critic"
        if TrainingRun.objects.filter(campaign=campaign, status__in=[
                TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]).exists():
            continue  # yesterday's run is still going: do not pile up
        run = services.training_run_create(campaign=campaign, algorithm=algorithm,
                                           budget_steps=budget_steps, enqueue=False)
        run_ids.append(run.pk)
        run_id = run.pk
        transaction.on_commit(lambda run_id=run_id: nightly_train_then_evaluate.delay(
            run_id, auto_promote))
    return run_ids


@shared_task(bind=True, name="crm_console.training.tasks.nightly_train_then_evaluate", **RETRY)
def nightly_train_then_evaluate(self, training_run_id: int, auto_promote: bool = True) -> dict:
    run = services.training_run_execute(training_run_id=training_run_id, task_id=self.request.id or "")
    if run.status == TrainingRun.Status.SUCCEEDED and run.policy_version_id:
        version_id = run.policy_version_id
        transaction.on_commit(lambda: evaluate_policy.delay(version_id, auto_promote))
    return {"training_run_id": run.pk, "status": run.status}


@shared_task(bind=True, name="crm_console.training.tasks.recover_stale_runs", **RETRY)
def recover_stale_runs(self) -> list[int]:
    """Beat: re-deliver runs whose worker died (they resume from their checkpoint)."""
    return services.training_runs_recover_stale()


@shared_task(bind=True, name="crm_console.training.tasks.fit_response_model", **RETRY)
def fit_response_model(self, response_model_id: int) -> dict:
    """Fit and validate one campaign's customer-response model (its page polls the progress)."""
    model = response_model_fit(response_model_id=response_model_id)
    return {"response_model_id": model.pk, "status": model.status,
            "within_tolerance": model.within_tolerance}


@shared_task(bind=True, name="crm_console.training.tasks.run_what_if", **RETRY)
def run_what_if(self, what_if_id: int) -> dict:
    """Answer one what-if scenario in the campaign's fitted customer-response model."""
    scenario = what_if_run(what_if_id=what_if_id)
    return {"what_if_id": scenario.pk, "status": scenario.status}
