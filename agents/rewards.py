"""Reward: how a campaign's weights turn one day's outcomes into a number to maximise.

The console's RewardWeights model mirrors `RewardWeights` field for field; the simulator and the
console's attribution both build an `Outcomes` and call `reward`, so "reward" means the same in
training and in production.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class RewardWeights:
    """Weight of each outcome in the reward (defaults: net revenue minus costs and penalties)."""

    open: float = 0.0
    """Per message opened (0 by default: opens are a means, not the goal)."""
    click: float = 0.0
    """Per link clicked."""
    conversion: float = 0.0
    """Per order, on top of its revenue."""
    revenue: float = 1.0
    """Per currency unit of NET revenue (after the discount was taken off)."""
    unsubscribe: float = -20.0
    """Per channel unsubscribed from (the lost ability to reach the customer there)."""
    churn: float = -50.0
    """Per customer who churns (stops buying for good)."""
    contact_cost: float = -1.0
    """Multiplies the contact cost of the action sent (currency units)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"reward weight {f.name!r} must be a finite number, got {value!r}")

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass
class Outcomes:
    """What happened to each of n customers in one step (one day); each field is (n,) float."""

    opens: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    net_revenue: np.ndarray
    unsubscribes: np.ndarray
    churns: np.ndarray
    contact_cost: np.ndarray

    def __post_init__(self) -> None:
        shape = None
        for f in fields(self):
            value = np.asarray(getattr(self, f.name), dtype=np.float64)
            if value.ndim != 1:
                raise ValueError(f"outcome {f.name!r} must be a 1-D array, got shape {value.shape}")
            if shape is not None and value.shape != shape:
                raise ValueError(f"outcome {f.name!r} has shape {value.shape}; others have {shape}")
            shape = value.shape
            setattr(self, f.name, value)

    @classmethod
    def zeros(cls, n: int) -> Outcomes:
        return cls(**{f.name: np.zeros(n) for f in fields(cls)})

    def __len__(self) -> int:
        return int(self.opens.shape[0])


def reward(outcomes: Outcomes, weights: RewardWeights | None = None) -> np.ndarray:
    """(n,) reward: the weighted sum of the outcomes (contact cost enters with its weight)."""
    w = weights or RewardWeights()
    return (
        w.open * outcomes.opens
        + w.click * outcomes.clicks
        + w.conversion * outcomes.conversions
        + w.revenue * outcomes.net_revenue
        + w.unsubscribe * outcomes.unsubscribes
        + w.churn * outcomes.churns
        + w.contact_cost * outcomes.contact_cost
    )
