"""The training bridge: the one place training code turns campaign rows into `agents` objects.

The simulator a candidate learns in is built from the same catalogue, contact rules and reward
weights (campaigns.agents_bridge) that mask it when it serves, so nothing is re-mapped here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import agents
from agents import offline, ope, population
from agents.algos.base import ProgressCallback, TrainingReport
from agents.envs import PLANNING_DISCOUNT, CustomerJourneyEnv, FittedJourneyEnv
from agents.evaluate import LEAVE_RATE_DAYS, evaluate, leave_rate
from agents.features import ProfileState
from agents.response_model import ResponseModel
from crm_console.campaigns.agents_bridge import (
    CampaignCatalogue,
    catalogue_for_campaign,
    contact_rules_for,
    control_agent_make,
    reward_weights_for,
)
from crm_console.campaigns.models import Campaign
from crm_console.decisioning.logged_data import LoggedArrays
from crm_console.decisioning.policy_runtime import agent_view
from crm_console.training.response_models import (
    response_model_load,
    response_model_summary,
    start_profiles_for,
)
from crm_console.training.selectors import response_model_for_training

SCENARIO = "retail"
"""The built-in scenario a campaign trains in until it has a fitted customer-response model."""
TRAINING_CUSTOMERS = 256
"""Simulated customers stepped together: one vectorised env step is this many customer-days."""
EVALUATION_CUSTOMERS = 500
"""Cohort size of the simulator KPIs stored on a candidate."""
EVALUATION_DAYS = 60
"""Days the KPI cohort is followed (shorter than a 90-day horizon to keep training runs short)."""
WARM_START_MAX_ROWS = 40_000
"""Most logged rows used by a warm start (the newest rows)."""
WARM_START_Q_STEPS = 3_000
"""Gradient steps of the offline Q-learning behind a warm start (about 15 ms each on one core)."""
WARM_START_STEP_SECONDS = 0.012
"""A warm start's seconds per Q step, distillation included (36 s for 3,000 on the 2-core
development VM): the training page's first estimate of time left, until the steps are timed."""
FIT_STEPS_PER_SECOND = 15_000.0
"""Simulated customer-days per second of actor_critic training on one core (200,000 in 13 s on the
development VM): the first estimate of the training's time, until its own rate is known."""
MEASURE_SECONDS = 2.0
"""About how long the candidate's KPIs in the customer model take (after training)."""


def warm_start_seconds_estimate() -> float:
    return WARM_START_Q_STEPS * WARM_START_STEP_SECONDS


