"""The dashboard's verdict: one sentence on whether the live policy beats the holdout, in words."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from crm_console.dashboards import figures, selectors
from crm_console.dashboards.selectors import CampaignKpis, Estimate, GroupSize, KpiComparison, TrendPoint
from crm_console.decisioning.models import PolicyVersion

pytestmark = pytest.mark.django_db


def _kpis(uplift: Estimate | None, *, policy: int = 400, holdout: int = 40) -> CampaignKpis:
    arpu = KpiComparison("arpu", "Revenue per customer", "money", "", Estimate.empty(),
                         Estimate.empty(), uplift or Estimate.empty(), Estimate.empty())
    return CampaignKpis(campaign=None, since=None, policy=GroupSize(policy, policy * 3, policy),
                        holdout=GroupSize(holdout, holdout * 3, holdout), kpis=[arpu])


def test_verdict_states_the_uplift_per_customer_its_interval_and_that_it_is_not_clear_yet():
    verdict = selectors.campaign_verdict(kpis=_kpis(Estimate(-14.27, -31.79, 3.26, 9.0)), days=90)
    assert verdict.outcome == "unclear"
    assert verdict.sentence.startswith("Over the last 90 days the policy group earned -14.27 per "
                                       "customer vs the holdout (95 % CI -31.79 to +3.26")
    assert "not distinguishable from it yet" in verdict.sentence


@pytest.mark.parametrize(("uplift", "outcome", "words"), [
    (Estimate(5.0, 1.0, 9.0, 2.0), "better", "better than the holdout"),
    (Estimate(-5.0, -9.0, -1.0, 2.0), "worse", "worse than the holdout"),
])
def test_verdict_says_better_or_worse_only_when_the_interval_excludes_zero(uplift, outcome, words):
    verdict = selectors.campaign_verdict(kpis=_kpis(uplift), days=None)
    assert verdict.outcome == outcome
    assert verdict.sentence.startswith("Over all history") and words in verdict.sentence


@pytest.mark.parametrize(("policy", "holdout", "missing"), [
    (0, 0, "any decisions"), (10, 0, "holdout customers"), (0, 10, "policy customers"),
])
def test_verdict_without_both_groups_says_no_data_yet(policy, holdout, missing):
    verdict = selectors.campaign_verdict(kpis=_kpis(None, policy=policy, holdout=holdout), days=30)
    assert verdict.outcome == "no_data"
    assert verdict.sentence.startswith("No data yet") and missing in verdict.sentence


def test_verdict_names_the_live_policy_and_how_and_when_it_went_live():
    from tests.factories import PolicyVersionFactory

    version = PolicyVersionFactory(status="live", algorithm="actor_critic", forced_promotion=True,
                                   promoted_at=timezone.make_aware(datetime(2026, 12, 4, 12)))
    verdict = selectors.campaign_verdict(kpis=_kpis(Estimate(1.0, -1.0, 3.0, 1.0)),
                                         live_policy=version, days=90)
    assert f"the live policy (v{version.version}, Actor-critic (PPO)) earned +1.00" in verdict.sentence
    assert verdict.sentence.endswith("it went live forced past the guardrail on 4 Dec 2026.")


def test_demo_dashboard_shows_the_verdict_sentence_of_its_own_revenue_kpi(small_demo, demo_login):
    response = demo_login("marketer").get("/?days=0")
    verdict, kpis = response.context["verdict"], response.context["kpis"]
    uplift = kpis.by_key()["arpu"].uplift
    assert verdict.outcome in {"better", "worse", "unclear"}
    assert f"{uplift.value:+,.2f} per customer" in verdict.sentence
    html = response.content.decode()
    assert 'id="verdict-sentence"' in html and verdict.sentence.split(" (")[0] in html
    live = PolicyVersion.objects.filter(campaign=small_demo, status="live").first()
    if live is not None:
        assert f"/training/policies/{live.pk}/" in html  # the link to the evidence


def test_revenue_compares_per_customer_scaled_to_the_policy_group(small_demo, demo_login):
    kpis = demo_login("marketer").get("/?days=0").context["kpis"]
    revenue, arpu = kpis.by_key()["revenue"], kpis.by_key()["arpu"]
    n = kpis.policy.customers
    assert revenue.holdout.value == pytest.approx(arpu.holdout.value * n)
    assert revenue.uplift.value == pytest.approx(revenue.policy.value - revenue.holdout.value)


def test_roi_reads_as_a_percentage_with_its_uplift_in_points(small_demo, demo_login):
    response = demo_login("marketer").get("/?days=0")
    roi = response.context["kpis"].by_key()["roi"]
    assert roi.unit == "pct"
    html = response.content.decode()
    card = html.split('data-kpi="roi"')[1].split("</section>")[0]
    assert " pp" in card and "×" not in card


def test_campaign_without_decisions_says_no_data_yet_instead_of_empty_charts(marketer_client):
    from tests.factories import CampaignFactory

    campaign = CampaignFactory()
    response = marketer_client.get(f"/?campaign={campaign.pk}")
    html = response.content.decode()
    assert response.context["verdict"].outcome == "no_data"
    assert 'id="no-data"' in html and "No data yet" in html
    assert "uplift-chart-data" not in html and "trends-chart-data" not in html


def test_running_week_is_marked_partial_and_left_out_of_the_trend_lines():
    def point(week: str, partial: bool) -> TrendPoint:
        return TrendPoint(week, "Policy", 10, 0.2, 1.0, 1.0, partial)

    fig = figures.trends_figure([point("2026-11-23", False), point("2026-11-30", True)])
    drawn = [list(trace["x"]) for trace in fig["data"] if trace["x"]]
    assert drawn and all(x == ["2026-11-23"] for x in drawn)


def test_trend_points_of_this_week_are_partial_and_earlier_weeks_are_not(small_demo):
    points = selectors.campaign_trends(campaign=small_demo)
    today = timezone.now().date()
    monday = today - timedelta(days=today.weekday())
    assert points
    for p in points:
        assert p.partial == (p.week_start >= monday.isoformat()), p
    assert np.all([not p.partial for p in points if p.week_start < monday.isoformat()])
