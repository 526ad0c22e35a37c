"""A small population of one algorithm: several seeds trained apart, one kept.

Policy-gradient runs on the same world can settle on different policies depending on their seed
(initial weights, the first customers met, minibatch order). Rather than hope for a good seed, a
run trains `size` members - each a separate job, so more workers train them in parallel - and
keeps the member with the highest mean return on customers of the *training* world that none of
them trained on (`selection_seed`). The evaluation cohort a benchmark or the console reports on is
never used to choose, so the kept member's KPIs stay an honest estimate.

Optionally with a retention guardrail: members that earn alike can part ways on retention (the
reward prices churn, but at the marketer's weight), so a campaign may ask that the kept member
loses at most `retention_tolerance` of the held-out customers' retention to its control policy
on the same customers (BENCHMARKS.md, "actor_critic over seeds", measures what that costs).

    seeds = member_seeds(run_seed, size=3)
    values = [held_out_value(agent, env=world(selection_seed(run_seed))) for agent in members]
    control = held_out_value(rules, env=world(selection_seed(run_seed)))
    kept = choose_member(values, control=control, retention_tolerance=0.01)

In a world fitted from logs the held-out return is the model's, and the model is wrong in ways
each member exploits differently: the member it ranks first is often not the best in truth. An
alternative is the members' consensus - their averaged choices distilled into one network
(`keep_consensus`). Measured on twelve benchmark runs and four exploratory ones (BENCHMARKS.md,
"Learning from the workspace's own logs"), it raised the worst run on large logs and lost on
small ones, so the console still keeps the best member; `benchmarks/learn_from_logs.py
--consensus` measures it.

    kept, consensus = keep_consensus(members, start=kept, env=world(CONSENSUS_SEED_OFFSET + seed),
                                     steps=SELECTION_CUSTOMERS * days, seed=seed)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_SIZE = 8
"""Most members a population may have (each costs a full training budget)."""
MEMBER_SEED_STRIDE = 1_000
"""Member i trains with seed `seed + i * MEMBER_SEED_STRIDE`: member 0 is the run's own seed, and
the populations of neighbouring seeds (0, 1, 2, ...) share no member."""
CONSENSUS_SEED_OFFSET = 600_000_011
"""The customers the consensus is distilled on are drawn with `seed + CONSENSUS_SEED_OFFSET`:
neither the selection cohort nor any training or evaluation seed."""
SELECTION_SEED_OFFSET = 500_000_003
"""The held-out selection cohort's seed is `seed + SELECTION_SEED_OFFSET`: far from every training
seed and from evaluation cohorts (which benchmarks draw at 10,000 + seed)."""
SELECTION_CUSTOMERS = 2_000
"""Customers of the selection cohort: every member meets the same ones (paired comparison)."""


def check_size(size: int) -> int:
    """The population size, or a ValueError saying what is allowed."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"population size must be a whole number from 1 to {MAX_SIZE}, got {size!r}")
    return int(size)


def member_seeds(seed: int, size: int) -> list[int]:
    """The training seed of every member (member 0 keeps the run's seed)."""
    size = check_size(size)
    if seed < 0:
        raise ValueError("seed must be >= 0")
    return [int(seed) + i * MEMBER_SEED_STRIDE for i in range(size)]


def selection_seed(seed: int) -> int:
    """The seed of the held-out customers every member of the run with `seed` is scored on."""
    return int(seed) + SELECTION_SEED_OFFSET


@dataclass(frozen=True)
class MemberValue:
    """One policy's mean return per customer on the held-out selection cohort, and the share of
    those customers it retained to the horizon (None where an older run did not measure it)."""

    seed: int
    value: float
    ci_low: float
    ci_high: float
    retention: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"seed": self.seed, "value": self.value, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "retention": self.retention}


def held_out_value(agent: Any, *, seed: int, scenario: Any = "retail",
                   customers: int = SELECTION_CUSTOMERS, days: int | None = None,
                   env: Any = None, **world: Any) -> MemberValue:
    """The agent's mean return on the held-out cohort `selection_seed(seed)` of its training world.

    `scenario` and `world` (reward_weights, contact_rules, catalogue) describe the built-in world;
    `env` replaces it with a ready vector env of the same world (a fitted customer model), which
    must have been built with `selection_seed(seed)`.
    """
    from agents.evaluate import evaluate  # here: the console's models import this module's sizes

    report = evaluate(agent, scenario, customers=customers, days=days, seed=selection_seed(seed),
                      env=env, **world)
    kpi = report["mean_return"]
    return MemberValue(seed=int(getattr(agent, "seed", seed)), value=float(kpi.value),
                       ci_low=float(kpi.ci_low), ci_high=float(kpi.ci_high),
                       retention=float(report["retention"].value))


