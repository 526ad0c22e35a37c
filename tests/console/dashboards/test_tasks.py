"""The beat keeps live campaigns' dashboards computed ahead of the marketer."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from crm_console.dashboards import selectors
from crm_console.dashboards.tasks import BEAT_SCHEDULE, DEFAULT_PERIOD_DAYS, dashboards_warm

pytestmark = pytest.mark.django_db


def test_warming_caches_the_default_period_of_live_campaigns_only(small_demo, monkeypatch):
    from tests.factories import CampaignFactory

    draft = CampaignFactory(status="draft")
    cache.clear()
    assert dashboards_warm() == [small_demo.pk] and draft.pk not in dashboards_warm()
    # the dashboard now comes from the cache: no decision is read again
    monkeypatch.setattr(selectors, "campaign_days_read",
                        lambda **kw: pytest.fail("read the decisions again"))
    assert selectors.campaign_dashboard(campaign=small_demo, days=DEFAULT_PERIOD_DAYS).charts


def test_the_warm_up_is_on_the_beat():
    from crm_console.celery import app

    assert "dashboards-warm" in app.conf.beat_schedule
    assert BEAT_SCHEDULE["dashboards-warm"]["task"] == dashboards_warm.name
