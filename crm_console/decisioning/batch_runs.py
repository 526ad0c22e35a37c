"""Batch campaign runs, fanned out across Celery workers: writes (see selectors for the reads).

A run is split at start into chunks of customers by key range (`first_customer_id` to
`last_customer_id`, found with one numbered scan of the segment: no list of ids is held or sent),
and each chunk is one task on the `decisions` queue, so N workers on N machines decide N chunks
at once. A chunk is decided through the live decision service (caps, consent, quiet hours and
holdout as for an API decision) in one transaction that also marks it decided, under its own row
lock: a retried, duplicated or redelivered chunk task waits for the first, finds the chunk
decided and only hands the same decisions to the adapter again. The chunk that finishes last
writes the run's figures.

Exactly once per customer and day means: within a run, a customer has at most one decision that
is not released (a released one was never delivered, its contact freed); a once-per-day run is
unique per campaign and day (a database constraint), so a second start joins the first.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import group
from kombu.exceptions import OperationalError as QueueUnreachable
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Sum, Window
from django.db.models.functions import Mod, RowNumber
from django.utils import timezone

from crm_console.campaigns.models import Action, Campaign
from crm_console.celery import task_named
from crm_console.compliance.services import audit_record
from crm_console.decisioning import services as decision_services
from crm_console.decisioning.adapters import adapter_from_spec, decision_payload
from crm_console.decisioning.models import BatchRun, BatchRunChunk, Decision
from crm_console.training.selectors import customer_segment

logger = logging.getLogger(__name__)

BATCH_SOURCE = "batch campaign run"
"""`context["source"]` of every decision a batch run makes."""

FIGURES = ("customers", "decisions", "contacts", "delivered", "failed", "released")
ERRORS_KEPT = 100
"""Failed chunks listed on the run (the rest are counted, and found by status)."""


class ChunkNotDelivered(Exception):
    """The adapter did not take every decision of a chunk: retried like any failure."""


def batch_run_start(
    *, campaign: Campaign, segment: dict[str, Any] | None = None, chunk_size: int = 1000,
    adapter_spec: dict[str, Any] | None = None, explain: bool = False, once_per_day: bool = False,
    started_by: AbstractBaseUser | None = None, enqueue: bool = True,
) -> tuple[BatchRun, bool]:
    """Create today's run and its chunks and queue them; returns the run and whether it is new.

    Once per day, a campaign that already has a run today gets that run back (joined, nothing
    queued); two starts at the same moment are told apart by the unique constraint on
    (campaign, day), so only one of them decides. On the embedded default (eager Celery) the
    chunks run inline and the run is finished when this returns.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    decision_services.campaign_for_decisions(campaign_id=campaign.pk)  # refuse a campaign that cannot decide
    segment = dict(segment if segment is not None else {"exclude_churned": True})
    customer_segment(filters=segment)  # refuse unknown filters before anything is written
    day = timezone.localdate()
    if once_per_day:
        earlier = BatchRun.objects.filter(campaign=campaign, day=day).order_by("created_at").first()
        if earlier is not None:
            return earlier, False
    try:
        with transaction.atomic():
            run = BatchRun.objects.create(
                campaign=campaign, segment=segment, day=day, once_per_day=once_per_day,
                chunk_size=chunk_size, adapter=dict(adapter_spec or {}), explain=explain,
                started_by=started_by)
            _chunks_plan(run)
    except IntegrityError:
        if not once_per_day:
            raise
        return BatchRun.objects.get(campaign=campaign, day=day, once_per_day=True), False
    audit_record(actor=started_by, verb="campaign.batch_run_started", target=campaign,
                 details={"batch_run": run.pk, "customers": run.customers,
                          "chunks": run.chunks_total})
    if run.chunks_total == 0:
        batch_run_finish_if_done(run_id=run.pk)  # a segment matching nobody: finished, 0
    elif enqueue:
        _enqueue_or_record(run, None)
    run.refresh_from_db()
    return run, True


def _chunks_plan(run: BatchRun) -> None:
    """Cut the segment into key ranges of `chunk_size` customers: one numbered scan of the
    segment's ids in the database, keeping every chunk_size-th id (the first of each chunk)."""
    size = run.chunk_size
    numbered = (customer_segment(filters=run.segment)
                .annotate(position=Window(RowNumber(), order_by=F("pk").asc())))
    rows = list(numbered.annotate(offset=Mod(F("position") - 1, size)).filter(offset=0)
                .order_by("pk").values_list("pk", "position"))
    if not rows:
        return
    extent = customer_segment(filters=run.segment).aggregate(total=Count("pk"), last=Max("pk"))
    total, last = extent["total"], extent["last"]
    chunks = []
    for number, (first_id, position) in enumerate(rows):
        upto = rows[number + 1][0] - 1 if number + 1 < len(rows) else last
        chunks.append(BatchRunChunk(run=run, number=number, first_customer_id=first_id,
                                    last_customer_id=upto,
                                    customers=min(size, total - position + 1)))
    BatchRunChunk.objects.bulk_create(chunks, batch_size=2_000)
    run.customers, run.chunks_total = total, len(chunks)
    run.save(update_fields=["customers", "chunks_total"])


