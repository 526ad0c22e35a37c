"""Writes for a campaign's customer-response model: fit it from the campaign's own logs, validate
it on the days it did not see, override a flagged one (audited), and build the simulator a
policy trains in from it.

The model itself lives in `agents.response_model` (no Django); this module is the one place that
turns the campaign's logged decisions and customers into its inputs. Selectors that read models
back are in `training.selectors`.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone as dt_timezone
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.features import ProfileState
from agents.response_model import (
    NotEnoughData, ResponseLog, ResponseModel, split_by_days, validate,
)
from crm_console.campaigns.agents_bridge import catalogue_for_campaign
from crm_console.campaigns.models import Campaign
from crm_console.compliance.services import audit_record
from crm_console.customers.models import Customer
from crm_console.customers.services import profile_states_load
from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.logged_data import LoggedArrays, logged_arrays_for_campaign
from crm_console.decisioning.models import Decision
from crm_console.training.models import CustomerResponseModel

logger = logging.getLogger(__name__)

HELD_OUT_DAYS = 14
"""The most recent days of logs kept out of the fit and used to validate it."""
VALIDATION_TOLERANCE = 0.10
"""A model whose replayed KPIs miss the observed ones by more than this (relative) is flagged."""
START_PROFILES_MAX = 5_000
"""Customers whose profiles seed the fitted simulator (a seeded sample of those decided for)."""
SECONDS_PER_DAY = 86_400.0


def response_log_from_arrays(arrays: LoggedArrays) -> ResponseLog:
    """The campaign's priced decisions as what a response model learns from."""
    outcomes = arrays.outcomes
    first = float(arrays.decided_at.min()) if arrays.decided_at is not None else 0.0
    days = (None if arrays.decided_at is None
            else np.floor((arrays.decided_at - first) / SECONDS_PER_DAY).astype(np.int64))
    return ResponseLog(
        obs=arrays.obs, actions=arrays.actions, opens=outcomes["open"],
        clicks=outcomes["click"], conversions=outcomes["conversion"],
        revenue=outcomes["revenue"], unsubscribes=outcomes["unsubscribe"],
        churned=outcomes["churn"] > 0, days=days, propensities=arrays.propensities,
    )


def response_model_create(*, campaign: Campaign, created_by: AbstractBaseUser | None = None,
                          held_out_days: int = HELD_OUT_DAYS) -> CustomerResponseModel:
    """A queued fit (the `fit_response_model` task does the work)."""
    if held_out_days < 1:
        raise ValidationError({"held_out_days": "Hold out at least one day to validate on."})
    return CustomerResponseModel.objects.create(
        campaign=campaign, created_by=created_by if created_by and created_by.is_authenticated
        else None, held_out_days=held_out_days, tolerance=VALIDATION_TOLERANCE,
        phase="Waiting for a worker")


def _phase(model: CustomerResponseModel, words: str, progress: float) -> None:
    model.phase, model.progress = words, progress
    CustomerResponseModel.objects.filter(pk=model.pk).update(phase=words, progress=progress)


def _failed(model: CustomerResponseModel, why: str) -> CustomerResponseModel:
    model.status, model.error, model.phase = CustomerResponseModel.Status.FAILED, why, ""
    model.save(update_fields=["status", "error", "phase"])
    return model


