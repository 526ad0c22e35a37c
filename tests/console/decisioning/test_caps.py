"""What the cap check reads under the customers' locks: consent, suppression, unreleased contacts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm_console.campaigns.models import Action
from crm_console.decisioning.caps import contact_records_read
from tests.factories import (
    ConsentFactory, ContactPolicyFactory, CustomerFactory, DecisionFactory, SuppressionEntryFactory,
)

pytestmark = pytest.mark.django_db

EMAIL, SMS = 0, 1  # agents.catalogue.CHANNELS order


def read(customers, policy=None, since=None):
    return contact_records_read(customer_ids=[c.pk for c in customers],
                                external_ids=[c.external_id for c in customers],
                                contact_policy_id=policy.pk if policy else None,
                                since=since or timezone.now() - timedelta(days=30))


def test_latest_consent_row_per_channel_wins():
    customer = CustomerFactory()
    now = timezone.now()
    ConsentFactory(customer=customer, channel="email", granted=True, recorded_at=now - timedelta(days=2))
    ConsentFactory(customer=customer, channel="email", granted=False, recorded_at=now - timedelta(days=1))
    ConsentFactory(customer=customer, channel="sms", granted=True, recorded_at=now)
    records = read([customer])
    assert records.consent[0, EMAIL] == False  # noqa: E712 (numpy bool)
    assert records.consent[0, SMS] == True  # noqa: E712


def test_same_time_consent_rows_are_settled_by_the_later_row():
    customer = CustomerFactory()
    at = timezone.now()
    ConsentFactory(customer=customer, channel="email", granted=False, recorded_at=at)
    ConsentFactory(customer=customer, channel="email", granted=True, recorded_at=at)
    assert read([customer]).consent[0, EMAIL] == True  # noqa: E712


def test_no_consent_row_means_no_consent():
    assert not read([CustomerFactory()]).consent.any()


def test_suppression_is_read_for_this_contact_policy_only():
    listed, other = CustomerFactory(), CustomerFactory()
    policy, elsewhere = ContactPolicyFactory(), ContactPolicyFactory()
    SuppressionEntryFactory(contact_policy=policy, external_id=listed.external_id)
    SuppressionEntryFactory(contact_policy=elsewhere, external_id=other.external_id)
    assert read([listed, other], policy).suppressed.tolist() == [True, False]


def test_a_customer_imported_again_after_erasure_is_still_suppressed(reviewer):
    from crm_console.campaigns.services import suppression_add
    from crm_console.compliance.data_requests import customer_erase

    policy = ContactPolicyFactory()
    first = CustomerFactory(external_id="crm-9")
    suppression_add(contact_policy=policy, external_ids=["crm-9"])
    customer_erase(customer=first, requested_by=reviewer)
    first.refresh_from_db()
    again = CustomerFactory(external_id="crm-9")
    assert read([first, again], policy).suppressed.tolist() == [False, True]


def test_contacts_leave_out_released_no_contact_and_older_decisions():
    customer = CustomerFactory()
    now = timezone.now()
    counted = DecisionFactory(customer=customer, decided_at=now - timedelta(days=1))
    DecisionFactory(customer=customer, campaign=counted.campaign, status="released")
    DecisionFactory(customer=customer, campaign=counted.campaign, decided_at=now - timedelta(days=40))
    no_contact = Action.objects.get(campaign=counted.campaign, channel=Action.NO_CONTACT_CHANNEL)
    DecisionFactory(customer=customer, campaign=counted.campaign, action=no_contact, action_index=0)
    records = read([customer])
    assert records.contacts == [(customer.pk, "email", counted.send_at)]


def test_records_are_returned_in_the_order_of_the_customers_asked_for():
    first, second = CustomerFactory(), CustomerFactory()
    ConsentFactory(customer=second, channel="sms", granted=True)
    records = read([second, first])
    assert records.consent[:, SMS].tolist() == [True, False]