def batch_run_enqueue(*, run: BatchRun, chunk_ids: list[int] | None = None) -> int:
    """Queue one task per unfinished chunk (a Celery group on the `decisions` queue); returns how
    many. Queuing a chunk twice is harmless: the second task finds it decided."""
    if chunk_ids is None:
        chunk_ids = list(run.chunks.exclude(status__in=[BatchRunChunk.Status.DONE,
                                                        BatchRunChunk.Status.FAILED])
                         .values_list("pk", flat=True))
    if chunk_ids:
        chunk_task = task_named("crm_console.decisioning.tasks.batch_run_chunk")
        group(chunk_task.si(pk) for pk in chunk_ids).apply_async()
    return len(chunk_ids)


def batch_run_chunk_run(*, chunk_id: int) -> BatchRunChunk:
    """Decide a chunk's customers (once), hand the decisions to the run's adapter, and finish the
    run if this was its last chunk. Raises on failure, for the task to retry; nothing it decided
    is lost by a retry, and nothing is decided twice."""
    with transaction.atomic():
        chunk = (BatchRunChunk.objects.select_for_update(of=("self",)).select_related("run")
                 .get(pk=chunk_id))
        if chunk.status == BatchRunChunk.Status.PENDING:
            _chunk_decide(chunk)
    if chunk.status == BatchRunChunk.Status.DECIDED:
        _chunk_deliver(chunk)
    batch_run_finish_if_done(run_id=chunk.run_id)
    return chunk


def _chunk_decide(chunk: BatchRunChunk) -> None:
    """Inside the chunk's transaction: decide every customer of its key range who has no
    standing decision of this run yet (after a resume, those whose decisions were released)."""
    run = chunk.run
    key_range = (chunk.first_customer_id, chunk.last_customer_id)
    decided = set(Decision.objects.filter(
        customer_id__gte=key_range[0], customer_id__lte=key_range[1], campaign_id=run.campaign_id,
        decided_at__gte=run.created_at, context__batch_run=run.pk,
    ).exclude(status=Decision.Status.RELEASED).values_list("customer_id", flat=True))
    external_ids = [external_id for pk, external_id in
                    customer_segment(filters=run.segment).filter(pk__range=key_range)
                    .values_list("pk", "external_id") if pk not in decided]
    now = timezone.now()
    outcomes = decision_services.decisions_create(
        campaign=decision_services.campaign_for_decisions(campaign_id=run.campaign_id),
        customer_external_ids=external_ids, context={"source": BATCH_SOURCE, "batch_run": run.pk},
        now=now, explain=run.explain)
    decisions = [o.decision for o in outcomes]
    chunk.status = BatchRunChunk.Status.DECIDED
    chunk.decided_at = now
    chunk.customers = len(external_ids) + len(decided)
    chunk.decisions += len(decisions)
    chunk.contacts += sum(1 for d in decisions if not d.action.is_no_contact)
    chunk.undelivered_decision_ids = [d.pk for d in decisions]
    chunk.save(update_fields=["status", "decided_at", "customers", "decisions", "contacts",
                              "undelivered_decision_ids"])


def _chunk_deliver(chunk: BatchRunChunk) -> None:
    """Hand the chunk's undelivered decisions to the adapter; what it refused stays undelivered
    and the chunk is retried (ChunkNotDelivered)."""
    pending = list(Decision.objects.filter(pk__in=chunk.undelivered_decision_ids)
                   .select_related("action").annotate(external_id=F("customer__external_id"))
                   .order_by("customer_id"))
    delivery = None
    if pending:
        delivery = adapter_from_spec(chunk.run.adapter or None).deliver([
            decision_payload(d, action=d.action, customer_external_id=d.external_id)
            for d in pending])
    refused = sorted(delivery.failed_decision_ids) if delivery else []
    BatchRunChunk.objects.filter(pk=chunk.pk).update(
        delivered=F("delivered") + (delivery.delivered if delivery else 0),
        undelivered_decision_ids=refused, error="; ".join(delivery.errors[:5]) if refused else "",
        **({} if refused else {"status": BatchRunChunk.Status.DONE,
                               "finished_at": timezone.now()}))
    chunk.refresh_from_db()
    if refused:
        raise ChunkNotDelivered(f"the adapter did not take {len(refused)} of "
                                f"{len(pending)} decisions: {chunk.error}")


