"""Compliance pages: review queue, verdicts, audit log (+ CSV export), data-subject requests."""

from __future__ import annotations

import csv


from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET, require_POST

from crm_console.compliance import data_requests, selectors, services
from crm_console.compliance.forms import (
    AuditPeriodForm, CustomerLookupForm, ErasureForm, ReviewForm, ReviewQueueForm,
)
from crm_console.compliance.models import ErasureRecord
from crm_console.customers.models import Customer
from crm_console.decisioning.models import Decision

REVIEW = "compliance.add_decisionreview"
ERASE = "compliance.add_erasurerecord"


@permission_required(REVIEW, raise_exception=True)
def review_queue(request: HttpRequest) -> HttpResponse:
    form = ReviewQueueForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    filters = {"campaign": data["campaign"].pk if data.get("campaign") else None,
               "channel": data.get("channel"), "state": data.get("state") or "unreviewed",
               "risk": data.get("risk"), "order": data.get("order") or "risk"}
    queue = selectors.review_queue(filters=filters)
    if data.get("mode") == "sample":
        queue = selectors.review_sample(queue=queue, size=data.get("sample_size") or 20,
                                        seed=data.get("seed") or 0)
    page = Paginator(queue, 25).get_page(request.GET.get("page"))
    for decision in page:
        decision.risks = selectors.review_risks(decision)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "compliance/review_queue.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "recent": selectors.review_recent(), "review_form": ReviewForm(),
    })


@require_POST
@permission_required(REVIEW, raise_exception=True)
def review_create(request: HttpRequest, pk: int) -> HttpResponse:
    from crm_console.decisioning.views import decision_detail_page, safe_next_url

    decision = get_object_or_404(Decision, pk=pk)
    form = ReviewForm(request.POST)
    next_url = safe_next_url(request, request.POST.get("next", ""))
    if form.is_valid():
        try:
            services.decision_review_create(decision=decision, reviewer=request.user,
                                            **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            verdict = form.cleaned_data["verdict"]
            messages.success(request, f"Decision #{decision.pk} {verdict}.")
            return redirect(next_url or "decisioning:detail", **({} if next_url else {"pk": decision.pk}))
    # the decision stays on screen with the field error (a flag needs its note)
    return decision_detail_page(request, pk=decision.pk, review_form=form, next_url=next_url)


@permission_required(REVIEW, raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditPeriodForm(request.GET) if request.GET.get("start") or request.GET.get("end") \
        else AuditPeriodForm.default()
    entries = selectors.audit_entries()
    if form.is_bound and form.is_valid():
        entries = selectors.audit_entries(start=form.cleaned_data["start"], end=form.cleaned_data["end"])
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "compliance/audit_log.html", {
        "form": form, "page": page, "query": query.urlencode(),
    })


class _Echo:
    """csv.writer target that hands each line back instead of buffering it."""

    def write(self, value: str) -> str:
        return value


@require_GET
@permission_required(REVIEW, raise_exception=True)
def audit_export(request: HttpRequest) -> HttpResponse:
    form = AuditPeriodForm(request.GET)
    if not form.is_valid():
        return render(request, "compliance/audit_log.html", {
            "form": form, "page": None, "query": ""})
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    services.audit_log_exported(start=start, end=end, exported_by=request.user)
    writer = csv.writer(_Echo())
    rows = selectors.audit_csv_rows(start=start, end=end)
    response = StreamingHttpResponse((writer.writerow(row) for row in rows),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{start}-to-{end}.csv"'
    return response


@permission_required(ERASE, raise_exception=True)
def subject_requests(request: HttpRequest) -> HttpResponse:
    form = CustomerLookupForm(request.GET or None)
    found = []
    if form.is_bound and form.is_valid():
        q = form.cleaned_data["q"].strip().lstrip("#")
        condition = Q(external_id=q) | Q(email__iexact=q)
        if q.isdigit():
            condition |= Q(pk=int(q))
        found = list(Customer.objects.filter(condition)[:20])
    return render(request, "compliance/subject_requests.html", {
        "form": form, "found": found,
        "erasures": ErasureRecord.objects.select_related("requested_by").order_by("-erased_at")[:20],
    })


@require_GET
@permission_required(ERASE, raise_exception=True)
def customer_export(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    data = data_requests.customer_data_export(customer=customer, requested_by=request.user)
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
    return response


@permission_required(ERASE, raise_exception=True)
def customer_erase(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    form = ErasureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            erasure = data_requests.customer_erase(customer=customer, requested_by=request.user,
                                              reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Customer #{customer.pk} erased: "
                                      f"{erasure_summary(erasure.counts)}. The erasure is recorded "
                                      "in the audit log with these counts.")
            return redirect("compliance:subject-requests")
    return render(request, "compliance/customer_erase.html", {
        "form": form, "customer": customer,
        "counts": selectors.customer_erasure_counts(customer=customer),
    })


def erasure_summary(counts: selectors.ErasureCounts) -> str:
    """The counts in words, as the audit entry holds them."""
    def n(count: int, noun: str) -> str:
        return f"{count} {noun}{pluralize(count)}"

    return (f"{n(counts.events, 'event')} rewritten, {n(counts.decisions, 'decision')} anonymised, "
            f"{n(counts.explanations, 'explanation')} deleted, "
            f"{n(counts.review_notes, 'reviewer note')} cleared, "
            f"{n(counts.scheduled_contacts, 'scheduled contact')} released, "
            f"{n(counts.stored_answers, 'stored API answer')} cleaned")


