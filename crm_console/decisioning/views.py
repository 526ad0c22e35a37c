"""Decision explorer and decision detail (chosen action, odds, masks and their rules, SHAP)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme

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
    return decision_detail_page(request, pk=pk, next_url=safe_next_url(request,
                                                                       request.GET.get("next", "")))


def safe_next_url(request: HttpRequest, next_url: str) -> str:
    """`next_url` when it stays on this site (where a verdict returns to), else ""."""
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                                    require_https=request.is_secure()):
        return next_url
    return ""


def decision_detail_page(request: HttpRequest, *, pk: int, review_form: ReviewForm | None = None,
                         next_url: str = "") -> HttpResponse:
    """The decision page; a refused verdict comes back here with its field errors, so the
    reviewer keeps the decision in front of them."""
    decision = get_object_or_404(
        Decision.objects.select_related("campaign__contact_policy", "customer", "action",
                                        "policy_version"), pk=pk)
    detail = selectors.decision_detail(decision=decision)
    explanation = detail.explanation
    chart = None
    if explanation.shap_values:
        chart = figures.shap_figure(explanation.contributions(detail.values_in_words()),
                                    base_value=explanation.base_value,
                                    score=explanation.score)
    return render(request, "decisioning/decision_detail.html", {
        "decision": decision, "detail": detail, "explanation": explanation, "shap_chart": chart,
        "top_actions": sorted((a for a in detail.actions if a.probability > 0),
                              key=lambda a: -a.probability)[:8],
        "reviews": decision.reviews.select_related("reviewer"),
        "review_form": review_form or ReviewForm(), "next_url": next_url,
    })
