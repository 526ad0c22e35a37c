"""Reads for API integrations: the token lookup every integration request starts with.

Each process keeps the integrations it has seen, tagged with a shared "integrations changed"
marker in the cache (Redis in production), which it reads at most every MARKER_CHECK_SECONDS. A
revocation replaces the marker: the revoking process refuses the token from its next request,
every other process within MARKER_CHECK_SECONDS. The signing secret never leaves the process.
"""

from __future__ import annotations

import threading
import time

from django.core.cache import cache

from crm_console.api.models import ApiIntegration, token_hash

CHANGED_MARKER_KEY = "api:integrations:changed"
MARKER_CHECK_SECONDS = 0.5
_seen: dict[str, tuple[str | None, ApiIntegration]] = {}
_marker: list = [None, float("-inf")]  # [value, monotonic time it was read]
_lock = threading.Lock()


def integrations_marker() -> str | None:
    """The shared "integrations changed" marker, read from the cache at most every half second."""
    now = time.monotonic()
    if now - _marker[1] >= MARKER_CHECK_SECONDS:
        _marker[:] = [cache.get(CHANGED_MARKER_KEY), now]
    return _marker[0]


def integrations_marker_forget() -> None:
    """Read the marker again on the next request (this process just changed it)."""
    _marker[1] = float("-inf")


def integration_for_token(token: str) -> ApiIntegration | None:
    """The integration this bearer token belongs to (revoked ones included), or None."""
    digest = token_hash(token)
    marker = integrations_marker()
    seen = _seen.get(digest)
    if seen is not None and seen[0] == marker:
        return seen[1]
    integration = ApiIntegration.objects.filter(token_hash=digest).first()
    if integration is not None:
        with _lock:
            _seen[digest] = (marker, integration)
    return integration
