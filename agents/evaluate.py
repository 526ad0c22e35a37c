"""How good is a policy? KPIs on a simulated cohort, and exact values on the `tabular` scenario.

`evaluate` follows one cohort of M customers for H days and reports the marketer's KPIs with 95 %
confidence intervals. Common random numbers: for a given seed every policy meets the same
customers and the same daily random draws, so differences between policies are not luck of the
draw, and `uplift` can compare two reports customer by customer (paired), which gives much
tighter intervals than comparing two independent means.

`optimal_policy` solves the `tabular` scenario by value iteration; `policy_value` gives the exact
expected discounted return of any policy there, so a benchmark can print "% of optimum".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from agents.common.intervals import mean_with_se, ratio_with_se, z_score
from agents.envs.customer_journey import CustomerJourneyEnv, resolve_scenario
from agents.envs.scenarios import Scenario, TabularScenario
from agents.envs.tabular import one_hot_states
from agents.rewards import RewardWeights

_SUMMED = ("opens", "clicks", "conversions", "net_revenue", "unsubscribes", "cap_violations")
"""Per-customer outcome arrays of `info` that evaluate adds up over the horizon."""

PolicyFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A policy as a plain function: (obs (n, d), mask (n, A) bool) -> actions (n,) int."""

KPI_NAMES: tuple[str, ...] = (
    "open_rate",
    "ctr",
    "conversion_rate",
    "net_revenue_per_customer",
    "retention",
    "unsubscribes_per_customer",
    "contacts_per_customer",
    "cap_violations",
    "mean_return",
)
KPI_LABELS: dict[str, str] = {
    "open_rate": "open rate (opens per contact)",
    "ctr": "click-through rate (clicks per contact)",
    "conversion_rate": "conversion rate (customers with an order)",
    "net_revenue_per_customer": "net revenue per customer",
    "retention": "retention at the horizon",
    "unsubscribes_per_customer": "unsubscribes per customer",
    "contacts_per_customer": "contacts per customer",
    "cap_violations": "contact-rule violations (must be 0)",
    "mean_return": "mean return per customer",
}


@dataclass(frozen=True)
class KPI:
    """A point estimate with its confidence interval."""

    value: float
    ci_low: float
    ci_high: float

    def __iter__(self):
        return iter((self.value, self.ci_low, self.ci_high))

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.ci_low:.4g}, {self.ci_high:.4g}]"


