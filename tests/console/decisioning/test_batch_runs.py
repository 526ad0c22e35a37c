"""Batch campaign runs: a segment cut into chunks by key range, each decided once through the live
decision service and handed to the adapter; failures retried, recorded and resumed."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.db import IntegrityError
from django.utils import timezone

from crm_console.decisioning import batch_runs, services
from crm_console.decisioning.adapters import FileAdapter
from crm_console.decisioning.batch_runs import batch_run_resume, batch_run_start
from crm_console.decisioning.models import BatchRun, BatchRunChunk, Decision
from crm_console.decisioning.tasks import CHUNK_RETRIES, batch_run_chunk, run_campaign
from crm_console.training.selectors import customer_segment

pytestmark = pytest.mark.django_db


def standing_decisions_per_customer(run: BatchRun) -> Counter:
    """Customer id -> decisions of this run that were not released."""
    return Counter(Decision.objects.filter(context__batch_run=run.pk)
                   .exclude(status=Decision.Status.RELEASED).values_list("customer_id", flat=True))


def file_adapter(tmp_path) -> dict:
    return {"kind": "file", "path": str(tmp_path / "out.jsonl")}


def test_run_campaign_decides_every_customer_in_chunks_and_hands_them_to_the_adapter(
        small_demo, tmp_path):
    before = Decision.objects.count()
    path = tmp_path / "out.jsonl"
    result = run_campaign.delay(small_demo.pk, segment=None, chunk_size=15,
                                adapter={"kind": "file", "path": str(path)}).get()

    customers = result["customers"]
    assert result["status"] == BatchRun.Status.FINISHED
    assert result["chunks"] == -(-customers // 15)
    assert result["decisions"] == customers == Decision.objects.count() - before
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == customers == result["delivered"]
    new = Decision.objects.filter(context__source="batch campaign run")
    assert new.count() == customers
    assert {line["decision_id"] for line in lines} == set(new.values_list("pk", flat=True))


def test_run_campaign_segment_filter_limits_the_customers(small_demo, tmp_path):
    result = run_campaign.delay(small_demo.pk, segment={"external_ids": ["cust-00001", "cust-00002"]},
                                adapter=file_adapter(tmp_path)).get()
    assert result["customers"] <= 2
    assert result["decisions"] == result["customers"]


def test_chunks_cover_the_segment_by_key_range_without_overlap(small_demo, tmp_path):
    run, _ = batch_run_start(campaign=small_demo, chunk_size=7, adapter_spec=file_adapter(tmp_path),
                             enqueue=False)
    chunks = list(run.chunks.order_by("number"))
    segment = list(customer_segment(filters=run.segment).values_list("pk", flat=True))
    covered = [pk for chunk in chunks for pk in segment
               if chunk.first_customer_id <= pk <= chunk.last_customer_id]
    assert covered == segment
    assert [c.customers for c in chunks] == [len(segment[i:i + 7]) for i in range(0, len(segment), 7)]
    assert all(a.last_customer_id < b.first_customer_id for a, b in zip(chunks, chunks[1:]))


def test_a_segment_matching_nobody_is_a_finished_run_of_zero(small_demo, tmp_path):
    run, created = batch_run_start(campaign=small_demo, segment={"time_zone": "Nowhere/Nobody"},
                                   adapter_spec=file_adapter(tmp_path))
    assert created and run.status == BatchRun.Status.FINISHED
    assert run.customers == run.chunks_total == run.totals["decisions"] == 0
    assert not (tmp_path / "out.jsonl").exists()


def test_a_chunk_task_run_twice_decides_its_customers_once(small_demo, tmp_path):
    run, _ = batch_run_start(campaign=small_demo, chunk_size=15, adapter_spec=file_adapter(tmp_path))
    decided = Decision.objects.count()
    for chunk in run.chunks.all():
        batch_run_chunk.apply(args=[chunk.pk])
    assert Decision.objects.count() == decided
    assert set(standing_decisions_per_customer(run).values()) == {1}


def test_a_chunk_decided_but_not_delivered_is_delivered_again_without_deciding_again(
        small_demo, tmp_path, monkeypatch):
    """A worker killed between the chunk's commit and the adapter: the redelivered task hands the
    same decisions to the adapter."""
    calls = []
    monkeypatch.setattr(FileAdapter, "deliver", lambda self, decisions: (
        calls.append(len(decisions)), (_ for _ in ()).throw(SystemExit("killed")))[1])
    run, _ = batch_run_start(campaign=small_demo, chunk_size=100,
                             adapter_spec=file_adapter(tmp_path), enqueue=False)
    chunk = run.chunks.get()
    with pytest.raises(SystemExit):
        batch_run_chunk.apply(args=[chunk.pk])
    chunk.refresh_from_db()
    assert chunk.status == BatchRunChunk.Status.DECIDED
    first_ids = sorted(chunk.undelivered_decision_ids)
    monkeypatch.undo()

    batch_run_chunk.apply(args=[chunk.pk])
    chunk.refresh_from_db()
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert chunk.status == BatchRunChunk.Status.DONE
    assert sorted(line["decision_id"] for line in lines) == first_ids
    assert Decision.objects.filter(context__batch_run=run.pk).count() == len(first_ids)


def test_a_chunk_that_keeps_failing_is_recorded_with_its_key_range_and_resume_reruns_only_it(
        small_demo, tmp_path, monkeypatch):
    real = services.decisions_create
    run, _ = batch_run_start(campaign=small_demo, chunk_size=15, adapter_spec=file_adapter(tmp_path),
                             enqueue=False)
    broken = run.chunks.get(number=1)

    def failing_for_chunk_one(**kwargs):
        if kwargs["customer_external_ids"] and customer_segment().filter(
                external_id=kwargs["customer_external_ids"][0],
                pk__gte=broken.first_customer_id, pk__lte=broken.last_customer_id).exists():
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "decisions_create", failing_for_chunk_one)
    batch_runs.batch_run_enqueue(run=run)
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FINISHED_WITH_ERRORS
    assert run.errors == [{"chunk": 1, "first_customer_id": broken.first_customer_id,
                           "last_customer_id": broken.last_customer_id,
                           "customers": broken.customers,
                           "error": "RuntimeError: database went away"}]
    done_before = {c.pk: c.finished_at for c in run.chunks.exclude(number=1)}
    monkeypatch.setattr(services, "decisions_create", real)

    assert batch_run_resume(run=run) == 1
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FINISHED and run.resumed == 1
    assert {c.pk: c.finished_at for c in run.chunks.exclude(number=1)} == done_before
    per_customer = standing_decisions_per_customer(run)
    assert len(per_customer) == run.customers and set(per_customer.values()) == {1}


def test_an_adapter_that_fails_every_call_is_retried_then_the_chunks_fail_and_contacts_are_freed(
        small_demo, tmp_path, monkeypatch):
    calls = []

    def down(self, decisions):
        calls.append(len(decisions))
        raise ConnectionError("adapter down")

    monkeypatch.setattr(FileAdapter, "deliver", down)
    run, _ = batch_run_start(campaign=small_demo, chunk_size=15, adapter_spec=file_adapter(tmp_path))
    assert run.status == BatchRun.Status.FINISHED_WITH_ERRORS
    assert len(calls) == run.chunks_total * (CHUNK_RETRIES + 1)
    assert run.totals["delivered"] == 0 and run.totals["failed"] == run.totals["decisions"] > 0
    assert [e["error"] for e in run.errors] == ["ConnectionError: adapter down"] * run.chunks_total
    assert not Decision.objects.filter(context__batch_run=run.pk,
                                       status=Decision.Status.DECIDED,
                                       action__channel__in=["email", "sms", "push", "call"]).exists()


def test_resume_after_the_adapter_is_back_decides_each_customer_once_more_and_delivers(
        small_demo, tmp_path, monkeypatch):
    monkeypatch.setattr(FileAdapter, "deliver", lambda self, d: (_ for _ in ()).throw(
        ConnectionError("adapter down")))
    run, _ = batch_run_start(campaign=small_demo, chunk_size=15, adapter_spec=file_adapter(tmp_path))
    monkeypatch.undo()

    batch_run_resume(run=run)
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FINISHED
    per_customer = standing_decisions_per_customer(run)
    assert len(per_customer) == run.customers and set(per_customer.values()) == {1}
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == run.customers


def test_decisions_a_webhook_never_took_are_released_and_their_contacts_freed(small_demo):
    result = run_campaign.delay(small_demo.pk, chunk_size=100, adapter={
        "kind": "webhook", "url": "http://127.0.0.1:9/down", "secret": "s", "timeout": 1}).get()
    assert result["status"] == BatchRun.Status.FINISHED_WITH_ERRORS
    assert result["failed"] == result["decisions"] > 0
    assert Decision.objects.filter(status=Decision.Status.RELEASED).count() == result["decisions"]
    assert result["released"] == result["contacts"]


def test_a_once_per_day_run_started_twice_joins_the_first(small_demo, tmp_path):
    first, created = batch_run_start(campaign=small_demo, once_per_day=True,
                                     adapter_spec=file_adapter(tmp_path))
    decided = Decision.objects.count()
    again, created_again = batch_run_start(campaign=small_demo, once_per_day=True,
                                           adapter_spec=file_adapter(tmp_path))
    assert created and not created_again and again.pk == first.pk
    assert Decision.objects.count() == decided


def test_the_database_refuses_a_second_once_per_day_run_for_the_same_campaign_and_day(small_demo):
    today = timezone.localdate()
    BatchRun.objects.create(campaign=small_demo, day=today, once_per_day=True)
    with pytest.raises(IntegrityError):
        BatchRun.objects.create(campaign=small_demo, day=today, once_per_day=True)


def test_runs_without_once_per_day_may_run_again_the_same_day(small_demo, tmp_path):
    first, _ = batch_run_start(campaign=small_demo, adapter_spec=file_adapter(tmp_path))
    second, created = batch_run_start(campaign=small_demo, adapter_spec=file_adapter(tmp_path))
    assert created and second.pk != first.pk and second.status == BatchRun.Status.FINISHED


def test_a_run_started_while_the_task_queue_is_unreachable_decides_nothing_and_resumes_later(
        small_demo, tmp_path, task_queue_down):
    run, created = batch_run_start(campaign=small_demo, chunk_size=15,
                                   adapter_spec=file_adapter(tmp_path))
    task_queue_down.undo()

    assert created and run.status == BatchRun.Status.FINISHED_WITH_ERRORS
    assert not Decision.objects.filter(context__batch_run=run.pk).exists()
    assert run.totals["failed_chunks"] == run.chunks_total > 0
    assert "task queue could not be reached" in run.errors[0]["error"]
    batch_run_resume(run=run)
    run.refresh_from_db()
    assert run.status == BatchRun.Status.FINISHED
    assert set(standing_decisions_per_customer(run).values()) == {1}
