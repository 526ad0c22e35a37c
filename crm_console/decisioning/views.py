"""Decision explorer and decision detail (chosen action, odds, masks and their rules, SHAP)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from crm_console.compliance.forms import ReviewForm
from crm_console.dashboards import figures
from crm_console.decisioning import selectors
from crm_console.decisioning.forms import DecisionFilterForm
from crm_console.decisioning.models import Decision

PAGE_SIZE = 50


def decision_list(request: HttpRequest) -> HttpResponse:
    form = DecisionFilterForm(request.GET or None)
    decisions = selectors.decision_list(filters=form.selector_filters() if form.is_bound else {})
    page = Paginator(decisions, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "decisioning/decision_list.html", {
        "form": form, "page": page, "query": query.urlencode(),
    })


def decision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    decision = get_object_or_404(
        Decision.objects.select_related("campaign__contact_policy", "customer", "action",
                                        "policy_version"), pk=pk)
    detail = selectors.decision_detail(decision=decision)
    explanation = detail.explanation
    chart = None
    if explanation.shap_values:
        chart = figures.shap_figure(explanation.contributions(), base_value=explanation.base_value,
                                    score=explanation.score)
    return render(request, "decisioning/decision_detail.html", {
        "decision": decision, "detail": detail, "explanation": explanation, "shap_chart": chart,
        "top_actions": sorted((a for a in detail.actions if a.probability > 0),
                              key=lambda a: -a.probability)[:8],
        "reviews": decision.reviews.select_related("reviewer"),
        "review_form": ReviewForm(),
    })