@dataclass
class EvaluationReport:
    """KPIs of one policy on one cohort (`per_customer` keeps the raw totals for paired uplift)."""

    scenario: str
    customers: int
    days: int
    seed: int
    kpis: dict[str, KPI]
    per_customer: dict[str, np.ndarray] = field(repr=False)
    confidence: float = 0.95

    def __getitem__(self, name: str) -> KPI:
        return self.kpis[name]

    @property
    def cap_violations_total(self) -> int:
        return int(self.per_customer["cap_violations"].sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "customers": self.customers,
            "days": self.days,
            "seed": self.seed,
            "confidence": self.confidence,
            "kpis": {
                k: {"value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high}
                for k, v in self.kpis.items()
            },
        }

    def by_segment(self, key: str = "net_revenue", names: tuple[str, ...] | None = None) -> dict:
        """Mean per-customer total of `key` per starting hidden segment (or tabular state).

        For analysis of where a policy gains; `names` (e.g. the scenario's segment_names) label it.
        """
        values, segments = self.per_customer[key], self.per_customer["start_segment"].astype(int)
        out = {}
        for s in np.unique(segments):
            label = names[s] if names is not None else int(s)
            out[label] = float(values[segments == s].mean())
        return out

    def table(self) -> str:
        """The KPIs as aligned text lines."""
        return "\n".join(f"{KPI_LABELS[k]:<45} {self.kpis[k]}" for k in KPI_NAMES)


# ---------------------------------------------------------------------------------------------
# policies
def as_policy(agent_or_policy: Any, deterministic: bool = True, seed: int = 0) -> PolicyFn:
    """An Agent, a PolicyFn, the names "random" / "no_contact", or (tabular) an (S,) array of
    actions per state, as a PolicyFn."""
    if isinstance(agent_or_policy, np.ndarray):
        table = agent_or_policy.astype(np.int64)
        return lambda obs, mask: table[np.asarray(obs).argmax(axis=1)]
    if isinstance(agent_or_policy, str):
        if agent_or_policy == "no_contact":
            return lambda obs, mask: np.zeros(mask.shape[0], dtype=np.int64)
        if agent_or_policy == "random":
            rng = np.random.default_rng(seed)

            def random_policy(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
                cumulative = np.cumsum(mask / mask.sum(axis=1, keepdims=True), axis=1)
                return np.minimum(
                    (rng.random((mask.shape[0], 1)) > cumulative).sum(axis=1), mask.shape[1] - 1
                )

            return random_policy
        raise ValueError(f"unknown policy name {agent_or_policy!r}; use 'random' or 'no_contact'")
    if hasattr(agent_or_policy, "act"):
        agent = agent_or_policy
        return lambda obs, mask: agent.act(obs, action_mask=mask, deterministic=deterministic)
    if callable(agent_or_policy):
        return agent_or_policy
    raise TypeError(
        f"expected an Agent, a callable (obs, mask) -> actions or a name, got {agent_or_policy!r}"
    )


# ---------------------------------------------------------------------------------------------
# simulated KPIs
def evaluate(
    agent_or_policy: Any,
    scenario: str | Scenario | TabularScenario = "retail",
    customers: int = 2000,
    days: int | None = None,
    seed: int = 0,
    *,
    reward_weights: RewardWeights | None = None,
    contact_rules: Any = None,
    catalogue: Any = None,
    deterministic: bool = True,
    confidence: float = 0.95,
    env: Any = None,
) -> EvaluationReport:
    """Run `agent_or_policy` on a cohort of `customers` for `days` and report KPIs with CIs.

    The cohort is followed until the horizon; a customer who churns (or leaves every channel)
    stays lost - the slot's replacement customer is not counted. The same `seed` gives every
    policy the same customers and the same daily draws.

    :param agent_or_policy: an `Agent`, a function (obs, mask) -> actions, "random" or "no_contact"
    :param days: horizon H (default: the scenario's horizon_days)
    :param deterministic: passed to `Agent.act` (False samples from the agent's policy)
    :param env: a ready vector env to run in instead of the scenario's simulator (e.g. a
        campaign's `agents.envs.FittedJourneyEnv`); `customers` is then its size
    """
    resolved = resolve_scenario(scenario) if env is None else None
    if env is not None:
        customers = env.num_envs
    if customers < 2:
        raise ValueError("customers must be >= 2 (a confidence interval needs two)")
    days = int(days or (resolved.horizon_days if env is None else env.horizon_days))
    if days < 1:
        raise ValueError("days must be >= 1")
    if env is None:
        env = CustomerJourneyEnv(
            resolved,
            num_customers=customers,
            reward_weights=reward_weights,
            contact_rules=contact_rules,
            catalogue=catalogue,
            horizon_days=days,
            seed=seed,
        )
    policy = as_policy(agent_or_policy, deterministic=deterministic, seed=seed)
    obs, info = env.reset(seed=seed)
    totals = {k: np.zeros(customers) for k in (*_SUMMED, "contacts", "return", "days")}
    in_cohort = np.ones(customers, dtype=bool)
    retained = np.ones(customers, dtype=bool)
    # the hidden segment each customer started in (analysis only; the policy never sees it)
    segments = (env.segments if hasattr(env, "segments") else
                env.states if hasattr(env, "states") else np.zeros(customers))
    for _ in range(days):
        mask = info["action_mask"]
        actions = np.asarray(policy(obs, mask)).reshape(-1)
        obs, rewards, terminated, truncated, info = env.step(actions)
        c = in_cohort
        for key in _SUMMED:
            totals[key] += np.where(c, info[key], 0.0)
        totals["contacts"] += np.where(c, info["contacted"], 0.0)
        totals["return"] += np.where(c, rewards, 0.0)
        totals["days"] += c
        retained &= ~(c & terminated)
        in_cohort &= ~(terminated | truncated)
    per_customer = {
        **totals,
        "retained": retained.astype(np.float64),
        "converted": (totals["conversions"] > 0).astype(np.float64),
        "start_segment": segments.astype(np.float64),
    }
    z = z_score(confidence)
    kpis = {
        "open_rate": _ratio(totals["opens"], totals["contacts"], z),
        "ctr": _ratio(totals["clicks"], totals["contacts"], z),
        "conversion_rate": _mean(per_customer["converted"], z),
        "net_revenue_per_customer": _mean(totals["net_revenue"], z),
        "retention": _mean(per_customer["retained"], z),
        "unsubscribes_per_customer": _mean(totals["unsubscribes"], z),
        "contacts_per_customer": _mean(totals["contacts"], z),
        "cap_violations": _mean(totals["cap_violations"], z),
        "mean_return": _mean(totals["return"], z),
    }
    name = resolved.name if resolved is not None else getattr(env, "name", type(env).__name__)
    return EvaluationReport(name, customers, days, seed, kpis, per_customer, confidence)


def _kpi(value: float, se: float, z: float) -> KPI:
    return KPI(value, value - z * se, value + z * se)


def _mean(x: np.ndarray, z: float) -> KPI:
    return _kpi(*mean_with_se(x), z)


def _ratio(y: np.ndarray, x: np.ndarray, z: float) -> KPI:
    """Ratio of totals sum(y) / sum(x) with a delta-method interval (customers are the units)."""
    return _kpi(*ratio_with_se(y, x), z)


PER_CUSTOMER_KPIS = {
    "net_revenue_per_customer": "net_revenue",
    "mean_return": "return",
    "retention": "retained",
    "conversion_rate": "converted",
    "contacts_per_customer": "contacts",
    "unsubscribes_per_customer": "unsubscribes",
}
"""KPIs that are a mean over customers (name -> per-customer array), hence comparable pairwise."""


def _paired(report: EvaluationReport, baseline: EvaluationReport,
            kpi: str) -> tuple[np.ndarray, np.ndarray]:
    key = PER_CUSTOMER_KPIS.get(kpi)
    if key is None:
        raise ValueError(f"a paired comparison is defined for per-customer KPIs, not {kpi!r}")
    if (report.scenario, report.customers, report.days, report.seed) != (
        baseline.scenario,
        baseline.customers,
        baseline.days,
        baseline.seed,
    ):
        raise ValueError("a paired comparison needs two reports on the same scenario, cohort, "
                         "horizon and seed")
    return report.per_customer[key], baseline.per_customer[key]


def paired_difference(
    report: EvaluationReport,
    baseline: EvaluationReport,
    kpi: str = "net_revenue_per_customer",
    confidence: float = 0.95,
) -> KPI:
    """Change of a per-customer KPI vs `baseline` in its own units, paired customer by customer
    (same cohort and draws, as `uplift`), with its interval."""
    a, b = _paired(report, baseline, kpi)
    return _mean(a - b, z_score(confidence))


def uplift(
    report: EvaluationReport,
    baseline: EvaluationReport,
    kpi: str = "net_revenue_per_customer",
    confidence: float = 0.95,
) -> KPI:
    """Relative change of a per-customer KPI vs `baseline`, paired customer by customer.

    Both reports must come from the same scenario, cohort size, horizon and seed (common random
    numbers): the interval is the delta-method interval of mean(a - b) / mean(b).
    """
    a, b = _paired(report, baseline, kpi)
    if b.mean() == 0:
        raise ValueError(f"baseline {kpi} is 0: a relative uplift is undefined")
    return _ratio(a - b, b, z_score(confidence))


# ---------------------------------------------------------------------------------------------
# exact values on the tabular scenario
LEAVE_RATE_DAYS = 1_000_000
"""Customer-days `leave_rate` measures by default: about 3 s for the rules on one core. 300,000
put one retail world's rate 8 % above its 1M figure, a point of retention over 90 days
(benchmarks/retention_constraint.py)."""


def leave_rate(policy: Any, env: Any, customer_days: int = LEAVE_RATE_DAYS,
               seed: int = 0) -> float:
    """Customers the policy loses (churned or unreachable on every channel) per customer-day, in
    a vector env whose finished customers are replaced, as training meets them: the measure an
    actor_critic's `max_leave_rate` holds it to, so a limit is set from a control policy's own
    rate in the same world."""
    from agents.common.vec import CustomerBatch  # here: agents.common imports this module's KPIs

    if customer_days < 1:
        raise ValueError(f"customer_days must be >= 1, got {customer_days!r}")
    act = as_policy(policy)
    batch = CustomerBatch(env, env.single_observation_space, env.single_action_space)
    obs, mask = batch.reset(seed=seed)
    lost = lived = 0
    while lived < customer_days:
        step = batch.step(act(obs, mask))
        lost += int((step.terminated & step.valid).sum())
        lived += int(step.valid.sum())
        obs, mask = step.obs, step.mask
    return lost / lived


def value_iteration(
    transitions: np.ndarray,
    rewards: np.ndarray,
    gamma: float,
    allowed: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iterations: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal state values and a greedy optimal policy of a finite discounted MDP.

    :param transitions: (S, A, S) next-state probabilities; rows may sum to < 1 (the rest is a
        terminal state worth 0)
    :param rewards: (S, A) expected immediate reward
    :param allowed: (S, A) bool; disallowed actions are never chosen (None: all allowed)
    :return: (V (S,), policy (S,) int)
    """
    transitions, rewards = np.asarray(transitions, float), np.asarray(rewards, float)
    n_s, n_a = rewards.shape
    if transitions.shape != (n_s, n_a, n_s):
        raise ValueError(f"transitions must be ({n_s}, {n_a}, {n_s}), got {transitions.shape}")
    if not 0 <= gamma < 1:
        raise ValueError("gamma must lie in [0, 1)")
    allowed = np.ones((n_s, n_a), bool) if allowed is None else np.asarray(allowed, bool)
    if not allowed.any(axis=1).all():
        raise ValueError("every state needs at least one allowed action")
    values = np.zeros(n_s)
    for _ in range(max_iterations):
        q = np.where(allowed, rewards + gamma * transitions @ values, -np.inf)
        new = q.max(axis=1)
        if np.max(np.abs(new - values)) < tol * (1 - gamma) / max(gamma, 1e-12):
            values = new
            break
        values = new
    q = np.where(allowed, rewards + gamma * transitions @ values, -np.inf)
    return values, q.argmax(axis=1)


def _tabular(scenario: str | TabularScenario) -> TabularScenario:
    resolved = resolve_scenario(scenario)
    if not isinstance(resolved, TabularScenario):
        raise ValueError(
            f"exact values need a tabular scenario, got {getattr(resolved, 'name', resolved)!r}"
        )
    return resolved


def optimal_policy(
    scenario: str | TabularScenario = "tabular", reward_weights: RewardWeights | None = None
) -> tuple[np.ndarray, float]:
    """(optimal action per state (S,), optimal expected discounted return from the start)."""
    sc = _tabular(scenario)
    values, policy = value_iteration(
        sc.transitions, sc.expected_rewards(reward_weights), sc.gamma, sc.allowed
    )
    return policy, float(sc.initial @ values)


def policy_probabilities(
    agent_or_policy: Any, scenario: str | TabularScenario = "tabular"
) -> np.ndarray:
    """(S, A) the policy's action probabilities in every tabular state (masked actions 0).

    Accepts an Agent, a PolicyFn, an (S,) array of actions or an (S, A) array of probabilities.
    """
    sc = _tabular(scenario)
    obs = one_hot_states(sc)
    if isinstance(agent_or_policy, np.ndarray):
        policy = agent_or_policy
        if policy.shape == (sc.n_states,):
            probs = np.zeros((sc.n_states, sc.n_actions))
            probs[np.arange(sc.n_states), policy.astype(np.int64)] = 1.0
        elif policy.shape == (sc.n_states, sc.n_actions):
            probs = policy.astype(np.float64)
        else:
            raise ValueError(
                f"a policy array must be ({sc.n_states},) or ({sc.n_states}, {sc.n_actions})"
            )
    elif hasattr(agent_or_policy, "action_probabilities"):
        probs = np.asarray(agent_or_policy.action_probabilities(obs, action_mask=sc.allowed), float)
    elif callable(agent_or_policy):
        actions = np.asarray(agent_or_policy(obs, sc.allowed)).astype(np.int64)
        probs = np.zeros((sc.n_states, sc.n_actions))
        probs[np.arange(sc.n_states), actions] = 1.0
    else:
        raise TypeError(f"cannot read a policy from {agent_or_policy!r}")
    if np.any(probs[~sc.allowed] > 0):
        raise ValueError("the policy puts probability on a masked action")
    if not np.allclose(probs.sum(axis=1), 1.0):
        raise ValueError("policy probabilities must sum to 1 in every state")
    return probs


def policy_value(
    agent_or_policy: Any,
    scenario: str | TabularScenario = "tabular",
    reward_weights: RewardWeights | None = None,
) -> float:
    """Exact expected discounted return of a policy from the start distribution (tabular only).

    Solves V = r_pi + gamma P_pi V, i.e. V = (I - gamma P_pi)^-1 r_pi.
    """
    sc = _tabular(scenario)
    probs = policy_probabilities(agent_or_policy, sc)
    r_pi = (probs * sc.expected_rewards(reward_weights)).sum(axis=1)
    p_pi = np.einsum("sa,sat->st", probs, sc.transitions)
    values = np.linalg.solve(np.eye(sc.n_states) - sc.gamma * p_pi, r_pi)
    return float(sc.initial @ values)


def percent_of_optimum(
    agent_or_policy: Any,
    scenario: str | TabularScenario = "tabular",
    reward_weights: RewardWeights | None = None,
) -> float:
    """100 * policy_value / optimal value (tabular only; the optimum must be positive)."""
    _, best = optimal_policy(scenario, reward_weights)
    if best <= 0:
        raise ValueError("the optimal value is not positive: a percentage would mislead")
    return 100.0 * policy_value(agent_or_policy, scenario, reward_weights) / best
