"""Reads for training: runs, their curves, shadow agreement, campaign segments."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from agents import population
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers.models import Customer
from crm_console.dashboards.templatetags.console_format import percent
from crm_console.decisioning.models import Decision, PolicyVersion
from crm_console.training.models import CustomerResponseModel, TrainingRun, WhatIfScenario


def training_run_list(*, campaign: Campaign | None = None) -> QuerySet[TrainingRun]:
    """The runs people started (a population's members are shown on its own page)."""
    runs = TrainingRun.objects.select_related("campaign", "policy_version").filter(
        population_of__isnull=True)
    return runs.filter(campaign=campaign) if campaign is not None else runs


HEARTBEAT_STALE_SECONDS = 120.0
"""A running run whose progress was not saved for this long has lost its worker."""


def training_run_silent_seconds(*, training_run: TrainingRun) -> float:
    """Seconds since the run last saved its progress (or started, or was queued)."""
    beat = (training_run.report or {}).get("heartbeat_at")
    if not beat:
        reference = training_run.started_at or training_run.created_at
        return (timezone.now() - reference).total_seconds()
    return time.time() - float(beat)


def training_run_progress(*, training_run: TrainingRun) -> dict[str, Any]:
    """What the console's progress bar polls (fresh from the database)."""
    run = TrainingRun.objects.get(pk=training_run.pk)
    if run.is_population and not run.is_finished:
        return _population_progress(run)
    silent = training_run_silent_seconds(training_run=run) if not run.is_finished else 0.0
    return {
        "stale": not run.is_finished and silent >= HEARTBEAT_STALE_SECONDS,
        "silent_minutes": silent / 60.0,
        "id": run.pk, "status": run.status, "progress": run.progress,
        "percent": round(100 * run.progress, 1), "current_return": run.current_return,
        "eta_seconds": run.eta_seconds, "learning_curve": run.learning_curve or {},
        "error": run.error, "policy_version_id": run.policy_version_id,
        "cancel_requested": run.cancel_requested,
        "phase": (run.report or {}).get("phase") if not run.is_finished else None,
    }


def _population_progress(run: TrainingRun) -> dict[str, Any]:
    """A population's bar: its members' mean progress; time left: the slowest member's."""
    members = list(run.members.order_by("pk"))
    running = [m for m in members if not m.is_finished]
    done = len(members) - len(running)
    silent = min((training_run_silent_seconds(training_run=m) for m in running), default=0.0)
    progress = sum(1.0 if m.is_finished else m.progress for m in members) / max(1, len(members))
    etas = [m.eta_seconds for m in running if m.eta_seconds is not None]
    returns = [m.current_return for m in members if m.current_return is not None]
    phase = (f"Training {len(members)} policies side by side ({done} finished)" if running
             else "Choosing the policy with the highest return on held-out customers")
    return {
        "stale": bool(running) and silent >= HEARTBEAT_STALE_SECONDS,
        "silent_minutes": silent / 60.0,
        "id": run.pk, "status": run.status, "progress": progress,
        "percent": round(100 * progress, 1), "current_return": max(returns) if returns else None,
        "eta_seconds": max(etas) if len(etas) == len(running) and etas else None,
        "learning_curve": {}, "error": run.error, "policy_version_id": run.policy_version_id,
        "cancel_requested": run.cancel_requested, "phase": phase,
    }


def training_population(*, training_run: TrainingRun) -> dict[str, Any] | None:
    """A population run's members for its page: seed, status, held-out return and retention,
    curve, kept - the control policy's retention on the same customers, the retention guardrail
    the choice used, and why the kept one was kept, in words (None for a run of one policy)."""
    if not training_run.is_population:
        return None
    report = training_run.report or {}
    kept_id = report.get("kept_member")
    control_retention = (report.get("control_held_out") or {}).get("retention")
    tolerance = report.get("retention_guardrail") if kept_id else \
        training_run.campaign.retention_tolerance
    members = []
    for member in training_run.members.order_by("pk"):
        held_out = (member.report or {}).get("held_out") or {}
        members.append({
            "id": member.pk, "seed": member.seed, "status": member.status,
            "progress": member.progress, "error": member.error.splitlines()[0] if member.error else "",
            "held_out": held_out.get("value"), "ci_low": held_out.get("ci_low"),
            "ci_high": held_out.get("ci_high"), "retention": held_out.get("retention"),
            "within_guardrail": population.within_retention_guardrail(
                held_out.get("retention"), control_retention, tolerance),
            "train_seconds": ((member.report or {}).get("fit") or {}).get("wall_seconds"),
            "curve": member.learning_curve or {}, "kept": member.pk == kept_id,
        })
    guardrail_points = None if tolerance is None else round(tolerance * 100, 1)
    return {"members": members,
            "why": _population_choice_in_words(members, control_retention, guardrail_points),
            "held_out_customers": population.SELECTION_CUSTOMERS,
            "control_retention": control_retention, "guardrail_points": guardrail_points}


def _population_choice_in_words(members: list[dict[str, Any]], control_retention: float | None,
                                guardrail_points: float | None) -> str:
    kept = next((m for m in members if m["kept"]), None)
    scored = [m for m in members if m["held_out"] is not None]
    points = None if guardrail_points is None else \
        f"{guardrail_points:g} point" + ("" if guardrail_points == 1 else "s")
    if kept is None:
        return ("The policy is chosen when every member has finished: the one with the highest "
                f"mean return on {population.SELECTION_CUSTOMERS:,} simulated customers none of "
                "them trained on"
                + (f", among those that keep retention within {points} of the control policy's "
                   "on the same customers" if points else "") + ".")
    others = [m for m in scored if m is not kept]
    versus = ", ".join(f"{m['held_out']:.2f} (seed {m['seed']})" for m in others) or "no other member"
    unfinished = len(members) - len(scored)
    guard = ""
    if points and control_retention is not None and kept["retention"] is not None:
        if kept["within_guardrail"]:
            dropped = [m for m in others if m["within_guardrail"] is False]
            guard = (f" among the members that keep retention within {points} of the control "
                     f"policy's ({percent(control_retention)})"
                     + (": " + ", ".join(f"seed {m['seed']} retained {percent(m['retention'])}"
                                         for m in dropped)
                        + (" and was" if len(dropped) == 1 else "; they were") + " not eligible"
                        if dropped else ""))
        else:
            guard = (f" - no member kept retention within {points} of the control policy's "
                     f"({percent(control_retention)}); this one retained "
                     f"{percent(kept['retention'])}")
    return (f"Kept seed {kept['seed']}: the highest mean return per customer on "
            f"{population.SELECTION_CUSTOMERS:,} simulated customers none of the members trained "
            f"on, {kept['held_out']:.2f} against {versus}{guard}"
            + (f"; {unfinished} member(s) did not finish" if unfinished else "")
            + ". Its KPIs below are measured on another cohort, not the one it was chosen on.")


def policy_version_shadow_agreement(*, policy_version: PolicyVersion,
                                    limit: int = 50_000) -> dict[str, Any]:
    """How often the shadow version would have chosen what the live policy chose.

    Read from decision.context["shadow"], which the live decision service
    (decisioning.services.decisions_create) writes while a version is in shadow mode:
    {"version": <version number>, "action_index": <its greedy choice>, "agrees": bool}. Holdout
    decisions are left out (the control policy decided them, not the live one).
    """
    rows = (Decision.objects.filter(campaign_id=policy_version.campaign_id, holdout=False,
                                    context__has_key="shadow")
            .order_by("-decided_at").values_list("action_index", "context")[:limit])
    n = agreed = 0
    for action_index, context in rows:
        shadow = context.get("shadow") or {}
        if shadow.get("version") != policy_version.version or shadow.get("action_index") is None:
            continue
        n += 1
        agreed += int(int(shadow["action_index"]) == int(action_index))
    return {"policy_version_id": policy_version.pk, "decisions": n, "agreed": agreed,
            "agreement_rate": agreed / n if n else None}


SEGMENT_KEYS = ("traits", "time_zone", "external_ids", "customer_ids", "exclude_churned")


def customer_segment(*, filters: dict[str, Any] | None = None) -> QuerySet[Customer]:
    """Customers of a batch run: {"traits": {...}, "time_zone": "...", "external_ids": [...],
    "customer_ids": [...], "exclude_churned": true (default)}."""
    filters = dict(filters or {})
    unknown = set(filters) - set(SEGMENT_KEYS)
    if unknown:
        raise ValueError(f"unknown segment filters {sorted(unknown)}; use {', '.join(SEGMENT_KEYS)}")
    customers = Customer.objects.filter(erased_at__isnull=True)  # erased customers get no decisions
    for key, value in (filters.get("traits") or {}).items():  # key lookups work on SQLite too
        customers = customers.filter(**{f"traits__{key}": value})
    if filters.get("time_zone"):
        customers = customers.filter(time_zone=filters["time_zone"])
    if filters.get("external_ids") is not None:
        customers = customers.filter(external_id__in=filters["external_ids"])
    if filters.get("customer_ids") is not None:
        customers = customers.filter(pk__in=filters["customer_ids"])
    if filters.get("exclude_churned", True):
        # (a plain exclude() on a JSON key also drops rows without the key on SQLite)
        churned = Customer.objects.filter(traits__churned=True).values("pk")
        customers = customers.exclude(pk__in=churned)
    return customers.order_by("pk")


# ------------------------------------------------------------------------------ OPE in words
OPE_POLICY_NAMES = {"candidate": "this version", "live": "the live policy",
                    "control": "the control rules (the holdout's)"}
LOW_ESS_SHARE = 0.1
"""An effective sample size under this share of the rows: the estimate rests on few decisions."""


def _estimate(report: dict, name: str, method: str) -> dict | None:
    estimates = report.get("estimates")
    methods = estimates.get(name) if isinstance(estimates, dict) else None
    est = methods.get(method) if isinstance(methods, dict) else None
    return est if isinstance(est, dict) and est.get("value") is not None else None


def _interval(est: dict) -> str:
    return f"95 % CI {est.get('lower', est['value']):.4f} to {est.get('upper', est['value']):.4f}"


def ope_report_in_words(*, report: dict) -> list[str]:
    """The off-policy evaluation table read out as plain sentences (empty when not evaluated)."""
    candidate = _estimate(report, "candidate", "dr")
    if candidate is None:
        return []
    sentences = []
    baseline_name = (report.get("guardrail") or {}).get("baseline") or (
        "live" if _estimate(report, "live", "dr") else "control")
    baseline = _estimate(report, baseline_name, "dr")
    ips, snips = _estimate(report, "candidate", "ips"), _estimate(report, "candidate", "snips")
    # n and the ESS belong to the importance weights, the same for every estimator of the version
    readings = [est for est in (candidate, ips, snips) if est]
    n = next((est["n"] for est in readings if est.get("n")), None) or (
        report.get("logged") or {}).get("exploring_rows")
    ess = next((est.get("effective_sample_size", est.get("ess")) for est in readings
                if est.get("effective_sample_size", est.get("ess")) is not None), None)
    on_rows = f"On {n:,} logged decisions outside the holdout, " if n else "On the logged decisions, "
    versus = (f", against {baseline['value']:.4f} for {OPE_POLICY_NAMES.get(baseline_name, baseline_name)}"
              if baseline else "")
    sentences.append(f"{on_rows}this version is estimated to earn {candidate['value']:.4f} reward "
                     f"per decision ({_interval(candidate)}){versus}.")
    if ips and snips:
        sentences.append(
            f"IPS ({ips['value']:.4f}) and SNIPS ({snips['value']:.4f}) reweight each logged "
            f"reward by how much more or less often this version would have made that choice "
            f"(SNIPS normalises the weights, so it is steadier); DR ({candidate['value']:.4f}) "
            f"also uses a model of the reward and is the steadiest, so the guardrail reads DR.")
    if ess is not None and n:
        low = ess < LOW_ESS_SHARE * n
        sentences.append(
            f"The effective sample size (ESS) is {ess:,.0f} of {n:,}: the estimate carries as much "
            f"evidence as about {ess:,.0f} decisions this version would have made itself"
            + (" - few, because it often chooses what the logging policy rarely tried, so read "
               "the interval rather than the point." if low else "."))
    estimated = (report.get("logged") or {}).get("estimated_propensities") or 0
    if estimated and n:
        sentences.append(
            f"{estimated:,} of {n:,} propensities were estimated from a model of the old system's "
            f"choices (imported history that did not log them), not logged: on those rows the "
            f"reweighting is only as right as that model, so read the interval with care.")
    observed, control = report.get("holdout_observed"), _estimate(report, "control", "dr")
    if isinstance(observed, dict) and observed.get("value") is not None and control:
        apart = (observed.get("lower", observed["value"]) > control["upper"]
                 or observed.get("upper", observed["value"]) < control["lower"])
        sentences.append(
            f"The holdout's customers actually earned {observed['value']:.4f} per decision "
            f"(observed); the control row ({control['value']:.4f}) estimates the same rules on the "
            f"policy group's logged decisions. " + (
                "They differ by more than their intervals allow: they are read on different "
                "customers, and DR's reward model is fitted on the policy group's choices, so it "
                "guesses where the rules choose what the policy group rarely received."
                if apart else "They agree within their intervals."))
    return sentences


def response_model_list(*, campaign: Campaign) -> QuerySet[CustomerResponseModel]:
    return CustomerResponseModel.objects.filter(campaign=campaign).defer("artifact")


def response_model_latest_fitted(*, campaign: Campaign) -> CustomerResponseModel | None:
    return (CustomerResponseModel.objects.filter(
        campaign=campaign, status=CustomerResponseModel.Status.READY)
        .order_by("-fitted_at", "-id").first())


class ResponseModelNotTrainable(ValueError):
    """The campaign's fitted model may not be trained in; the message says why and what to do."""


def response_model_for_training(*, campaign: Campaign,
                                action_ids: tuple[int, ...]) -> tuple[CustomerResponseModel | None, str]:
    """The fitted model a new policy trains in, or None with why not; a model that may not be
    trained in (flagged by its validation, or fitted on another catalogue) is refused in words."""
    model = response_model_latest_fitted(campaign=campaign)
    if model is None:
        return None, ("the campaign has no fitted customer-response model yet, so it trains in "
                      "the built-in retail simulator")
    if tuple(model.action_ids) != tuple(action_ids):
        raise ResponseModelNotTrainable(f"The customer-response model #{model.pk} was fitted on another "
                         "catalogue (actions were added, removed or reordered since): fit it "
                         "again from the campaign's page before training.")
    if not model.trainable:
        worst = (model.validation or {}).get("worst_miss") or {}
        raise ResponseModelNotTrainable(f"The customer-response model #{model.pk} misses the observed KPIs "
                         f"on its held-out days ({_miss_in_words(worst)}): fit it again or "
                         "override it with a reason on its page before training in it.")
    return model, ""


def _miss_in_words(worst: dict[str, Any]) -> str:
    if not worst:
        return "beyond its tolerance"
    kpi = str(worst.get("kpi") or "")
    name = f"{KPI_WORDS[kpi].lower()} per decision" if kpi in KPI_WORDS else (kpi or "a KPI")
    miss = worst.get("relative_miss")
    return f"{name} off by {100 * float(miss):.0f}%" if isinstance(miss, (int, float)) else name


KPI_WORDS = {
    "open_rate": "Opens", "click_rate": "Clicks", "conversion_rate": "Orders",
    "revenue_per_decision": "Net revenue", "unsubscribe_rate": "Unsubscribes",
    "churn_rate": "Churn",
}
"""The validation's KPIs (agents.response_model.validate), as the page names them: each is a
count (or revenue) per logged decision."""
_BREAKDOWNS = (("by_channel", "By channel", "Channel"), ("by_offer", "By offer", "Offer"),
               ("by_send_window", "By send window", "Send window"))
CALIBRATED_KPIS = ("open_rate", "click_rate", "conversion_rate", "unsubscribe_rate")


def _kpi_value(kpi: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}" if kpi == "revenue_per_decision" else f"{100 * value:.2f} %"


def _group_label(breakdown: str, key: str) -> str:
    if key == "no_contact":
        return "No contact"
    words = vocabulary()
    try:
        return {"by_channel": words.channel_label, "by_offer": words.offer_label,
                "by_send_window": words.window_label}[breakdown](key)
    except (KeyError, ValueError):
        return key


_LEVEL_WORDS = {"unsubscribe": "unsubscribes", "churn": "churn"}
LEVEL_SHOWN = 0.02
"""A rate moved less than this by the recent days' level is left out of the sentence."""


def _recent_levels_in_words(recent_levels: dict[str, Any] | None) -> str:
    """How the fit brought the model's rates to its last days (agents.response_model's
    ``recent_levels``), biggest change first; "" for a model fitted without it."""
    if not recent_levels or not recent_levels.get("factors"):
        return ""
    days = recent_levels.get("days")
    changes = sorted(((factor - 1.0, _LEVEL_WORDS.get(rate, rate))
                      for rate, factor in recent_levels["factors"].items()),
                     key=lambda change: -abs(change[0]))
    shown = [f"{name} {100 * abs(change):.0f} % {'higher' if change > 0 else 'lower'}"
             for change, name in changes if abs(change) >= LEVEL_SHOWN]
    where = f"the last {days} days it was fitted on" if days else "its most recent fitted days"
    if not shown:
        return (f"Its churn and unsubscribe rates match those of {where} (every change under "
                f"{100 * LEVEL_SHOWN:.0f} %).")
    return (f"Its churn and unsubscribe rates were brought to those of {where}, since the "
            f"customers still here do not leave at the history's average rate: "
            f"{', '.join(shown)}.")


def response_model_validation_in_words(*, response_model: CustomerResponseModel) -> dict[str, Any]:
    """The model's held-out check as the page shows it: a verdict, the totals, the breakdowns."""
    validation = response_model.validation or {}
    totals = []
    for kpi, row in (validation.get("totals") or {}).items():
        miss = row.get("relative_miss")
        totals.append({
            "kpi": f"{KPI_WORDS.get(kpi, kpi)} per decision",
            "observed": _kpi_value(kpi, row.get("observed")),
            "interval": f"{_kpi_value(kpi, row.get('ci_low'))} to {_kpi_value(kpi, row.get('ci_high'))}",
            "predicted": _kpi_value(kpi, row.get("predicted")),
            "miss": "—" if miss is None else f"{100 * miss:.1f} %",
            "flagged": bool(row.get("enough_support")) and not row.get("within_tolerance"),
            "thin_events": None if row.get("enough_support") else row.get("events", 0),
        })
    breakdowns = []
    for name, title, group_label in _BREAKDOWNS:
        groups = validation.get(name) or {}
        if not groups:
            continue
        kpis = [k for k in KPI_WORDS if k != "churn_rate"]
        rows = []
        for key, kpi_rows in groups.items():
            decisions = max((r.get("rows", 0) for r in kpi_rows.values()), default=0)
            rows.append({"name": _group_label(name, key), "decisions": decisions,
                         "cells": [f"{_kpi_value(k, kpi_rows[k]['observed'])} / "
                                   f"{_kpi_value(k, kpi_rows[k]['predicted'])}"
                                   for k in kpis if k in kpi_rows]})
        breakdowns.append({"title": title, "group_label": group_label, "rows": rows,
                           "kpis": [KPI_WORDS[k] for k in kpis]})
    days, n = response_model.held_out_days, validation.get("rows", response_model.held_out_rows)
    worst = validation.get("worst_miss") or {}
    if response_model.within_tolerance:
        verdict = (f"On the {n:,} decisions of the last {days} days, which it did not see, the "
                   "model's predicted opens, clicks, orders, revenue, unsubscribes and churn are "
                   f"within {100 * response_model.tolerance:.0f} % of what happened (or inside "
                   "the observed interval). Policies train in it.")
    else:
        verdict = (f"On the {n:,} decisions of the last {days} days the model misses what "
                   f"happened: {_miss_in_words(worst)}, beyond the "
                   f"{100 * response_model.tolerance:.0f} % tolerance. "
                   + ("Policies train in it anyway: " + response_model.override_reason
                      if response_model.override_reason else
                      "Training in it is refused until it is fitted again or overridden."))
    return {"verdict": verdict, "totals": totals, "breakdowns": breakdowns,
            "recent_levels": _recent_levels_in_words(validation.get("recent_levels"))}


def response_model_calibration_points(*, response_model: CustomerResponseModel) -> list[dict[str, Any]]:
    """(observed, predicted) per channel, offer and window and rate, for the calibration chart."""
    validation = response_model.validation or {}
    points = []
    for name, title, _ in _BREAKDOWNS:
        for key, kpi_rows in (validation.get(name) or {}).items():
            for kpi in CALIBRATED_KPIS:
                row = kpi_rows.get(kpi)
                if row and row.get("rows", 0) >= 30 and row.get("observed") is not None:
                    points.append({"rate": KPI_WORDS[kpi], "group": _group_label(name, key),
                                   "observed": row["observed"], "predicted": row["predicted"],
                                   "rows": row["rows"]})
    return points


def what_if_list(*, campaign: Campaign) -> QuerySet[WhatIfScenario]:
    return WhatIfScenario.objects.filter(campaign=campaign)


def what_if_changes_in_words(*, what_if: WhatIfScenario) -> list[str]:
    """Each change of a what-if as a marketer would say it."""
    changes, words = what_if.changes or {}, []
    for name, value in (changes.get("reward_weights") or {}).items():
        words.append(f"reward weight {name.replace('_', ' ')} set to {value:g}")
    labels = vocabulary()
    for key, (max_contacts, window_days) in (changes.get("channel_caps") or {}).items():
        words.append(f"at most {max_contacts} {labels.channel_label(key)} contacts per "
                     f"{window_days} days")
    actions = {str(a.pk): str(a) for a in Action.objects.filter(
        pk__in=[int(k) for k in (changes.get("actions_enabled") or {})])}
    for action_id, on in (changes.get("actions_enabled") or {}).items():
        words.append(f"{actions.get(action_id, f'action {action_id}')} switched "
                     f"{'on' if on else 'off'}")
    return words
