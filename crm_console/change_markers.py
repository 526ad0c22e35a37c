"""Shared "something changed" markers: how one process tells the others to drop what they cached.

A process keeps things it reads on every request (integrations, campaign serving set-ups) in
memory, tagged with the marker's value when it loaded them. Whoever changes the underlying rows
replaces the marker in the cache (Redis in production). Each process reads the marker at most
every `check_seconds`, so a change reaches the process that made it on its next request and every
other process within `check_seconds`, for one cache read per interval instead of one per request.
"""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache


class ChangeMarker:
    """One named marker; `current()` is what cached things are tagged with and compared to."""

    def __init__(self, key: str, *, check_seconds: float = 0.5):
        self.key = key
        self.check_seconds = check_seconds
        self._value: str | None = None
        self._read_at = float("-inf")

    def current(self) -> str:
        """The marker's value, read from the cache if this process last read it long enough ago.

        A missing marker (never set, or lost: Redis restarted without persistence, flushed, or
        evicted the key) is not a state anything may stay tagged with: it is replaced by a new
        value at once, so whatever was cached before the loss - an integration revoked since,
        say - is read again.
        """
        now = time.monotonic()
        if now - self._read_at >= self.check_seconds:
            value = cache.get(self.key)
            if value is None:
                cache.add(self.key, uuid.uuid4().hex, timeout=None)  # the first process wins
                value = cache.get(self.key)
            self._value, self._read_at = value, now
        return self._value

    def replace(self) -> None:
        """Say that something changed: every process drops what it tagged with the old value."""
        cache.set(self.key, uuid.uuid4().hex, timeout=None)
        self.forget()

    def forget(self) -> None:
        """Read the marker again on the next `current()`."""
        self._read_at = float("-inf")
