"""Reads for API integrations: the token lookup every integration request starts with.

Each process keeps the integrations it has seen, tagged with a shared "integrations changed"
marker (crm_console.change_markers): a revocation replaces it, so the revoking process refuses
the token from its next request and every other process within half a second. While Redis is
down the marker is unknown and every request reads the database, so a revoked token is refused
then too. The signing secret never leaves the process.
"""

from __future__ import annotations

import threading
import time

from crm_console.api.models import ApiIntegration, token_hash
from crm_console.change_markers import ChangeMarker

INTEGRATIONS_CHANGED = ChangeMarker("api:integrations:changed")
SEEN_MAX_AGE_SECONDS = 60.0
"""The safety net under the marker: an integration is read again at least this often, even if
no process could tell the others of a revocation (one made in SQL, or announced by a process that
died while Redis was down)."""
_seen: dict[str, tuple[str | None, float, ApiIntegration]] = {}
_lock = threading.Lock()


def integration_for_token(token: str) -> ApiIntegration | None:
    """The integration this bearer token belongs to (revoked ones included), or None."""
    digest = token_hash(token)
    now = time.monotonic()
    marker = INTEGRATIONS_CHANGED.current()
    seen = _seen.get(digest)
    if seen is not None and seen[0] == marker and now - seen[1] < SEEN_MAX_AGE_SECONDS:
        return seen[2]
    integration = ApiIntegration.objects.filter(token_hash=digest).first()
    if integration is not None:
        with _lock:
            _seen[digest] = (marker, now, integration)
    return integration
