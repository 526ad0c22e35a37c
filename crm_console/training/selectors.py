"""Reads for training: runs, their curves, shadow agreement, campaign segments."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from crm_console.campaigns.models import Campaign
from crm_console.customers.models import Customer
from crm_console.decisioning.models import Decision, PolicyVersion
from crm_console.training.models import TrainingRun


def training_run_list(*, campaign: Campaign | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("campaign", "policy_version")
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


def policy_version_list(*, campaign: Campaign) -> QuerySet[PolicyVersion]:
    return PolicyVersion.objects.filter(campaign=campaign).defer("artifact")


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
