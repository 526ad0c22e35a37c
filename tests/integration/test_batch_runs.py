"""Batch runs on the real stack: chunk tasks decided by REAL worker subprocesses on PostgreSQL
and Redis - duplicated at once, or with their worker killed mid-chunk (SIGKILL inside the chunk's
transaction) - decide every customer exactly once; two once-per-day starts at the same moment
make one run; a CRM webhook that hangs on one chunk does not hold the others."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from crm_console.api.signing import HEADER as SIGNATURE_HEADER
from crm_console.api.signing import SignatureError, signature_verify

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


# ------------------------------------------------------------------------------ a hung CRM
CRM_SECRET = "crm-shared-secret"
HANG_SECONDS = 12.0
"""How long the CRM sits on the first POST: far longer than the rest take..."""
ADAPTER_TIMEOUT_SECONDS = 30.0
"""...and shorter than the webhook adapter waits, so the hung POST is delivered, not retried."""


@dataclass
class CrmPost:
    decision_ids: list[int]
    answered: float
    hung: bool


@dataclass
class SlowCrm:
    """What the CRM's endpoint saw: each accepted POST, and how many it refused."""

    url: str = ""
    posts: list[CrmPost] = field(default_factory=list)
    refused: int = 0
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered_ids(self) -> Counter:
        with self.lock:
            return Counter(pk for post in self.posts for pk in post.decision_ids)


@pytest.fixture
def slow_crm() -> Iterator[SlowCrm]:
    """The CRM's webhook endpoint on a local port: checks the signature, sits HANG_SECONDS on
    the first POST, and answers every other POST at once (a thread each)."""
    crm = SlowCrm()

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                signature_verify(secret=CRM_SECRET, header=self.headers.get(SIGNATURE_HEADER),
                                 body=body)
            except SignatureError:
                with crm.lock:
                    crm.refused += 1
                self.send_response(401)
                self.end_headers()
                return
            with crm.lock:
                hung, crm.seen = crm.seen == 0, crm.seen + 1
            if hung:
                time.sleep(HANG_SECONDS)
            ids = [d["decision_id"] for d in json.loads(body)["decisions"]]
            with crm.lock:
                crm.posts.append(CrmPost(ids, time.monotonic(), hung))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    server.daemon_threads = True
    crm.url = f"http://127.0.0.1:{server.server_address[1]}/decisions"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield crm
    server.shutdown()
    server.server_close()


@pytest.mark.worker
def test_a_hung_crm_webhook_does_not_hold_the_other_chunks(campaign, broker, workers, slow_crm):
    run, _ = batch_run_start(campaign=campaign, chunk_size=5, enqueue=False, adapter_spec={
        "kind": "webhook", "url": slow_crm.url, "secret": CRM_SECRET,
        "timeout": ADAPTER_TIMEOUT_SECONDS})
    # Redis hands an unacknowledged message to another worker after this long: the test app's
    # 5 s (for the kill tests) could hand over the hung chunk mid-POST and deliver it twice;
    # like production's hours, this outlasts the adapter's timeout
    patient = {"TEST_VISIBILITY_TIMEOUT": "120"}
    workers(env=patient)
    workers(env=patient)
    for chunk_id in run.chunks.values_list("pk", flat=True):
        broker.send_task(CHUNK_TASK, args=[chunk_id], queue="decisions")

    wait_until(lambda: finished(run), 180, "the run to finish")
    assert run.status == BatchRun.Status.FINISHED, run.errors
    assert run.chunks_total > 2 and slow_crm.refused == 0

    # while the first POST hung, the other worker decided and delivered every other chunk
    [hung] = [post for post in slow_crm.posts if post.hung]
    delivered_meanwhile = sum(len(post.decision_ids) for post in slow_crm.posts
                              if not post.hung and post.answered < hung.answered)
    assert delivered_meanwhile >= run.customers - run.chunk_size
    assert delivered_meanwhile == run.customers - len(hung.decision_ids)

    # and every decision reached the CRM exactly once
    delivered = slow_crm.delivered_ids()
    decided = set(Decision.objects.filter(context__batch_run=run.pk)
                  .values_list("pk", flat=True))
    assert set(delivered) == decided and len(decided) == run.customers
    assert set(delivered.values()) == {1}
    assert run.totals["delivered"] == run.customers
