"""API integrations: token shown once and stored hashed; revocation; signing helper."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from crm_console.api.models import ApiIntegration, token_hash
from crm_console.api.services import api_integration_create
from crm_console.api.signing import SignatureError, signature_header, signature_verify

pytestmark = pytest.mark.django_db


def test_admin_creates_an_integration_and_shows_the_token_once(admin_client_role):
    response = admin_client_role.post("/admin/api/apiintegration/add/", {
        "name": "Salesforce", "scopes": ["events:write", "decisions:write"]}, follow=True)
    assert response.status_code == 200
    integration = ApiIntegration.objects.get(name="Salesforce")
    shown = [str(m) for m in response.context["messages"]]
    token = shown[0].split("Token: <code>")[1].split("</code>")[0]
    assert integration.token_hash == token_hash(token)
    assert token not in str(ApiIntegration.objects.values().get())  # only the hash is stored
    page = admin_client_role.get(f"/admin/api/apiintegration/{integration.pk}/change/")
    assert token not in page.content.decode()


def test_admin_revoke_action_refuses_the_token(admin_client_role, client):
    created = api_integration_create(name="Old CRM", scopes=["decisions:write"])
    admin_client_role.post("/admin/api/apiintegration/", {
        "action": "revoke", "_selected_action": [created.integration.pk]})
    created.integration.refresh_from_db()
    assert created.integration.revoked_at is not None
    response = client.post("/api/v1/decisions", {}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {created.token}")
    assert response.status_code == 401


def test_unknown_scope_is_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Unknown scope"):
        api_integration_create(name="Bad", scopes=["admin:everything"])


def test_marketer_cannot_open_the_integrations_admin(marketer_client):
    response = marketer_client.get("/admin/api/apiintegration/")
    assert response.status_code in (302, 403)


def test_signature_round_trip_and_rotation():
    body = b'{"batch": []}'
    header = signature_header("new", body)
    signature_verify(secret="new", header=header, body=body)
    old = signature_header("old", body).split("v1=")[1]
    signature_verify(secret="old", header=f"{header},v1={old}", body=body)  # two secrets at once
    with pytest.raises(SignatureError, match="does not match"):
        signature_verify(secret="other", header=header, body=body)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00"])
def test_malformed_signature_headers_are_refused(header):
    with pytest.raises(SignatureError):
        signature_verify(secret="s", header=header, body=b"{}", now=time.time())


def test_revocation_in_another_process_is_seen_within_the_marker_check_interval(monkeypatch):
    from django.core.cache import cache

    from crm_console import change_markers
    from crm_console.api import selectors

    created = api_integration_create(name="Busy CRM", scopes=["decisions:write"])
    clock = [5000.0]
    monkeypatch.setattr(change_markers.time, "monotonic", lambda: clock[0])
    marker = selectors.INTEGRATIONS_CHANGED
    marker.forget()
    assert not selectors.integration_for_token(created.token).is_revoked
    ApiIntegration.objects.filter(pk=created.integration.pk).update(revoked_at=timezone.now())
    cache.set(marker.key, "set by the revoking process")
    clock[0] += marker.check_seconds / 2
    assert not selectors.integration_for_token(created.token).is_revoked
    clock[0] += marker.check_seconds
    assert selectors.integration_for_token(created.token).is_revoked


def test_a_revoked_token_stays_refused_after_the_cache_loses_its_marker(monkeypatch):
    """Cached before the revocation, revoked elsewhere, then Redis loses its keys: refused."""
    from django.core.cache import cache

    from crm_console import change_markers
    from crm_console.api import selectors

    created = api_integration_create(name="Busy CRM", scopes=["decisions:write"])
    clock = [9000.0]
    monkeypatch.setattr(change_markers.time, "monotonic", lambda: clock[0])
    marker = selectors.INTEGRATIONS_CHANGED
    cache.delete(marker.key)  # a fresh cache: no process has set the marker yet
    marker.forget()
    assert not selectors.integration_for_token(created.token).is_revoked  # cached, unrevoked
    ApiIntegration.objects.filter(pk=created.integration.pk).update(revoked_at=timezone.now())
    cache.set(marker.key, "set by the revoking process")
    cache.delete(marker.key)  # ... and lost before this process read it
    clock[0] += marker.check_seconds * 2
    assert selectors.integration_for_token(created.token).is_revoked


def test_a_token_revoked_without_any_announcement_is_refused_within_a_minute(monkeypatch):
    """The safety net: revoked in SQL (or by a process that died before it could tell the
    others), with the marker never replaced: read again at least once a minute."""
    from crm_console import change_markers
    from crm_console.api import selectors

    created = api_integration_create(name="Quiet CRM", scopes=["decisions:write"])
    clock = [7000.0]
    monkeypatch.setattr(change_markers.time, "monotonic", lambda: clock[0])
    selectors.INTEGRATIONS_CHANGED.forget()
    assert not selectors.integration_for_token(created.token).is_revoked
    ApiIntegration.objects.filter(pk=created.integration.pk).update(revoked_at=timezone.now())
    clock[0] += 30
    assert not selectors.integration_for_token(created.token).is_revoked  # marker unchanged
    clock[0] += selectors.SEEN_MAX_AGE_SECONDS
    assert selectors.integration_for_token(created.token).is_revoked
