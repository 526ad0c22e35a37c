"""Decision explorer and decision detail (chosen action, odds, masks and their rules, SHAP)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm_console.accounts.roles import ADMIN, has_role
from crm_console.compliance.forms import ReviewForm
from crm_console.dashboards import figures
from crm_console.decisioning import selectors
from crm_console.decisioning.batch_runs import batch_run_resume as resume
from crm_console.decisioning.batch_runs import batch_run_start as start
from crm_console.decisioning.forms import BatchRunStartForm, DecisionFilterForm, HistoryImportForm
from crm_console.decisioning.history_import import (
    HistoryImportError,
    campaign_for_import,
    history_import_start,
)
from crm_console.decisioning.models import BatchRun, Decision, HistoryImport
from crm_console.decisioning.services import DecisionError

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


# ------------------------------------------------------------------------------ history import
def _admin_only(request: HttpRequest) -> None:
    if not has_role(request.user, ADMIN):
        raise PermissionDenied("Only admins import history.")


def history_import_page(request: HttpRequest) -> HttpResponse:
    """Upload a campaign's history files (admins); lists the latest imports."""
    _admin_only(request)
    form = HistoryImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            started = history_import_start(
                campaign=campaign_for_import(campaign_id=form.cleaned_data["campaign"].pk),
                events_file=form.cleaned_data["events"],
                contacts_file=form.cleaned_data.get("contacts"), uploaded_by=request.user)
        except HistoryImportError as error:
            form.add_error("campaign", str(error))
        else:
            return redirect("decisioning:history-import-detail", pk=started.pk)
    recent = HistoryImport.objects.select_related("campaign", "uploaded_by")[:20]
    return render(request, "decisioning/history_import.html", {"form": form, "recent": recent})


def history_import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _admin_only(request)
    record = get_object_or_404(HistoryImport.objects.select_related("campaign"), pk=pk)
    return render(request, "decisioning/history_import_detail.html", {"record": record})


def history_import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment htmx polls every second until the import is finished."""
    _admin_only(request)
    record = get_object_or_404(HistoryImport, pk=pk)
    response = render(request, "decisioning/_history_import_progress.html", {"record": record})
    if record.is_finished and getattr(request, "htmx", False):
        response["HX-Refresh"] = "true"  # reload whole: the report appears
    return response


# ------------------------------------------------------------------------------ batch runs
RESUME = "decisioning.change_batchrun"
START = "decisioning.add_batchrun"
"""Marketers and admins start runs (migration 0006 grants them); reviewers only read them."""


def batch_run_list(request: HttpRequest) -> HttpResponse:
    runs = Paginator(selectors.batch_run_list(), 25).get_page(request.GET.get("page"))
    return render(request, "decisioning/batch_run_list.html", {
        "page": runs, "can_start": request.user.has_perm(START)})


@permission_required(START, raise_exception=True)
def batch_run_start_page(request: HttpRequest) -> HttpResponse:
    """Start a batch run from the console (what `manage.py run_campaign` does), handed to the
    workspace's adapter (settings.DECISION_ADAPTER, else the JSON-lines file); once per day, a
    second start joins today's run. The run's page then shows its progress (on the embedded
    default the chunks run inline, so it opens on the finished run)."""
    form = BatchRunStartForm(request.POST or None,
                             initial={"campaign": request.GET.get("campaign")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run, created = start(campaign=data["campaign"], segment=form.segment(),
                                 chunk_size=data["chunk_size"], explain=data["explain"],
                                 once_per_day=data["once_per_day"], started_by=request.user)
        except DecisionError as error:  # e.g. a live campaign with no policy to serve
            for reasons in error.fields.values():
                for reason in reasons if isinstance(reasons, list) else [reasons]:
                    form.add_error("campaign", str(reason))
        else:
            if created and run.status == BatchRun.Status.FINISHED_WITH_ERRORS and not run.totals.get(
                    "decisions"):
                messages.error(request, f"Batch run #{run.pk} is saved but nothing was decided: "
                                        f"{run.errors[0]['error'] if run.errors else ''}")
            elif created:
                messages.success(request, f"Batch run #{run.pk} started: {run.customers:,} "
                                          f"customers in {run.chunks_total:,} chunks.")
            else:
                messages.info(request, f"{run.campaign.name} already had a batch run today "
                                       f"(#{run.pk}): you joined it, nothing new was started.")
            return redirect("decisioning:batch-run-detail", pk=run.pk)
    return render(request, "decisioning/batch_run_start.html", {"form": form})


def _batch_run_context(run: BatchRun) -> dict:
    return {"run": run, "progress": selectors.batch_run_progress(run=run)}


def batch_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A batch run: its progress while chunks are being decided, its figures and failed chunks
    (with a resume for those who may) once finished."""
    run = get_object_or_404(BatchRun.objects.select_related("campaign", "started_by"), pk=pk)
    return render(request, "decisioning/batch_run_detail.html", {
        **_batch_run_context(run), "can_resume": request.user.has_perm(RESUME)})


def batch_run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment htmx polls every two seconds until the run is finished."""
    run = get_object_or_404(BatchRun, pk=pk)
    response = render(request, "decisioning/_batch_run_progress.html", _batch_run_context(run))
    if run.is_finished and getattr(request, "htmx", False):
        response["HX-Refresh"] = "true"  # reload whole: the figures appear
    return response


@require_POST
@permission_required(RESUME, raise_exception=True)
def batch_run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(BatchRun, pk=pk)
    queued = resume(run=run, resumed_by=request.user)
    run.refresh_from_db()
    if queued:
        messages.success(request, f"Batch run #{run.pk}: {queued} unfinished chunks queued again.")
    elif run.status == BatchRun.Status.FINISHED_WITH_ERRORS:
        messages.error(request, f"Batch run #{run.pk}: the task queue could not be reached; "
                                f"nothing was queued. Resume it once the queue is back.")
    else:
        messages.info(request, f"Batch run #{run.pk} has nothing left to resume.")
    return redirect("decisioning:batch-run-detail", pk=run.pk)
