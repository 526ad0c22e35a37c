"""The per-integration rate limit: a fixed-window counter, exact across processes."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache

from crm_console.api import throttling
from crm_console.api.throttling import rate_parse, window_count_increment
from tests.conftest import needs_real_stack


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("rate, expected", [("1000/second", (1000, 1)), ("60/min", (60, 60)),
                                            ("5/hour", (5, 3600)), ("2/day", (2, 86400))])
def test_rate_is_read_like_drf_reads_it(rate, expected):
    assert rate_parse(rate) == expected


def test_window_counter_counts_each_request_once():
    assert [window_count_increment("t:one", ttl=60) for _ in range(3)] == [1, 2, 3]


def test_requests_beyond_the_rate_wait_for_the_next_window(monkeypatch):
    class View:
        throttle_scope = "integration"

    class Principal:
        is_authenticated = True
        pk = "integration-1"

    class Request:
        user = Principal()

    monkeypatch.setattr(throttling.IntegrationRateThrottle, "THROTTLE_RATES",
                        {"integration": "2/min"})
    clock = [6000.0]  # the start of a minute
    monkeypatch.setattr(throttling.time, "time", lambda: clock[0])
    answers = [throttling.IntegrationRateThrottle().allow_request(Request(), View())
               for _ in range(3)]
    assert answers == [True, True, False]
    refused = throttling.IntegrationRateThrottle()
    clock[0] = 6030.0
    assert not refused.allow_request(Request(), View())
    assert refused.wait() == pytest.approx(30.0)
    clock[0] = 6060.0  # the next minute
    assert throttling.IntegrationRateThrottle().allow_request(Request(), View())


@needs_real_stack
def test_window_counter_is_exact_under_concurrent_redis_increments():
    counts: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(50):
            count = window_count_increment("t:concurrent", ttl=60)
            with lock:
                counts.append(count)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(1, 401))  # every increment got its own number
