"""Dashboard reads that go over logged decisions keep working once a customer is erased."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from crm_console.compliance.data_requests import customer_erase
from crm_console.dashboards.selectors import policy_action_mix_by_segment
from crm_console.decisioning.models import Decision, PolicyVersion

pytestmark = pytest.mark.django_db


def test_action_mix_by_segment_leaves_out_an_erased_customers_decisions(small_demo):
    version = PolicyVersion.objects.get(campaign=small_demo, status="live")
    newest = Decision.objects.filter(campaign=small_demo).order_by("-decided_at").first()
    customer_erase(customer=newest.customer, requested_by=None)
    cache.clear()
    mix = policy_action_mix_by_segment(policy_version=version)
    assert mix and all(abs(sum(shares.values()) - 1) < 1e-6 for shares in mix.values())
