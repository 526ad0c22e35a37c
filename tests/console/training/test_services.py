"""Training runs: a candidate with its curve, cancellation, failures, idempotent re-delivery, resume."""

from __future__ import annotations

import time

import pytest

from crm_console.compliance.models import AuditEntry
from crm_console.decisioning.models import PolicyVersion
from crm_console.training import agents_training, services
from crm_console.training.models import TrainingRun

pytestmark = pytest.mark.django_db

BUDGET = 2_000  # 16 simulated customers -> four PPO updates of 512 customer-days


def run_for(campaign, **kwargs) -> TrainingRun:
    options = {"budget_steps": BUDGET, "warm_start": False, "enqueue": False, **kwargs}
    return services.training_run_create(campaign=campaign, **options)


def test_training_run_stores_a_candidate_with_learning_curve_and_kpis(demo_campaign):
    run = services.training_run_execute(training_run_id=run_for(demo_campaign).pk, task_id="t1")

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    version = run.policy_version
    assert version.status == PolicyVersion.Status.CANDIDATE
    assert version.algorithm == "actor_critic"
    assert len(run.learning_curve["steps"]) >= 2
    assert len(run.learning_curve["steps"]) == len(run.learning_curve["returns"])
    assert run.learning_curve["steps"] == sorted(run.learning_curve["steps"])
    assert run.progress == 1.0 and run.current_return is not None
    assert {"candidate", "control"} <= set(version.metrics)
    assert "mean_return" in version.metrics["candidate"]


def test_progress_and_eta_are_saved_while_training(demo_campaign, monkeypatch):
    seen = []
    real_fit = agents_training.agent_fit

    def watching_fit(*, agent, simulator, total_steps, callback):
        def spy(progress):
            keep_going = callback(progress)
            seen.append(TrainingRun.objects.values("progress", "eta_seconds", "current_return")
                        .get(pk=run.pk))
            return keep_going
        return real_fit(agent=agent, simulator=simulator, total_steps=total_steps, callback=spy)

    monkeypatch.setattr(agents_training, "agent_fit", watching_fit)
    run = run_for(demo_campaign)
    services.training_run_execute(training_run_id=run.pk, task_id="t1")

    midway = [row for row in seen if 0 < row["progress"] < 1]
    assert midway, seen
    assert all(row["eta_seconds"] is not None for row in midway)
    # the current return appears once simulated customers have finished an episode
    assert any(row["current_return"] is not None for row in midway)


def test_progress_moves_during_the_warm_start(demo_campaign, monkeypatch):
    # the warm start can take longer than the training: the bar must not wait at 0 % for it
    saved = []
    real_write = services._ProgressSaver._write
    monkeypatch.setattr(services._ProgressSaver, "_write", lambda self, progress, eta: (
        saved.append((self.clock.stage, progress, eta)), real_write(self, progress, eta))[1])
    run = services.training_run_execute(
        training_run_id=run_for(demo_campaign, warm_start=True).pk, task_id="t1")

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    warming = [(p, eta) for stage, p, eta in saved if stage == "warm start"]
    assert any(0 < p < 1 and eta is not None for p, eta in warming), saved
    assert [p for _, p, _ in saved] == sorted(p for _, p, _ in saved)  # never goes back


def test_run_clock_counts_the_stages_still_to_come_in_the_time_left(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: now[0])
    clock = services.RunClock({"warm start": 30.0, "training": 60.0, "measuring": 10.0})
    clock.enter("warm start")
    now[0] += 10.0
    progress, left = clock.report(fraction=0.5)  # 10 s for half: 10 s more, then 70 s
    assert left == pytest.approx(80.0) and progress == pytest.approx(10.0 / 90.0)


def test_run_clock_never_moves_the_bar_back(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: now[0])
    clock = services.RunClock({"training": 10.0})
    clock.enter("training")
    now[0] = 5.0
    first, _ = clock.report(fraction=0.5)
    now[0] = 6.0
    second, _ = clock.report(fraction=0.1)  # a slower rate than thought
    assert second == first


def test_progress_is_not_written_on_every_update(demo_campaign, monkeypatch):
    monkeypatch.setattr(services, "PROGRESS_SAVE_SECONDS", 3600.0)
    writes = []
    real_save = services._ProgressSaver.save
    monkeypatch.setattr(services._ProgressSaver, "save",
                        lambda self, *a: (writes.append(a), real_save(self, *a))[1])
    services.training_run_execute(training_run_id=run_for(demo_campaign).pk, task_id="t1")
    # the first report and the final one, nothing in between
    assert len(writes) == 2


def test_cancel_mid_run_ends_cancelled_without_a_version(demo_campaign, monkeypatch):
    run = run_for(demo_campaign)
    real_fit = agents_training.agent_fit

    def fit_then_cancel(*, agent, simulator, total_steps, callback):
        def marketer_presses_cancel(progress):
            services.training_run_cancel(training_run=run)
            return callback(progress)
        return real_fit(agent=agent, simulator=simulator, total_steps=total_steps,
                        callback=marketer_presses_cancel)

    monkeypatch.setattr(agents_training, "agent_fit", fit_then_cancel)
    versions_before = PolicyVersion.objects.count()
    run = services.training_run_execute(training_run_id=run.pk, task_id="t1")

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED
    assert run.policy_version is None
    assert 0 < run.progress < 1
    assert PolicyVersion.objects.count() == versions_before


