"""A campaign's customer-response model page: fit it, see how well it predicts what really
happened (calibration), override a flagged one. Thin: training.response_models does the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crm_console.campaigns.models import Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.celery import task_start
from crm_console.dashboards import figures
from crm_console.training import response_models, selectors
from crm_console.training.forms import ResponseModelOverrideForm, WhatIfForm
from crm_console.training.models import CustomerResponseModel, WhatIfScenario
from crm_console.training.tasks import fit_response_model, run_what_if
from crm_console.training.what_if import REWARD_FIELDS, what_if_create

FIT = "training.add_customerresponsemodel"
OVERRIDE = "training.change_customerresponsemodel"
WHAT_IF = "training.add_whatifscenario"


def _what_if_form(campaign: Campaign, data=None) -> WhatIfForm:
    words = vocabulary()
    channels = [(c.key, c.label) for c in words.channels]
    return WhatIfForm(data, campaign=campaign, reward_fields=REWARD_FIELDS, channels=channels)


def _context(request: HttpRequest, campaign: Campaign,
             override_form: ResponseModelOverrideForm | None = None,
             what_if_form: WhatIfForm | None = None) -> dict:
    history = list(selectors.response_model_list(campaign=campaign)[:10])
    latest = history[0] if history else None
    shown = selectors.response_model_latest_fitted(campaign=campaign)
    context = {"campaign": campaign, "latest": latest, "model": shown, "history": history,
               "can_fit": request.user.has_perm(FIT),
               "can_override": request.user.has_perm(OVERRIDE),
               "override_form": override_form or ResponseModelOverrideForm(),
               "fitting": latest is not None
               and latest.status == CustomerResponseModel.Status.FITTING,
               "what_if_form": what_if_form or _what_if_form(campaign),
               "what_ifs": selectors.what_if_list(campaign=campaign)[:20]}
    if shown is not None:
        context["validation"] = selectors.response_model_validation_in_words(response_model=shown)
        points = selectors.response_model_calibration_points(response_model=shown)
        if points:
            context["calibration_chart"] = figures.calibration_figure(points)
    return context


def model_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    return render(request, "training/customer_model.html", _context(request, campaign))


@require_POST
@permission_required(FIT, raise_exception=True)
def model_fit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    model = response_models.response_model_create(campaign=campaign, created_by=request.user)
    model_id = model.pk
    transaction.on_commit(lambda: task_start(fit_response_model, model_id))
    messages.success(request, "Fitting the customer-response model from the campaign's logs.")
    return redirect("customer-model:page", campaign_id=campaign.pk)


def model_progress(request: HttpRequest, campaign_id: int, pk: int) -> HttpResponse:
    """The fragment htmx polls while the model is fitting; the page reloads when it is done."""
    model = get_object_or_404(CustomerResponseModel, pk=pk, campaign_id=campaign_id)
    response = render(request, "training/_customer_model_progress.html", {"latest": model})
    if model.status != CustomerResponseModel.Status.FITTING and getattr(request, "htmx", False):
        response["HX-Refresh"] = "true"
    return response


@require_POST
@permission_required(OVERRIDE, raise_exception=True)
def model_override(request: HttpRequest, campaign_id: int, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    model = get_object_or_404(CustomerResponseModel, pk=pk, campaign=campaign)
    form = ResponseModelOverrideForm(request.POST)
    if form.is_valid():
        try:
            response_models.response_model_override(
                response_model=model, user=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
        else:
            messages.success(request, f"Policies may now train in model #{model.pk}; your reason "
                                      "is in the audit trail.")
            return redirect("customer-model:page", campaign_id=campaign.pk)
    return render(request, "training/customer_model.html", _context(request, campaign, form),
                  status=400)


@require_POST
@permission_required(WHAT_IF, raise_exception=True)
def what_if_start(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = _what_if_form(campaign, request.POST)
    if form.is_valid():
        try:
            scenario = what_if_create(campaign=campaign, name=form.cleaned_data["name"],
                                      changes=form.changes,
                                      retrain=form.cleaned_data["retrain"],
                                      created_by=request.user)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                target = field if field in form.fields else None
                for problem in problems:
                    form.add_error(target, problem)
        else:
            scenario_id = scenario.pk
            transaction.on_commit(lambda: task_start(run_what_if, scenario_id))
            return redirect("customer-model:what-if", campaign_id=campaign.pk, pk=scenario.pk)
    return render(request, "training/customer_model.html",
                  _context(request, campaign, what_if_form=form), status=400)


def what_if_detail(request: HttpRequest, campaign_id: int, pk: int) -> HttpResponse:
    scenario = get_object_or_404(WhatIfScenario.objects.select_related("campaign"), pk=pk,
                                 campaign_id=campaign_id)
    template = ("training/_what_if_result.html" if getattr(request, "htmx", False)
                else "training/what_if.html")
    response = render(request, template, {
        "campaign": scenario.campaign, "scenario": scenario,
        "changes": selectors.what_if_changes_in_words(what_if=scenario)})
    if getattr(request, "htmx", False) and scenario.status in (
            WhatIfScenario.Status.SUCCEEDED, WhatIfScenario.Status.FAILED):
        response["HX-Refresh"] = "true"
    return response
