"""Compliance records are read-only in the admin, for admins too: they are proof."""

from __future__ import annotations

import pytest

from crm_console.compliance.models import ErasureRecord
from crm_console.compliance.services import audit_record
from tests.console.admin_helpers import admin_url
from tests.factories import CustomerFactory, DecisionReviewFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["audit entry", "erasure record", "decision review"])
def record(request):
    if request.param == "audit entry":
        return audit_record(actor=None, verb="campaign.updated", target=CustomerFactory())
    if request.param == "erasure record":
        return ErasureRecord.objects.create(customer_id_erased=CustomerFactory().pk, reason="t-1")
    return DecisionReviewFactory()


def test_admin_cannot_add_a_compliance_record(admin_client_role, record):
    before = type(record).objects.count()
    assert admin_client_role.get(admin_url(type(record), "add")).status_code == 403
    assert admin_client_role.post(admin_url(type(record), "add"), {}).status_code == 403
    assert type(record).objects.count() == before


def test_admin_cannot_change_a_compliance_record(admin_client_role, record):
    response = admin_client_role.post(admin_url(record, "change"), {"reason": "edited",
                                                                    "verb": "edited",
                                                                    "note": "edited"})
    assert response.status_code == 403
    assert "edited" not in str(type(record).objects.values().get(pk=record.pk))


def test_admin_cannot_delete_a_compliance_record(admin_client_role, record):
    assert admin_client_role.post(admin_url(record, "delete"), {"post": "yes"}).status_code == 403
    assert type(record).objects.filter(pk=record.pk).exists()


def test_admin_reads_a_compliance_record(admin_client_role, record):
    assert admin_client_role.get(admin_url(record, "change")).status_code == 200