def training_customers(budget_steps: int) -> int:
    """Customers stepped together: small budgets still get several updates (and progress reports)."""
    return int(min(TRAINING_CUSTOMERS, max(16, budget_steps // 256)))


UNCERTAINTY_PENALTY = 1.0
"""How much of the fitted model's uncertainty (ensemble spread of a day's reward) training
subtracts, so a policy does not learn to exploit where the model is guessing."""


@dataclass
class CampaignSimulator:
    """A campaign's simulator and the catalogue mapping behind its action indices.

    `customer_model` says which world it is: the campaign's fitted customer-response model
    (trained in by default) or the built-in retail scenario (when no model is fitted yet).
    """

    env: CustomerJourneyEnv | FittedJourneyEnv
    bridge: CampaignCatalogue
    contact_rules: Any
    reward_weights: Any
    customer_model: dict[str, Any]
    response_model: ResponseModel | None = None
    start_profiles: ProfileState | None = None

    def evaluation_env(self, *, customers: int, days: int, seed: int):
        """A fresh env of the same world for KPIs (no uncertainty penalty in the reward)."""
        if self.response_model is None:
            return None
        return FittedJourneyEnv(
            self.response_model, self.start_profiles, num_customers=customers,
            reward_weights=self.reward_weights, contact_rules=self.contact_rules,
            horizon_days=days, seed=seed, enabled_actions=self.bridge.enabled,
            uncertainty_penalty=0.0)


def simulator_for_campaign(*, campaign: Campaign, seed: int = 0,
                           customers: int = TRAINING_CUSTOMERS) -> CampaignSimulator:
    """The world a campaign's policy trains in: its fitted customer-response model when it has
    one (refused in words when that model may not be trained in), else the built-in scenario."""
    bridge = catalogue_for_campaign(campaign=campaign)
    rules = contact_rules_for(contact_policy=campaign.contact_policy, campaign=campaign) \
        if campaign.contact_policy_id else None
    weights = reward_weights_for(campaign=campaign)
    stored, why_not = response_model_for_training(campaign=campaign, action_ids=bridge.action_ids)
    if stored is not None:
        fitted = response_model_load(stored)
        profiles = start_profiles_for(campaign=campaign, seed=seed)
        env = FittedJourneyEnv(
            fitted, profiles, num_customers=customers, reward_weights=weights,
            contact_rules=rules, horizon_days=campaign.horizon_days, seed=seed,
            enabled_actions=bridge.enabled, uncertainty_penalty=UNCERTAINTY_PENALTY)
        return CampaignSimulator(env=env, bridge=bridge, contact_rules=rules,
                                 reward_weights=weights,
                                 customer_model=response_model_summary(stored),
                                 response_model=fitted, start_profiles=profiles)
    env = CustomerJourneyEnv(
        SCENARIO, num_customers=customers, catalogue=bridge.catalogue, contact_rules=rules,
        reward_weights=weights, horizon_days=campaign.horizon_days, seed=seed,
        enabled_actions=bridge.enabled,
    )
    return CampaignSimulator(env=env, bridge=bridge, contact_rules=rules, reward_weights=weights,
                             customer_model=response_model_summary(None, why_not=why_not))


DISCOUNTED_ALGORITHMS = ("actor_critic", "dqn")
"""The algorithms that plan with the campaign's daily discount."""


def planning_discount(*, campaign: Campaign, simulator: CampaignSimulator) -> float:
    """The daily discount a policy trains with: the campaign's, capped at PLANNING_DISCOUNT in a
    fitted customer model (whose months are compounded guesses; see that constant)."""
    discount = float(campaign.discount_factor)
    return discount if simulator.response_model is None else min(discount, PLANNING_DISCOUNT)


def training_retention_tolerance(*, campaign: Campaign,
                                 simulator: CampaignSimulator) -> float | None:
    """The retention loss an actor_critic may train to, as a share: the campaign's retention
    guardrail; without one, 0 in a fitted customer model - there a policy free to lose customers
    learnt to buy reward with them where the model errs, and held to the control's rate it earned
    more in truth on six of six benchmark logs (BENCHMARKS.md, "A retention constraint in
    training") - and None (no limit) in the built-in scenario."""
    tolerance = campaign.retention_tolerance
    if tolerance is None and simulator.response_model is not None:
        return 0.0
    return tolerance


def retention_constraint(*, campaign: Campaign, simulator: CampaignSimulator, seed: int,
                         budget_steps: int) -> dict[str, Any] | None:
    """The limit an actor_critic trains under (`training_retention_tolerance`; None without one):
    the control policy's customers lost per customer-day in the same world, plus the tolerance
    spread over the days the held-out check follows (`agents.population.daily_leave_limit`)."""
    tolerance = training_retention_tolerance(campaign=campaign, simulator=simulator)
    if tolerance is None:
        return None
    control = control_agent(campaign=campaign, catalogue=simulator.bridge.catalogue,
                            observation_space=simulator.env.single_observation_space,
                            action_space=simulator.env.single_action_space, seed=seed)
    # never more customer-days than the training itself spends
    rate = leave_rate(control, simulator.env, min(LEAVE_RATE_DAYS, max(1, budget_steps)),
                      seed=seed)
    days = min(EVALUATION_DAYS, campaign.horizon_days)
    return {"tolerance": tolerance, "campaign_guardrail": campaign.retention_tolerance is not None,
            "control_leave_rate": rate, "days": days,
            "max_leave_rate": population.daily_leave_limit(rate, tolerance, days)}


def agent_make(*, algorithm: str, simulator: CampaignSimulator, seed: int,
               campaign: Campaign, max_leave_rate: float | None = None) -> agents.Agent:
    """A fresh agent for the campaign: the discount is the campaign's (capped in a fitted model:
    `planning_discount`), rule_based gets its catalogue, and actor_critic its actions' attributes
    (what lets a new offer or channel borrow what was learnt about similar ones; BENCHMARKS.md,
    "scores shared through attributes") and, given one, the retention constraint's limit
    (`retention_constraint`)."""
    env = simulator.env
    kwargs: dict[str, Any] = {}
    if algorithm == "rule_based":
        kwargs["catalogue"] = simulator.bridge.catalogue
    if algorithm == "actor_critic":
        kwargs["action_attributes"] = simulator.bridge.catalogue.attributes
        if max_leave_rate is not None:
            kwargs["max_leave_rate"] = max_leave_rate
    if algorithm in DISCOUNTED_ALGORITHMS:
        kwargs["gamma"] = planning_discount(campaign=campaign, simulator=simulator)
    return agents.make(algorithm, env.single_observation_space, env.single_action_space,
                       seed=seed, **kwargs)


def control_agent(*, campaign: Campaign, catalogue, observation_space, action_space,
                  seed: int = 0) -> agents.Agent:
    """The holdout's policy (rule-based by default), as the API serves it: greedy."""
    return control_agent_make(name=campaign.control_policy, catalogue=catalogue,
                              observation_space=observation_space, action_space=action_space,
                              seed=seed)


def warm_start_skip(agent: agents.Agent) -> dict[str, Any] | None:
    """`warm_start`'s answer when the algorithm declares no warm start (tabular, random, rules),
    known before any logs are read; None when it has one."""
    if agent.warm_start in offline.WARM_STARTS:
        return None
    return {"warm_start": "skipped", "why": f"{agent.name} has no warm start from logged decisions"}


def warm_start(*, agent: agents.Agent, dataset: offline.LoggedDataset, seed: int,
               progress: Callable[[float], Any] | None = None) -> dict[str, Any]:
    """Pre-train on the logged decisions when the algorithm supports it; says what happened.

    `progress(fraction)` is told how far it is (`agents.offline.pretrain`). Whether it can is the
    algorithm's declaration (`Agent.warm_start`), so a TypeError from a real fault is not taken
    for "no warm start"."""
    skip = warm_start_skip(agent)
    if skip is not None:
        return skip
    if len(dataset) > WARM_START_MAX_ROWS:
        dataset = dataset.subset(np.arange(len(dataset) - WARM_START_MAX_ROWS, len(dataset)))
    report = offline.pretrain(agent, dataset, epochs=3, q_gradient_steps=WARM_START_Q_STEPS,
                              seed=seed, progress=progress)
    return {"warm_start": report.method, **{k: v for k, v in report.to_dict().items()
                                            if k in ("rows", "wall_seconds", "agreement")}}


def agent_fit(*, agent: agents.Agent, simulator: CampaignSimulator, total_steps: int,
              callback: ProgressCallback | None) -> TrainingReport:
    return agent.fit(simulator.env, total_steps=total_steps, callback=callback)


def simulator_kpis(*, agent: agents.Agent, simulator: CampaignSimulator, campaign: Campaign,
                   seed: int = 0) -> dict[str, Any]:
    """KPIs of the agent and of the control policy on the same simulated cohort (paired), in the
    world the agent trained in."""
    days = min(EVALUATION_DAYS, campaign.horizon_days)
    common = dict(scenario=SCENARIO, customers=EVALUATION_CUSTOMERS, days=days, seed=seed,
                  reward_weights=simulator.reward_weights, contact_rules=simulator.contact_rules,
                  catalogue=simulator.bridge.catalogue)

    def world():
        return simulator.evaluation_env(customers=EVALUATION_CUSTOMERS, days=days, seed=seed)

    candidate = evaluate(agent, **common, env=world())
    control = evaluate(control_agent(campaign=campaign, catalogue=simulator.bridge.catalogue,
                                     observation_space=agent.observation_space,
                                     action_space=agent.action_space, seed=seed),
                       **common, env=world())
    def table(report):
        return {name: {"value": k.value, "ci_low": k.ci_low, "ci_high": k.ci_high}
                for name, k in report.kpis.items()}
    scenario = SCENARIO if simulator.response_model is None else \
        f"customer-response model #{simulator.customer_model['id']}"
    return {"scenario": scenario, "customer_model": simulator.customer_model,
            "customers": candidate.customers, "days": candidate.days,
            "seed": seed, "candidate": table(candidate), "control": table(control),
            "control_policy": campaign.control_policy}


def held_out_value(*, agent: agents.Agent, campaign: Campaign, seed: int) -> population.MemberValue:
    """A population member's mean return on held-out customers of the world it trained in: the
    same customers for every member of the run with `seed` (paired), none of them trained on, and
    not the cohort its KPIs are reported on."""
    return _held_out_value(campaign=campaign, seed=seed, agent_for=lambda simulator: agent)


def control_held_out_value(*, campaign: Campaign, seed: int) -> population.MemberValue:
    """The campaign's control policy on the held-out customers of the population with `seed`:
    what the members' retention is held to (`agents.population.choose_member`)."""
    def control_for(simulator: CampaignSimulator) -> agents.Agent:
        return control_agent(campaign=campaign, catalogue=simulator.bridge.catalogue,
                             observation_space=simulator.env.single_observation_space,
                             action_space=simulator.env.single_action_space, seed=seed)

    return _held_out_value(campaign=campaign, seed=seed, agent_for=control_for)


def _held_out_value(*, campaign: Campaign, seed: int,
                    agent_for: Callable[[CampaignSimulator], agents.Agent]
                    ) -> population.MemberValue:
    days = min(EVALUATION_DAYS, campaign.horizon_days)
    held_out_seed = population.selection_seed(seed)
    customers = population.SELECTION_CUSTOMERS
    simulator = simulator_for_campaign(campaign=campaign, seed=held_out_seed, customers=customers)
    return population.held_out_value(
        agent_for(simulator), seed=seed, scenario=SCENARIO, customers=customers, days=days,
        env=simulator.evaluation_env(customers=customers, days=days, seed=held_out_seed),
        reward_weights=simulator.reward_weights, contact_rules=simulator.contact_rules,
        catalogue=simulator.bridge.catalogue)


# ---------------------------------------------------------------------------------- OPE
OPE_METHODS = ("ips", "snips", "dr")


def target_probabilities(agent: agents.Agent, arrays: LoggedArrays) -> np.ndarray:
    """(n, A) the agent's distribution on each logged row, with the row's own logged mask."""
    return agent.action_probabilities(agent_view(agent, arrays.obs), arrays.masks)


def reward_model_for(arrays: LoggedArrays, seed: int = 0) -> np.ndarray:
    """Cross-fitted ridge reward model q(x, a) for DR (fitted once, shared by every policy)."""
    return ope.fit_reward_model(arrays.obs, arrays.actions, arrays.rewards, arrays.masks.shape[1],
                                kind="ridge", folds=2, seed=seed)


def off_policy_estimates(*, arrays: LoggedArrays, target_probs: np.ndarray,
                         reward_model: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """IPS, SNIPS and DR with intervals, ESS and warnings for one target policy (support checked
    as `_support_checked` says)."""
    propensities, logging_probs = _logged_propensities(arrays)
    return {method: _support_checked(
        lambda **support: ope.estimate(
            arrays.rewards, arrays.actions, propensities, target_probs, method=method,
            reward_model=reward_model, confidence=confidence, **support), logging_probs)
        for method in OPE_METHODS}


PAIRED_METHODS = ("dr", "snips")
"""The paired guardrail's estimate (DR) and its check (SNIPS, which needs no reward model)."""


def paired_differences(*, arrays: LoggedArrays, target_probs: np.ndarray,
                       baseline_probs: np.ndarray, reward_model: np.ndarray,
                       confidence: float = 0.95) -> dict[str, Any]:
    """Candidate minus baseline on the same logged rows (agents.ope.estimate_difference), DR and
    SNIPS, with the candidate's effective sample size, and ``changed_share``: on how many of the
    rows the candidate's most likely action is not the baseline's (what the estimate cannot
    follow past the day: `decisioning.promotion`)."""
    propensities, logging_probs = _logged_propensities(arrays)
    paired: dict[str, Any] = {method: _support_checked(
        lambda **support: ope.estimate_difference(
            arrays.rewards, arrays.actions, propensities, target_probs, baseline_probs,
            method=method, reward_model=reward_model, confidence=confidence, **support),
        logging_probs)
        for method in PAIRED_METHODS}
    paired["changed_share"] = float(
        (np.asarray(target_probs).argmax(axis=1) != np.asarray(baseline_probs).argmax(axis=1))
        .mean())
    return paired


def _support_checked(estimate: Callable[..., ope.OPEResult],
                     logging_probs: np.ndarray | None) -> dict[str, Any]:
    """`estimate(...)` with support checked exactly against the logged distributions; where the
    target puts mass on an action the logger could not take, made again without that check, with
    a warning that the number ignores those actions."""
    if logging_probs is None:
        return estimate().to_dict()
    try:
        return estimate(logging_probs=logging_probs).to_dict()
    except ValueError as error:
        out = estimate().to_dict()
        out["warnings"] = [f"support: {error}", *out["warnings"]]
        return out


def _logged_propensities(arrays: LoggedArrays) -> tuple[np.ndarray, np.ndarray | None]:
    """The logged propensities, and the full logging distributions where the log kept them
    (stored rounded to 6 decimals: renormalised, the propensity read from the same row)."""
    if arrays.logging_probs is None:
        return arrays.propensities, None
    logging_probs = arrays.logging_probs / arrays.logging_probs.sum(axis=1, keepdims=True)
    return logging_probs[np.arange(len(arrays)), arrays.actions], logging_probs
