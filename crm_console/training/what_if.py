"""Writes for what-if scenarios: "what would happen if ..." a cap, a reward weight or an action
changed, answered in the campaign's fitted customer-response model.

Today's settings and the changed ones are run on the same simulated customers with the same
daily draws (common random numbers), so the difference of each KPI is paired and its interval
is narrow; today's policy (the live version, else the control rules) is replayed under the
changes, or a new policy is trained under them when the marketer asks for it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import traceback
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.envs import FittedJourneyEnv
from agents.evaluate import EvaluationReport, evaluate, paired_difference
from agents.rewards import RewardWeights
from crm_console.campaigns.models import Campaign
from crm_console.campaigns.selectors import campaign_catalogue
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.compliance.services import audit_record
from crm_console.decisioning.models import PolicyVersion
from crm_console.decisioning.policy_runtime import policy_agent, version_action_map
from crm_console.training import agents_training
from crm_console.training.models import WhatIfScenario
from crm_console.training.response_models import response_model_load, start_profiles_for
from crm_console.training.selectors import ResponseModelNotTrainable, response_model_for_training

logger = logging.getLogger(__name__)

WHAT_IF_CUSTOMERS = 1_000
"""Simulated customers each side of a what-if is run on (the same ones both sides)."""
WHAT_IF_DAYS = 60
WHAT_IF_RETRAIN_STEPS = 30_000
"""Customer-days a what-if's new policy trains for (short: a direction, not a launch)."""
REWARD_FIELDS = tuple(f.name for f in dataclasses.fields(RewardWeights))
COMPARED_KPIS = (
    ("net_revenue_per_customer", "Net revenue per customer"),
    ("retention", "Customers retained"),
    ("conversion_rate", "Customers who ordered"),
    ("unsubscribes_per_customer", "Unsubscribes per customer"),
    ("contacts_per_customer", "Contacts per customer"),
)


def _changes_checked(campaign: Campaign, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes in a canonical form, or a ValidationError naming the field at fault."""
    errors: dict[str, list[str]] = {}
    unknown = set(changes) - {"reward_weights", "channel_caps", "actions_enabled"}
    if unknown:
        errors["changes"] = [f"Unknown change {', '.join(sorted(unknown))}."]
    weights = {}
    for name, value in (changes.get("reward_weights") or {}).items():
        if name not in REWARD_FIELDS:
            errors.setdefault("reward_weights", []).append(f"No reward weight called {name}.")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            errors.setdefault(f"reward_{name}", []).append("Enter a finite number.")
        else:
            weights[name] = float(value)
    caps = {}
    channels = set(vocabulary().channel_keys)
    for key, cap in (changes.get("channel_caps") or {}).items():
        if key not in channels:
            errors.setdefault("cap_channel", []).append(f"No channel called {key}.")
            continue
        try:
            max_contacts, window_days = (int(cap[0]), int(cap[1]))
        except (TypeError, ValueError, IndexError):
            errors.setdefault("cap_max_contacts", []).append("Give a whole number of contacts "
                                                             "and of days.")
            continue
        if max_contacts < 0 or window_days < 1:
            errors.setdefault("cap_max_contacts", []).append(
                "At least 0 contacts in a window of at least 1 day.")
            continue
        caps[key] = [max_contacts, window_days]
    actions = {str(a.pk): a for a in campaign.actions.all()}
    enabled = {}
    for action_id, on in (changes.get("actions_enabled") or {}).items():
        action = actions.get(str(action_id))
        if action is None or action.is_no_contact:
            errors.setdefault("actions_off", []).append(
                f"Action {action_id} is not a contact action of this campaign.")
        else:
            enabled[str(action_id)] = bool(on)
    if not errors:
        left = [a for a in actions.values() if not a.is_no_contact
                and enabled.get(str(a.pk), a.enabled)]
        if not left:
            errors["actions_off"] = ["At least one contact action must stay on: with none, "
                                     "there is nothing to decide."]
    if not (weights or caps or enabled) and not errors:
        errors["changes"] = ["Change at least one thing: a reward weight, a cap or an action."]
    if errors:
        raise ValidationError(errors)
    return {"reward_weights": weights, "channel_caps": caps, "actions_enabled": enabled}


def what_if_create(*, campaign: Campaign, name: str, changes: dict[str, Any],
                   retrain: bool = False,
                   created_by: AbstractBaseUser | None = None) -> WhatIfScenario:
    """Save a named what-if (validated whole; nothing is written on any error) and queue it."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the scenario, e.g. \"email cap 3 a week\"."})
    checked = _changes_checked(campaign, changes)
    try:
        model, _ = response_model_for_training(campaign=campaign,
                                               action_ids=_catalogue_ids(campaign))
    except ResponseModelNotTrainable as refused:
        raise ValidationError({"name": str(refused)}) from refused
    if model is None:
        raise ValidationError({"name": "Fit the campaign's customer-response model first: a "
                                       "what-if is answered in it."})
    try:
        with transaction.atomic():
            scenario = WhatIfScenario.objects.create(
                campaign=campaign, response_model=model, name=name, changes=checked,
                retrain=retrain, created_by=created_by if created_by and
                created_by.is_authenticated else None)
            audit_record(actor=created_by, verb="what_if.created", target=scenario,
                         details={"campaign_id": campaign.pk, "name": name, "retrain": retrain})
    except IntegrityError as clash:
        raise ValidationError({"name": f"{campaign.name} already has a scenario called "
                                       f"\"{name}\"."}) from clash
    return scenario


