"""Celery wiring of the training loop: queues, retries, beat entries, the nightly job."""

from __future__ import annotations

import pytest

from crm_console.celery import app
from crm_console.decisioning import tasks as decision_tasks
from crm_console.training import tasks
from crm_console.training.models import TrainingRun


def test_tasks_are_routed_to_their_queues():
    router = app.amqp.router
    assert router.route({}, tasks.train_policy.name)["queue"].name == "training"
    assert router.route({}, tasks.evaluate_policy.name)["queue"].name == "training"
    assert router.route({}, tasks.select_population.name)["queue"].name == "training"
    assert router.route({}, decision_tasks.run_campaign.name)["queue"].name == "decisions"
    assert router.route({}, decision_tasks.batch_run_chunk.name)["queue"].name == "decisions"


@pytest.mark.parametrize("task", [tasks.train_policy, tasks.evaluate_policy, tasks.promote_policy,
                                  tasks.select_population, decision_tasks.run_campaign])
def test_tasks_ack_late_and_retry_transient_errors_with_backoff(task):
    from django.db import OperationalError

    assert task.acks_late
    assert OperationalError in task.autoretry_for
    assert task.retry_backoff and task.max_retries >= 3


def test_nightly_retrain_and_stale_run_recovery_are_on_the_beat_schedule():
    schedule = app.conf.beat_schedule
    assert schedule["training-nightly-retrain"]["task"] == tasks.nightly_retrain.name
    assert schedule["training-recover-stale-runs"]["task"] == tasks.recover_stale_runs.name


@pytest.mark.django_db
def test_nightly_retrain_queues_one_run_per_live_campaign_and_no_pile_up(
        demo_campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = tasks.nightly_retrain.run(budget_steps=2_000, auto_promote=False)
    assert len(first) == 1 and len(callbacks) == 1
    run = TrainingRun.objects.get(pk=first[0])
    assert run.status == TrainingRun.Status.QUEUED and run.algorithm == "actor_critic"
    # tomorrow's beat while the run is still queued: nothing new
    assert tasks.nightly_retrain.run(budget_steps=2_000, auto_promote=False) == []


@pytest.mark.django_db
def test_train_policy_task_runs_the_service_and_queues_the_evaluation(
        demo_campaign, django_capture_on_commit_callbacks):
    from crm_console.training.services import training_run_create

    run = training_run_create(campaign=demo_campaign, budget_steps=2_000, warm_start=False,
                              enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.train_policy.delay(run.pk).get()
    assert result["status"] == "succeeded"
    version = TrainingRun.objects.get(pk=run.pk).policy_version
    version.refresh_from_db()
    assert version.ope_report["guardrail"]["baseline"] == "live"


@pytest.mark.django_db
def test_system_promotion_task_goes_through_the_guardrail_only(demo_campaign, monkeypatch):
    from crm_console.decisioning import promotion
    from crm_console.decisioning.models import PolicyVersion

    version = PolicyVersion.objects.get(status="live")
    candidate = PolicyVersion.objects.create(
        campaign=demo_campaign, version=9, algorithm=version.algorithm, artifact=version.artifact,
        artifact_sha256=version.artifact_sha256, action_ids=version.action_ids)
    result = tasks.promote_policy.delay(candidate.pk).get()
    assert result == {"promoted": False, "reason": "not evaluated yet: run evaluate_policy first"}

    monkeypatch.setattr(promotion, "guardrail_check",
                        lambda **kw: promotion.GuardrailResult(True, "the lower bound is above 0"))
    assert tasks.promote_policy.delay(candidate.pk).get()["promoted"] is True
    candidate.refresh_from_db()
    assert candidate.status == "live" and candidate.promoted_by is None and not candidate.forced_promotion


@pytest.mark.django_db
def test_the_last_member_to_finish_chooses_the_populations_policy(
        demo_campaign, django_capture_on_commit_callbacks):
    from crm_console.training import services

    run = services.training_run_create(campaign=demo_campaign, budget_steps=2_000,
                                       warm_start=False, population_size=2, enqueue=False)
    first, second = run.members.order_by("pk")

    with django_capture_on_commit_callbacks(execute=True):
        tasks.train_policy.apply(args=[first.pk])
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING and run.policy_version is None

    with django_capture_on_commit_callbacks(execute=True):
        tasks.train_policy.apply(args=[second.pk])
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["kept_member"] in (first.pk, second.pk)
    assert run.policy_version.ope_report  # the kept policy was evaluated off-policy (eager)
