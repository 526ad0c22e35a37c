"""The dashboard: real KPIs (policy vs holdout with intervals and uplift) and offline charts."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from django.test import override_settings

from crm_console.dashboards import figures, selectors
from crm_console.dashboards.selectors import Estimate
from tests.conftest import CLOSED_REDIS, redis_caches

pytestmark = pytest.mark.django_db


def test_ratio_estimate_matches_hand_computed_delta_method():
    y, x = np.array([1.0, 0.0, 2.0, 1.0]), np.array([2.0, 1.0, 2.0, 3.0])
    est = selectors.ratio_estimate(y, x)
    ratio = 4 / 8
    residual = y - ratio * x                      # [0, -0.5, 1, -0.5]
    se = math.sqrt(residual.var(ddof=1) / 4) / x.mean()
    assert est.value == pytest.approx(ratio)
    assert est.lower == pytest.approx(ratio - 1.959964 * se, rel=1e-5)
    assert est.upper == pytest.approx(ratio + 1.959964 * se, rel=1e-5)


def test_mean_estimate_interval_shrinks_with_more_customers():
    rng = np.random.default_rng(0)
    small = selectors.mean_estimate(rng.normal(size=50))
    large = selectors.mean_estimate(rng.normal(size=5000))
    assert (large.upper - large.lower) < (small.upper - small.lower) / 5


def test_uplift_variance_is_the_sum_of_both_groups():
    uplift = selectors.difference(Estimate.normal(0.3, 0.03), Estimate.normal(0.2, 0.04))
    assert uplift.value == pytest.approx(0.1)
    assert uplift.se == pytest.approx(0.05)
    assert uplift.lower == pytest.approx(0.1 - 1.959964 * 0.05, rel=1e-5)


def test_empty_group_gives_no_number_instead_of_a_fake_zero():
    assert selectors.ratio_estimate(np.array([]), np.array([])).value is None
    assert selectors.difference(Estimate.empty(), Estimate.normal(1, 0.1)).value is None


def test_dashboard_shows_policy_vs_holdout_kpis_of_the_demo_workspace(small_demo, demo_login):
    response = demo_login("marketer").get("/")
    assert response.status_code == 200
    kpis = response.context["kpis"]
    by_key = kpis.by_key()
    assert set(by_key) == {"open_rate", "ctr", "conversion_rate", "arpu", "retention", "revenue", "roi"}
    assert kpis.policy.customers > 0 and kpis.holdout.customers > 0
    assert kpis.policy.decisions + kpis.holdout.decisions == small_demo.decisions.count()
    open_rate = by_key["open_rate"]
    assert 0 < open_rate.policy.value < 1
    assert open_rate.policy.lower <= open_rate.policy.value <= open_rate.policy.upper
    assert open_rate.uplift.value == pytest.approx(open_rate.policy.value - open_rate.holdout.value)
    html = response.content.decode()
    assert 'data-kpi="roi"' in html and "uplift" in html


def test_dashboard_embeds_three_charts_and_loads_plotly_from_this_server(small_demo, demo_login):
    html = demo_login("reviewer").get("/?days=0").content.decode()
    for chart in ("uplift-chart-data", "trends-chart-data", "mix-chart-data"):
        match = re.search(rf'<script id="{chart}" type="application/json">(.*?)</script>', html, re.S)
        assert match, chart
        assert json.loads(match.group(1))["data"]
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert "/assets/plotly.min.js" in scripts
    assert all(src.startswith("/") for src in scripts), scripts  # nothing from a CDN


def test_plotly_bundle_is_served_from_the_installed_package(marketer_client):
    response = marketer_client.get("/assets/plotly.min.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"plotly" in response.content[:2000].lower()
    assert len(response.content) > 1_000_000


def test_dashboard_without_campaigns_says_how_to_get_one(marketer_client):
    response = marketer_client.get("/")
    assert response.status_code == 200
    assert b"make run" in response.content


def test_shap_waterfall_starts_at_base_value_and_ends_at_score():
    fig = figures.shap_figure([("a", 0.5), ("b", -0.2), ("c", 0.0)], base_value=1.0, score=1.3)
    trace = fig["data"][0]
    assert trace["type"] == "waterfall"
    assert trace["x"][0] == 1.0 and trace["x"][-1] == pytest.approx(1.3)
    assert "c" not in trace["y"]  # features that did not move the score are folded away


def test_every_post_form_of_the_console_carries_a_csrf_token(admin_client_role):
    from tests.factories import CustomerFactory, DecisionFactory, PolicyVersionFactory, TrainingRunFactory

    decision = DecisionFactory(customer=CustomerFactory())
    campaign, policy = decision.campaign, decision.campaign.contact_policy
    version = PolicyVersionFactory(campaign=campaign)
    run = TrainingRunFactory(campaign=campaign, status="running")
    pages = [
        f"/campaigns/{campaign.pk}/edit/", f"/campaigns/{campaign.pk}/catalogue/",
        f"/campaigns/{campaign.pk}/reward-weights/", f"/campaigns/contact-policies/{policy.pk}/edit/",
        f"/campaigns/contact-policies/{policy.pk}/suppressions/", "/training/", f"/training/{run.pk}/",
        f"/training/policies/{version.pk}/", f"/decisions/{decision.pk}/", "/compliance/reviews/",
        f"/compliance/subject-requests/{decision.customer_id}/erase/",
    ]
    for url in pages:
        html = admin_client_role.get(url).content.decode()
        forms = re.findall(r'<form[^>]*method="post".*?</form>', html, re.S)
        assert forms, url
        for form in forms:
            assert 'name="csrfmiddlewaretoken"' in form, (url, form[:200])


def test_dashboard_of_a_campaign_without_decisions_shows_dashes_not_errors(marketer_client):
    from tests.factories import CampaignFactory

    campaign = CampaignFactory()
    response = marketer_client.get(f"/?campaign={campaign.pk}")
    assert response.status_code == 200
    assert all(k.policy.value is None for k in response.context["kpis"].kpis)
    assert "—" in response.content.decode()


def test_dashboard_computes_its_figures_while_redis_is_unreachable(small_demo, demo_login):
    with override_settings(CACHES=redis_caches(CLOSED_REDIS)):
        response = demo_login("marketer").get("/")
    assert response.status_code == 200
    assert response.context["kpis"].policy.customers > 0
