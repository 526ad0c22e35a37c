"""What a few example customer journeys would earn under a set of reward weights.

The marketer tunes RewardWeights and sees, before saving, how the reward the agent will maximise
ranks these journeys. Priced with `agents.rewards.reward`, exactly as training and attribution do,
and discounted day by day with the campaign's discount factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.catalogue import DEFAULT_CHANNELS
from agents.rewards import Outcomes, RewardWeights, reward

EMAIL, SMS, PUSH, CALL = "email", "sms", "push", "call_centre"

# (title, [(day, {outcome: amount})]); "contact" names the channel, priced at the workspace's cost
# per contact (the catalogue's one price)
EXAMPLE_JOURNEYS: tuple[tuple[str, tuple[tuple[int, dict[str, float | str]], ...]], ...] = (
    ("Email with 10 % off: opened, clicked, ordered 60 (54 net)", (
        (0, {"contact": EMAIL, "opens": 1}),
        (1, {"clicks": 1, "conversions": 1, "net_revenue": 54.0}),
    )),
    ("Left alone, bought 40 anyway", (
        (6, {"conversions": 1, "net_revenue": 40.0}),
    )),
    ("Three SMS in a week, no response, unsubscribed", (
        (0, {"contact": SMS}), (2, {"contact": SMS}),
        (4, {"contact": SMS, "unsubscribes": 1}),
    )),
    ("Weekly push for a month: two opens, no order", (
        (0, {"contact": PUSH, "opens": 1}), (7, {"contact": PUSH}),
        (14, {"contact": PUSH, "opens": 1}), (21, {"contact": PUSH}),
    )),
    ("Call-centre win-back call, customer churned anyway", (
        (0, {"contact": CALL}), (20, {"churns": 1}),
    )),
)


@dataclass(frozen=True)
class JourneyReward:
    title: str
    reward: float
    discounted: float
    components: dict[str, float]


def reward_preview(*, weights: dict[str, float], discount_factor: float = 1.0,
                   channel_costs: dict[str, float] | None = None) -> list[JourneyReward]:
    """Each example journey's total reward (and discounted return) under `weights`, a contact
    priced at `channel_costs` (the workspace's channels; default: the demo's)."""
    costs = {c.key: c.cost for c in DEFAULT_CHANNELS} | (channel_costs or {})
    agent_weights = RewardWeights(**{k: float(v) for k, v in weights.items()})
    days: list[int] = []
    owner: list[int] = []
    columns: dict[str, list[float]] = {name: [] for name in Outcomes.__dataclass_fields__}
    for j, (_, steps) in enumerate(EXAMPLE_JOURNEYS):
        for day, outcome in steps:
            days.append(day)
            owner.append(j)
            priced = {**outcome, "contact_cost": costs[outcome["contact"]]} \
                if "contact" in outcome else outcome
            for name in columns:
                columns[name].append(float(priced.get(name, 0.0)))
    outcomes = Outcomes(**{name: np.asarray(values) for name, values in columns.items()})
    per_step = reward(outcomes, agent_weights)
    owner_arr, days_arr = np.asarray(owner), np.asarray(days, dtype=np.float64)
    totals = np.bincount(owner_arr, weights=per_step, minlength=len(EXAMPLE_JOURNEYS))
    discounted = np.bincount(owner_arr, weights=per_step * discount_factor ** days_arr,
                             minlength=len(EXAMPLE_JOURNEYS))
    field_of = {"opens": "open", "clicks": "click", "conversions": "conversion",
                "net_revenue": "revenue", "unsubscribes": "unsubscribe", "churns": "churn",
                "contact_cost": "contact_cost"}
    results = []
    for j, (title, _) in enumerate(EXAMPLE_JOURNEYS):
        mine = owner_arr == j
        components = {}
        for name, values in columns.items():
            amount = float(np.asarray(values)[mine].sum())
            earned = getattr(agent_weights, field_of[name]) * amount
            if earned:  # outcomes with weight 0 earn nothing: not worth a line
                components[field_of[name]] = round(earned, 4)
        results.append(JourneyReward(title, float(totals[j]), float(discounted[j]), components))
    return results
