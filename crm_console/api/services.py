"""Writes for API integrations: create (token and secret shown once) and revoke."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm_console.api.models import ApiIntegration, IdempotentRequest, token_hash
from crm_console.api.selectors import (
    INTEGRATIONS_CHANGED, idempotent_answer_decisions, idempotent_answer_window,
)
from crm_console.compliance.services import audit_record

TOKEN_PREFIX = "nba_"


@dataclass(frozen=True)
class NewIntegration:
    """The integration and its credentials in clear: the only time they are readable."""

    integration: ApiIntegration
    token: str
    signing_secret: str


@transaction.atomic
def api_integration_create(
    *, name: str, scopes: list[str], created_by: AbstractBaseUser | None = None,
) -> NewIntegration:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    secret = "whsec_" + secrets.token_urlsafe(32)
    integration = ApiIntegration(
        name=name, scopes=list(scopes), token_prefix=token[:12], token_hash=token_hash(token),
        signing_secret=secret, created_by=created_by,
    )
    integration.full_clean()
    integration.save()
    audit_record(actor=created_by, verb="api_integration.created", target=integration,
                 details={"scopes": ",".join(scopes)})
    return NewIntegration(integration, token, secret)


@transaction.atomic
def api_integration_revoke(
    *, integration: ApiIntegration, revoked_by: AbstractBaseUser | None = None,
) -> ApiIntegration:
    """Refuse the token from the next request on (the row stays, for the audit trail)."""
    if integration.revoked_at is None:
        integration.revoked_at = timezone.now()
        integration.save(update_fields=["revoked_at"])
        audit_record(actor=revoked_by, verb="api_integration.revoked", target=integration)
        transaction.on_commit(integrations_changed)
    return integration


def integrations_changed() -> None:
    """Make every process reload integrations from the database (this one on its next request)."""
    INTEGRATIONS_CHANGED.replace()


class IdempotencyKeyReused(Exception):
    """The key was first used with another request."""


@transaction.atomic
def idempotent_answer(*, integration: ApiIntegration, key: str, operation: str,
                      request: dict[str, Any],
                      produce: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
    """(status, body) of `produce()`, or of its first run for this integration and key.

    The key is claimed and the answer stored in the transaction that makes the decision, so a
    retry racing the first request waits for it and then gets its answer; a request that fails
    (an error answer raised as an exception) stores nothing and may be retried with the key.
    """
    digest = hashlib.sha256(
        json.dumps([operation, request], sort_keys=True, default=str).encode()).hexdigest()
    try:
        with transaction.atomic():
            record = IdempotentRequest.objects.create(
                integration=integration, key=key, operation=operation, request_sha256=digest,
                status_code=0, response={})
    except IntegrityError:  # used before (or by a request that just committed)
        record = IdempotentRequest.objects.get(integration=integration, key=key)
        if record.request_sha256 != digest:
            raise IdempotencyKeyReused(key) from None
        return record.status_code, record.response
    status_code, body = produce()
    record.status_code, record.response = status_code, body
    record.save(update_fields=["status_code", "response"])
    return status_code, body


def idempotent_answers_forget_time_zone(*, answers: list[IdempotentRequest],
                                        decision_ids: set[int]) -> int:
    """Replace the time zone these stored answers give for these decisions with UTC (an erased
    customer's, see compliance); returns how many answers changed. A retry then gets the same
    answer but for that one field."""
    changed = []
    for answer in answers:
        touched = False
        for decision in idempotent_answer_decisions(answer.response):
            window = idempotent_answer_window(decision) or {}
            if decision.get("decision_id") in decision_ids and window.get("time_zone") is not None:
                window["time_zone"] = "UTC"
                touched = True
        if touched:
            changed.append(answer)
    IdempotentRequest.objects.bulk_update(changed, ["response"], batch_size=200)
    return len(changed)
