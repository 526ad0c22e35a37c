"""The training loop on the real stack: a REAL worker subprocess (celery -A ... worker) on
PostgreSQL and Redis trains, evaluates, and - killed with SIGKILL mid-run - leaves no half-made or
half-promoted policy; a restarted worker takes the message back (acks_late) and resumes the run.

The worker and these tests use their own Redis database (REDIS_URL's number + 7, mod 16) so
workers of other test sessions on the same Redis never take these messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.models import PolicyVersion
from crm_console.demo_workspace import demo_workspace_seed
from crm_console.training import services
from crm_console.training.models import TrainingRun
from tests.conftest import needs_real_stack, roles_ensure

pytestmark = [needs_real_stack, pytest.mark.integration, pytest.mark.worker,
              # no serialized_rollback: restoring content types after an earlier transactional
              # test's flush collides with the ones post_migrate recreated; roles are rebuilt instead
              pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def isolated_redis_url() -> str:
    base = os.environ["REDIS_URL"].rstrip("/")
    head, _, number = base.rpartition("/")
    if not number.isdigit():
        head, number = base, "0"
    return f"{head}/{(int(number) + 7) % 16}"


def database_url() -> str:
    db = settings.DATABASES["default"]
    return (f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


class WorkerProcess:
    """`celery -A tests.integration.training_worker_app worker` in its own process group."""

    def __init__(self, log_path: Path, checkpoint_dir: Path):
        env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": isolated_redis_url(),
               "POLICY_CHECKPOINT_DIR": str(checkpoint_dir), "CELERY_TASK_ALWAYS_EAGER": "false",
               "PYTHONPATH": str(ROOT)}
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.integration.training_worker_app",
             "worker", "-Q", "training,decisions,default", "--pool", "solo", "--concurrency", "1",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for_log("ready.", timeout=90)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"worker never logged {text!r}:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL, no chance to clean up: what an OOM killer or a lost machine does."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture
def broker():
    app = Celery("training-loop-test", broker=isolated_redis_url())
    with app.connection_for_write() as connection:  # start from empty queues
        for queue in ("training", "decisions", "default"):
            connection.default_channel.client.delete(queue)
        connection.default_channel.client.delete("unacked", "unacked_index")
    yield app
    app.close()


@pytest.fixture
def workers(tmp_path):
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker-{len(started)}.log", tmp_path / "checkpoints")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


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


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


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
