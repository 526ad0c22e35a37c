"""Shared change markers: read at most once per interval, replaced values seen at once locally."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings

from crm_console import change_markers
from crm_console.change_markers import ChangeMarker
from tests.conftest import CLOSED_REDIS, redis_caches


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(change_markers.time, "monotonic", lambda: now[0])
    return now


def test_marker_is_read_from_the_cache_at_most_once_per_interval(clock, monkeypatch):
    marker = ChangeMarker("test:marker", check_seconds=0.5)
    reads = []
    monkeypatch.setattr(change_markers.cache, "get", lambda key: reads.append(key) or "v1")
    for _ in range(5):
        marker.current()
    clock[0] += 0.6
    marker.current()
    assert reads == ["test:marker", "test:marker"]


def test_replacing_the_marker_is_seen_at_once_by_this_process(clock):
    marker = ChangeMarker("test:replaced")
    before = marker.current()
    marker.replace()
    assert marker.current() != before
    assert marker.current() == cache.get("test:replaced")


def test_a_lost_marker_gets_a_new_value_so_nothing_cached_before_the_loss_is_reused(clock):
    marker = ChangeMarker("test:lost")
    before = marker.current()
    assert before is not None  # never missing: a first read sets one
    cache.delete("test:lost")  # Redis restarted without persistence, flushed, or evicted it
    clock[0] += 1.0
    after = marker.current()
    assert after is not None and after != before
    assert cache.get("test:lost") == after


def test_marker_read_while_redis_is_down_matches_nothing_cached(clock):
    marker = ChangeMarker("test:down")
    before = marker.current()
    clock[0] += 1.0
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        unknown = [marker.current(), marker.current()]
    assert before not in unknown and unknown[0] != unknown[1]  # every reader goes to the database


def test_marker_is_replaced_once_redis_answers_again_after_a_failed_read(clock):
    """Whatever any process cached before the outage may be stale: everyone reloads it."""
    marker = ChangeMarker("test:outage")
    before = marker.current()
    clock[0] += 1.0
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        marker.current()
    after = marker.current()
    assert after != before
    assert cache.get("test:outage") == after


def test_replacing_while_redis_is_down_raises_nothing_and_is_announced_later(clock):
    marker = ChangeMarker("test:replace-down")
    before = marker.current()
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        marker.replace()  # e.g. an integration revoked during the outage
    assert marker.current() != before
    assert cache.get("test:replace-down") == marker.current()