def _catalogue_ids(campaign: Campaign) -> tuple[int, ...]:
    return tuple(campaign_catalogue(campaign=campaign).values_list("pk", flat=True))


def _phase(scenario: WhatIfScenario, words: str, progress: float) -> None:
    WhatIfScenario.objects.filter(pk=scenario.pk).update(phase=words, progress=progress)


def what_if_run(*, what_if_id: int) -> WhatIfScenario:
    """Answer a queued what-if; idempotent (a finished one is returned as it is)."""
    scenario = WhatIfScenario.objects.select_related("campaign", "response_model").get(
        pk=what_if_id)
    if scenario.status in (WhatIfScenario.Status.SUCCEEDED, WhatIfScenario.Status.FAILED):
        return scenario
    WhatIfScenario.objects.filter(pk=scenario.pk).update(status=WhatIfScenario.Status.RUNNING)
    try:
        result = _answer(scenario)
    except Exception as error:  # the scenario ends failed with its reason, in words
        logger.exception("what-if %s failed", scenario.pk)
        scenario.status, scenario.error = WhatIfScenario.Status.FAILED, f"{error}"
        scenario.finished_at = timezone.now()
        scenario.save(update_fields=["status", "error", "finished_at"])
        logger.debug("%s", traceback.format_exc(limit=4))
        return scenario
    scenario.result, scenario.status = result, WhatIfScenario.Status.SUCCEEDED
    scenario.progress, scenario.phase, scenario.finished_at = 1.0, "", timezone.now()
    scenario.save(update_fields=["result", "status", "progress", "phase", "finished_at"])
    return scenario


