"""One error body for every API failure, so a CRM integrator parses errors in one place.

    {"error": {"code": "invalid", "message": "...", "fields": {"holdout_share": ["..."]}}}

Django's own ValidationError (raised by model validation inside services) becomes a 400 with the
same per-field messages the admin shows.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        body = {"code": "invalid", "message": "The request has invalid fields.", "fields": fields}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or _default_code(response.status_code)
        body = {"code": code, "message": str(detail)}
    response.data = {"error": body}
    return response


def _default_code(status_code: int) -> str:
    return {
        status.HTTP_401_UNAUTHORIZED: "not_authenticated",
        status.HTTP_403_FORBIDDEN: "permission_denied",
        status.HTTP_404_NOT_FOUND: "not_found",
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "too_large",
        status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
    }.get(status_code, "error")
