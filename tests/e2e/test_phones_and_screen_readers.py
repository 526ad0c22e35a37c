"""Issue 15 in a real browser: the dashboard's verdict, promotion refused in words, no page that
scrolls sideways on a 390 px phone, described-by ids that exist, focus on the error summary."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crm_console.campaigns.models import ContactPolicy
from crm_console.decisioning.models import Decision, PolicyVersion
from tests.e2e.conftest import PASSWORDS, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}

# what sticks out past the right edge of the viewport (empty: nothing scrolls sideways)
SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) { return []; }
  const clipped = (el) => {  // inside a box that scrolls or clips by itself (a wide table's wrap)
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") { return true; }
    }
    return false;
  };
  return [...document.querySelectorAll("body *")].filter((el) => {
    const box = el.getBoundingClientRect();
    return box.right > width + 1 && getComputedStyle(el).position !== "fixed" && !clipped(el);
  }).slice(0, 8).map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""))
    .concat([`the page is ${document.documentElement.scrollWidth} px wide`]);
}"""

# aria-describedby ids that no element carries
DANGLING = """() => [...document.querySelectorAll("[aria-describedby]")].flatMap((el) =>
  el.getAttribute("aria-describedby").split(/\\s+/).filter((id) => id && !document.getElementById(id))
    .map((id) => (el.name || el.id || el.tagName) + " -> " + id))"""


def _pages(demo) -> list[str]:
    from crm_console.customers.models import Customer

    policy = ContactPolicy.objects.get()
    decision = Decision.objects.filter(campaign=demo).first()
    version = PolicyVersion.objects.filter(campaign=demo).first()
    customer = Customer.objects.exclude(profile_state={}).first()
    pages = [
        "/", "/campaigns/", f"/campaigns/{demo.pk}/", f"/campaigns/{demo.pk}/edit/",
        f"/campaigns/{demo.pk}/catalogue/", f"/campaigns/{demo.pk}/reward-weights/",
        "/campaigns/vocabulary/", "/campaigns/channels/new/", "/campaigns/offers/new/",
        "/campaigns/send-windows/new/", "/campaigns/new/", "/campaigns/import/",
        "/campaigns/contact-policies/", f"/campaigns/contact-policies/{policy.pk}/edit/",
        f"/campaigns/contact-policies/{policy.pk}/suppressions/", "/decisions/",
        f"/decisions/{decision.pk}/", "/customers/", f"/customers/{customer.pk}/", "/training/",
        "/training/policies/", "/compliance/reviews/", "/compliance/audit/",
        f"/compliance/subject-requests/?q={customer.external_id}",
        f"/compliance/subject-requests/{customer.pk}/erase/",
    ]
    if version is not None:
        pages.append(f"/training/policies/{version.pk}/")
    return pages


def _phone_login(browser, live_server, username: str):
    context = browser.new_context(viewport=PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return context, page


def test_no_page_scrolls_sideways_on_a_390px_phone_and_every_described_by_id_exists(
        browser, live_server, demo):
    context, page = _phone_login(browser, live_server, "admin")
    sideways, dangling = {}, {}
    try:
        nav_height = page.locator(".topbar").bounding_box()["height"]
        assert nav_height < 140, f"the top bar takes {nav_height} px on a phone"
        for url in _pages(demo):
            response = page.goto(url)
            assert response.status == 200, url
            page.wait_for_load_state("networkidle")
            if found := page.evaluate(SIDEWAYS):
                sideways[url] = found
            if found := page.evaluate(DANGLING):
                dangling[url] = found
        page.goto("/")
        screenshot(page, "phone-dashboard")
        page.goto("/compliance/reviews/")
        screenshot(page, "phone-review-queue")
        approve = page.get_by_role("button", name="Approve").first
        box = approve.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"], box
    finally:
        context.close()
    assert not sideways, f"pages wider than a 390 px phone: {sideways}"
    assert not dangling, f"aria-describedby ids that do not exist: {dangling}"


def test_a_failed_submit_moves_focus_to_the_error_summary(login):
    policy = ContactPolicy.objects.get()
    page = login("reviewer")
    page.goto(f"/campaigns/contact-policies/{policy.pk}/edit/")
    page.fill("#id_min_gap_hours", "-5")
    page.click("button:has-text('Save')")
    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There is a problem")
    summary.get_by_role("link").first.click()
    expect(page.locator("#id_min_gap_hours")).to_be_focused()
    assert page.evaluate(DANGLING) == []
    described = page.locator("#id_min_gap_hours").get_attribute("aria-describedby")
    assert "id_min_gap_hours_errors" in described.split()


def test_the_dashboard_states_its_verdict_in_words(login, demo):
    from crm_console.dashboards.selectors import campaign_kpis, campaign_verdict

    page = login("marketer")
    kpis = campaign_kpis(campaign=demo, days=90)
    live = PolicyVersion.objects.filter(campaign=demo, status="live").first()
    verdict = campaign_verdict(kpis=kpis, live_policy=live, days=90)
    expect(page.locator("#verdict-sentence")).to_have_text(verdict.sentence)
    # the holdout is a hash of the campaign's id and the customer's: 40 customers may hold none
    if kpis.holdout.customers:
        assert verdict.sentence.startswith("Over the last 90 days")
        assert "per customer vs the holdout (95 % CI" in verdict.sentence
    else:
        assert verdict.sentence.startswith("No data yet: over the last 90 days")


def test_promote_is_disabled_with_the_reason_when_the_guardrail_refuses(login, demo):
    version = PolicyVersion.objects.create(
        campaign=demo, version=99, algorithm="rule_based", status="candidate",
        artifact=b"not-a-real-agent", artifact_sha256="0" * 64,
        ope_report={"live_version_id": (PolicyVersion.objects.filter(
            campaign=demo, status="live").values_list("pk", flat=True).first()),
            "paired": {"baseline": "live", "rows": 800,
                       "dr": {"value": 0.05, "lower": -0.1, "upper": 0.2,
                              "effective_sample_size": 400.0}}})
    page = login("marketer")
    page.goto(f"/training/policies/{version.pk}/")
    promote = page.get_by_role("button", name="Promote")
    expect(promote).to_be_disabled()
    expect(page.locator("#promote-blocked")).to_contain_text("the lower bound is not above 0")
    expect(page.locator("#id_reason")).to_have_count(0)  # the force box is the admins'
