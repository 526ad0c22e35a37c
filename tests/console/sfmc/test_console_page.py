"""The campaign's Marketing Cloud page: URLs to paste, branches, journeys, last calls; only admins
configure the activity."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from crm_console.compliance.models import AuditEntry
from crm_console.sfmc.models import SfmcActivity
from crm_console.sfmc.services import sfmc_activity_save
from tests.console.sfmc.helpers import SECRET
from tests.factories import SfmcActivityFactory, SfmcCallFactory, SfmcJourneyFactory

pytestmark = pytest.mark.django_db


def page(campaign) -> str:
    return f"/campaigns/{campaign.pk}/marketing-cloud/"


FORM = {"name": "NBA split", "jwt_signing_secret": "pasted-secret-0123456789abcdefghij",
        "application_extension_key": "", "branch_by": "channel", "unknown_contact": "no_contact",
        "retry_window_minutes": "60"}


def test_the_page_shows_the_urls_to_paste(marketer_client, activity):
    html = marketer_client.get(page(activity.campaign)).content.decode()
    base = f"http://testserver/integrations/sfmc/{activity.campaign_id}/"
    assert f"<code>{base}</code>" in html  # the installed package's Endpoint URL
    for endpoint in ("config.json", "execute", "save", "publish", "validate", "stop"):
        assert f"{base}{endpoint}" in html


def test_the_page_lists_the_branches(marketer_client, activity):
    html = marketer_client.get(page(activity.campaign)).content.decode()
    for key in ("email", "sms", "no_contact"):
        assert f"<code>{key}</code>" in html


def test_the_page_shows_the_last_calls_and_journeys(marketer_client, activity):
    SfmcCallFactory(activity=activity, branch="sms", message="Unknown contact key.")
    SfmcJourneyFactory(activity=activity, journey_id="journey-abc")
    html = marketer_client.get(page(activity.campaign)).content.decode()
    assert "Unknown contact key." in html
    assert "journey-abc" in html


def test_the_page_never_shows_the_secret(admin_client_role, activity):
    html = admin_client_role.get(page(activity.campaign)).content.decode()
    assert SECRET not in html


def test_a_marketer_sees_no_form(marketer_client, activity):
    response = marketer_client.get(page(activity.campaign))
    assert response.status_code == 200
    assert response.context["form"] is None


def test_an_admin_sets_up_the_activity(admin_client_role, campaign):
    response = admin_client_role.post(page(campaign), FORM)
    assert response.status_code == 302
    activity = SfmcActivity.objects.get(campaign=campaign)
    assert activity.name == "NBA split"
    assert activity.jwt_signing_secret == FORM["jwt_signing_secret"]
    assert AuditEntry.objects.filter(verb="sfmc_activity.created").exists()


def test_a_blank_secret_keeps_the_saved_one(admin_client_role, activity):
    admin_client_role.post(page(activity.campaign), {**FORM, "jwt_signing_secret": ""})
    activity.refresh_from_db()
    assert activity.jwt_signing_secret == SECRET
    assert activity.name == "NBA split"


def test_an_out_of_range_retry_window_is_refused_with_the_field_named(admin_client_role, campaign):
    response = admin_client_role.post(page(campaign), {**FORM, "retry_window_minutes": "0"})
    assert response.status_code == 200
    assert "retry_window_minutes" in response.context["form"].errors
    assert not SfmcActivity.objects.exists()


def test_an_unknown_branch_choice_is_refused(admin_client_role, campaign):
    response = admin_client_role.post(page(campaign), {**FORM, "branch_by": "segment"})
    assert "branch_by" in response.context["form"].errors
    assert not SfmcActivity.objects.exists()


@pytest.mark.parametrize("who", ["marketer_client", "reviewer_client"])
def test_only_admins_configure_the_activity(request, campaign, who):
    response = request.getfixturevalue(who).post(page(campaign), FORM)
    assert response.status_code == 403
    assert not SfmcActivity.objects.exists()


def test_the_service_refuses_a_non_admin(campaign, marketer):
    with pytest.raises(PermissionDenied, match="Only admins"):
        sfmc_activity_save(campaign=campaign, saved_by=marketer, name="x")


def test_the_page_needs_a_login(client, activity):
    response = client.get(page(activity.campaign))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_says_when_the_campaign_cannot_decide(marketer_client, campaign):
    campaign.status = "draft"
    campaign.save(update_fields=["status"])
    SfmcActivityFactory(campaign=campaign)
    html = marketer_client.get(page(campaign)).content.decode()
    assert "cannot decide yet" in html


def test_the_campaign_tabs_link_to_the_page(marketer_client, activity):
    html = marketer_client.get(f"/campaigns/{activity.campaign_id}/").content.decode()
    assert page(activity.campaign) in html
