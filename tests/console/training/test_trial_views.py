"""The policy page's trial panel: start, read, stop and promote a trial, role-checked."""

from __future__ import annotations

import pytest

from crm_console.decisioning.models import PolicyTrial, PolicyVersion
from crm_console.decisioning.trials import trial_start
from tests.console.api.helpers import live_campaign, policy_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(db):
    campaign = live_campaign(algorithm="random")
    return policy_add(campaign, algorithm="rule_based", status="candidate")


def test_a_candidates_page_offers_to_start_a_trial(marketer_client, candidate):
    html = marketer_client.get(f"/training/policies/{candidate.pk}/").content.decode()

    assert 'id="trial-start-form"' in html and "Share of customers (%)" in html
    assert "Rule: once the days it measures have passed (at least 14)" in html


def test_the_rule_names_the_campaigns_retention_guardrail_when_it_sets_one(marketer_client,
                                                                           candidate):
    candidate.campaign.retention_guardrail_points = "2.0"
    candidate.campaign.save(update_fields=["retention_guardrail_points"])

    html = marketer_client.get(f"/training/policies/{candidate.pk}/").content.decode()

    assert "at most 2.0 points lower (the campaign's retention guardrail)" in html


def test_a_marketer_starts_a_trial_from_the_page(marketer_client, candidate, marketer):
    response = marketer_client.post(f"/training/policies/{candidate.pk}/trial/",
                                    {"share_percent": "12.5", "days": "21"}, follow=True)

    trial = PolicyTrial.objects.get()
    assert float(trial.share) == 0.125 and trial.days == 21 and trial.started_by == marketer
    html = response.content.decode()
    assert "now decides for 12.5%" in html and 'id="trial-table"' in html
    assert "Does not pass yet:</strong> no priced decisions in both groups yet" in html


@pytest.mark.parametrize("share, error", [
    ("80", "less than or equal to 50"), ("0", "greater than or equal to 1"),
    ("", "This field is required"), ("lots", "Enter a number"),
])
def test_a_bad_share_shows_a_field_error_and_starts_nothing(marketer_client, candidate, share,
                                                            error):
    response = marketer_client.post(f"/training/policies/{candidate.pk}/trial/",
                                    {"share_percent": share, "days": "28"})

    assert response.status_code == 200
    assert error in " ".join(response.context["trial_form"].errors["share_percent"])
    assert not PolicyTrial.objects.exists()


def test_too_few_days_show_a_field_error_and_start_nothing(marketer_client, candidate):
    response = marketer_client.post(f"/training/policies/{candidate.pk}/trial/",
                                    {"share_percent": "10", "days": "7"})

    errors = response.context["trial_form"].errors["days"]
    assert "between 14 and 180 whole days" in " ".join(errors)
    assert not PolicyTrial.objects.exists()


def test_a_second_trial_is_refused_on_the_page(marketer_client, candidate):
    trial_start(candidate=candidate, share="0.1", started_by=None)
    other = policy_add(candidate.campaign, algorithm="rule_based", status="candidate", seed=1)

    html = marketer_client.get(f"/training/policies/{other.pk}/").content.decode()
    response = marketer_client.post(f"/training/policies/{other.pk}/trial/",
                                    {"share_percent": "10", "days": "28"})

    assert f"Version {candidate.version} is on trial in this campaign" in html
    assert "already runs a trial" in " ".join(response.context["trial_form"].non_field_errors())
    assert PolicyTrial.objects.count() == 1


def test_a_reviewer_cannot_start_stop_or_promote_a_trial(reviewer_client, candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)

    assert reviewer_client.post(f"/training/policies/{candidate.pk}/trial/",
                                {"share_percent": "10"}).status_code == 403
    assert reviewer_client.post(f"/training/trials/{trial.pk}/stop/").status_code == 403
    assert reviewer_client.post(f"/training/trials/{trial.pk}/promote/").status_code == 403
    trial.refresh_from_db()
    assert trial.outcome == "running"


def test_a_marketer_stops_a_trial_with_a_reason(marketer_client, candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)

    response = marketer_client.post(f"/training/trials/{trial.pk}/stop/",
                                    {"reason": "summer sale"}, follow=True)

    trial.refresh_from_db()
    assert trial.outcome == "stopped" and trial.end_reason == "summer sale"
    assert "(summer sale)" in response.content.decode()


def test_promotion_before_the_trial_has_evidence_is_refused_with_the_reason(marketer_client,
                                                                            candidate):
    trial = trial_start(candidate=candidate, share="0.1", started_by=None)

    response = marketer_client.post(f"/training/trials/{trial.pk}/promote/")

    assert response.status_code == 200
    assert "Refused: no priced decisions in both groups yet." in response.content.decode()
    candidate.refresh_from_db()
    assert candidate.status == PolicyVersion.Status.SHADOW
