"""API integrations: a CRM's scoped, revocable credentials (a bearer token and a signing secret).

The token is stored only as its SHA-256 (it is 32 random bytes, so a fast hash is enough: there is
nothing to brute-force); the admin shows it once, at creation. The signing secret must be readable
to check HMAC signatures, so it is kept as is and shown once too (rotate by creating a new
integration and revoking the old one).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Scope(models.TextChoices):
    """What an integration may do; each API operation names the scope it needs."""

    EVENTS_WRITE = "events:write", "Send events (webhook)"
    DECISIONS_WRITE = "decisions:write", "Request and release decisions"


def validate_scopes(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one scope.", code="no_scopes")
    unknown = sorted({str(s) for s in value} - set(Scope.values))
    if unknown:
        raise ValidationError(
            "Unknown scope(s): %(unknown)s (choose from %(known)s).", code="unknown_scope",
            params={"unknown": ", ".join(unknown), "known": ", ".join(Scope.values)},
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiIntegration(models.Model):
    """One CRM (or other system) calling the API: its token, signing secret and scopes."""

    name = models.CharField(max_length=120, unique=True)
    token_prefix = models.CharField(
        max_length=12, help_text="First characters of the token, to recognise it in logs and lists."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    signing_secret = models.CharField(
        max_length=128, editable=False,
        help_text="HMAC-SHA256 key of the X-Signature header (shown once at creation).",
    )
    scopes = models.JSONField(default=list, validators=[validate_scopes])
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class IdempotentRequest(models.Model):
    """A decision request sent with an `Idempotency-Key`: its answer, given again to a retry.

    A CRM that lost the connection before the answer came retries with the same key and gets the
    first answer, not a second decision; the same key with another request is refused (422).
    """

    integration = models.ForeignKey(ApiIntegration, on_delete=models.CASCADE,
                                    related_name="idempotent_requests")
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=50)
    request_sha256 = models.CharField(max_length=64, help_text="Of the validated request.")
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "key"],
                                    name="idempotency_key_unique_per_integration"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"
