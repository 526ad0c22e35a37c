"""Redis unreachable or hung: events and decisions still work, revoked tokens stay refused, the
rate limit still holds per process, and what really needs Redis answers a JSON 503.

Every test points the cache at a real Redis that is not there (a closed port) or that never
answers (a socket that accepts and stays silent); nothing about Redis is mocked.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from crm_console.api import selectors, throttling
from crm_console.api.models import ApiIntegration
from crm_console.api.services import api_integration_revoke
from crm_console.decisioning import serving
from crm_console.decisioning.models import Decision
from tests.conftest import CLOSED_REDIS, redis_caches
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, signed_post, token_post, track,
)

pytestmark = pytest.mark.django_db

@pytest.fixture(autouse=True)
def fresh_process_state():
    """Each test starts as a fresh web process: nothing read from the cache yet."""
    selectors.INTEGRATIONS_CHANGED.forget()
    serving.clear_caches()
    yield
    selectors.INTEGRATIONS_CHANGED.forget()
    serving.clear_caches()


@pytest.fixture
def creds(db):
    return integration()


def test_decision_is_made_while_redis_is_unreachable(client, creds):
    campaign = live_campaign()
    customer_with_consent("c1")
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        response = token_post(client, "/api/v1/decisions",
                              {"customer": "c1", "campaign": campaign.pk}, creds)
    assert response.status_code == 201, response.content
    assert Decision.objects.filter(pk=response.json()["decision_id"]).exists()


def test_events_are_stored_while_redis_is_unreachable(client, creds):
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        response = signed_post(client, "/api/v1/events",
                               {"batch": [track("c1", "m1", "Email Opened")]}, creds)
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0}


def test_token_revoked_elsewhere_is_refused_while_redis_is_unreachable(client, creds):
    """Cached as valid while Redis was up; revoked by another process; Redis then goes down
    before this process saw the change: the database decides, so the token is refused."""
    assert token_post(client, "/api/v1/decisions", {}, creds).status_code == 400  # cached, valid
    ApiIntegration.objects.filter(pk=creds.integration.pk).update(revoked_at=timezone.now())
    selectors.INTEGRATIONS_CHANGED.forget()  # half a second later: time to read the marker
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        response = token_post(client, "/api/v1/decisions", {}, creds)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


def test_token_revoked_while_redis_is_down_stays_refused_once_redis_is_back(
        client, creds, django_capture_on_commit_callbacks):
    """The revocation's "integrations changed" announcement could not reach Redis: it is made
    when Redis answers again, so a process that cached the token earlier reloads it."""
    assert token_post(client, "/api/v1/decisions", {}, creds).status_code == 400  # cached, valid
    before = selectors.INTEGRATIONS_CHANGED.current()
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        with django_capture_on_commit_callbacks(execute=True):
            api_integration_revoke(integration=creds.integration)  # no error: announced later
        assert token_post(client, "/api/v1/decisions", {}, creds).status_code == 401
    selectors.INTEGRATIONS_CHANGED.forget()  # Redis is back: read the marker now
    assert selectors.INTEGRATIONS_CHANGED.current() != before  # announced to every process
    assert token_post(client, "/api/v1/decisions", {}, creds).status_code == 401


def test_rate_limit_still_holds_in_each_process_while_redis_is_unreachable(
        client, creds, monkeypatch):
    monkeypatch.setattr(throttling.IntegrationRateThrottle, "THROTTLE_RATES",
                        {"integration": "2/min"})
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        codes = [token_post(client, "/api/v1/decisions", {}, creds).status_code for _ in range(3)]
    assert codes == [400, 400, 429]


def test_hung_redis_holds_requests_about_a_second_not_seconds_each(client, creds, silent_redis):
    with override_settings(CACHES=redis_caches(silent_redis)):
        started = time.monotonic()
        first = signed_post(client, "/api/v1/events",
                            {"batch": [track("c1", "m1", "Email Opened")]}, creds)
        first_seconds = time.monotonic() - started
        started = time.monotonic()
        second = signed_post(client, "/api/v1/events",
                             {"batch": [track("c1", "m2", "Email Opened")]}, creds)
        second_seconds = time.monotonic() - started
    assert (first.status_code, second.status_code) == (202, 202)
    # one socket timeout for the first request, then this process leaves Redis alone a while
    assert first_seconds < settings.REDIS_SOCKET_TIMEOUT + 1.0
    assert second_seconds < 0.5


class _NeedsRedisApi(APIView):
    """An operation that cannot do without the shared cache."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        return Response({"seen": cache.get("anything")})


urlpatterns = [path("api/v1/needs-redis", _NeedsRedisApi.as_view())]


@pytest.mark.urls(__name__)
def test_operation_that_needs_redis_answers_json_503_with_retry_after(client):
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        response = client.get("/api/v1/needs-redis")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "Redis" in error["message"]
