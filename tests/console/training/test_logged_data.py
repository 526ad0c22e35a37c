"""The campaign's attributed decisions as OPE arrays and an offline LoggedDataset."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from crm_console.campaigns.agents_bridge import catalogue_for_campaign
from crm_console.decisioning.logged_data import (
    logged_arrays_for_campaign, logged_dataset_from_arrays,
)
from crm_console.decisioning.models import Decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def arrays(demo_campaign):
    bridge = catalogue_for_campaign(campaign=demo_campaign)
    return logged_arrays_for_campaign(campaign=demo_campaign, action_ids=bridge.action_ids)


def test_only_decisions_older_than_the_attribution_window_are_read(demo_campaign, arrays):
    cutoff = timezone.now() - timedelta(days=demo_campaign.attribution_window_days)
    mature = Decision.objects.filter(campaign=demo_campaign, decided_at__lte=cutoff).count()
    assert 0 < len(arrays) == mature < Decision.objects.count()


def test_arrays_line_up_with_the_logged_rows(arrays):
    n, a = arrays.masks.shape
    assert arrays.obs.shape[0] == n and arrays.logging_probs.shape == (n, a)
    assert arrays.masks[np.arange(n), arrays.actions].all()
    assert np.allclose(arrays.logging_probs[np.arange(n), arrays.actions], arrays.propensities,
                       atol=1e-5)
    assert arrays.holdout.any() and not arrays.holdout.all()


def test_dataset_next_state_is_the_customers_next_decision(arrays):
    dataset = logged_dataset_from_arrays(arrays)
    same = np.flatnonzero(arrays.customer_ids[1:] == arrays.customer_ids[:-1])
    np.testing.assert_array_equal(dataset.next_obs[same], arrays.obs[same + 1])
    last_rows = np.flatnonzero(np.r_[arrays.customer_ids[1:] != arrays.customer_ids[:-1], True])
    assert dataset.dones[last_rows].all()
    assert not dataset.dones[same].any() or arrays.churned[same].any()


def test_rows_logged_with_another_catalogue_are_left_out_and_counted(demo_campaign):
    bridge = catalogue_for_campaign(campaign=demo_campaign)
    Decision.objects.filter(pk=Decision.objects.filter(reward__isnull=False).order_by("id")
                            .first().pk).update(action_mask=[True, True])
    arrays = logged_arrays_for_campaign(campaign=demo_campaign, action_ids=bridge.action_ids)
    assert arrays.skipped == 1 and "another catalogue" in arrays.notes[0]


def test_decisions_of_erased_customers_are_left_out_and_said(demo_campaign, demo_users):
    from crm_console.compliance.data_requests import customer_erase
    from crm_console.customers.models import Customer

    bridge = catalogue_for_campaign(campaign=demo_campaign)
    before = logged_arrays_for_campaign(campaign=demo_campaign, action_ids=bridge.action_ids)
    erased = Customer.objects.get(pk=int(before.customer_ids[0]))
    customer_erase(customer=erased, requested_by=demo_users["reviewer"])
    after = logged_arrays_for_campaign(campaign=demo_campaign, action_ids=bridge.action_ids)
    assert len(after) == len(before) - int((before.customer_ids == erased.pk).sum())
    assert erased.pk not in after.customer_ids
    assert any("erased" in note for note in after.notes)
