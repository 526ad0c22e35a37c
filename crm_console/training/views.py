"""Training runs (start, live progress, cancel) and policy versions (OPE, shadow, trials,
promotion).

Thin: the training loop's services (training.services, decisioning.promotion) do the work and
check the permission again; these views check it first so a refused user gets a clean 403.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crm_console.campaigns.models import Campaign
from crm_console.dashboards import figures
from crm_console.dashboards.selectors import policy_action_mix_by_segment, trial_evidence_for
from crm_console.decisioning import trials
from crm_console.decisioning.models import PolicyTrial, PolicyVersion
from crm_console.decisioning.promotion import (
    PromotionRefused,
    guardrail_blind_spot,
    guardrail_check,
    how_it_went_live,
    policy_version_promote,
    policy_version_shadow,
    trial_check,
)
from crm_console.training import selectors, services
from crm_console.training.forms import PromoteForm, TrainingRunForm, TrialForm, TrialStopForm
from crm_console.training.models import TrainingRun
from crm_console.training.tasks import evaluate_policy

START = "training.add_trainingrun"
CANCEL = "training.change_trainingrun"
PROMOTE = "decisioning.promote_policyversion"
FORCE = "decisioning.force_promote_policyversion"
DEFAULT_POPULATION_SIZE = 4
"""Policies a run started from the page trains side by side (one kept): a seed that settles on a
poor policy is outvoted (BENCHMARKS.md, "actor_critic over seeds"). Four takes the wall-clock
time of three on two workers (two rounds of two)."""


def run_list(request: HttpRequest) -> HttpResponse:
    form = TrainingRunForm(initial={"campaign": Campaign.objects.order_by("name").first(),
                                    "budget_steps": 200_000,
                                    "population_size": DEFAULT_POPULATION_SIZE})
    runs = Paginator(selectors.training_run_list(), 25).get_page(request.GET.get("page"))
    return render(request, "training/run_list.html", {"form": form, "page": runs})


@require_POST
@permission_required(START, raise_exception=True)
def run_start(request: HttpRequest) -> HttpResponse:
    form = TrainingRunForm(request.POST)
    if form.is_valid():
        try:
            run = services.training_run_create(created_by=request.user, enqueue=False,
                                               **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            transaction.on_commit(lambda: services.training_run_start(training_run=run))
            messages.success(request, f"Training run #{run.pk} started"
                             + (f" ({run.population_size} policies side by side)."
                                if run.is_population else "."))
            return redirect("training:run-detail", pk=run.pk)
    runs = Paginator(selectors.training_run_list(), 25).get_page(1)
    return render(request, "training/run_list.html", {"form": form, "page": runs})


def _run_context(run: TrainingRun) -> dict:
    progress = selectors.training_run_progress(training_run=run)
    return {"run": run, "progress": progress, "finished": run.is_finished}


def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("campaign", "policy_version"), pk=pk)
    context = _run_context(run)
    curve = run.learning_curve or {}
    if curve.get("steps"):
        baseline = (run.report or {}).get("baseline_return")
        context["curve_chart"] = figures.learning_curve_figure(
            curve["steps"], curve["returns"], baseline=baseline if isinstance(baseline, (int, float)) else None)
    if run.policy_version_id:
        mix = policy_action_mix_by_segment(policy_version=run.policy_version)
        if mix:
            context["segment_chart"] = figures.action_distribution_figure(mix)
    context["convergence"] = _convergence(run)
    context["population"] = selectors.training_population(training_run=run)
    if context["population"]:
        curves = [{"name": f"seed {m['seed']}", "steps": m["curve"].get("steps", []),
                   "returns": m["curve"].get("returns", []), "kept": m["kept"]}
                  for m in context["population"]["members"] if m["curve"].get("steps")]
        if curves:
            baseline = (run.report or {}).get("baseline_return")
            context["population_chart"] = figures.population_curves_figure(
                curves, baseline=baseline if isinstance(baseline, (int, float)) else None)
    return render(request, "training/run_detail.html", context)


def _convergence(run: TrainingRun) -> list[tuple[str, str]]:
    """Whatever convergence facts the training loop reported, in words (shown as a list)."""
    report = run.report or {}
    rows = []
    returns = (run.learning_curve or {}).get("returns") or []
    if len(returns) >= 4:
        tail = returns[-max(2, len(returns) // 5):]
        head = returns[:max(2, len(returns) // 5)]
        rows.append(("Mean return, first fifth → last fifth",
                     f"{sum(head) / len(head):.2f} → {sum(tail) / len(tail):.2f}"))
        spread = max(tail) - min(tail)
        rows.append(("Spread over the last fifth", f"{spread:.2f}"))
    if isinstance(report.get("priced_decisions"), int):
        rows.append(("Priced decisions in the campaign's log",
                     f"{report['priced_decisions']:,} (outcome events attributed at the start: "
                     f"{report.get('outcomes_attributed', 0):,})"))
    discount = report.get("planning_discount")
    if isinstance(discount, dict):
        rows.append(("Daily discount planned with",
                     f"{discount['used']:g}, not the campaign's {discount['campaign']:g}: in a "
                     f"customer model fitted from logs a policy looks about "
                     f"{1 / (1 - discount['used']):.0f} days ahead, because the model's one-day "
                     f"responses are checked against what happened and its months are not"))
    constraint = report.get("retention_constraint")
    if isinstance(constraint, dict):
        price, points = constraint.get("leave_price"), constraint["tolerance"] * 100
        rows.append(("Retention constraint",
                     f"at most {constraint['max_leave_rate']:.3%} of customers lost per "
                     f"customer-day: the control policy's {constraint['control_leave_rate']:.3%} "
                     + ("in the same customer model, plus the campaign's retention guardrail of "
                        f"{points:g} point{'' if points == 1 else 's'} over {constraint['days']} "
                        "days" if constraint.get("campaign_guardrail", True) else
                        "in the same customer model: the campaign sets no retention guardrail, "
                        "and in a model fitted from logs a policy is held to the control's "
                        "customers")
                     + ("" if price is None else
                        f"; a lost customer was priced {price:.2f} (scaled reward) at the end of "
                        "training" + (", so the policy kept within it" if price == 0 else ""))))
    if isinstance(report.get("logged_rows"), int):
        rows.append(("Logged decisions the warm start learned from", f"{report['logged_rows']:,}"))
    for key in ("final_entropy", "entropy", "approx_kl", "policy_change", "epochs", "updates",
                "warm_start", "env_steps", "seconds", "train_seconds"):
        value = report.get(key)
        if isinstance(value, (int, float, str, bool)):
            rows.append((key.replace("_", " ").capitalize(), value if isinstance(value, str)
                         else f"{value:,.4g}" if isinstance(value, float) else str(value)))
    return rows


def run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar fragment htmx polls every second until the run is finished."""
    run = get_object_or_404(TrainingRun, pk=pk)
    response = render(request, "training/_progress.html", _run_context(run))
    if run.is_finished and getattr(request, "htmx", False):
        # the page was opened while the run was going: reload it whole, so it finishes by itself
        # with the result (curve, convergence, segment mix) and without "Cancel run"
        response["HX-Refresh"] = "true"
    return response


