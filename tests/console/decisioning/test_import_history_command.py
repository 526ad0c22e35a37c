"""`manage.py import_history`: streamed, idempotent import of past events and contacts; every bad
row refused with its line, JSON path and why, and nothing half-written."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm_console.customers.models import Customer, Event
from crm_console.decisioning.history_import import IMPORTED_POLICY
from crm_console.decisioning.models import Decision
from tests.console.decisioning.history_files import (
    contact, days_ago, history_campaign, identify, jsonl, standard_history, track,
)

pytestmark = pytest.mark.django_db


def run(campaign_id: int, events, contacts=None, *extra: str) -> str:
    out = StringIO()
    args = ["import_history", "--campaign", str(campaign_id), "--events", str(events)]
    if contacts is not None:
        args += ["--contacts", str(contacts)]
    call_command(*args, *extra, stdout=out)
    return out.getvalue()


def test_imports_events_and_contacts_as_logged_decisions(tmp_path):
    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)

    output = run(campaign.pk, events, contacts)

    assert "events: 5 imported, 0 already imported" in output
    assert "contacts: 4 imported, 0 already imported (2 propensities estimated)" in output
    assert Event.objects.count() == 5
    decisions = Decision.objects.filter(campaign=campaign, policy_name=IMPORTED_POLICY)
    assert sorted(d.context["contact_id"] for d in decisions) == ["c-1", "c-2", "c-3", "c-4"]


def test_prints_lines_processed_per_chunk(tmp_path):
    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)

    output = run(campaign.pk, events, contacts, "--chunk", "2")

    assert "events: 2 lines processed" in output
    assert "events: 5 lines processed" in output
    assert "contacts: 4 lines processed" in output


def test_importing_the_same_files_twice_changes_nothing(tmp_path):
    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)
    run(campaign.pk, events, contacts)
    before = list(Decision.objects.order_by("id").values_list(
        "id", "propensity", "features", "reward", "context"))
    profiles = list(Customer.objects.order_by("id").values_list("profile_state", flat=True))

    output = run(campaign.pk, events, contacts)

    assert "events: 0 imported, 5 already imported" in output
    assert "contacts: 0 imported, 4 already imported" in output
    assert list(Decision.objects.order_by("id").values_list(
        "id", "propensity", "features", "reward", "context")) == before
    assert list(Customer.objects.order_by("id").values_list("profile_state", flat=True)) == profiles


def test_a_malformed_json_line_is_refused_with_its_line(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5)), '{"type": "track",'])

    output = run(campaign.pk, events)

    assert "refused: events line 2: $: Not valid JSON" in output
    assert Event.objects.count() == 1


def test_an_invalid_event_is_refused_with_the_webhooks_message(tmp_path):
    campaign = history_campaign()
    bad = track("alice", "Order Completed", days_ago(3), "m-9", revenue=-5)
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5)), bad])

    output = run(campaign.pk, events)

    assert "refused: events line 2: properties.revenue: Must be a number from 0" in output
    assert not Event.objects.filter(message_id="m-9").exists()


def test_an_unknown_customer_in_contacts_is_refused(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])
    contacts = jsonl(tmp_path / "contacts.jsonl", [contact("c-1", "nobody", days_ago(2))])

    output = run(campaign.pk, events, contacts)

    assert "refused: contacts line 1: customer: Unknown customer 'nobody'" in output
    assert not Decision.objects.exists()


def test_an_action_not_in_the_catalogue_is_refused(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])
    contacts = jsonl(tmp_path / "contacts.jsonl", [
        contact("c-1", "alice", days_ago(2), channel="push"),
        contact("c-2", "alice", days_ago(2), offer="discount_20"),
        contact("c-3", "alice", days_ago(2), window="evening"),
    ])

    output = run(campaign.pk, events, contacts)

    assert "contacts line 1: channel: 'push' is not in the campaign's catalogue" in output
    assert "contacts line 2: offer: 'discount_20' is not in the campaign's catalogue" in output
    assert "contacts line 3: window: 'evening' is not in the campaign's catalogue" in output
    assert not Decision.objects.exists()


def test_a_timestamp_in_the_future_is_refused(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5)),
                                               identify("alice", days_ago(-0.5))])
    contacts = jsonl(tmp_path / "contacts.jsonl", [contact("c-1", "alice", days_ago(-1))])

    output = run(campaign.pk, events, contacts)

    assert "events line 2: timestamp:" in output and "is in the future" in output
    assert "contacts line 1: timestamp:" in output
    assert Event.objects.count() == 1
    assert not Decision.objects.exists()


def test_a_timestamp_without_an_offset_is_refused(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])
    row = contact("c-1", "alice", days_ago(2))
    row["timestamp"] = row["timestamp"][:19]
    contacts = jsonl(tmp_path / "contacts.jsonl", [row])

    output = run(campaign.pk, events, contacts)

    assert "contacts line 1: timestamp:" in output and "with its offset" in output
    assert not Decision.objects.exists()


def test_duplicate_ids_within_a_file_are_refused(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [
        identify("alice", days_ago(5)), track("alice", "Email Opened", days_ago(4), "m-1"),
        track("alice", "Email Opened", days_ago(3), "m-1")])
    contacts = jsonl(tmp_path / "contacts.jsonl", [contact("c-1", "alice", days_ago(2)),
                                                   contact("c-1", "alice", days_ago(1))])

    output = run(campaign.pk, events, contacts)

    assert "events line 3: messageId: 'm-1' is repeated: line 2 has the same id." in output
    assert "contacts line 2: contact_id: 'c-1' is repeated: line 1 has the same id." in output
    assert Event.objects.count() == 2
    assert Decision.objects.count() == 1


@pytest.mark.parametrize("propensity", [0, -0.2, 1.5, "0.5", True])
def test_a_propensity_outside_zero_to_one_is_refused(tmp_path, propensity):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])
    contacts = jsonl(tmp_path / "contacts.jsonl",
                     [contact("c-1", "alice", days_ago(2), propensity=propensity)])

    output = run(campaign.pk, events, contacts)

    assert "contacts line 1: propensity:" in output and "not a probability in (0, 1]" in output
    assert not Decision.objects.exists()


def test_a_missing_file_is_refused_before_anything_is_written(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])

    with pytest.raises(CommandError, match="no such file .*contacts.jsonl"):
        run(campaign.pk, events, tmp_path / "contacts.jsonl")
    assert not Event.objects.exists()


def test_an_unknown_campaign_is_refused(tmp_path):
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])

    with pytest.raises(CommandError, match="No campaign 999"):
        run(999, events)
    assert not Event.objects.exists()


def test_a_failed_write_leaves_nothing_of_its_chunk(tmp_path, monkeypatch):
    from crm_console.decisioning import history_import

    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)

    def broken(decisions):
        Decision.objects.bulk_create(decisions[:1])
        raise RuntimeError("disk full")

    monkeypatch.setattr(history_import, "decisions_insert", broken)
    with pytest.raises(RuntimeError):
        run(campaign.pk, events, contacts)
    assert not Decision.objects.exists()
    assert Event.objects.count() == 5  # the events file's chunks were written before


def test_refused_rows_do_not_stop_the_rest_of_the_chunk(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(5))])
    contacts = jsonl(tmp_path / "contacts.jsonl", [
        contact("c-1", "alice", days_ago(3)), json.dumps(["not", "an", "object"]),
        contact("c-2", "alice", days_ago(2))])

    output = run(campaign.pk, events, contacts)

    assert "contacts line 2: $: Each contact must be a JSON object." in output
    assert Decision.objects.count() == 2
