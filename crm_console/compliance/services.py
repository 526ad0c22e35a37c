"""Writes for compliance: the audit trail (more arrive with the review queue)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from crm_console.compliance.models import AuditEntry


def audit_record(
    *, actor: AbstractBaseUser | None, verb: str, target: models.Model, details: dict[str, Any] | None = None
) -> AuditEntry:
    """Append one line to the audit trail. `details` must not hold personal data."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb, target_type=target._meta.label_lower, target_id=str(target.pk),
        details={k: v if isinstance(v, (int, float, bool, type(None))) else str(v)
                 for k, v in (details or {}).items()},
    )
