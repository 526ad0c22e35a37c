"""Attribution on PostgreSQL for a campaign with more decisions than one statement may carry
parameters (65,535): every query stays bounded whatever the campaign's size."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.models import Decision
from tests.conftest import needs_real_stack
from tests.factories import DecisionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.integration, needs_real_stack]


def test_a_campaign_over_65535_decisions_is_attributed_and_priced():
    template = DecisionFactory()
    now = timezone.now()
    fields = {f.attname: getattr(template, f.attname) for f in Decision._meta.concrete_fields
              if f.attname != "id"}
    Decision.objects.bulk_create([Decision(**{**fields, "decided_at": now})
                                  for _ in range(70_000)], batch_size=5_000)
    decisions_attribute(campaign=template.campaign)
    campaign_decisions = Decision.objects.filter(campaign=template.campaign)
    assert campaign_decisions.count() == 70_001
    assert not campaign_decisions.filter(reward__isnull=True).exists()
