"""Customers and consent are read-only in the admin: consent changes and erasure go through the
console's services, and personal data leaves only through the audited export."""

from __future__ import annotations

import pytest
from django.utils import timezone

from crm_console.customers.models import Consent
from tests.console.admin_helpers import admin_url
from tests.factories import ConsentFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_admin_cannot_grant_a_withdrawn_consent(admin_client_role):
    consent = ConsentFactory(granted=False)
    response = admin_client_role.post(admin_url(consent, "change"), {
        "customer": consent.customer_id, "channel": "email", "granted": "on",
        "source": "admin", "recorded_at_0": "2026-01-01", "recorded_at_1": "10:00:00"})
    assert response.status_code == 403
    consent.refresh_from_db()
    assert consent.granted is False


def test_admin_cannot_add_a_consent(admin_client_role):
    customer = CustomerFactory()
    response = admin_client_role.post(admin_url(Consent, "add"), {
        "customer": customer.pk, "channel": "email", "granted": "on", "source": "admin",
        "recorded_at_0": "2026-01-01", "recorded_at_1": "10:00:00"})
    assert response.status_code == 403
    assert not Consent.objects.exists()


def test_admin_cannot_delete_a_consent(admin_client_role):
    consent = ConsentFactory()
    assert admin_client_role.post(admin_url(consent, "delete"), {"post": "yes"}).status_code == 403
    assert Consent.objects.filter(pk=consent.pk).exists()


def test_admin_cannot_undo_an_erasure(admin_client_role):
    customer = CustomerFactory(external_id="erased-abc", email="", erased_at=timezone.now())
    response = admin_client_role.post(admin_url(customer, "change"), {
        "external_id": "crm-4711", "email": "ada@example.com", "phone": "", "name": "Ada",
        "traits": "{}", "time_zone": "UTC", "consents-TOTAL_FORMS": "0",
        "consents-INITIAL_FORMS": "0"})
    assert response.status_code == 403
    customer.refresh_from_db()
    assert (customer.external_id, customer.email) == ("erased-abc", "")


def test_the_customer_admin_shows_no_email_or_phone(admin_client_role):
    customer = CustomerFactory(email="ada@example.com", phone="+44 20 7946 0000")
    html = admin_client_role.get(admin_url(customer, "change")).content.decode()
    assert "ada@example.com" not in html and "7946" not in html
