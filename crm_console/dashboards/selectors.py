"""KPI queries for the dashboards."""

from __future__ import annotations

from crm_console.campaigns.models import Campaign
from crm_console.customers.models import Customer, Event
from crm_console.decisioning.models import Decision


def workspace_totals() -> dict[str, int]:
    return {
        "campaigns": Campaign.objects.count(),
        "customers": Customer.objects.count(),
        "events": Event.objects.count(),
        "decisions": Decision.objects.count(),
    }