def response_model_fit(*, response_model_id: int) -> CustomerResponseModel:
    """Fit the model on all but the most recent days of priced decisions, validate it on those.

    Idempotent: a model already fitted (or failed) is returned as it is.
    """
    model = CustomerResponseModel.objects.select_related("campaign").get(pk=response_model_id)
    if model.status != CustomerResponseModel.Status.FITTING:
        return model
    campaign = model.campaign
    _phase(model, "Pricing the campaign's outcomes", 0.05)
    decisions_attribute(campaign=campaign)
    _phase(model, "Reading the campaign's logged decisions", 0.15)
    try:
        bridge = catalogue_for_campaign(campaign=campaign)
    except ValueError as error:
        return _failed(model, str(error))
    arrays = logged_arrays_for_campaign(campaign=campaign, action_ids=bridge.action_ids)
    if arrays is None:
        return _failed(model, "The campaign has no priced decisions yet: import its history or "
                              "let it decide for a while (outcomes are priced after the "
                              f"{campaign.attribution_window_days}-day attribution window).")
    log = response_log_from_arrays(arrays)
    try:
        fit_log, held_log = split_by_days(log, held_out_days=model.held_out_days)
    except ValueError:
        return _failed(model, f"The logs span fewer than {model.held_out_days + 1} days: nothing "
                              "would be left to fit on after holding out the recent days.")
    _phase(model, f"Fitting on {len(fit_log):,} logged decisions", 0.3)
    try:
        fitted = ResponseModel.fit(fit_log, bridge.catalogue, seed=0)
    except NotEnoughData as error:
        return _failed(model, str(error))
    _phase(model, f"Validating on the {len(held_log):,} decisions of the last "
                  f"{model.held_out_days} days", 0.85)
    validation = validate(fitted, held_log, tolerance=model.tolerance)
    first_held_day = int(held_log.days.min())
    artifact = fitted.to_bytes()
    with transaction.atomic():
        locked = CustomerResponseModel.objects.select_for_update().get(pk=model.pk)
        if locked.status != CustomerResponseModel.Status.FITTING:
            return locked
        locked.artifact = artifact
        locked.artifact_sha256 = hashlib.sha256(artifact).hexdigest()
        locked.action_ids = list(bridge.action_ids)
        locked.training_rows = len(fit_log)
        locked.held_out_rows = len(held_log)
        locked.held_out_since = datetime.fromtimestamp(
            float(arrays.decided_at.min()) + first_held_day * SECONDS_PER_DAY, tz=dt_timezone.utc)
        locked.validation = validation
        locked.within_tolerance = bool(validation.get("within_tolerance"))
        locked.status = CustomerResponseModel.Status.READY
        locked.progress, locked.phase, locked.fitted_at = 1.0, "", timezone.now()
        locked.save()
        audit_record(actor=locked.created_by, verb="response_model.fitted", target=locked,
                     details={"campaign_id": campaign.pk, "rows": locked.training_rows,
                              "held_out_rows": locked.held_out_rows,
                              "within_tolerance": locked.within_tolerance})
    logger.info("customer-response model %s fitted for campaign %s on %s rows", model.pk,
                campaign.pk, len(fit_log))
    return locked


def response_model_override(*, response_model: CustomerResponseModel, user: AbstractBaseUser,
                            reason: str) -> CustomerResponseModel:
    """Allow training in a model flagged by its validation; the reason is kept and audited."""
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationError({"reason": "Say in a sentence why policies may train in this model "
                                         "although it misses the observed KPIs."})
    if response_model.status != CustomerResponseModel.Status.READY:
        raise ValidationError({"reason": "Only a fitted model can be overridden."})
    if response_model.within_tolerance:
        raise ValidationError({"reason": "This model passed its validation: there is nothing "
                                         "to override."})
    with transaction.atomic():
        response_model.override_reason = reason
        response_model.overridden_by = user
        response_model.overridden_at = timezone.now()
        response_model.save(update_fields=["override_reason", "overridden_by", "overridden_at"])
        audit_record(actor=user, verb="response_model.overridden", target=response_model,
                     details={"campaign_id": response_model.campaign_id, "reason": reason})
    return response_model


def response_model_load(response_model: CustomerResponseModel) -> ResponseModel:
    """The one place a stored model is read back into the library."""
    return ResponseModel.from_bytes(bytes(response_model.artifact))


def start_profiles_for(*, campaign: Campaign, limit: int = START_PROFILES_MAX,
                       seed: int = 0) -> ProfileState:
    """The campaign's customers as they are today (a sample of those it decided for), whom the
    fitted simulator draws its customers from."""
    customer_ids = list(
        Decision.objects.filter(campaign=campaign).values_list("customer_id", flat=True)
        .distinct().order_by("customer_id")[: limit * 4])
    if len(customer_ids) > limit:
        customer_ids = list(np.random.default_rng(seed).choice(customer_ids, limit, replace=False))
    customers = list(Customer.objects.filter(pk__in=customer_ids, erased_at__isnull=True)
                     .only("id", "profile_state", "profile_updated_at"))
    if not customers:
        raise ValueError("the campaign has no customers with a profile to simulate")
    profiles, _ = profile_states_load(customers, at=timezone.now())
    return profiles


def response_model_summary(response_model: CustomerResponseModel | None, *,
                           why_not: str = "") -> dict[str, Any]:
    """What a training run and a policy version record about the model they trained in."""
    if response_model is None:
        return {"kind": "built-in", "scenario": "retail",
                "why": why_not or "the campaign has no fitted customer-response model yet"}
    return {"kind": "fitted", "id": response_model.pk,
            "fitted_at": response_model.fitted_at.isoformat() if response_model.fitted_at else None,
            "rows": response_model.training_rows,
            "within_tolerance": response_model.within_tolerance,
            "overridden": bool(response_model.override_reason)}
