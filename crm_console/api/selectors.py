"""Reads for API integrations: the token lookup every integration request starts with, and the
stored answers to decision requests that name given decisions (erasure reaches them).

Each process keeps the integrations it has seen, tagged with a shared "integrations changed"
marker (crm_console.change_markers): a revocation replaces it, so the revoking process refuses
the token from its next request and every other process within half a second. While Redis is
down the marker is unknown and every request reads the database, so a revoked token is refused
then too. The signing secret never leaves the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from crm_console.api.models import ApiIntegration, IdempotentRequest, token_hash
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


ANSWER_BEFORE_DECISION = timedelta(hours=1)
"""How long before its decisions an answer can have been stored (its request's whole run)."""
ANSWER_AFTER_DECISION = timedelta(minutes=1)


def idempotent_answer_decisions(answer: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The decisions of a stored answer (decision_output's shape): one, or a batch's list."""
    if "decision_id" in answer:
        yield answer
    for decision in answer.get("decisions") or []:
        if isinstance(decision, dict):
            yield decision


def idempotent_answers_naming(*, decided_at: dict[int, datetime]) -> list[IdempotentRequest]:
    """The stored answers (Idempotency-Key retries) that hold one of these decisions (id -> when
    it was decided) with its customer's time zone.

    An answer is stored in the transaction that made its decisions, so only answers from the
    hour before each decision are read (a customer's whole history, not the whole table).
    """
    if not decided_at:
        return []
    found: dict[int, IdempotentRequest] = {}
    moments = sorted(set(decided_at.values()))
    for start in range(0, len(moments), 200):
        windows = Q()
        for at in moments[start:start + 200]:
            windows |= Q(created_at__gte=at - ANSWER_BEFORE_DECISION,
                         created_at__lte=at + ANSWER_AFTER_DECISION)
        for answer in IdempotentRequest.objects.filter(windows).iterator(chunk_size=200):
            if isinstance(answer.response, dict) and any(
                    d.get("decision_id") in decided_at
                    and (idempotent_answer_window(d) or {}).get("time_zone") is not None
                    for d in idempotent_answer_decisions(answer.response)):
                found[answer.pk] = answer
    return [found[pk] for pk in sorted(found)]


def idempotent_answer_window(decision: dict[str, Any]) -> dict[str, Any] | None:
    """A stored decision's send window (name, hours, the customer's time zone), if it has one."""
    window = (decision.get("action") or {}).get("send_window")
    return window if isinstance(window, dict) else None
