"""The console in a real browser: roles, live reward preview, field errors, training progress,
SHAP explanations, compliance review - and a screenshot of every main page."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from crm_console.campaigns.models import ContactPolicy
from crm_console.compliance.models import DecisionReview
from crm_console.decisioning.models import Decision, PolicyVersion
from crm_console.training.models import TrainingRun
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("role", ["marketer", "reviewer", "admin"])
def test_each_role_logs_in_and_lands_on_a_dashboard_with_real_numbers(login, role):
    page = login(role)
    expect(page.locator("h1")).to_have_text("Retail next best action")
    open_rate = page.locator('[data-kpi="open_rate"] .value')
    expect(open_rate).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(page.locator('[data-kpi="roi"] .uplift')).to_contain_text("Uplift")
    expect(page.locator("#uplift-chart .main-svg").first).to_be_visible()
    expect(page.locator("#trends-chart .main-svg").first).to_be_visible()
    compliance_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance")
    expect(compliance_link).to_have_count(0 if role == "marketer" else 1)
    expect(page.locator(".who")).to_contain_text(role)
    screenshot(page, f"dashboard-{role}")


def test_marketer_edits_reward_weights_and_sees_the_preview_change(login, demo):
    page = login("marketer")
    page.goto(f"/campaigns/{demo.pk}/reward-weights/")
    unsubscribed = page.locator('#reward-preview tr[data-journey="2"] td.reward')
    before = unsubscribed.inner_text()
    page.fill("#id_unsubscribe", "-100")
    expect(unsubscribed).not_to_have_text(before)
    after = float(unsubscribed.inner_text())
    assert after == pytest.approx(float(before) - 80, abs=0.01)
    screenshot(page, "reward-weights")
    page.fill("#id_open", "")  # a number input refuses letters; empty is the bad value here
    expect(page.locator("#reward-preview")).to_contain_text("Fix the highlighted weights")
    page.fill("#id_open", "0.5")
    page.click("text=Save weights")
    expect(page.locator(".messages")).to_contain_text("Reward weights saved")
    demo.reward_weights.refresh_from_db()
    assert demo.reward_weights.unsubscribe == -100 and demo.reward_weights.open == 0.5


def test_bad_cap_value_shows_its_field_error(login):
    policy = ContactPolicy.objects.get()
    page = login("reviewer")
    page.goto(f"/campaigns/contact-policies/{policy.pk}/edit/")
    screenshot(page, "contact-policy")
    page.fill("#id_min_gap_hours", "-5")
    page.click("button:has-text('Save')")
    error = page.locator("#id_min_gap_hours_errors")
    expect(error).to_be_visible()
    expect(error).to_contain_text("greater than or equal to 0")
    policy.refresh_from_db()
    assert policy.min_gap_hours >= 0


def test_marketer_is_refused_the_contact_policy_page(login):
    policy = ContactPolicy.objects.get()
    page = login("marketer")
    response = page.goto(f"/campaigns/contact-policies/{policy.pk}/edit/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_training_run_progress_bar_reaches_100_percent(login, demo):
    page = login("marketer")
    page.goto("/training/")
    page.select_option("#id_campaign", str(demo.pk))
    page.fill("#id_budget_steps", "2000")
    page.uncheck("#id_warm_start")
    page.click("text=Start training")
    progress = page.locator("#run-progress")
    expect(progress).to_have_attribute("data-percent", "100.0", timeout=240_000)
    expect(progress).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".progress.large > span")).to_have_attribute("style", re.compile("width: 100"))
    # the page finishes by itself (no reload by hand): the result, and no "Cancel run" any more
    expect(page.locator("#curve-chart .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    run = TrainingRun.objects.get(population_of__isnull=True)
    assert run.status == "succeeded" and run.progress == 1.0
    # the page's default trains four policies side by side and says which one it kept and why
    assert run.population_size == 4 and run.members.count() == 4
    population = page.locator("#population")
    expect(population.locator("tbody tr")).to_have_count(4)
    expect(population.locator("tbody tr.kept")).to_have_count(1)
    expect(population).to_contain_text("held-out")
    expect(page.locator("#population-chart .main-svg").first).to_be_visible()
    # the off-policy evaluation follows the training in the same background task: let it finish
    deadline = time.monotonic() + 180
    while not PolicyVersion.objects.get(pk=run.policy_version_id).ope_report:
        assert time.monotonic() < deadline, "the evaluation did not finish"
        time.sleep(0.5)
    page.reload()
    expect(page.locator("#curve-chart .main-svg").first).to_be_visible()
    screenshot(page, "training-run")
    page.goto(f"/training/policies/{run.policy_version_id}/")
    expect(page.locator("h2", has_text="Off-policy evaluation")).to_be_visible()
    expect(page.locator("#ope-chart .main-svg").first).to_be_visible()
    screenshot(page, "policy-version")


def test_reviewer_opens_a_decision_sees_shap_and_sentence_and_flags_it(login):
    decision = (Decision.objects.filter(holdout=False, propensity__gt=0.5).exclude(action__channel="none")
                .order_by("-id").first())
    page = login("reviewer")
    page.goto("/decisions/")
    screenshot(page, "decision-explorer")
    page.click(f'a[href="/decisions/{decision.pk}/"]')
    expect(page.locator("#sentence .sentence")).to_contain_text("chosen")
    expect(page.locator("#shap-chart .main-svg").first).to_be_visible()
    expect(page.locator("#shap-chart")).to_have_attribute("data-drawn", "true")
    expect(page.locator("#shap-chart")).to_contain_text("Typical customer")
    screenshot(page, "decision-detail")
    page.fill("#id_note", "Discount offered to a customer who buys at full price")
    page.click("button:has-text('Flag')")
    expect(page.locator(".messages")).to_contain_text(f"Decision #{decision.pk} flagged")
    expect(page.locator("#reviews")).to_contain_text("Flagged by reviewer")
    review = DecisionReview.objects.get()
    assert (review.decision_id, review.verdict, review.reviewer.username) == (decision.pk, "flagged", "reviewer")


def test_screenshots_of_the_other_main_pages(login, demo):
    from crm_console.customers.models import Customer

    page = login("admin")
    customer = Customer.objects.exclude(profile_state={}).first()
    for name, url in (
        ("campaigns", "/campaigns/"), ("campaign", f"/campaigns/{demo.pk}/"),
        ("catalogue", f"/campaigns/{demo.pk}/catalogue/"), ("contact-policies", "/campaigns/contact-policies/"),
        ("customers", "/customers/"), ("customer-timeline", f"/customers/{customer.pk}/"),
        ("training-runs", "/training/"), ("policy-versions", "/training/policies/"),
        ("review-queue", "/compliance/reviews/"), ("audit-log", "/compliance/audit/"),
        ("subject-requests", f"/compliance/subject-requests/?q={customer.external_id}"),
        ("api-docs", "/api/docs/"), ("admin", "/admin/"),
    ):
        response = page.goto(url)
        assert response.status == 200, url
        screenshot(page, name)


def test_marketer_builds_a_campaign_from_their_own_channel_offer_and_window_and_it_decides(
        login, live_server):
    """Issue 13's new-user path: their own channel (WhatsApp, capped at 2 a week), offer and send
    window, a new campaign with its catalogue, a training run, and decisions through the API
    that name the WhatsApp channel and the offer."""
    import json
    import urllib.request

    from crm_console.api.services import api_integration_create
    from crm_console.campaigns.models import Campaign
    from crm_console.customers.models import Customer
    from crm_console.customers.services import consent_change

    page = login("marketer")
    page.goto("/campaigns/vocabulary/")
    page.click("text=New channel")
    page.fill("#id_key", "whatsapp")
    page.fill("#id_label", "WhatsApp")
    page.fill("#id_cost", "-1")  # a negative price: the field says so
    page.fill("#id_consent_key", "whatsapp")
    page.click("button:has-text('Save')")
    expect(page.locator("#id_cost_errors")).to_contain_text("greater than or equal to 0")
    page.fill("#id_cost", "0.03")
    page.click("button:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("WhatsApp")
    page.click("text=New offer")
    page.fill("#id_key", "free_gift")
    page.fill("#id_label", "Free gift")
    page.select_option("#id_kind", "gift")
    page.fill("#id_redemption_cost", "4.00")
    page.fill("#id_value", "5")  # a gift has no value: the field says so
    page.click("button:has-text('Save')")
    expect(page.locator("#id_value_errors")).to_contain_text("redemption cost")
    page.fill("#id_value", "0")
    page.click("button:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Free gift")
    page.click("text=New send window")
    page.fill("#id_key", "lunch")
    page.fill("#id_label", "Lunch 12:30-13:30")
    page.fill("#id_start", "12:30")
    page.fill("#id_end", "13:30")
    for weekend in ("5", "6"):
        page.uncheck(f"input[name='days'][value='{weekend}']")
    page.click("button:has-text('Save')")
    expect(page.locator("table")).to_contain_text(["Free gift", "Lunch 12:30-13:30"])
    expect(page.locator("tr", has_text="Lunch 12:30-13:30")).to_contain_text("Monday-Friday")
    screenshot(page, "offers-and-send-windows")

    page.goto("/campaigns/new/")
    page.fill("#id_name", "Lunch gifts")
    page.fill("#id_exploration_share", "0.5")
    page.select_option("#id_contact_policy", index=1)
    page.click("button:has-text('Create draft')")
    campaign = Campaign.objects.get(name="Lunch gifts")
    # caps are compliance's: the reviewer caps WhatsApp at 2 a week in the campaign's policy
    reviewer = login("reviewer")
    reviewer.goto(f"/campaigns/contact-policies/{campaign.contact_policy_id}/edit/")
    reviewer.locator("select[name$='-channel']").last.select_option("whatsapp")
    reviewer.locator("input[name$='-max_contacts']").last.fill("2")
    reviewer.locator("input[name$='-window_days']").last.fill("7")
    reviewer.click("button:has-text('Save')")
    expect(reviewer.locator(".messages")).to_be_visible()
    assert campaign.contact_policy.channel_caps.filter(channel="whatsapp", max_contacts=2).exists()
    for customer in Customer.objects.all():  # the CRM passes on the customers' WhatsApp opt-ins
        consent_change(customer=customer, channel="whatsapp", granted=True, source="CRM")
    page.check("input[name='gen-channels'][value='whatsapp']")
    page.check("input[name='gen-offers'][value='free_gift']")
    page.check("input[name='gen-send_windows'][value='lunch']")
    page.click("text=Generate actions")
    expect(page.locator("table").first).to_contain_text("WhatsApp - Free gift - Lunch 12:30-13:30")
    page.goto(f"/campaigns/{campaign.pk}/edit/")
    page.select_option("#id_status", "live")
    page.click("button:has-text('Save')")
    expect(page.locator("h1 .badge")).to_have_text("Live")

    page.goto("/training/")
    page.select_option("#id_campaign", str(campaign.pk))
    page.fill("#id_budget_steps", "2000")
    page.uncheck("#id_warm_start")
    page.click("text=Start training")
    expect(page.locator("#run-progress")).to_have_attribute("data-status", "succeeded",
                                                            timeout=240_000)

    token = api_integration_create(name="CRM", scopes=["decisions:write"]).token
    answers = []
    for customer in Customer.objects.values_list("external_id", flat=True):
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/decisions", method="POST",
            data=json.dumps({"customer": customer, "campaign": campaign.pk}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            answers.append(json.loads(response.read()))
    contacts = [a for a in answers if a["action"]["contact"]]
    assert contacts, "no customer was contacted (exploration share 0.5 over 40 customers)"
    assert {a["action"]["channel"] for a in contacts} == {"whatsapp"}
    assert {a["action"]["channel_label"] for a in contacts} == {"WhatsApp"}
    assert {a["action"]["offer"] for a in contacts} == {"free_gift"}
    assert {a["action"]["send_window"]["name"] for a in contacts} == {"lunch"}