def within_retention_guardrail(retention: float | None, control_retention: float | None,
                               tolerance: float | None) -> bool | None:
    """Whether a policy that retained `retention` of the held-out customers loses at most
    `tolerance` (a share: 0.01 is 1 point) to the control's `control_retention` on the same
    customers; None when there is no guardrail or either retention is unknown."""
    if tolerance is None or retention is None or control_retention is None:
        return None
    return retention >= control_retention - tolerance - 1e-12


def daily_leave_limit(control_leave_rate: float, tolerance: float, days: int) -> float:
    """The `max_leave_rate` (customers lost per customer-day) of a policy that may keep at most
    `tolerance` fewer of its customers over `days` than a control that loses `control_leave_rate`
    per customer-day in the same world (`agents.evaluate.leave_rate`): a loss of t points over D
    days is about t / D more per customer-day. A target for training, not a guarantee: the
    held-out check (`within_retention_guardrail`) still decides."""
    if not 0.0 <= control_leave_rate < 1.0:
        raise ValueError("control_leave_rate must be a share in [0, 1), got "
                         f"{control_leave_rate!r}")
    if not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"tolerance must be a share from 0 to 1, got {tolerance!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days!r}")
    return float(min(max(control_leave_rate + tolerance / days, 1e-6), 1.0 - 1e-6))


def choose_member(values: Sequence[MemberValue | float | None],
                  control: MemberValue | None = None,
                  retention_tolerance: float | None = None) -> int:
    """Index of the member to keep: the highest held-out value (the first of equals); with a
    `retention_tolerance`, among the members within the retention guardrail against `control`
    (the control policy's value on the same customers) - among all when none is. Members without
    a value (failed) are never kept; a ValueError when none has one."""
    if retention_tolerance is not None and not 0.0 <= retention_tolerance <= 1.0:
        raise ValueError("retention_tolerance must be a share from 0 to 1, got "
                         f"{retention_tolerance}")
    scored = [(float(v.value if isinstance(v, MemberValue) else v), i)
              for i, v in enumerate(values) if v is not None]
    scored = [(v, i) for v, i in scored if np.isfinite(v)]
    if not scored:
        raise ValueError("no member of the population finished with a held-out value")
    control_retention = None if control is None else control.retention
    guarded = [(v, i) for v, i in scored if isinstance(values[i], MemberValue)
               and within_retention_guardrail(values[i].retention, control_retention,
                                              retention_tolerance)]
    candidates = guarded or scored
    best = max(v for v, _ in candidates)
    return min(i for v, i in candidates if v == best)


@dataclass(frozen=True)
class Consensus:
    """How the population's consensus was made into one policy (`keep_consensus`)."""

    members: int
    """Members whose choices were averaged."""
    states: int
    """Customer-days the kept network learned the consensus on."""
    agreement: float
    """Share of those customer-days on which the kept network's choice is the members' joint one."""
    cross_entropy: float
    """The distillation's final cross-entropy to the averaged choices."""


def consensus_probabilities(members: Sequence[Any], obs: np.ndarray,
                            action_mask: np.ndarray | None = None) -> np.ndarray:
    """The members' action probabilities averaged: (n, A), each row over the allowed actions."""
    if not members:
        raise ValueError("a consensus needs at least one member")
    return np.mean([member.action_probabilities(obs, action_mask) for member in members], axis=0)


def keep_consensus(members: Sequence[Any], *, start: int, env: Any, steps: int, seed: int,
                   epochs: int = 10) -> tuple[Any, Consensus]:
    """One actor_critic that chooses as `members` do together: a copy of `members[start]` (its
    feature scaling and value network kept) whose policy is distilled
    (`agents.offline.distil_policy`) onto the members' averaged probabilities, on `steps`
    customer-days of `env` lived under that average (so it learns where the consensus leads).

    Not used by the console: measured against keeping the best member in BENCHMARKS.md
    ("Learning from the workspace's own logs"), it was steadier on large logs and worse on
    small ones."""
    from agents import loads  # here: agents imports this module's sizes
    from agents.offline import collect, distil_policy

    if not 0 <= start < len(members):
        raise ValueError(f"start must index one of the {len(members)} members, got {start}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    states = collect(env, lambda obs, mask: consensus_probabilities(members, obs, mask), steps,
                     seed=seed)
    masks = states.allowed()
    targets = consensus_probabilities(members, states.obs, masks)
    kept = loads(members[start].to_bytes())
    cross_entropy = distil_policy(kept, states.obs, masks, targets, epochs=epochs, seed=seed)
    agreement = float((kept.act(states.obs, masks) == targets.argmax(axis=1)).mean())
    return kept, Consensus(members=len(members), states=len(states), agreement=agreement,
                           cross_entropy=cross_entropy)
