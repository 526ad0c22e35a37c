"""save / validate / publish / stop: acknowledged, journey ids recorded, validate refuses a
campaign that cannot decide."""

from __future__ import annotations

import pytest

from crm_console.sfmc.models import SfmcCall, SfmcJourney
from tests.console.sfmc.helpers import lifecycle_claims, post_jwt, sign, url
from tests.factories import SfmcActivityFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("endpoint", ["save", "validate", "publish", "stop"])
def test_lifecycle_calls_are_acknowledged_with_200(client, activity, endpoint):
    response = post_jwt(client, url(activity.campaign_id, endpoint), sign(lifecycle_claims()))
    assert response.status_code == 200, response.content
    assert SfmcCall.objects.get().endpoint == endpoint


def test_save_records_the_journey_and_activity_ids(client, activity):
    post_jwt(client, url(activity.campaign_id, "save"), sign(lifecycle_claims()))
    journey = SfmcJourney.objects.get()
    assert journey.journey_id == "9f8e7d6c-journey"
    assert journey.activity_object_id == "5a1b0c2d-activity"
    assert journey.journey_key == "welcome-journey"
    assert journey.journey_version == "3"
    assert journey.last_event == "save"


def test_publish_then_stop_update_the_same_journey(client, activity):
    post_jwt(client, url(activity.campaign_id, "publish"), sign(lifecycle_claims()))
    post_jwt(client, url(activity.campaign_id, "stop"), sign(lifecycle_claims()))
    assert SfmcJourney.objects.get().last_event == "stop"
    assert SfmcCall.objects.count() == 2


def test_a_numeric_journey_version_is_recorded(client, activity):
    post_jwt(client, url(activity.campaign_id, "save"),
             sign(lifecycle_claims(interactionVersion=4)))
    assert SfmcJourney.objects.get().journey_version == "4"


def test_validate_refuses_a_campaign_that_is_not_live(client, campaign):
    campaign.status = "draft"
    campaign.save(update_fields=["status"])
    activity = SfmcActivityFactory(campaign=campaign)
    response = post_jwt(client, url(activity.campaign_id, "validate"), sign(lifecycle_claims()))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "cannot_decide"
    assert "only a live campaign decides" in response.json()["error"]["message"]


def test_validate_refuses_a_campaign_without_contact_actions(client, campaign):
    campaign.actions.exclude(channel="none").update(enabled=False)
    activity = SfmcActivityFactory(campaign=campaign)
    response = post_jwt(client, url(activity.campaign_id, "validate"), sign(lifecycle_claims()))
    assert response.status_code == 400
    assert "no enabled contact action" in response.json()["error"]["message"]


def test_save_accepts_a_campaign_that_cannot_decide_yet(client, campaign):
    campaign.status = "draft"
    campaign.save(update_fields=["status"])
    activity = SfmcActivityFactory(campaign=campaign)
    response = post_jwt(client, url(activity.campaign_id, "save"), sign(lifecycle_claims()))
    assert response.status_code == 200


def test_an_over_long_id_is_400_and_records_nothing(client, activity):
    response = post_jwt(client, url(activity.campaign_id, "save"),
                        sign(lifecycle_claims(interactionId="x" * 101)))
    assert response.status_code == 400
    assert SfmcJourney.objects.count() == 0 and SfmcCall.objects.count() == 0


def test_lifecycle_calls_are_post_only(client, activity):
    assert client.get(url(activity.campaign_id, "save")).status_code == 405
