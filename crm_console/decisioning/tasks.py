"""Celery tasks of the decision side: batch campaign runs and attribution.

Routed to the `decisions` queue by module (crm_console.celery); thin: ids in, a service called,
transient errors retried with exponential backoff.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from crm_console.campaigns.models import Campaign

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY = dict(autoretry_for=TRANSIENT, retry_backoff=5, retry_backoff_max=600, retry_jitter=True,
             max_retries=5, acks_late=True)


@shared_task(bind=True, name="crm_console.decisioning.tasks.run_campaign", **RETRY)
def run_campaign(self, campaign_id: int, segment: dict | None = None, chunk_size: int = 1000,
                 adapter: dict | None = None) -> dict:
    """Batch-decide a campaign's segment and hand the decisions to a channel adapter."""
    from crm_console.training.services import campaign_run

    campaign = Campaign.objects.get(pk=campaign_id)
    return campaign_run(campaign=campaign, segment=segment, chunk_size=chunk_size,
                        adapter_spec=adapter, context={"celery_task_id": self.request.id})


@shared_task(bind=True, name="crm_console.decisioning.tasks.attribute_outcomes", **RETRY)
def attribute_outcomes(self, campaign_id: int) -> int:
    """Join new outcome events to their decisions and price them (idempotent)."""
    from crm_console.decisioning.attribution import decisions_attribute

    return decisions_attribute(campaign=Campaign.objects.get(pk=campaign_id))




@shared_task(bind=True, name="crm_console.decisioning.tasks.price_outcomes_everywhere", **RETRY)
def price_outcomes_everywhere(self) -> dict[int, int]:
    """Beat: attribute and price every campaign's new outcomes (decisioning/schedule.py)."""
    from crm_console.decisioning.attribution import campaigns_price_outcomes

    return campaigns_price_outcomes()


@shared_task(bind=True, name="crm_console.decisioning.tasks.import_history", acks_late=True)
def import_history(self, history_import_id: int) -> str:
    """Run an uploaded history import (decisioning.history_import); idempotent, so a redelivered
    task only finds what is already stored."""
    from crm_console.decisioning.history_import import history_import_run

    return history_import_run(history_import_id=history_import_id).status
