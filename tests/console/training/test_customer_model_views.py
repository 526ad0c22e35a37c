"""The campaign's customer-model page: read by every role, fitted and overridden by marketers."""

from __future__ import annotations

import pytest

from crm_console.compliance.models import AuditEntry
from crm_console.training.models import CustomerResponseModel
from tests.factories import CampaignFactory, CustomerResponseModelFactory

pytestmark = pytest.mark.django_db


def test_page_without_a_model_says_training_uses_the_built_in_simulator(reviewer_client):
    campaign = CampaignFactory()

    html = reviewer_client.get(f"/campaigns/{campaign.pk}/customer-model/").content.decode()

    assert "No model fitted yet" in html and "built-in retail simulator" in html
    assert "Fit from the campaign" not in html  # reviewers read, they do not fit


def test_page_shows_the_held_out_check_and_the_flag_in_words(marketer_client):
    model = CustomerResponseModelFactory(within_tolerance=False)

    response = marketer_client.get(f"/campaigns/{model.campaign_id}/customer-model/")

    html = response.content.decode()
    assert "orders per decision off by 80%" in html
    assert "Training in it is refused" in html
    assert "5.00 %" in html and "9.00 %" in html  # observed and predicted orders per decision
    assert "Allow training in it" in html


def test_page_says_how_the_model_was_brought_to_its_recent_days(reviewer_client):
    model = CustomerResponseModelFactory()
    model.validation["recent_levels"] = {"days": 7, "factors": {
        "unsubscribe": 1.004, "churn": 0.896}}
    model.save()

    html = reviewer_client.get(f"/campaigns/{model.campaign_id}/customer-model/").content.decode()

    assert "rates were brought to those of the last 7 days it was fitted on" in html
    # unsubscribes moved under 2 %: left out of the sentence
    assert "history&#x27;s average rate: churn 10 % lower." in html


def test_page_of_a_model_fitted_before_levelling_has_no_recent_days_line(reviewer_client):
    model = CustomerResponseModelFactory()

    html = reviewer_client.get(f"/campaigns/{model.campaign_id}/customer-model/").content.decode()

    assert "Recent days" not in html


def test_reviewer_may_not_fit_or_override(reviewer_client):
    model = CustomerResponseModelFactory(within_tolerance=False)
    base = f"/campaigns/{model.campaign_id}/customer-model/"

    assert reviewer_client.post(base + "fit/").status_code == 403
    assert reviewer_client.post(f"{base}{model.pk}/override/", {"reason": "x" * 20}).status_code == 403
    assert CustomerResponseModel.objects.count() == 1


def test_marketer_fit_queues_a_fit_and_lands_on_the_page(marketer_client,
                                                        django_capture_on_commit_callbacks):
    campaign = CampaignFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = marketer_client.post(f"/campaigns/{campaign.pk}/customer-model/fit/")

    assert response.status_code == 302
    assert CustomerResponseModel.objects.get().status == CustomerResponseModel.Status.FITTING
    assert len(callbacks) == 1


def test_override_without_a_reason_shows_a_field_error_and_changes_nothing(marketer_client):
    model = CustomerResponseModelFactory(within_tolerance=False)

    response = marketer_client.post(
        f"/campaigns/{model.campaign_id}/customer-model/{model.pk}/override/", {"reason": ""})

    assert response.status_code == 400
    assert "This field is required" in str(response.context["override_form"].errors["reason"])
    model.refresh_from_db()
    assert not model.override_reason
    assert not AuditEntry.objects.filter(verb="response_model.overridden").exists()


def test_override_with_a_reason_allows_training(marketer_client):
    model = CustomerResponseModelFactory(within_tolerance=False)

    response = marketer_client.post(
        f"/campaigns/{model.campaign_id}/customer-model/{model.pk}/override/",
        {"reason": "A one-off flash sale fell in the held-out fortnight."})

    assert response.status_code == 302
    model.refresh_from_db()
    assert model.trainable


def test_progress_fragment_polls_while_fitting_and_reloads_when_done(marketer_client):
    model = CustomerResponseModelFactory(status="fitting", phase="Fitting on 4,000 decisions")
    url = f"/campaigns/{model.campaign_id}/customer-model/{model.pk}/progress/"

    html = marketer_client.get(url).content.decode()
    assert "hx-trigger" in html and "Fitting on 4,000 decisions" in html

    CustomerResponseModel.objects.filter(pk=model.pk).update(status="ready")
    response = marketer_client.get(url, HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true"
