"""Reads for API integrations: the token lookup every integration request starts with.

Each process keeps the integrations it has seen, tagged with a shared "integrations changed"
marker (crm_console.change_markers): a revocation replaces it, so the revoking process refuses
the token from its next request and every other process within half a second. The signing secret
never leaves the process.
"""

from __future__ import annotations

import threading

from crm_console.api.models import ApiIntegration, token_hash
from crm_console.change_markers import ChangeMarker

INTEGRATIONS_CHANGED = ChangeMarker("api:integrations:changed")
_seen: dict[str, tuple[str | None, ApiIntegration]] = {}
_lock = threading.Lock()


def integration_for_token(token: str) -> ApiIntegration | None:
    """The integration this bearer token belongs to (revoked ones included), or None."""
    digest = token_hash(token)
    marker = INTEGRATIONS_CHANGED.current()
    seen = _seen.get(digest)
    if seen is not None and seen[0] == marker:
        return seen[1]
    integration = ApiIntegration.objects.filter(token_hash=digest).first()
    if integration is not None:
        with _lock:
            _seen[digest] = (marker, integration)
    return integration
