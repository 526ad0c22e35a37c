"""How an integration proves who it is: a bearer token, plus an HMAC signature where required.

`IntegrationTokenAuthentication` looks the token up by its hash and refuses revoked ones;
`SignedIntegrationAuthentication` also checks the X-Signature of the raw body (webhooks).
Both answer 401 with the reason; scopes are checked by `permissions.HasIntegrationScope` (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from crm_console.api.models import ApiIntegration
from crm_console.api.selectors import integration_for_token
from crm_console.api.signing import HEADER, SignatureError, signature_verify

LAST_USED_EVERY = timedelta(minutes=1)  # write last_used_at at most this often, not per request


@dataclass(frozen=True)
class IntegrationPrincipal:
    """`request.user` for an integration: authenticated, no console permissions at all."""

    integration: ApiIntegration
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def pk(self) -> str:  # the throttles' cache key: one rate per integration
        return f"integration-{self.integration.pk}"

    id = pk

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def __str__(self) -> str:
        return f"integration {self.integration.name}"


class IntegrationTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` of an unrevoked ApiIntegration."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[IntegrationPrincipal, ApiIntegration] | None:
        header = get_authorization_header(request).split()
        if not header:
            raise exceptions.NotAuthenticated("Missing Authorization: Bearer <token> header.")
        if header[0].lower() != self.keyword.lower().encode() or len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            token = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        integration = integration_for_token(token)
        if integration is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if integration.is_revoked:
            raise exceptions.AuthenticationFailed("This token was revoked.", code="token_revoked")
        now = timezone.now()
        if integration.last_used_at is None or now - integration.last_used_at > LAST_USED_EVERY:
            ApiIntegration.objects.filter(pk=integration.pk).update(last_used_at=now)
            integration.last_used_at = now
        return IntegrationPrincipal(integration), integration

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'  # makes DRF answer 401, not 403


class SignedIntegrationAuthentication(IntegrationTokenAuthentication):
    """A bearer token AND `X-Signature: t=<unix>,v1=<hex>` over the raw body (webhooks)."""

    def authenticate(self, request: Request) -> tuple[IntegrationPrincipal, ApiIntegration] | None:
        principal, integration = super().authenticate(request)
        try:
            signature_verify(secret=integration.signing_secret,
                             header=request.META.get("HTTP_X_SIGNATURE"), body=request.body)
        except SignatureError as exc:
            raise exceptions.AuthenticationFailed(str(exc), code="bad_signature") from None
        return principal, integration


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = IntegrationTokenAuthentication
    name = "IntegrationToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "The integration's API token (created in the admin, shown once)."}


class SignedIntegrationScheme(OpenApiAuthenticationExtension):
    target_class = SignedIntegrationAuthentication
    name = "IntegrationTokenAndSignature"
    match_subclasses = False

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": f"The integration's API token, plus the {HEADER} header "
                               "(t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>)."}
