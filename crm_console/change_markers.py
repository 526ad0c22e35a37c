"""Shared "something changed" markers: how one process tells the others to drop what they cached.

A process keeps things it reads on every request (integrations, campaign serving set-ups) in
memory, tagged with the marker's value when it loaded them. Whoever changes the underlying rows
replaces the marker in the cache (Redis in production). Each process reads the marker at most
every `check_seconds`, so a change reaches the process that made it on its next request and every
other process within `check_seconds`, for one cache read per interval instead of one per request.

While Redis is down nothing cached can be trusted (another process may have changed the rows and
been unable to say so): `current()` then gives a value nothing is tagged with, so readers go to
the database on every request until Redis answers again. A process that could not read or replace
a marker replaces it once Redis answers, so every process drops what it cached before the outage.
"""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache

from crm_console.shared_cache import SharedCacheDown, shared_cache_call


class ChangeMarker:
    """One named marker; `current()` is what cached things are tagged with and compared to."""

    def __init__(self, key: str, *, check_seconds: float = 0.5):
        self.key = key
        self.check_seconds = check_seconds
        self._value: str | None = None
        self._read_at = float("-inf")
        self._announce_pending = False  # a change (or an outage) others have not been told of

    def current(self) -> str:
        """The marker's value, read from the cache if this process last read it long enough ago.

        A missing marker (never set, or lost: Redis restarted without persistence, flushed, or
        evicted the key) is not a state anything may stay tagged with: it is replaced by a new
        value at once, so whatever was cached before the loss - an integration revoked since,
        say - is read again.
        """
        now = time.monotonic()
        if now - self._read_at >= self.check_seconds:
            try:
                value = shared_cache_call(
                    self._announce if self._announce_pending else self._read_or_create)
            except SharedCacheDown:
                self._announce_pending = True
                self._read_at = float("-inf")
                return "unknown:" + uuid.uuid4().hex  # matches nothing: read the database
            self._announce_pending = False
            self._value, self._read_at = value, now
        return self._value

    def replace(self) -> None:
        """Say that something changed: every process drops what it tagged with the old value.

        With Redis down, this process says so as soon as Redis answers again (meanwhile every
        process that tries to read the marker reads the database instead).
        """
        try:
            shared_cache_call(self._announce)
        except SharedCacheDown:
            self._announce_pending = True
        self.forget()

    def _read_or_create(self) -> str:
        value = cache.get(self.key)
        if value is None:
            cache.add(self.key, uuid.uuid4().hex, timeout=None)  # the first process wins
            value = cache.get(self.key)
        return value

    def _announce(self) -> str:
        value = uuid.uuid4().hex
        cache.set(self.key, value, timeout=None)
        return value

    def forget(self) -> None:
        """Read the marker again on the next `current()`."""
        self._read_at = float("-inf")
