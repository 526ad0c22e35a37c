"""Celery tasks of the dashboards: keep each live campaign's dashboard computed ahead of the
marketer (its per-day frames cached, so a request reads only the days that changed).

Thin: the selector computes and caches (dashboards.selectors.campaign_dashboard).
"""

from __future__ import annotations

from celery import shared_task
from celery.schedules import crontab

from crm_console.campaigns.models import Campaign
from crm_console.dashboards.selectors import campaign_dashboard

DEFAULT_PERIOD_DAYS = 90
"""The period the dashboard opens on (dashboards.views.home)."""

BEAT_SCHEDULE = {
    "dashboards-warm": {
        "task": "crm_console.dashboards.tasks.dashboards_warm",
        "schedule": crontab(minute="*/4"),  # inside the cache's 5 minutes
    },
}


@shared_task(name="crm_console.dashboards.tasks.dashboards_warm")
def dashboards_warm() -> list[int]:
    """Compute (or find cached) the default period's dashboard of every live campaign."""
    warmed = []
    for campaign in Campaign.objects.filter(status=Campaign.Status.LIVE).order_by("pk"):
        campaign_dashboard(campaign=campaign, days=DEFAULT_PERIOD_DAYS)
        warmed.append(campaign.pk)
    return warmed
