"""Journey Builder's endpoints (public, JWT-verified) and the campaign's console page.

The endpoints are plain Django views rather than DRF ones: Journey Builder sends a bare JWT as
the body (Content-Type application/jwt), authenticates by that JWT alone, and waits at most 1 s
for execute. They answer the console API's error JSON on every failure.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from crm_console.accounts.roles import ADMIN, has_role
from crm_console.campaigns.models import Campaign
from crm_console.sfmc import selectors, services
from crm_console.sfmc.forms import SfmcActivityForm
from crm_console.sfmc.models import SfmcActivity
from crm_console.sfmc.tokens import TokenRefused, token_claims
from crm_console.shared_cache import REDIS_ERRORS, SharedCacheDown, retry_after_seconds

MAX_BODY_BYTES = 64 * 1024
"""Largest body read (413 above, before reading it): a JWT of inArguments up to their limit."""


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(services.error_body(code, message), status=status)


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _activity_or_error(campaign_id: int) -> SfmcActivity | JsonResponse:
    activity = selectors.activity_for_campaign_id(campaign_id=campaign_id)
    if activity is None:
        return _error(404, "not_found", f"No Journey Builder activity for campaign {campaign_id}: "
                      "an admin sets it up on the campaign's Marketing Cloud page.")
    return activity


def _claims_or_error(request: HttpRequest, activity: SfmcActivity) -> dict | JsonResponse:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return _error(413, "too_large", f"Request body is {length} bytes; the limit is "
                      f"{MAX_BODY_BYTES}.")
    try:
        token = request.body.decode("ascii")
    except UnicodeDecodeError:
        return _error(401, "invalid_jwt", "The body must be the JWT Journey Builder signs.")
    try:
        return token_claims(token=token, secret=activity.signing_secret)
    except TokenRefused as exc:
        return _error(401, "invalid_jwt", str(exc))


@login_not_required
@require_GET
def config_json(request: HttpRequest, campaign_id: int) -> JsonResponse:
    """The activity's config.json: Journey Builder reads it from the installed package's URL."""
    activity = _activity_or_error(campaign_id)
    if isinstance(activity, JsonResponse):
        return activity
    return JsonResponse(selectors.activity_config(activity=activity, base_url=_base_url(request)))


def _jwt_endpoint(endpoint: str, answer: Callable[[SfmcActivity, dict], services.SplitAnswer]):
    """A POST endpoint Journey Builder calls with a JWT: 404 without an activity, 401 for a bad
    JWT, then `answer(activity, claims)`."""

    @csrf_exempt
    @login_not_required
    @require_POST
    def view(request: HttpRequest, campaign_id: int) -> JsonResponse:
        activity = _activity_or_error(campaign_id)
        if isinstance(activity, JsonResponse):
            return activity
        claims = _claims_or_error(request, activity)
        if isinstance(claims, JsonResponse):
            return claims
        try:
            result = answer(activity, claims)
        except services.SplitInputError as exc:
            return _error(exc.status_code, exc.code, exc.message)
        except (SharedCacheDown, *REDIS_ERRORS):  # as the API answers it (api.errors)
            wait = retry_after_seconds()
            response = _error(503, "unavailable", "Redis (the console's shared cache) is "
                              f"unreachable and this call needs it. Retry in {wait} s.")
            response["Retry-After"] = str(wait)
            return response
        return JsonResponse(result.body, status=result.status_code)

    view.__name__ = view.__qualname__ = endpoint
    view.__doc__ = f"Journey Builder's {endpoint} call."
    return view


execute = _jwt_endpoint(
    "execute", lambda activity, claims: services.split_execute(activity=activity, claims=claims))


def _lifecycle(endpoint: str):
    return _jwt_endpoint(endpoint, lambda activity, claims: services.split_lifecycle(
        activity=activity, endpoint=endpoint, claims=claims))


save = _lifecycle("save")
validate = _lifecycle("validate")
publish = _lifecycle("publish")
stop = _lifecycle("stop")


# =============================================================================================
# The console page: URLs to paste, branches, journeys, last calls; admins configure
# =============================================================================================
def activity_page(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    activity = SfmcActivity.objects.filter(campaign=campaign).first()
    is_admin = has_role(request.user, ADMIN)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Only admins configure the Journey Builder activity.")
        form = SfmcActivityForm(request.POST, instance=activity)
        if form.is_valid():
            try:
                services.sfmc_activity_save(campaign=campaign, saved_by=request.user,
                                            **form.activity_values())
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Journey Builder activity saved.")
                return redirect("sfmc-console:activity", pk=campaign.pk)
    else:
        form = SfmcActivityForm(instance=activity) if is_admin else None
    context = {"campaign": campaign, "activity": activity, "form": form, "is_admin": is_admin,
               "problems": selectors.activity_readiness(campaign=campaign),
               "decides": selectors.activity_live_policy_note(campaign=campaign)}
    if activity is not None:
        context.update({
            "urls": selectors.activity_urls(campaign_id=campaign.pk, base_url=_base_url(request)),
            "branches": selectors.activity_branches(activity=activity),
            "journeys": selectors.activity_journeys(activity=activity),
            "calls": selectors.activity_calls_recent(activity=activity),
        })
    return render(request, "sfmc/activity.html", context)
