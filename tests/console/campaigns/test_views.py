"""Campaign pages: catalogue editor, reward weights with live preview, suppression list upload."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm_console.campaigns.models import Action, RewardWeights, SuppressionEntry
from crm_console.campaigns.reward_preview import EXAMPLE_JOURNEYS, reward_preview
from crm_console.campaigns.suppression import suppression_hash
from crm_console.campaigns.services import campaign_create
from tests.factories import ActionFactory, CampaignFactory, ContactPolicyFactory, SuppressionEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return campaign_create(name="Spring", contact_policy=ContactPolicyFactory())


def add_payload(**overrides):
    return {"add-channel": "sms", "add-offer": "discount_10", "add-variant": "default",
            "add-send_window": "evening", "add-cost": "0.08", "add-enabled": "on", **overrides}


# ------------------------------------------------------------------------------ catalogue
def test_marketer_adds_an_action(marketer_client, campaign):
    response = marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/add/", add_payload())
    assert response.status_code == 302
    assert campaign.actions.filter(channel="sms", offer="discount_10", send_window="evening").exists()


def test_bad_action_cost_shows_field_error_and_saves_nothing(marketer_client, campaign):
    before = campaign.actions.count()
    response = marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/add/", add_payload(**{"add-cost": "-3"}))
    assert response.status_code == 200
    assert "cost" in response.context["add_form"].errors
    assert b"id_add-cost_errors" in response.content
    assert campaign.actions.count() == before


def test_duplicate_action_is_refused_with_a_message(marketer_client, campaign):
    marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/add/", add_payload())
    response = marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/add/", add_payload())
    assert response.status_code == 200
    assert b"already has an action" in response.content
    assert campaign.actions.filter(channel="sms").count() == 1


def test_reviewer_cannot_edit_the_catalogue(reviewer_client, campaign):
    assert reviewer_client.post(f"/campaigns/{campaign.pk}/catalogue/add/", add_payload()).status_code == 403
    assert reviewer_client.post(f"/campaigns/{campaign.pk}/catalogue/generate/", {
        "gen-channels": ["email"], "gen-offers": ["content"], "gen-send_windows": ["morning"],
    }).status_code == 403
    assert campaign.actions.count() == 1  # only "no contact"


def test_disable_and_enable_an_action(marketer_client, campaign):
    action = ActionFactory(campaign=campaign)
    marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/{action.pk}/toggle/")
    action.refresh_from_db()
    assert not action.enabled
    marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/{action.pk}/toggle/")
    action.refresh_from_db()
    assert action.enabled


def test_no_contact_cannot_be_disabled(marketer_client, campaign):
    no_contact = campaign.actions.get(channel=Action.NO_CONTACT_CHANNEL)
    response = marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/{no_contact.pk}/toggle/", follow=True)
    no_contact.refresh_from_db()
    assert no_contact.enabled
    assert b"cannot be disabled" in response.content


def test_bulk_generate_adds_every_combination_once(marketer_client, campaign):
    payload = {"gen-channels": ["email", "sms"], "gen-offers": ["content", "discount_10"],
               "gen-send_windows": ["morning", "evening"]}
    marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/generate/", payload)
    assert campaign.actions.exclude(channel="none").count() == 8
    marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/generate/", payload)
    assert campaign.actions.exclude(channel="none").count() == 8


def test_bulk_generate_needs_a_choice_in_each_dimension(marketer_client, campaign):
    response = marketer_client.post(f"/campaigns/{campaign.pk}/catalogue/generate/",
                                    {"gen-channels": ["email"], "gen-offers": ["content"]})
    assert response.status_code == 200
    assert "send_windows" in response.context["generate_form"].errors
    assert campaign.actions.count() == 1


# ------------------------------------------------------------------------------ reward weights
WEIGHTS = {"open": "0", "click": "0", "conversion": "0", "revenue": "1", "unsubscribe": "-20",
           "churn": "-50", "contact_cost": "-1"}


def test_marketer_saves_reward_weights(marketer_client, campaign):
    response = marketer_client.post(f"/campaigns/{campaign.pk}/reward-weights/", {**WEIGHTS, "click": "0.5"})
    assert response.status_code == 302
    assert RewardWeights.objects.get(campaign=campaign).click == 0.5


def test_bad_weight_shows_field_error_and_saves_nothing(marketer_client, campaign):
    response = marketer_client.post(f"/campaigns/{campaign.pk}/reward-weights/", {**WEIGHTS, "churn": "lots"})
    assert response.status_code == 200
    assert "churn" in response.context["form"].errors
    assert b"id_churn_errors" in response.content
    assert RewardWeights.objects.get(campaign=campaign).churn == -50.0


def test_reviewer_cannot_open_reward_weights(reviewer_client, campaign):
    assert reviewer_client.get(f"/campaigns/{campaign.pk}/reward-weights/").status_code == 403
    assert reviewer_client.post(f"/campaigns/{campaign.pk}/reward-weights/preview/", WEIGHTS).status_code == 403


def test_preview_changes_with_the_weights_and_saves_nothing(marketer_client, campaign):
    url = f"/campaigns/{campaign.pk}/reward-weights/preview/"
    default = marketer_client.post(url, WEIGHTS).context["preview"]
    harsher = marketer_client.post(url, {**WEIGHTS, "unsubscribe": "-100"}).context["preview"]
    sms = next(i for i, (title, _) in enumerate(EXAMPLE_JOURNEYS) if "unsubscribed" in title)
    assert harsher[sms].reward == pytest.approx(default[sms].reward - 80)
    assert RewardWeights.objects.get(campaign=campaign).unsubscribe == -20.0


def test_preview_of_a_bad_weight_says_what_to_fix(marketer_client, campaign):
    response = marketer_client.post(f"/campaigns/{campaign.pk}/reward-weights/preview/", {**WEIGHTS, "open": "x"})
    assert response.status_code == 200
    assert response.context["preview"] is None
    assert b"Fix the highlighted weights" in response.content


def test_reward_preview_prices_with_agents_rewards():
    journeys = reward_preview(weights={"open": 0, "click": 0, "conversion": 0, "revenue": 1,
                                       "unsubscribe": -20, "churn": -50, "contact_cost": -1})
    email = journeys[0]
    assert email.reward == pytest.approx(54.0 - 0.05)  # the catalogue's price of an email
    assert email.components == {"revenue": 54.0, "contact_cost": -0.05}


def test_reward_preview_discounts_later_days():
    flat = reward_preview(weights={"revenue": 1.0}, discount_factor=1.0)
    discounted = reward_preview(weights={"revenue": 1.0}, discount_factor=0.9)
    left_alone = 1  # bought 40 on day 6
    assert flat[left_alone].discounted == pytest.approx(40.0)
    assert discounted[left_alone].discounted == pytest.approx(40.0 * 0.9 ** 6)


# ------------------------------------------------------------------------------ suppression list
def upload(client, policy, text: str, reason: str = ""):
    return client.post(f"/campaigns/contact-policies/{policy.pk}/suppressions/", {
        "file": SimpleUploadedFile("list.csv", text.encode(), content_type="text/csv"), "reason": reason,
    })


def test_reviewer_uploads_a_suppression_list(reviewer_client):
    policy = ContactPolicyFactory()
    SuppressionEntryFactory(contact_policy=policy, external_id="c-1")
    response = upload(reviewer_client, policy, "external_id,reason\nc-1,\nc-2,complaint\nc-3\n", "DSR")
    assert response.status_code == 302
    entries = dict(policy.suppressions.values_list("external_id_hash", "reason"))
    assert entries == {suppression_hash("c-1"): "", suppression_hash("c-2"): "complaint",
                       suppression_hash("c-3"): "DSR"}


def test_suppression_page_never_shows_a_crm_id(reviewer_client):
    policy = ContactPolicyFactory()
    SuppressionEntryFactory(contact_policy=policy, external_id="crm-4711")
    html = reviewer_client.get(f"/campaigns/contact-policies/{policy.pk}/suppressions/").content
    assert b"4711" not in html
    assert suppression_hash("crm-4711")[:12].encode() in html


def test_suppression_page_says_whether_a_crm_id_is_on_the_list(reviewer_client):
    policy = ContactPolicyFactory()
    SuppressionEntryFactory(contact_policy=policy, external_id="crm-4711")
    url = f"/campaigns/contact-policies/{policy.pk}/suppressions/"
    assert reviewer_client.get(url, {"check": "crm-4711"}).context["checked"] is not None
    assert reviewer_client.get(url, {"check": "crm-4712"}).context["checked"] is None


def test_bad_rows_are_listed_and_nothing_is_saved(reviewer_client):
    policy = ContactPolicyFactory()
    response = upload(reviewer_client, policy, "c-1\n,empty id\nc-3,a,b\n" + "x" * 201 + "\n")
    assert response.status_code == 200
    errors = response.context["row_errors"]
    assert any(e.startswith("Row 2:") and "empty" in e for e in errors)
    assert any(e.startswith("Row 3:") and "columns" in e for e in errors)
    assert any(e.startswith("Row 4:") and "longer" in e for e in errors)
    assert not SuppressionEntry.objects.exists()
    assert b"Nothing was saved" in response.content


def test_non_utf8_upload_is_refused(reviewer_client):
    policy = ContactPolicyFactory()
    response = reviewer_client.post(f"/campaigns/contact-policies/{policy.pk}/suppressions/", {
        "file": SimpleUploadedFile("list.csv", "café\n".encode("latin-1"))})
    assert b"not UTF-8" in response.content
    assert not SuppressionEntry.objects.exists()


def test_marketer_cannot_upload_a_suppression_list(marketer_client):
    policy = ContactPolicyFactory()
    assert upload(marketer_client, policy, "c-1\n").status_code == 403
    assert not SuppressionEntry.objects.exists()


def test_every_role_reads_the_catalogue_page(client, marketer, reviewer, admin_user, campaign):
    for user in (marketer, reviewer, admin_user):
        client.force_login(user)
        assert client.get(f"/campaigns/{campaign.pk}/catalogue/").status_code == 200


def test_campaign_detail_shows_reward_weights(marketer_client):
    campaign = CampaignFactory()
    RewardWeights.objects.create(campaign=campaign, click=0.25)
    assert b"0.25" in marketer_client.get(f"/campaigns/{campaign.pk}/").content


def test_campaign_detail_says_whether_a_retention_guardrail_is_set(marketer_client):
    campaign = CampaignFactory()
    assert "none (the reward weights alone" in marketer_client.get(
        f"/campaigns/{campaign.pk}/").content.decode()

    campaign.retention_guardrail_points = Decimal("1.5")
    campaign.save()

    assert "lose at most 1.5 points of retention" in marketer_client.get(
        f"/campaigns/{campaign.pk}/").content.decode()


def test_a_campaign_setting_its_retention_guardrail_keeps_it(marketer_client, campaign):
    fields = _new_campaign_fields(name=campaign.name, status=campaign.status,
                                  retention_guardrail_points="1")

    response = marketer_client.post(f"/campaigns/{campaign.pk}/edit/", fields)

    campaign.refresh_from_db()
    assert response.status_code == 302, response.context["form"].errors
    assert campaign.retention_guardrail_points == Decimal("1")


# ------------------------------------------------------------------------------ new, clone
def _new_campaign_fields(**overrides):
    fields = {"name": "Winter win-back", "objective": "long_term_value", "horizon_days": 60,
              "discount_factor": "0.99", "holdout_share": "0.1", "attribution_window_days": 7,
              "control_policy": "rule_based", "decision_mode": "sample",
              "exploration_share": "0.05", "time_zone": "Europe/Paris", "contact_policy": ""}
    fields.update(overrides)
    return fields


def test_marketer_creates_a_draft_campaign_with_no_contact_and_weights(marketer_client):
    from crm_console.campaigns.models import Campaign

    response = marketer_client.post("/campaigns/new/", _new_campaign_fields())
    campaign = Campaign.objects.get(name="Winter win-back")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/catalogue/"
    assert campaign.status == Campaign.Status.DRAFT and campaign.time_zone == "Europe/Paris"
    assert list(campaign.actions.values_list("channel", flat=True)) == [Action.NO_CONTACT_CHANNEL]
    assert RewardWeights.objects.filter(campaign=campaign).exists()


@pytest.mark.parametrize(("field", "value"), [
    ("name", ""), ("holdout_share", "1.5"), ("time_zone", "Mars/Olympus"), ("horizon_days", "0"),
    ("retention_guardrail_points", "-1"),
])
def test_a_bad_new_campaign_field_is_named_and_nothing_is_saved(marketer_client, field, value):
    from crm_console.campaigns.models import Campaign

    response = marketer_client.post("/campaigns/new/", _new_campaign_fields(**{field: value}))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Campaign.objects.filter(name="Winter win-back").exists()


def test_a_taken_campaign_name_is_refused(marketer_client, campaign):
    response = marketer_client.post("/campaigns/new/", _new_campaign_fields(name=campaign.name))
    assert "name" in response.context["form"].errors


def test_reviewer_cannot_create_or_clone_a_campaign(reviewer_client, campaign):
    assert reviewer_client.get("/campaigns/new/").status_code == 403
    assert reviewer_client.post(f"/campaigns/{campaign.pk}/clone/").status_code == 403


def test_the_campaign_list_offers_new_campaign_to_marketers(marketer_client):
    assert "New campaign" in marketer_client.get("/campaigns/").content.decode()


def test_the_campaign_list_offers_no_new_campaign_to_reviewers(reviewer_client):
    assert "New campaign" not in reviewer_client.get("/campaigns/").content.decode()


def test_clone_copies_settings_catalogue_and_weights_as_a_draft(marketer_client, campaign):
    from crm_console.campaigns.models import Campaign
    from crm_console.compliance.models import AuditEntry

    ActionFactory(campaign=campaign, channel="sms", enabled=False)
    RewardWeights.objects.filter(campaign=campaign).update(churn=-75.0)
    response = marketer_client.post(f"/campaigns/{campaign.pk}/clone/")
    copy = Campaign.objects.get(name=f"Copy of {campaign.name}")
    assert response.status_code == 302 and copy.status == Campaign.Status.DRAFT
    assert copy.holdout_share == campaign.holdout_share
    assert copy.contact_policy_id == campaign.contact_policy_id

    def catalogue(c):
        return sorted(c.actions.values_list("channel", "offer", "variant", "send_window", "cost",
                                            "enabled"))

    assert catalogue(copy) == catalogue(campaign)
    assert RewardWeights.objects.get(campaign=copy).churn == -75.0
    assert not copy.policy_versions.exists()
    assert AuditEntry.objects.filter(verb="campaign.cloned").exists()


def test_cloning_twice_numbers_the_copies(marketer_client, campaign):
    from crm_console.campaigns.models import Campaign

    marketer_client.post(f"/campaigns/{campaign.pk}/clone/")
    marketer_client.post(f"/campaigns/{campaign.pk}/clone/")
    assert Campaign.objects.filter(name=f"Copy of {campaign.name} (2)").exists()
