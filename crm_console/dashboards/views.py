"""The landing dashboard (campaign KPIs: policy vs holdout) and the offline Plotly bundle."""

from __future__ import annotations

from functools import cache

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET

from crm_console.campaigns.selectors import campaign_list
from crm_console.dashboards import selectors
from crm_console.dashboards.tasks import DEFAULT_PERIOD_DAYS

PERIODS = ((7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days"), (0, "All history"))


def _int_param(request: HttpRequest, name: str) -> int | None:
    try:
        return int(request.GET.get(name, ""))
    except ValueError:
        return None


def home(request: HttpRequest) -> HttpResponse:
    campaigns = list(campaign_list())
    campaign_id = _int_param(request, "campaign")
    campaign = next((c for c in campaigns if c.pk == campaign_id), None) or selectors.default_campaign()
    days = _int_param(request, "days")
    if days not in {p for p, _ in PERIODS}:
        days = DEFAULT_PERIOD_DAYS
    context = {
        "campaigns": campaigns, "campaign": campaign, "totals": selectors.workspace_totals(),
        "periods": PERIODS, "days": days,
    }
    if campaign is not None:
        dashboard = selectors.campaign_dashboard(campaign=campaign, days=days or None)
        kpis = dashboard.kpis
        live_policy = campaign.policy_versions.filter(status="live").first()
        context.update({
            "kpis": kpis, "live_policy": live_policy,
            "verdict": selectors.campaign_verdict(kpis=kpis, live_policy=live_policy,
                                                  days=days or None),
        })
        if dashboard.charts:  # no data: no charts with empty axes
            context.update({
                "uplift_chart": dashboard.charts["uplift"],
                "trends_chart": dashboard.charts["trends"],
                "partial_week": any(p.partial for p in dashboard.trends),
                "mix_chart": dashboard.charts["mix"],
            })
    return render(request, "dashboards/home.html", context)


@cache
def _plotly_bundle() -> tuple[str, str]:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    return get_plotlyjs(), get_plotlyjs_version()


@require_GET
@gzip_page  # 4.8 MB of JavaScript is about 1.4 MB compressed
@cache_control(max_age=86400, private=True)
def plotly_js(request: HttpRequest) -> HttpResponse:
    """plotly.js from the installed `plotly` package: charts work offline, no CDN, no copy in git."""
    bundle, _ = _plotly_bundle()
    return HttpResponse(bundle, content_type="text/javascript; charset=utf-8")
