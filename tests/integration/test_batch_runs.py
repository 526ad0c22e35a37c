"""Batch runs on the real stack: chunk tasks decided by REAL worker subprocesses on PostgreSQL
and Redis - duplicated at once, or with their worker killed mid-chunk (SIGKILL inside the chunk's
transaction) - decide every customer exactly once; two once-per-day starts at the same moment
make one run."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.batch_runs import batch_run_start
from crm_console.decisioning.models import BatchRun, BatchRunChunk, Decision
from crm_console.demo_workspace import demo_workspace_seed
from tests.conftest import needs_real_stack, roles_ensure
from tests.integration.worker_processes import wait_until

pytestmark = [needs_real_stack, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

CHUNK_TASK = "crm_console.decisioning.tasks.batch_run_chunk"


@pytest.fixture
def campaign(tmp_path, settings) -> Campaign:
    settings.VAR_DIR = tmp_path
    roles_ensure()
    demo_workspace_seed(seed=0, customers=40, days=7)
    return Campaign.objects.get()


def decisions_per_customer(run: BatchRun) -> Counter:
    return Counter(Decision.objects.filter(context__batch_run=run.pk)
                   .exclude(status=Decision.Status.RELEASED).values_list("customer_id", flat=True))


def finished(run: BatchRun) -> BatchRun | None:
    run.refresh_from_db()
    return run if run.is_finished else None


def test_two_once_per_day_starts_at_the_same_moment_make_one_run(campaign, tmp_path):
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def start(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = batch_run_start(campaign=campaign, once_per_day=True, enqueue=False,
                                         adapter_spec={"kind": "file",
                                                       "path": str(tmp_path / "o.jsonl")})
        except Exception as exc:  # surfaced by the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(created for _, created in results) == [False, True], results
    assert results[0][0].pk == results[1][0].pk
    assert BatchRun.objects.count() == 1


@pytest.mark.worker
def test_two_workers_given_every_chunk_twice_decide_each_customer_once(
        campaign, broker, workers, tmp_path):
    run, _ = batch_run_start(campaign=campaign, chunk_size=5, enqueue=False,
                             adapter_spec={"kind": "file", "path": str(tmp_path / "o.jsonl")})
    workers()
    workers()
    for chunk_id in run.chunks.values_list("pk", flat=True):
        for _ in range(2):  # a duplicated message, taken by both workers at once
            broker.send_task(CHUNK_TASK, args=[chunk_id], queue="decisions")

    wait_until(lambda: finished(run), 180, "the run to finish")
    assert run.status == BatchRun.Status.FINISHED, run.errors
    per_customer = decisions_per_customer(run)
    assert len(per_customer) == run.customers > 0 and set(per_customer.values()) == {1}
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert len(set(lines)) == run.customers


@pytest.mark.worker
def test_a_worker_killed_mid_chunk_leaves_nothing_decided_twice_or_skipped(
        campaign, broker, workers, tmp_path):
    run, _ = batch_run_start(campaign=campaign, chunk_size=10, enqueue=False,
                             adapter_spec={"kind": "file", "path": str(tmp_path / "o.jsonl")})
    slow = workers(env={"TEST_CHUNK_SECONDS": "4"})
    for chunk_id in run.chunks.values_list("pk", flat=True):
        broker.send_task(CHUNK_TASK, args=[chunk_id], queue="decisions")

    # the first chunk committed; the worker is now inside the second chunk's transaction
    wait_until(lambda: run.chunks.filter(status=BatchRunChunk.Status.DONE).exists(), 120,
               "a first chunk", every=0.1)
    slow.kill()
    done = run.chunks.filter(status=BatchRunChunk.Status.DONE).count()
    assert done < run.chunks_total
    assert sum(decisions_per_customer(run).values()) == sum(
        run.chunks.filter(status=BatchRunChunk.Status.DONE).values_list("decisions", flat=True))

    workers()  # acks_late: the killed worker's messages come back to this one
    wait_until(lambda: finished(run), 180, "the run to finish after the kill")
    assert run.status == BatchRun.Status.FINISHED, run.errors
    per_customer = decisions_per_customer(run)
    assert len(per_customer) == run.customers > 0 and set(per_customer.values()) == {1}
