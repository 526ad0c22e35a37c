"""Every Journey Builder call is a JWT signed with the activity's secret: bad ones are 401s that
write nothing; an unknown campaign is a 404."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from crm_console.decisioning.models import Decision
from crm_console.sfmc.models import SfmcCall, SfmcJourney
from tests.console.api.helpers import customer_with_consent
from tests.console.sfmc.helpers import (
    SECRET, execute_claims, lifecycle_claims, post_jwt, sign, url,
)
from tests.factories import SfmcActivityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(db):
    return customer_with_consent("c1")


def assert_refused(response, words: str):
    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_jwt"
    assert words in error["message"]
    assert Decision.objects.count() == 0
    assert SfmcCall.objects.count() == 0


def test_a_missing_body_is_401(client, activity, contact):
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), ""), "empty")


def test_a_malformed_jwt_is_401(client, activity, contact):
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), "not.a.jwt"),
                   "not a valid JWT")


def test_a_json_body_instead_of_a_jwt_is_401(client, activity, contact):
    response = client.post(url(activity.campaign_id, "execute"), {"contactKey": "c1"},
                           content_type="application/json")
    assert_refused(response, "not a valid JWT")


def test_a_body_that_is_not_ascii_is_401(client, activity, contact):
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), "é".encode()), "JWT")


def test_an_expired_jwt_is_401(client, activity, contact):
    past = int(time.time()) - 3600
    token = sign(execute_claims("c1", iat=past - 300, exp=past))
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), token), "expired")


def test_a_jwt_without_expiry_is_401(client, activity, contact):
    claims = execute_claims("c1")
    del claims["exp"]
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), sign(claims)), "exp")


def test_a_jwt_signed_with_another_secret_is_401(client, activity, contact):
    token = sign(execute_claims("c1"), secret="someone-elses-secret-0123456789abcdef")
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), token), "signature")


def test_a_tampered_payload_is_401(client, activity, contact):
    header, _, signature = sign(execute_claims("c1")).split(".")
    forged = sign(execute_claims("c2")).split(".")[1]
    token = f"{header}.{forged}.{signature}"
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), token), "signature")


def test_an_unsigned_jwt_is_401(client, activity, contact):
    token = sign(execute_claims("c1"), secret="", algorithm="none")
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), token), "HS256")


def test_a_jwt_with_another_hmac_algorithm_is_401(client, activity, contact):
    token = sign(execute_claims("c1"), secret=SECRET * 2, algorithm="HS512")
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), token), "HS256")


def test_an_activity_without_a_secret_refuses_every_call(client, campaign, contact):
    activity = SfmcActivityFactory(campaign=campaign, jwt_signing_secret="")
    token = sign(execute_claims("c1"))
    assert_refused(post_jwt(client, url(activity.campaign_id, "execute"), token),
                   "No JWT signing secret")


@override_settings(SFMC_JWT_SIGNING_SECRET="environment-secret-0123456789abcdef")
def test_the_environment_secret_serves_an_activity_without_its_own(client, campaign, contact):
    activity = SfmcActivityFactory(campaign=campaign, jwt_signing_secret="")
    token = sign(execute_claims("c1"), secret="environment-secret-0123456789abcdef")
    response = post_jwt(client, url(activity.campaign_id, "execute"), token)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("endpoint", ["save", "validate", "publish", "stop"])
def test_lifecycle_calls_with_a_bad_jwt_are_401_and_record_nothing(client, activity, endpoint):
    token = sign(lifecycle_claims(), secret="wrong-secret-0123456789abcdef-0123456789")
    response = post_jwt(client, url(activity.campaign_id, endpoint), token)
    assert response.status_code == 401
    assert SfmcJourney.objects.count() == 0 and SfmcCall.objects.count() == 0


@pytest.mark.parametrize("endpoint", ["execute", "save", "validate", "publish", "stop"])
def test_an_unknown_campaign_is_404(client, db, endpoint):
    response = post_jwt(client, url(999999, endpoint), sign(execute_claims("c1")))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_campaign_without_an_activity_is_404(client, campaign, contact):
    response = post_jwt(client, url(campaign.pk, "execute"), sign(execute_claims("c1")))
    assert response.status_code == 404
    assert Decision.objects.count() == 0


def test_a_body_over_the_limit_is_413_before_it_is_read(client, activity, contact):
    response = post_jwt(client, url(activity.campaign_id, "execute"), "x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert SfmcCall.objects.count() == 0


def test_the_secret_used_is_the_activity_own(activity):
    assert activity.signing_secret == SECRET
