"""Compliance: review queue and verdicts, audit CSV export, data-subject export and erasure."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from crm_console.compliance.models import AuditEntry, DecisionReview, ErasureRecord
from crm_console.compliance.services import audit_record
from crm_console.customers.models import Customer, Event
from crm_console.decisioning.models import Decision
from tests.factories import (
    ConsentFactory, ContactPolicyFactory, CustomerFactory, DecisionFactory, DecisionReviewFactory,
    EventFactory,
)

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------------------ reviews
def test_reviewer_flags_a_decision_with_a_note(reviewer_client, reviewer):
    decision = DecisionFactory()
    response = reviewer_client.post(f"/compliance/reviews/{decision.pk}/",
                                    {"verdict": "flagged", "note": "Discount to a lapsed VIP"})
    assert response.status_code == 302
    review = DecisionReview.objects.get()
    assert (review.decision, review.reviewer, review.verdict) == (decision, reviewer, "flagged")
    assert AuditEntry.objects.filter(verb="decision.flagged", target_id=str(decision.pk),
                                     actor=reviewer).exists()


def test_flag_without_note_shows_field_error_and_saves_nothing(reviewer_client):
    decision = DecisionFactory()
    response = reviewer_client.post(f"/compliance/reviews/{decision.pk}/", {"verdict": "flagged", "note": " "})
    assert response.status_code == 200
    assert "note" in response.context["review_form"].errors
    assert not DecisionReview.objects.exists()


def test_marketer_cannot_review(marketer_client):
    decision = DecisionFactory()
    assert marketer_client.post(f"/compliance/reviews/{decision.pk}/", {"verdict": "approved"}).status_code == 403
    assert marketer_client.get("/compliance/reviews/").status_code == 403
    assert not DecisionReview.objects.exists()


def test_review_queue_hides_reviewed_decisions_by_default(reviewer_client):
    pending, done = DecisionFactory(), DecisionFactory()
    reviewer_client.post(f"/compliance/reviews/{done.pk}/", {"verdict": "approved"})
    shown = [d.pk for d in reviewer_client.get("/compliance/reviews/").context["page"]]
    assert shown == [pending.pk]
    flagged = reviewer_client.get("/compliance/reviews/?state=approved").context["page"]
    assert [d.pk for d in flagged] == [done.pk]


def test_review_sample_is_reproducible_and_of_the_asked_size(reviewer_client):
    decision = DecisionFactory()
    for _ in range(11):
        DecisionFactory(campaign=decision.campaign)
    url = "/compliance/reviews/?mode=sample&sample_size=5&seed=3&state=all"
    first = {d.pk for d in reviewer_client.get(url).context["page"]}
    again = {d.pk for d in reviewer_client.get(url).context["page"]}
    assert len(first) == 5 and first == again


def test_review_page_shows_who_did_what(reviewer_client):
    decision = DecisionFactory()
    reviewer_client.post(f"/compliance/reviews/{decision.pk}/", {"verdict": "approved", "note": "fine"})
    html = reviewer_client.get("/compliance/reviews/?state=all").content.decode()
    assert "reviewer" in html and "fine" in html and "Approved" in html


def test_review_redirect_ignores_foreign_next_urls(reviewer_client):
    decision = DecisionFactory()
    response = reviewer_client.post(f"/compliance/reviews/{decision.pk}/",
                                    {"verdict": "approved", "next": "https://evil.example/"})
    assert response["Location"] == f"/decisions/{decision.pk}/"


# ------------------------------------------------------------------------------ audit export
def test_audit_csv_export_covers_exactly_the_period(reviewer_client, reviewer):
    decision = DecisionFactory()
    inside = audit_record(actor=reviewer, verb="test.inside", target=decision, details={"n": 1})
    old = audit_record(actor=None, verb="test.old", target=decision)
    AuditEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    today = timezone.localdate()
    response = reviewer_client.get("/compliance/audit/export.csv",
                                   {"start": today - timedelta(days=7), "end": today})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["id", "created_at", "actor", "verb", "target_type", "target_id", "details"]
    verbs = [row[3] for row in rows[1:]]
    assert "test.inside" in verbs and "test.old" not in verbs
    line = next(row for row in rows if row[3] == "test.inside")
    assert line[2] == "reviewer" and json.loads(line[6]) == {"n": 1} and line[0] == str(inside.pk)


def test_an_audit_export_is_itself_audited_with_who_and_the_period(reviewer_client, reviewer):
    reviewer_client.get("/compliance/audit/export.csv", {"start": "2026-01-01", "end": "2026-01-31"})
    entry = AuditEntry.objects.get(verb="audit_log.exported")
    assert entry.actor == reviewer
    assert entry.details == {"start": "2026-01-01", "end": "2026-01-31"}


def test_audit_export_with_end_before_start_shows_field_error(reviewer_client):
    response = reviewer_client.get("/compliance/audit/export.csv", {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 200
    assert "end" in response.context["form"].errors
    assert not AuditEntry.objects.filter(verb="audit_log.exported").exists()


def test_marketer_cannot_export_the_audit_log(marketer_client):
    response = marketer_client.get("/compliance/audit/export.csv", {"start": "2026-01-01", "end": "2026-01-31"})
    assert response.status_code == 403


# ------------------------------------------------------------------------------ data subject requests
@pytest.fixture
def customer_with_history():
    customer = CustomerFactory(external_id="crm-4711", email="ada@example.com", phone="+44 20 7946 0000",
                               name="Ada Lovelace", traits={"city": "London", "vip": True},
                               profile_state={"contacts": [[1, 0, 0, 0]]})
    ConsentFactory(customer=customer, channel="email", granted=True)
    decision = DecisionFactory(customer=customer)
    EventFactory(customer=customer, type="identify", name="", properties={"email": "ada@example.com"})
    EventFactory(customer=customer, name="Order Completed", decision=decision,
                 properties={"revenue": 42.0, "decision_id": decision.pk, "address": "12 Marylebone"})
    return customer


def test_json_export_holds_everything_about_the_customer(reviewer_client, customer_with_history):
    customer = customer_with_history
    response = reviewer_client.get(f"/compliance/subject-requests/{customer.pk}/export.json")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["customer"]["email"] == "ada@example.com"
    assert data["customer"]["traits"] == {"city": "London", "vip": True}
    assert len(data["consents"]) == 1 and len(data["decisions"]) == 1 and len(data["events"]) == 2
    assert AuditEntry.objects.filter(verb="customer.exported", target_id=str(customer.pk)).exists()


def test_json_export_holds_each_decisions_context_and_features(reviewer_client):
    decision = DecisionFactory(context={"crm_note": "asked for a call back"})
    customer = decision.customer
    data = json.loads(reviewer_client.get(
        f"/compliance/subject-requests/{customer.pk}/export.json").content)
    (exported,) = data["decisions"]
    assert exported["context"] == {"crm_note": "asked for a call back"}
    assert exported["features"] == decision.features


def test_json_export_holds_reviewer_notes_and_suppressions(reviewer_client):
    from crm_console.campaigns.services import suppression_add

    review = DecisionReviewFactory(note="called twice this week")
    customer = review.decision.customer
    suppression_add(contact_policy=ContactPolicyFactory(name="Retail"),
                    external_ids=[customer.external_id], reason="complaint")
    data = json.loads(reviewer_client.get(
        f"/compliance/subject-requests/{customer.pk}/export.json").content)
    assert [r["note"] for r in data["reviews"]] == ["called twice this week"]
    assert [(s["contact_policy"], s["reason"]) for s in data["suppressions"]] == [
        ("Retail", "complaint")]


def test_erase_page_message_and_audit_give_the_same_counts(reviewer_client):
    customer = CustomerFactory()
    EventFactory(customer=customer, name="Order Completed", properties={"revenue": 9.0})
    page = reviewer_client.get(f"/compliance/subject-requests/{customer.pk}/erase/")
    counts = page.context["counts"]
    response = erase(reviewer_client, customer)
    audited = AuditEntry.objects.get(verb="customer.erased").details
    assert counts.events == audited["events"] == 1
    assert {k: audited[k] for k in counts.as_dict()} == counts.as_dict()
    message = str(list(response.wsgi_request._messages)[0])
    assert "1 event rewritten" in message and "0 explanations deleted" in message


def erase(client, customer, **data):
    return client.post(f"/compliance/subject-requests/{customer.pk}/erase/",
                       {"confirm": "ERASE", "reason": "ticket 991", **data})


def test_erasure_overwrites_personal_data_and_keeps_decisions_countable(reviewer_client, reviewer,
                                                                         customer_with_history):
    customer = customer_with_history
    decisions_before = Decision.objects.filter(customer=customer).count()
    response = erase(reviewer_client, customer)
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.phone, customer.name, customer.traits) == ("", "", "", {})
    assert customer.profile_state == {} and customer.erased_at is not None
    assert customer.external_id.startswith("erased-") and "4711" not in customer.external_id
    props = [e.properties for e in Event.objects.filter(customer=customer).order_by("id")]
    assert props[0] == {}
    assert props[1] == {"revenue": 42.0, "decision_id": Decision.objects.get(customer=customer).pk}
    assert Decision.objects.filter(customer=customer).count() == decisions_before
    record = ErasureRecord.objects.get()
    assert record.customer_id_erased == customer.pk and record.requested_by == reviewer
    assert AuditEntry.objects.filter(verb="customer.erased", target_id=str(customer.pk)).exists()


def test_erasure_is_irreversible_no_trace_of_the_personal_data_is_left(reviewer_client, customer_with_history):
    customer = customer_with_history
    erase(reviewer_client, customer)
    leftovers = [
        *Customer.objects.values_list("external_id", "email", "phone", "name", "traits", "profile_state"),
        *Event.objects.values_list("properties", flat=True),
        *AuditEntry.objects.values_list("details", flat=True),
        *ErasureRecord.objects.values_list("reason", flat=True),
    ]
    dump = json.dumps(leftovers, default=str)
    for secret in ("crm-4711", "ada@example.com", "Lovelace", "7946", "London", "Marylebone"):
        assert secret not in dump, secret
    # the replacement id is random, not derived from the old one: erasing twice differs
    other = CustomerFactory(external_id="crm-4711-b")
    erase(reviewer_client, other)
    other.refresh_from_db()
    customer.refresh_from_db()
    assert other.external_id != customer.external_id


def test_second_erasure_is_refused(reviewer_client, customer_with_history):
    erase(reviewer_client, customer_with_history)
    response = erase(reviewer_client, customer_with_history)
    assert response.status_code == 200
    assert b"already erased" in response.content
    assert ErasureRecord.objects.count() == 1


def test_erasure_needs_the_typed_confirmation(reviewer_client, customer_with_history):
    response = erase(reviewer_client, customer_with_history, confirm="erase")
    assert response.status_code == 200
    assert "confirm" in response.context["form"].errors
    customer_with_history.refresh_from_db()
    assert customer_with_history.email == "ada@example.com" and not ErasureRecord.objects.exists()


def test_marketer_cannot_export_or_erase(marketer_client, customer_with_history):
    customer = customer_with_history
    assert marketer_client.get(f"/compliance/subject-requests/{customer.pk}/export.json").status_code == 403
    assert erase(marketer_client, customer).status_code == 403
    customer.refresh_from_db()
    assert customer.erased_at is None


def test_subject_request_search_finds_by_external_id_email_and_number(reviewer_client, customer_with_history):
    customer = customer_with_history
    for q in ("crm-4711", "ADA@example.com", f"#{customer.pk}"):
        found = reviewer_client.get("/compliance/subject-requests/", {"q": q}).context["found"]
        assert [c.pk for c in found] == [customer.pk], q


def test_post_without_csrf_token_is_refused(client, reviewer):
    from django.test import Client

    decision = DecisionFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(reviewer)
    assert strict.post(f"/compliance/reviews/{decision.pk}/", {"verdict": "approved"}).status_code == 403
    assert not DecisionReview.objects.exists()


def test_audit_period_defaults_to_the_last_30_days_in_iso_dates(reviewer_client):
    html = reviewer_client.get("/compliance/audit/").content.decode()
    today = timezone.localdate()
    assert f'value="{today.isoformat()}"' in html  # <input type="date"> only takes YYYY-MM-DD
    assert f'value="{(today - timedelta(days=30)).isoformat()}"' in html
