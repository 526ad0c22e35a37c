"""decisioning.history_import: snapshots of their moment, estimated propensities, pricing."""

from __future__ import annotations

import numpy as np
import pytest

from agents import features as agent_features
from crm_console.campaigns.agents_bridge import catalogue_for_campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers.models import Customer
from crm_console.decisioning.history_import import (
    IMPORTED_POLICY, history_import,
)
from crm_console.decisioning.logged_data import logged_arrays_for_campaign
from crm_console.decisioning.models import Decision
from tests.console.decisioning.history_files import (
    contact, days_ago, history_campaign, identify, jsonl, standard_history, track,
)

pytestmark = pytest.mark.django_db


def imported(tmp_path, campaign=None):
    campaign = campaign or history_campaign()
    events, contacts = standard_history(tmp_path)
    with events.open() as e, contacts.open() as c:
        report = history_import(campaign=campaign, events=e, contacts=c)
    return campaign, report


def feature(decision: Decision, name: str) -> float:
    return decision.features[vocabulary().feature_layout.index(name)]


def by_contact(contact_id: str) -> Decision:
    return Decision.objects.get(policy_name=IMPORTED_POLICY, context__contact_id=contact_id)


def test_a_contact_sees_the_events_before_it_and_not_after(tmp_path):
    imported(tmp_path)

    first, second = by_contact("c-1"), by_contact("c-2")

    # alice's order came between her two contacts
    assert feature(first, "days_since_purchase") == 1.0  # never (yet)
    assert feature(second, "days_since_purchase") < 1.0
    assert feature(second, "email_contacts") > 0  # the first contact counts in the second's view
    assert feature(first, "email_contacts") == 0


def test_a_contact_sees_the_consent_its_customer_had_then(tmp_path):
    imported(tmp_path)

    assert feature(by_contact("c-1"), "email_consent") == 1.0


def test_the_mask_allows_the_enabled_catalogue_and_the_logged_action(tmp_path):
    campaign, _ = imported(tmp_path)
    bridge = catalogue_for_campaign(campaign=campaign)

    decision = by_contact("c-2")

    assert decision.action_mask == bridge.enabled.tolist()
    assert decision.action_mask[decision.action_index]
    assert bridge.action_ids[decision.action_index] == decision.action_id


def test_a_given_propensity_is_kept(tmp_path):
    imported(tmp_path)

    decision = by_contact("c-1")

    assert decision.propensity == 0.5
    assert decision.context["propensity_estimated"] is False


def test_a_missing_propensity_is_estimated_and_marked(tmp_path):
    _, report = imported(tmp_path)

    decision = by_contact("c-2")

    assert report.propensities_estimated == 2
    assert decision.context["propensity_estimated"] is True
    assert 0.01 <= decision.propensity <= 1.0
    assert sum(decision.action_probabilities) == pytest.approx(1.0, abs=1e-4)
    assert decision.propensity == pytest.approx(
        max(decision.action_probabilities[decision.action_index], 0.01), abs=1e-5)


def test_imported_outcome_events_price_the_imported_contacts(tmp_path):
    imported(tmp_path)

    decision = by_contact("c-1")

    assert decision.reward is not None
    assert decision.reward_components["revenue"] == 50.0
    assert decision.reward_components["open"] == 1


def test_imported_contacts_appear_in_the_campaigns_logged_arrays(tmp_path):
    campaign, _ = imported(tmp_path)
    bridge = catalogue_for_campaign(campaign=campaign)

    arrays = logged_arrays_for_campaign(campaign=campaign, action_ids=bridge.action_ids)

    assert arrays is not None
    assert sorted(arrays.decision_ids.tolist()) == sorted(
        Decision.objects.filter(policy_name=IMPORTED_POLICY).values_list("id", flat=True))
    assert np.all((arrays.propensities > 0) & (arrays.propensities <= 1))


def test_imported_contacts_count_in_the_live_profile(tmp_path):
    imported(tmp_path)

    bob = Customer.objects.get(external_id="bob")
    state = agent_features.ProfileState.from_dict(bob.profile_state)

    sms = vocabulary().channel_index["sms"]
    assert state.contacts[0, sms] > 0
    assert np.isfinite(state.days_since_contact[0, sms])


def test_contacts_over_several_chunks_replay_earlier_chunks(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [identify("alice", days_ago(20))])
    contacts = jsonl(tmp_path / "contacts.jsonl", [
        contact(f"c-{i}", "alice", days_ago(10 - i), propensity=0.5) for i in range(4)])
    with events.open() as e, contacts.open() as c:
        history_import(campaign=campaign, events=e, contacts=c, chunk_lines=1)

    views = [feature(by_contact(f"c-{i}"), "email_contacts") for i in range(4)]

    assert views[0] == 0 and views == sorted(views) and views[3] > views[1]


def test_progress_is_reported_per_chunk(tmp_path):
    campaign = history_campaign()
    events, contacts = standard_history(tmp_path)
    seen = []
    with events.open() as e, contacts.open() as c:
        history_import(campaign=campaign, events=e, contacts=c, chunk_lines=3,
                       progress=lambda file, lines: seen.append((file, lines)))

    assert seen == [("events", 3), ("events", 5), ("contacts", 3), ("contacts", 4)]


def test_an_open_names_its_channel_in_the_snapshot(tmp_path):
    campaign = history_campaign()
    events = jsonl(tmp_path / "events.jsonl", [
        identify("bob", days_ago(20)),
        track("bob", "Message Opened", days_ago(15), "m-1", channel="sms")])
    contacts = jsonl(tmp_path / "contacts.jsonl", [
        contact("c-1", "bob", days_ago(16), channel="sms", propensity=0.5),
        contact("c-2", "bob", days_ago(10), channel="sms", propensity=0.5)])
    with events.open() as e, contacts.open() as c:
        history_import(campaign=campaign, events=e, contacts=c)

    assert feature(by_contact("c-2"), "sms_open_rate") > 0
    assert feature(by_contact("c-2"), "email_open_rate") == 0


def test_logged_arrays_say_how_many_propensities_were_estimated(tmp_path):
    campaign, _ = imported(tmp_path)
    bridge = catalogue_for_campaign(campaign=campaign)

    arrays = logged_arrays_for_campaign(campaign=campaign, action_ids=bridge.action_ids)

    assert arrays.estimated_propensities == 2
    assert ("2 of 4 propensities were estimated from a model of the old system's choices "
            "(imported history without them)") in arrays.notes
    assert arrays.subset(arrays.actions >= 0).estimated_propensities == 2


def test_the_ope_report_in_words_says_how_many_propensities_were_estimated():
    from crm_console.training.selectors import ope_report_in_words
    from tests.console.training.test_views import OPE_REPORT

    report = {**OPE_REPORT, "logged": {**OPE_REPORT.get("logged", {}),
                                       "estimated_propensities": 120}}

    words = ope_report_in_words(report=report)

    assert any(sentence.startswith("120 of 500 propensities were estimated from a model of the "
                                   "old system's choices") for sentence in words)
    assert not any("estimated from a model" in s for s in ope_report_in_words(report=OPE_REPORT))