@require_POST
@permission_required(CANCEL, raise_exception=True)
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        services.training_run_cancel(training_run=run, cancelled_by=request.user)
    except PermissionDenied:
        raise
    messages.success(request, f"Cancel requested for training run #{run.pk}.")
    return redirect("training:run-detail", pk=run.pk)


# ------------------------------------------------------------------------------ policy versions
def policy_list(request: HttpRequest) -> HttpResponse:
    versions = (PolicyVersion.objects.select_related("campaign", "promoted_by")
                .defer("artifact").order_by("campaign__name", "-version"))
    page = Paginator(versions, 25).get_page(request.GET.get("page"))
    return render(request, "training/policy_list.html", {"page": page})


def _ope_rows(report: dict) -> list[dict]:
    rows = []
    names = {"candidate": "This version", "live": "Live policy", "control": "Control (holdout rules)"}
    for name, methods in (report.get("estimates") or {}).items():
        for method in ("ips", "snips", "dr"):
            est = methods.get(method) if isinstance(methods, dict) else None
            if isinstance(est, dict) and est.get("value") is not None:
                rows.append({"policy": names.get(name, name), "key": name, "method": method,
                             "value": est["value"], "lower": est.get("lower", est["value"]),
                             "upper": est.get("upper", est["value"]),
                             "ess": est.get("effective_sample_size", est.get("ess")),
                             "n": est.get("n"), "warnings": est.get("warnings") or []})
    for key, label in (("holdout_observed", "Holdout (observed)"),
                       ("logging_policy_observed", "Logging policy (observed)")):
        obs = report.get(key)
        if isinstance(obs, dict) and obs.get("value") is not None:
            rows.append({"policy": label, "key": key, "method": "observed", "value": obs["value"],
                         "lower": obs.get("lower", obs["value"]), "upper": obs.get("upper", obs["value"]),
                         "ess": None, "n": obs.get("n"), "warnings": []})
    return rows


def policy_detail(request: HttpRequest, pk: int) -> HttpResponse:

    version = get_object_or_404(PolicyVersion.objects.select_related("campaign", "promoted_by"), pk=pk)
    return render(request, "training/policy_detail.html", _policy_context(request, version))


