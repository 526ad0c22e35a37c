"""GET /integrations/sfmc/<campaign id>/config.json: the custom split's configuration."""

from __future__ import annotations

import pytest

from crm_console.campaigns.models import Action
from crm_console.sfmc.models import SfmcActivity
from crm_console.sfmc.selectors import activity_branches, branch_for_action
from tests.console.sfmc.helpers import url
from tests.factories import SfmcActivityFactory

pytestmark = pytest.mark.django_db
BASE = "http://testserver/integrations/sfmc"


def config(client, campaign_id: int) -> dict:
    response = client.get(url(campaign_id, "config.json"))
    assert response.status_code == 200, response.content
    return response.json()


def test_config_is_a_rest_decision_with_the_execute_url_and_jwt(client, activity):
    body = config(client, activity.campaign_id)
    assert body["type"] == "RestDecision"
    assert body["name"] == activity.name
    execute = body["arguments"]["execute"]
    assert execute["url"] == f"{BASE}/{activity.campaign_id}/execute"
    assert execute["useJwt"] is True
    assert execute["verb"] == "POST"
    assert execute["timeout"] == 1000


def test_config_maps_the_contact_key_in_arguments(client, activity):
    execute = config(client, activity.campaign_id)["arguments"]["execute"]
    assert execute["inArguments"] == [{"contactKey": "{{Contact.Key}}"}]


def test_config_names_the_lifecycle_urls(client, activity):
    arguments = config(client, activity.campaign_id)["configurationArguments"]
    for name in ("save", "publish", "validate", "stop"):
        assert arguments[name]["url"] == f"{BASE}/{activity.campaign_id}/{name}"
        assert arguments[name]["useJwt"] is True


def test_config_carries_the_application_extension_key_when_set(client, campaign):
    activity = SfmcActivityFactory(campaign=campaign, application_extension_key="abc-123")
    body = config(client, activity.campaign_id)
    assert body["configurationArguments"]["applicationExtensionKey"] == "abc-123"


def test_config_has_one_outcome_per_channel_plus_no_contact_by_default(client, activity):
    outcomes = config(client, activity.campaign_id)["outcomes"]
    assert [o["key"] for o in outcomes] == ["email", "sms", "no_contact"]
    assert [o["arguments"]["branchResult"] for o in outcomes] == ["email", "sms", "no_contact"]
    assert [o["metaData"]["label"] for o in outcomes] == ["Email", "SMS", "No contact"]


def test_config_has_one_outcome_per_offer_when_chosen(client, campaign):
    activity = SfmcActivityFactory(campaign=campaign, branch_by=SfmcActivity.BranchBy.OFFER)
    keys = [o["key"] for o in config(client, activity.campaign_id)["outcomes"]]
    assert keys == ["content", "discount_10", "no_contact"]


def test_config_has_one_outcome_per_action_when_chosen(client, campaign):
    activity = SfmcActivityFactory(campaign=campaign, branch_by=SfmcActivity.BranchBy.ACTION)
    keys = [o["key"] for o in config(client, activity.campaign_id)["outcomes"]]
    contact_actions = campaign.actions.exclude(channel=Action.NO_CONTACT_CHANNEL).filter(
        enabled=True)
    assert keys == [*(f"action-{a.pk}" for a in contact_actions.order_by("id")), "no_contact"]


def test_a_disabled_channel_action_set_gives_no_branch(client, activity):
    activity.campaign.actions.filter(channel="sms").update(enabled=False)
    keys = [o["key"] for o in config(client, activity.campaign_id)["outcomes"]]
    assert keys == ["email", "no_contact"]


@pytest.mark.parametrize("branch_by", list(SfmcActivity.BranchBy.values))
def test_every_decidable_action_maps_to_a_listed_branch(campaign, branch_by):
    activity = SfmcActivityFactory(campaign=campaign, branch_by=branch_by)
    listed = {b.key for b in activity_branches(activity=activity)}
    for action in campaign.actions.filter(enabled=True):
        assert branch_for_action(activity=activity, action=action) in listed


def test_config_of_an_unknown_campaign_is_404(client, db):
    assert client.get(url(999999, "config.json")).status_code == 404


def test_config_needs_no_login(client, activity):
    client.logout()
    assert client.get(url(activity.campaign_id, "config.json")).status_code == 200
