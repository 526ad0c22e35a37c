"""The shared cache (Redis in production) as something that can be down.

Nothing a CRM or a marketer needs depends on Redis alone: the change markers fall back to the
database (crm_console.change_markers), the API rate limit to a count per process
(crm_console.api.throttling), the dashboards to computing their figures again. They reach the
cache through `shared_cache_call`, which turns Redis's connection and timeout errors into one
exception, `SharedCacheDown`, for them to catch; an operation that cannot do without Redis lets it
through and the API answers 503 (crm_console.api.errors).

After a failure this process leaves Redis alone for `REDIS_RETRY_SECONDS`: a hung Redis then costs
one request a socket timeout (`REDIS_SOCKET_TIMEOUT`), not every request. A circuit-breaker
library (pybreaker) would do the same but holds one lock around every call, which would queue the
web process's threads behind each other on every rate-limit increment.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

T = TypeVar("T")
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_down_until = float("-inf")


class SharedCacheDown(Exception):
    """Redis did not answer, now or moments ago: use the fallback, or answer 503."""


def shared_cache_call(operation: Callable[[], T]) -> T:
    """`operation()`, which talks to the shared cache; SharedCacheDown instead of Redis's errors,
    and at once (without trying) while this process backs off after a failure."""
    global _down_until
    if time.monotonic() < _down_until:
        raise SharedCacheDown("Redis failed moments ago; not retried yet")
    try:
        return operation()
    except REDIS_ERRORS as exc:
        _down_until = time.monotonic() + settings.REDIS_RETRY_SECONDS
        logger.warning("Redis is unreachable (%s: %s); retrying in %s s",
                       type(exc).__name__, exc, settings.REDIS_RETRY_SECONDS)
        raise SharedCacheDown(str(exc)) from exc


def retry_after_seconds() -> int:
    """What a 503 tells the client to wait: this process's back-off, in whole seconds."""
    return max(1, math.ceil(settings.REDIS_RETRY_SECONDS))


def cache_get_or_none(key: str) -> Any:
    """A cached value, or None if it is missing or Redis is down (the caller computes it)."""
    try:
        return shared_cache_call(lambda: cache.get(key))
    except SharedCacheDown:
        return None


def cache_set_if_up(key: str, value: Any, timeout: float | None) -> None:
    """Cache `value` unless Redis is down (then the next reader computes it again)."""
    try:
        shared_cache_call(lambda: cache.set(key, value, timeout))
    except SharedCacheDown:
        pass


@receiver(setting_changed)
def _another_cache(*, setting: str, **kwargs) -> None:
    # another cache (tests switch CACHES) has not failed yet: try it at once
    global _down_until
    if setting == "CACHES":
        _down_until = float("-inf")
