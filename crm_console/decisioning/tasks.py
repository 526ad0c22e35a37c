"""Celery tasks of the decision side: batch campaign runs and attribution.

Routed to the `decisions` queue by module (crm_console.celery); thin: ids in, a service called,
transient errors retried with exponential backoff.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.attribution import campaigns_price_outcomes, decisions_attribute
from crm_console.decisioning.batch_runs import (
    batch_run_chunk_fail,
    batch_run_chunk_run,
    batch_run_start,
)
from crm_console.decisioning.history_import import history_import_run
from crm_console.decisioning.selectors import batch_run_summary
from crm_console.decisioning.trials import trials_conclude

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY = dict(autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=600, retry_jitter=True,
             max_retries=5, acks_late=True)


@shared_task(bind=True, name="crm_console.decisioning.tasks.run_campaign", **RETRY)
def run_campaign(self, campaign_id: int, segment: dict | None = None, chunk_size: int = 1000,
                 adapter: dict | None = None, once_per_day: bool = False) -> dict:
    """Start a batch run of a campaign's segment: its chunks go to the `decisions` queue (inline
    on the embedded default, where the answer already has the run's figures)."""
    run, _ = batch_run_start(campaign=Campaign.objects.get(pk=campaign_id), segment=segment,
                             chunk_size=chunk_size, adapter_spec=adapter,
                             once_per_day=once_per_day)
    return batch_run_summary(run=run)


CHUNK_RETRIES = 5
CHUNK_BACKOFF_SECONDS = 5
CHUNK_BACKOFF_MAX_SECONDS = 300


@shared_task(bind=True, name="crm_console.decisioning.tasks.batch_run_chunk", acks_late=True,
             reject_on_worker_lost=True, max_retries=CHUNK_RETRIES)
def batch_run_chunk(self, chunk_id: int) -> str:
    """Decide and deliver one chunk of a batch run. Any failure (a database error, an adapter
    down or refusing) is retried with exponential backoff; after the last retry the chunk is
    recorded as failed with its customers' key range, and the run goes on without it."""
    from celery.utils.time import get_exponential_backoff_interval

    attempt = self.request.retries
    while True:
        try:
            return batch_run_chunk_run(chunk_id=chunk_id).status
        except Exception as exc:
            if attempt >= self.max_retries:
                return batch_run_chunk_fail(chunk_id=chunk_id, error=exc).status
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=get_exponential_backoff_interval(
                    CHUNK_BACKOFF_SECONDS, attempt, CHUNK_BACKOFF_MAX_SECONDS, full_jitter=True))
            attempt += 1  # eager (embedded default, no worker to come back): again, inline


@shared_task(bind=True, name="crm_console.decisioning.tasks.attribute_outcomes", **RETRY)
def attribute_outcomes(self, campaign_id: int) -> int:
    """Join new outcome events to their decisions and price them (idempotent)."""
    return decisions_attribute(campaign=Campaign.objects.get(pk=campaign_id))




@shared_task(bind=True, name="crm_console.decisioning.tasks.price_outcomes_everywhere", **RETRY)
def price_outcomes_everywhere(self) -> dict[int, int]:
    """Beat: attribute and price every campaign's new outcomes (decisioning/schedule.py)."""
    return campaigns_price_outcomes()


@shared_task(bind=True, name="crm_console.decisioning.tasks.conclude_trials", **RETRY)
def conclude_trials(self) -> list[int]:
    """Beat: stop the trials whose days are over and whose verdict refuses."""
    return trials_conclude()


@shared_task(bind=True, name="crm_console.decisioning.tasks.import_history", acks_late=True)
def import_history(self, history_import_id: int) -> str:
    """Run an uploaded history import (decisioning.history_import); idempotent, so a redelivered
    task only finds what is already stored."""
    return history_import_run(history_import_id=history_import_id).status
