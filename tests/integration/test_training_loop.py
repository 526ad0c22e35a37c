"""The training loop on the real stack: a REAL worker subprocess (celery -A ... worker) on
PostgreSQL and Redis trains, evaluates, and - killed with SIGKILL mid-run - leaves no half-made or
half-promoted policy; a restarted worker takes the message back (acks_late) and resumes the run.

The worker and these tests use their own Redis database (tests/integration/worker_processes.py).
"""

from __future__ import annotations

import pytest
from celery import Celery

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.models import PolicyVersion
from crm_console.demo_workspace import demo_workspace_seed
from crm_console.training import services
from crm_console.training.models import TrainingRun
from tests.conftest import needs_real_stack, roles_ensure
from tests.integration.worker_processes import wait_until

pytestmark = [needs_real_stack, pytest.mark.integration, pytest.mark.worker,
              # no serialized_rollback: restoring content types after an earlier transactional
              # test's flush collides with the ones post_migrate recreated; roles are rebuilt instead
              pytest.mark.django_db(transaction=True)]

@pytest.fixture
def campaign(tmp_path, settings) -> Campaign:
    settings.POLICY_CHECKPOINT_DIR = tmp_path / "checkpoints"
    roles_ensure()
    demo_workspace_seed(seed=0, customers=40, days=21)
    return Campaign.objects.get()


def send_training(broker: Celery, run: TrainingRun) -> str:
    result = broker.send_task("crm_console.training.tasks.train_policy", args=[run.pk],
                              queue="training")
    return result.id


def test_train_policy_round_trip_through_a_real_worker(campaign, broker, workers):
    workers()
    run = services.training_run_create(campaign=campaign, budget_steps=20_000, warm_start=False,
                                       enqueue=False)
    send_training(broker, run)

    wait_until(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, 240, "the run to finish")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.policy_version.status == PolicyVersion.Status.CANDIDATE
    assert len(run.learning_curve["steps"]) >= 2
    # the worker queued the off-policy evaluation after the run committed
    report = wait_until(lambda: PolicyVersion.objects.get(pk=run.policy_version_id).ope_report,
                        120, "the evaluation")
    assert {"ips", "snips", "dr"} <= set(report["estimates"]["candidate"])


def test_worker_killed_mid_training_leaves_no_half_made_policy_and_a_new_worker_resumes(
        campaign, broker, workers):
    live_before = PolicyVersion.objects.get(campaign=campaign, status="live")
    versions_before = PolicyVersion.objects.count()
    worker = workers()
    run = services.training_run_create(campaign=campaign, budget_steps=600_000, warm_start=False,
                                       enqueue=False)
    task_id = send_training(broker, run)

    # kill it once it is well into training and has written a checkpoint
    wait_until(lambda: (TrainingRun.objects.get(pk=run.pk).report or {}).get("checkpoint_steps"),
               180, "a checkpoint")
    worker.kill()

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING and 0 < run.progress < 1
    assert run.celery_task_id == task_id
    assert run.policy_version is None
    assert PolicyVersion.objects.count() == versions_before  # no half-made version
    assert list(PolicyVersion.objects.filter(status="live").values_list("pk", flat=True)) == \
        [live_before.pk]                                     # nothing promoted
    killed_at = run.report["checkpoint_steps"]

    # acks_late: the message was never acknowledged, so a new worker gets it back and resumes
    workers()
    wait_until(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, 420, "the resumed run")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["resumed"] >= 1 and run.report["resumed_from_steps"] >= killed_at
    assert PolicyVersion.objects.count() == versions_before + 1
    assert PolicyVersion.objects.get(pk=run.policy_version_id).status == "candidate"
    assert PolicyVersion.objects.get(status="live").pk == live_before.pk


def test_a_population_trains_its_members_on_two_workers_and_keeps_one(campaign, broker, workers):
    first_worker, second_worker = workers(), workers()
    run = services.training_run_create(campaign=campaign, budget_steps=20_000, warm_start=False,
                                       population_size=2, enqueue=False)
    members = list(run.members.order_by("pk"))
    task_ids = [send_training(broker, member) for member in members]

    wait_until(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, 300, "the population")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert {m.status for m in run.members.all()} == {TrainingRun.Status.SUCCEEDED}
    assert run.report["kept_member"] in {m.pk for m in members}
    assert run.policy_version.status == PolicyVersion.Status.CANDIDATE
    # each worker took a member's message from the training queue
    for worker in (first_worker, second_worker):
        log = worker.log_path.read_text(errors="replace")
        assert any(f"[{task_id}] received" in log for task_id in task_ids), log[-2000:]
    # the worker that finished last queued the choice, then the evaluation of the kept policy
    report = wait_until(lambda: PolicyVersion.objects.get(pk=run.policy_version_id).ope_report,
                        120, "the evaluation")
    assert "dr" in report["estimates"]["candidate"]