def _answer(scenario: WhatIfScenario) -> dict[str, Any]:
    campaign = scenario.campaign
    _phase(scenario, "Loading the customer-response model and today's policy", 0.05)
    today = agents_training.simulator_for_campaign(campaign=campaign, customers=2)
    if today.response_model is None or today.customer_model.get("id") != scenario.response_model_id:
        # the campaign's model changed since the scenario was saved: answer in the saved one
        fitted = response_model_load(scenario.response_model)
    else:
        fitted = today.response_model
    profiles = (today.start_profiles if today.start_profiles is not None
                else start_profiles_for(campaign=campaign))
    changes = scenario.changes
    weights = dataclasses.replace(today.reward_weights, **changes.get("reward_weights", {}))
    rules = today.contact_rules
    if changes.get("channel_caps") and rules is not None:
        rules = dataclasses.replace(rules, channel_caps={
            **rules.channel_caps, **{k: tuple(v) for k, v in changes["channel_caps"].items()}})
    enabled = today.bridge.enabled.copy()
    for action_id, on in changes.get("actions_enabled", {}).items():
        enabled[today.bridge.action_ids.index(int(action_id))] = on
    days = min(WHAT_IF_DAYS, campaign.horizon_days)

    def world(reward_weights, contact_rules, enabled_actions, seed=0,
              customers=WHAT_IF_CUSTOMERS, penalty=0.0):
        return FittedJourneyEnv(fitted, profiles, num_customers=customers,
                                reward_weights=reward_weights, contact_rules=contact_rules,
                                horizon_days=days, seed=seed, enabled_actions=enabled_actions,
                                uncertainty_penalty=penalty)

    policy, policy_words = _todays_policy(campaign, today)
    _phase(scenario, "Running today's settings", 0.2)
    before = evaluate(policy, env=world(today.reward_weights, today.contact_rules, today.bridge.enabled))
    chosen = policy
    if scenario.retrain:
        _phase(scenario, f"Training a new policy under the changes "
                         f"({WHAT_IF_RETRAIN_STEPS:,} customer-days)", 0.35)
        env = world(weights, rules, enabled, seed=1, customers=128,
                    penalty=agents_training.UNCERTAINTY_PENALTY)
        changed = dataclasses.replace(today, env=env)
        constraint = agents_training.retention_constraint(
            campaign=campaign, simulator=changed, seed=0, budget_steps=WHAT_IF_RETRAIN_STEPS)
        chosen = agents_training.agent_make(
            algorithm="actor_critic", seed=0, campaign=campaign, simulator=changed,
            max_leave_rate=None if constraint is None else constraint["max_leave_rate"])
        chosen.fit(env, total_steps=WHAT_IF_RETRAIN_STEPS)
        policy_words = "a new actor_critic trained under the changes"
    _phase(scenario, "Running the changed settings", 0.85)
    after = evaluate(chosen, env=world(weights, rules, enabled))
    return _comparison(before, after, policy_words)


def _todays_policy(campaign: Campaign, today) -> tuple[Any, str]:
    live = PolicyVersion.objects.filter(campaign=campaign, status=PolicyVersion.Status.LIVE) \
        .defer("artifact").first()
    if live is not None and version_action_map(live, today.bridge) is None:
        agent = policy_agent(live)
        if agent.n_features == today.env.single_observation_space.shape[0]:
            return agent, f"the live policy (version {live.version}, {live.algorithm})"
    env = today.env
    control = agents_training.control_agent(
        campaign=campaign, catalogue=today.bridge.catalogue,
        observation_space=env.single_observation_space, action_space=env.single_action_space)
    return control, "the control policy (the marketer's rules)"


def _comparison(before: EvaluationReport, after: EvaluationReport, policy: str) -> dict[str, Any]:
    rows = []
    for kpi, label in COMPARED_KPIS:
        difference = paired_difference(after, before, kpi)
        rows.append({"kpi": kpi, "label": label,
                     "today": _kpi(before.kpis[kpi]), "what_if": _kpi(after.kpis[kpi]),
                     "difference": _kpi(difference)})
    violations = float(np.sum(after.per_customer["cap_violations"]))
    unchanged = all(np.array_equal(after.per_customer[key], before.per_customer[key])
                    for key in ("net_revenue", "contacts", "retained"))
    return {"policy": policy, "customers": before.customers, "days": before.days,
            "kpis": rows, "cap_violations": violations, "unchanged": unchanged}


def _kpi(kpi) -> dict[str, float]:
    return {"value": float(kpi.value), "ci_low": float(kpi.ci_low), "ci_high": float(kpi.ci_high)}