def batch_run_chunk_fail(*, chunk_id: int, error: BaseException | str) -> BatchRunChunk:
    """Record a chunk that failed its last retry: what it decided and could not deliver is
    released (the contacts freed), and the chunk keeps its key range for a resume."""
    with transaction.atomic():
        chunk = BatchRunChunk.objects.select_for_update().get(pk=chunk_id)
        if chunk.status == BatchRunChunk.Status.DONE:
            return chunk
        undelivered = list(chunk.undelivered_decision_ids)
        if undelivered:
            chunk.released += decision_services.decisions_release(decision_ids=undelivered,
                                                reason="delivery failed")
            # a "no contact" holds no cap (decisions_release leaves it), but it was not handed
            # over either: released too, so a resume decides that customer again
            Decision.objects.filter(pk__in=undelivered, status=Decision.Status.DECIDED,
                                    action__channel=Action.NO_CONTACT_CHANNEL).update(
                status=Decision.Status.RELEASED)
            chunk.failed += len(undelivered)
        chunk.status = BatchRunChunk.Status.FAILED
        chunk.undelivered_decision_ids = []
        chunk.error = (error if isinstance(error, str)
                       else f"{type(error).__name__}: {error}")[:2_000]
        chunk.finished_at = timezone.now()
        chunk.save()
    logger.warning("batch run %s: chunk %s failed (%s)", chunk.run_id, chunk.number,
                   chunk.error.split(":")[0])
    batch_run_finish_if_done(run_id=chunk.run_id)
    return chunk


def batch_run_finish_if_done(*, run_id: int) -> BatchRun:
    """Once no chunk is left to decide or deliver, write the run's figures and its status
    (finished, or finished with errors listing the failed chunks' key ranges)."""
    with transaction.atomic():
        run = BatchRun.objects.select_for_update().get(pk=run_id)
        if run.is_finished or run.chunks.exclude(
                status__in=[BatchRunChunk.Status.DONE, BatchRunChunk.Status.FAILED]).exists():
            return run
        sums = run.chunks.aggregate(**{name: Sum(name) for name in FIGURES})
        failed = run.chunks.filter(status=BatchRunChunk.Status.FAILED).order_by("number")
        run.errors = [{"chunk": c.number, "first_customer_id": c.first_customer_id,
                       "last_customer_id": c.last_customer_id, "customers": c.customers,
                       "error": c.error} for c in failed[:ERRORS_KEPT]]
        failed_chunks = failed.count()
        run.totals = {**{name: int(sums[name] or 0) for name in FIGURES},
                      "chunks": run.chunks_total, "failed_chunks": failed_chunks,
                      "seconds": round((timezone.now() - run.created_at).total_seconds(), 2)}
        run.status = (BatchRun.Status.FINISHED_WITH_ERRORS if failed_chunks
                      else BatchRun.Status.FINISHED)
        run.finished_at = timezone.now()
        run.save(update_fields=["errors", "totals", "status", "finished_at"])
    audit_record(actor=run.started_by, verb="campaign.batch_run", target=run.campaign,
                 details={"batch_run": run.pk, "status": run.status, **run.totals})
    return run


def batch_run_resume(*, run: BatchRun, resumed_by: AbstractBaseUser | None = None) -> int:
    """Queue again what did not finish - failed chunks, and chunks a lost worker left - and
    nothing else; returns how many chunks were queued. Chunks already done are not touched, and
    a resumed chunk decides only customers without a standing decision of this run."""
    with transaction.atomic():
        run = BatchRun.objects.select_for_update().get(pk=run.pk)
        unfinished = list(run.chunks.exclude(status=BatchRunChunk.Status.DONE)
                          .values_list("pk", flat=True))
        if not unfinished:
            return 0
        run.chunks.filter(status=BatchRunChunk.Status.FAILED).update(
            status=BatchRunChunk.Status.PENDING, finished_at=None)
        run.status, run.finished_at = BatchRun.Status.RUNNING, None
        run.resumed += 1
        run.save(update_fields=["status", "finished_at", "resumed"])
    audit_record(actor=resumed_by, verb="campaign.batch_run_resumed", target=run.campaign,
                 details={"batch_run": run.pk, "chunks": len(unfinished)})
    return _enqueue_or_record(run, unfinished)


def _enqueue_or_record(run: BatchRun, chunk_ids: list[int] | None) -> int:
    """Queue the chunks; if the task queue cannot be reached, every chunk still pending fails
    with that reason, so the run ends "finished with errors" and a resume queues them later
    (nothing is decided, nothing is lost). Returns how many chunks were queued."""
    try:
        return batch_run_enqueue(run=run, chunk_ids=chunk_ids)
    except QueueUnreachable as error:
        logger.warning("batch run %s: the task queue is unreachable (%s)", run.pk,
                       type(error).__name__)
        run.chunks.filter(status=BatchRunChunk.Status.PENDING).update(
            status=BatchRunChunk.Status.FAILED, finished_at=timezone.now(),
            error=f"The task queue could not be reached ({error}); resume the run once it is "
                  f"back."[:2_000])
        batch_run_finish_if_done(run_id=run.pk)
        return 0
