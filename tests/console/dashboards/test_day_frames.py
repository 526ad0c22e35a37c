"""The dashboard is combined from cached per-day frames: it must equal one read of every decision,
before and after decisions change, and read again only the days that changed."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from crm_console.campaigns.models import RewardWeights
from crm_console.dashboards import selectors
from crm_console.decisioning.attribution import decisions_reprice
from crm_console.decisioning.models import Decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def fixed_since(monkeypatch):
    """The 90-day period starts at one fixed moment for both computations being compared."""
    since = timezone.now() - timedelta(days=10, hours=5)
    monkeypatch.setattr(selectors, "_period_start", lambda days: since if days else None)
    cache.clear()
    return since


def _full_read(campaign, days):
    """What the dashboard computed before the per-day store: every decision read in one go."""
    frame = selectors.campaign_decision_frame(campaign=campaign, since=selectors._period_start(days))
    policy, holdout, kpis = selectors.kpis_from_frame(frame)
    return policy, holdout, kpis, selectors.trends_from_frame(frame), \
        selectors.campaign_action_mix(campaign=campaign, days=days)


def _flat(value) -> list:
    if dataclasses.is_dataclass(value):
        value = dataclasses.astuple(value)
    if isinstance(value, tuple):
        return [item for part in value for item in _flat(part)]
    return [value]


def _close(mine, theirs) -> bool:
    """Equal, floats up to the order they were summed in."""
    mine, theirs = _flat(mine), _flat(theirs)
    return len(mine) == len(theirs) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) if isinstance(a, float) and
        isinstance(b, float) else a == b for a, b in zip(mine, theirs))


def _assert_same(dashboard, full):
    policy, holdout, kpis, trends, mix = full
    assert (dashboard.kpis.policy, dashboard.kpis.holdout) == (policy, holdout)
    for mine, theirs in zip(dashboard.kpis.kpis, kpis, strict=True):
        assert _close(mine, theirs), (mine, theirs)
    assert len(dashboard.trends) == len(trends)
    for mine, theirs in zip(dashboard.trends, trends):
        assert _close(mine, theirs), (mine, theirs)
    assert dashboard.action_mix == mix


def _log_a_decision_now(campaign) -> Decision:
    decision = Decision.objects.filter(campaign=campaign).order_by("-id").first()
    decision.pk, decision.decided_at = None, timezone.now()
    decision.reward, decision.attributed_at, decision.reward_components = 10.0, timezone.now(), {
        "revenue": 12.5, "conversion": 1.0}
    decision.save()
    return decision


@pytest.mark.parametrize("days", [90, None])
def test_the_combined_days_equal_a_full_read(small_demo, fixed_since, days):
    _assert_same(selectors.campaign_dashboard(campaign=small_demo, days=days),
                 _full_read(small_demo, days))


def test_they_still_do_after_a_new_decision(small_demo, fixed_since):
    selectors.campaign_dashboard(campaign=small_demo, days=90)
    _log_a_decision_now(small_demo)
    _assert_same(selectors.campaign_dashboard(campaign=small_demo, days=90),
                 _full_read(small_demo, 90))


def test_they_still_do_after_an_old_decision_is_repriced(small_demo, fixed_since):
    before = selectors.campaign_dashboard(campaign=small_demo, days=None)
    old = Decision.objects.filter(campaign=small_demo).order_by("decided_at").first()
    RewardWeights.objects.filter(campaign=small_demo).update(contact_cost=50.0)  # new weights
    decisions_reprice(campaign=small_demo, decision_ids=[old.pk])
    after = selectors.campaign_dashboard(campaign=small_demo, days=None)
    assert after.trends != before.trends  # the old week's reward per decision moved
    _assert_same(after, _full_read(small_demo, None))


def test_a_new_decision_reads_only_its_day_again(small_demo, fixed_since, monkeypatch):
    selectors.campaign_dashboard(campaign=small_demo, days=90)
    read = []
    real = selectors.campaign_days_read
    monkeypatch.setattr(selectors, "campaign_days_read",
                        lambda **kw: read.append(kw["days"]) or real(**kw))
    _log_a_decision_now(small_demo)
    selectors.campaign_dashboard(campaign=small_demo, days=90)
    assert read == [[timezone.now().date().isoformat()]]


def test_a_day_read_just_after_its_pricing_is_read_again_once_settled(small_demo, fixed_since,
                                                                     monkeypatch):
    # a pricing stamped earlier than the day's last may still commit: trust the day only later
    old = Decision.objects.filter(campaign=small_demo).order_by("decided_at").first()
    decisions_reprice(campaign=small_demo, decision_ids=[old.pk])
    day = old.decided_at.date().isoformat()
    fingerprints = selectors.campaign_day_fingerprints(campaign=small_demo)
    (frame,) = [f for f in selectors.campaign_day_frames(campaign=small_demo,
                                                         fingerprints={day: fingerprints[day]})]
    assert frame.trusted(frame.read_at + 1)
    assert not frame.trusted(frame.read_at + selectors.SETTLE_SECONDS + 1)


def test_rows_committed_out_of_id_order_are_found_by_the_total(small_demo, fixed_since):
    selectors.campaign_day_fingerprints(campaign=small_demo)
    key = f"dashboards:day-fingerprints:{small_demo.pk}"
    state = cache.get(key)
    new = _log_a_decision_now(small_demo)
    # as if the new row's id had been given out before the highest id seen
    cache.set(key, {**state, "last_id": new.pk, "priced": timezone.now() + timedelta(hours=1)})
    fingerprints = selectors.campaign_day_fingerprints(campaign=small_demo)
    assert sum(fp[0] for fp in fingerprints.values()) == Decision.objects.count()
