"""What-if scenarios: validated whole before anything is written, answered in the fitted model
next to today's settings on the same simulated customers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from crm_console.campaigns.models import Action
from crm_console.training.models import WhatIfScenario
from crm_console.training.response_models import response_model_create, response_model_fit
from crm_console.training.what_if import what_if_create, what_if_run
from tests.factories import CustomerResponseModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def modelled_campaign(demo_campaign):
    CustomerResponseModelFactory(campaign=demo_campaign)
    return demo_campaign


def _refused(campaign, field: str, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        what_if_create(campaign=campaign, **{"name": "test", "changes": {}, **kwargs})
    assert field in caught.value.message_dict, caught.value.message_dict
    assert not WhatIfScenario.objects.exists()
    return caught.value


def test_what_if_needs_a_fitted_model(demo_campaign):
    error = _refused(demo_campaign, "name", changes={"reward_weights": {"churn": -80}})
    assert "Fit the campaign's customer-response model first" in str(error)


def test_what_if_with_no_change_is_refused(modelled_campaign):
    _refused(modelled_campaign, "changes")


def test_what_if_with_a_non_finite_reward_weight_is_refused(modelled_campaign):
    _refused(modelled_campaign, "reward_churn", changes={"reward_weights": {"churn": float("nan")}})


def test_what_if_with_a_negative_cap_is_refused(modelled_campaign):
    _refused(modelled_campaign, "cap_max_contacts", changes={"channel_caps": {"email": [-1, 7]}})


def test_what_if_on_an_unknown_channel_is_refused(modelled_campaign):
    _refused(modelled_campaign, "cap_channel", changes={"channel_caps": {"telex": [1, 7]}})


def test_what_if_switching_every_contact_action_off_is_refused(modelled_campaign):
    contact = modelled_campaign.actions.exclude(channel=Action.NO_CONTACT_CHANNEL)
    _refused(modelled_campaign, "actions_off",
             changes={"actions_enabled": {str(a.pk): False for a in contact}})


def test_what_if_names_are_unique_per_campaign(modelled_campaign):
    changes = {"reward_weights": {"churn": -80}}
    what_if_create(campaign=modelled_campaign, name="Churn hurts more", changes=changes)

    with pytest.raises(ValidationError, match="already has a scenario"):
        what_if_create(campaign=modelled_campaign, name="Churn hurts more", changes=changes)
    assert WhatIfScenario.objects.count() == 1


def test_a_tighter_email_cap_is_answered_with_paired_intervals_and_no_cap_violations(
        logged_campaign):
    model = response_model_fit(response_model_id=response_model_create(
        campaign=logged_campaign).pk)
    if not model.trainable:
        model.override_reason = "test: answer in it whatever its check says"
        model.save()
    scenario = what_if_create(campaign=logged_campaign, name="No email",
                              changes={"channel_caps": {"email": [0, 7]}})

    scenario = what_if_run(what_if_id=scenario.pk)

    assert scenario.status == WhatIfScenario.Status.SUCCEEDED, scenario.error
    contacts = {row["kpi"]: row for row in scenario.result["kpis"]}["contacts_per_customer"]
    assert contacts["difference"]["value"] <= 0  # no email at all can only remove contacts
    assert contacts["difference"]["ci_low"] <= contacts["difference"]["value"] \
        <= contacts["difference"]["ci_high"]
    assert scenario.result["cap_violations"] == 0