def _policy_context(request: HttpRequest, version: PolicyVersion, form: PromoteForm | None = None,
                    trial_form: TrialForm | None = None, trial_error: str = "") -> dict:
    report = version.ope_report or {}
    rows = _ope_rows(report)
    context = {
        "version": version, "report": report, "ope_rows": rows,
        "ope_words": selectors.ope_report_in_words(report=report),
        "went_live": how_it_went_live(policy_version=version),
        "guardrail": guardrail_check(policy_version=version),
        "guardrail_blind_spot": guardrail_blind_spot(paired=report.get("paired") or {}),
        "guardrail_margin": settings.GUARDRAIL_MARGIN,
        "guardrail_floor": settings.GUARDRAIL_MIN_EFFECTIVE_SAMPLE,
        "shadow": selectors.policy_version_shadow_agreement(policy_version=version),
        "promote_form": form or PromoteForm(can_force=request.user.has_perm(FORCE)),
        "can_promote": request.user.has_perm(PROMOTE),
        "can_force": request.user.has_perm(FORCE),
        "promotable": version.status in (PolicyVersion.Status.CANDIDATE, PolicyVersion.Status.SHADOW),
        "training_run": TrainingRun.objects.filter(policy_version=version).first(),
        "trial_form": trial_form or TrialForm(),
        "trial_error": trial_error,
        "trial_min_days": settings.TRIAL_MIN_DAYS,
        "trial_min_customers": settings.TRIAL_MIN_CUSTOMERS,
        "trial_tolerance_points": settings.TRIAL_RETENTION_TOLERANCE * 100,
    }
    context["other_trial"] = PolicyTrial.objects.filter(
        campaign_id=version.campaign_id, outcome=PolicyTrial.Outcome.RUNNING,
    ).exclude(candidate=version).select_related("candidate").first()
    trial = version.trials.select_related("campaign", "live", "started_by", "ended_by").first()
    if trial is not None:
        evidence = trial_evidence_for(trial=trial)
        context.update(trial=trial, trial_evidence=evidence,
                       trial_verdict=trial_check(trial=trial, evidence=evidence))
    if rows:
        context["ope_chart"] = figures.ope_figure([r for r in rows])
    mix = policy_action_mix_by_segment(policy_version=version)
    if mix:
        context["segment_chart"] = figures.action_distribution_figure(mix)
    return context


@require_POST
@permission_required(PROMOTE, raise_exception=True)
def policy_promote(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(PolicyVersion, pk=pk)
    can_force = request.user.has_perm(FORCE)
    if request.POST.get("force") and not can_force:
        raise PermissionDenied("Only admins may force a promotion.")
    form = PromoteForm(request.POST, can_force=can_force)
    if form.is_valid():
        try:
            policy_version_promote(policy_version=version, promoted_by=request.user,
                                   reason=form.cleaned_data.get("reason", ""),
                                   force=bool(form.cleaned_data.get("force")))
        except PromotionRefused as refused:
            form.add_error(None, f"Refused by the guardrail: {refused.reason}")
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Version {version.version} is now live.")
            return redirect("training:policy-detail", pk=version.pk)
    return render(request, "training/policy_detail.html", _policy_context(request, version, form))


@require_POST
@permission_required(PROMOTE, raise_exception=True)
def policy_evaluate(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(PolicyVersion, pk=pk)
    user_id = request.user.pk
    transaction.on_commit(lambda: evaluate_policy.delay(version.pk, requested_by_id=user_id))
    messages.success(request, f"Off-policy evaluation of version {version.version} queued.")
    return redirect("training:policy-detail", pk=version.pk)


@require_POST
@permission_required(PROMOTE, raise_exception=True)
def trial_start(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(PolicyVersion.objects.select_related("campaign"), pk=pk)
    form = TrialForm(request.POST)
    if form.is_valid():
        try:
            trial = trials.trial_start(candidate=version, share=form.share,
                                       days=form.cleaned_data["days"], started_by=request.user)
        except ValidationError as error:
            fields = {"share": "share_percent", "days": "days"}
            for field, errors in error.message_dict.items():
                form.add_error(fields.get(field), errors)
        else:
            messages.success(request, f"Version {version.version} now decides for "
                                      f"{trial.share:.1%} of the campaign's customers.")
            return redirect("training:policy-detail", pk=version.pk)
    return render(request, "training/policy_detail.html",
                  _policy_context(request, version, trial_form=form))


@require_POST
@permission_required(PROMOTE, raise_exception=True)
def trial_stop(request: HttpRequest, pk: int) -> HttpResponse:
    trial = get_object_or_404(PolicyTrial, pk=pk)
    form = TrialStopForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("training:policy-detail", pk=trial.candidate_id)
    try:
        trials.trial_stop(trial=trial, stopped_by=request.user,
                          reason=form.cleaned_data["reason"])
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, "The trial is stopped; the live policy decides for everyone.")
    return redirect("training:policy-detail", pk=trial.candidate_id)


@require_POST
@permission_required(PROMOTE, raise_exception=True)
def trial_promote(request: HttpRequest, pk: int) -> HttpResponse:
    trial = get_object_or_404(PolicyTrial.objects.select_related("candidate"), pk=pk)
    try:
        trials.trial_promote(trial=trial, promoted_by=request.user)
    except PromotionRefused as refused:
        return render(request, "training/policy_detail.html", _policy_context(
            request, trial.candidate, trial_error=f"Refused: {refused.reason}."))
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, f"Version {trial.candidate.version} went live through its "
                                  "trial.")
    return redirect("training:policy-detail", pk=trial.candidate_id)


@require_POST
@permission_required(PROMOTE, raise_exception=True)
def policy_shadow(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(PolicyVersion, pk=pk)
    try:
        policy_version_shadow(policy_version=version, changed_by=request.user)
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, f"Version {version.version} now scores live traffic in shadow mode.")
    return redirect("training:policy-detail", pk=version.pk)
