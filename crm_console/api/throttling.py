"""Per-integration rate limit: one counter per integration and time window, shared by all processes.

DRF's SimpleRateThrottle keeps every request's timestamp of the window in one cached list and
rewrites it on each request: O(requests in the window) per request (a 1,000/second rate pickles a
list of up to 1,000 floats every time) and two processes can both pass the last slot. A fixed
window counter is one atomic INCR: O(1), and exact across processes. The price is the usual one
of fixed windows: a burst straddling two windows can reach twice the rate for one window.

While Redis is down each process counts alone (the "local" cache): the limit still holds per
process, so all processes together allow at most their number times the rate, and requests that
do not need Redis keep being served.
"""

from __future__ import annotations

import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from crm_console.shared_cache import SharedCacheDown, shared_cache_call

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class IntegrationRateThrottle(BaseThrottle):
    """`view.throttle_scope`'s rate from DEFAULT_THROTTLE_RATES, counted per integration."""

    cache_prefix = "throttle"
    THROTTLE_RATES: dict[str, str] | None = None  # None: REST_FRAMEWORK's DEFAULT_THROTTLE_RATES

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None)
        rates = self.THROTTLE_RATES if self.THROTTLE_RATES is not None else \
            api_settings.DEFAULT_THROTTLE_RATES
        rate = rates.get(scope) if scope else None
        if rate is None or request.user is None or not request.user.is_authenticated:
            return True
        allowed, period = rate_parse(rate)
        now = time.time()
        window = int(now // period)
        key = f"{self.cache_prefix}:{scope}:{request.user.pk}:{period}:{window}"
        if window_count_increment(key, ttl=period + 1) <= allowed:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


def rate_parse(rate: str) -> tuple[int, int]:
    """"1000/second" -> (1000, 1); the period is read from its first letter, as DRF does."""
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


def window_count_increment(key: str, *, ttl: int) -> int:
    """Add one to the window's counter and return it (created with its expiry on first use):
    shared by all processes, or this process's own while Redis is down."""
    try:
        return shared_cache_call(lambda: _shared_count_increment(key, ttl=ttl))
    except SharedCacheDown:
        return _count_increment(caches["local"], key, ttl=ttl)


def _shared_count_increment(key: str, *, ttl: int) -> int:
    redis_client = _redis_client(key)
    if redis_client is None:
        return _count_increment(cache, key, ttl=ttl)
    full_key = cache.make_and_validate_key(key)
    pipeline = redis_client.pipeline(transaction=False)
    pipeline.incr(full_key)
    pipeline.expire(full_key, ttl, nx=True)
    count, _ = pipeline.execute()
    return int(count)


def _count_increment(counters, key: str, *, ttl: int) -> int:
    counters.add(key, 0, timeout=ttl)
    try:
        return counters.incr(key)
    except ValueError:  # expired between add and incr
        counters.add(key, 1, timeout=ttl)
        return 1


def _redis_client(key: str):
    """The Redis client behind Django's RedisCache (kept: building one per call costs more than the
    round trip), or None for other caches."""
    default = caches["default"]
    if not isinstance(default, RedisCache):
        return None
    backend = default._cache
    client = getattr(backend, "throttle_client", None)
    if client is None:
        client = backend.throttle_client = backend.get_client(key, write=True)
    return client