def test_cancelling_a_queued_run_cancels_it_at_once(demo_campaign):
    run = services.training_run_cancel(training_run=run_for(demo_campaign))
    assert run.status == TrainingRun.Status.CANCELLED
    assert services.training_run_execute(training_run_id=run.pk).status == "cancelled"


def test_a_training_error_marks_the_run_failed_with_the_reason(demo_campaign, monkeypatch):
    def broken_fit(**kwargs):
        raise RuntimeError("simulator exploded")

    monkeypatch.setattr(agents_training, "agent_fit", broken_fit)
    run = services.training_run_execute(training_run_id=run_for(demo_campaign).pk, task_id="t1")
    assert run.status == TrainingRun.Status.FAILED
    assert "simulator exploded" in run.error
    assert run.policy_version is None
    assert PolicyVersion.objects.filter(status="candidate").count() == 0


def test_redelivered_task_for_a_finished_run_does_nothing(demo_campaign):
    run = services.training_run_execute(training_run_id=run_for(demo_campaign).pk, task_id="t1")
    again = services.training_run_execute(training_run_id=run.pk, task_id="t1")
    assert again.status == TrainingRun.Status.SUCCEEDED
    assert again.policy_version_id == run.policy_version_id
    assert PolicyVersion.objects.filter(status="candidate").count() == 1


def test_run_held_by_another_live_worker_is_left_alone(demo_campaign):
    run = run_for(demo_campaign)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", celery_task_id="other-worker", report={"heartbeat_at": time.time()})
    result = services.training_run_execute(training_run_id=run.pk, task_id="duplicate")
    assert result.status == TrainingRun.Status.RUNNING
    assert result.celery_task_id == "other-worker"
    assert PolicyVersion.objects.filter(status="candidate").count() == 0


def test_a_campaigns_actor_critic_scores_actions_through_its_catalogues_attributes(demo_campaign):
    simulator = agents_training.simulator_for_campaign(campaign=demo_campaign, customers=16)
    agent = agents_training.agent_make(algorithm="actor_critic", simulator=simulator, seed=0,
                                       campaign=demo_campaign)
    attributes = simulator.bridge.catalogue.attributes
    assert agent.config.action_attributes.shape == (agent.n_actions, attributes.shape[1])
    assert (agent.config.action_attributes == attributes).all()


def test_run_whose_worker_died_resumes_from_its_checkpoint(demo_campaign, monkeypatch):
    run = run_for(demo_campaign)
    # a first worker trained half the budget, checkpointed, and was killed
    simulator = agents_training.simulator_for_campaign(campaign=demo_campaign, customers=16)
    agent = agents_training.agent_make(algorithm="actor_critic", simulator=simulator, seed=0,
                                       campaign=demo_campaign)
    agent.fit(simulator.env, total_steps=1024)
    services.checkpoint_path(run).parent.mkdir(parents=True, exist_ok=True)
    agent.save(services.checkpoint_path(run))
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", celery_task_id="t1", progress=0.5,
        learning_curve={"steps": [512, 1024, 1900], "returns": [1.0, 2.0, 3.0]},
        report={"heartbeat_at": time.time() - 3600, "checkpoint_steps": 1024})

    run = services.training_run_execute(training_run_id=run.pk, task_id="t1")  # re-delivered

    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["resumed_from_steps"] == 1024
    assert run.learning_curve["steps"][:2] == [512, 1024]  # work after the checkpoint was lost
    assert 1900 not in run.learning_curve["steps"]
    assert run.learning_curve["steps"][-1] >= BUDGET
    assert not services.checkpoint_path(run).exists()


def test_warm_start_pretrains_on_the_campaigns_logged_decisions(demo_campaign, monkeypatch):
    monkeypatch.setattr(services, "LOGGED_ROWS_FOR_WARM_START", 10)
    run = services.training_run_execute(
        training_run_id=run_for(demo_campaign, warm_start=True).pk, task_id="t1")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.report["warm_start"] == "awr_distillation"
    assert run.report["logged_rows"] > 10


def test_creating_a_run_is_audited_and_needs_the_permission(demo_campaign):
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied

    reviewer = get_user_model().objects.get(username="reviewer")  # the demo's compliance reviewer
    with pytest.raises(PermissionDenied):
        services.training_run_create(campaign=demo_campaign, created_by=reviewer, enqueue=False)
    run = run_for(demo_campaign)
    assert AuditEntry.objects.filter(verb="training_run.created", target_id=str(run.pk)).exists()


def test_a_training_run_prices_the_campaigns_outcomes_first_and_says_how_many(demo_campaign):
    from crm_console.decisioning.models import Decision

    Decision.objects.filter(campaign=demo_campaign).update(reward=None, attributed_at=None)
    run = services.training_run_execute(training_run_id=run_for(demo_campaign).pk, task_id="t1")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    total = Decision.objects.filter(campaign=demo_campaign).count()
    assert run.report["priced_decisions"] == total > 0
    assert not Decision.objects.filter(campaign=demo_campaign, reward__isnull=True).exists()
