"""One error body for every API failure, so a CRM integrator parses errors in one place.

    {"error": {"code": "invalid", "message": "...", "fields": {"holdout_share": ["..."]}}}

Django's own ValidationError (raised by model validation inside services) becomes a 400 with the
same per-field messages the admin shows. Redis unreachable where an operation cannot do without it
becomes a 503 with Retry-After (everything that can fall back does: crm_console.shared_cache).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

from crm_console.shared_cache import REDIS_ERRORS, SharedCacheDown, retry_after_seconds


class ApiError(exceptions.APIException):
    """An error with its own status, code and (optionally) per-field messages."""

    def __init__(self, message: str, *, status_code: int = status.HTTP_400_BAD_REQUEST,
                 code: str = "invalid", fields: dict[str, Any] | None = None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.fields = fields


class PayloadTooLarge(ApiError):
    def __init__(self, message: str):
        super().__init__(message, status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                         code="too_large")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, (SharedCacheDown, *REDIS_ERRORS)):
        wait = retry_after_seconds()
        return Response({"error": {"code": "unavailable", "message": (
            f"Redis (the console's shared cache) is unreachable and this operation needs it. "
            f"Retry in {wait} s.")}}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(wait)})
    if isinstance(exc, ApiError):
        body = {"code": exc.error_code, "message": str(exc.detail)}
        if exc.fields:
            body["fields"] = exc.fields
        return Response({"error": body}, status=exc.status_code)
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


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 handler: the documented error JSON under /api/, the console's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"error": {"code": "not_found", "message": (
            f"No API operation at {request.path}: see /api/docs/ for the paths "
            "(no trailing slash).")}}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: the documented error JSON under /api/ (a CRM parses one shape)."""
    if _is_api(request):
        return JsonResponse({"error": {"code": "server_error", "message": (
            "The console failed on this request; nothing was written. Retry later.")}}, status=500)
    return defaults.server_error(request)
