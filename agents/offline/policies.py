"""Logging policies: who chose the logged actions, and with which probabilities.

Apart from the dataset so that collection, off-policy evaluation and the offline learner share
one definition of "a policy's distribution over the allowed actions".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.algos.base import Agent
from agents.common.masking import uniform_over_mask

__all__ = ["Policy", "explore", "policy_probabilities", "uniform_policy"]

Policy = Agent | Callable[[np.ndarray, np.ndarray], np.ndarray]
"""An Agent, or a callable (obs (n, d), mask (n, A)) -> action probabilities (n, A)."""


def policy_probabilities(policy: Policy, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, A) action probabilities of an Agent or a probability callable, checked against the mask."""
    if isinstance(policy, Agent):
        probs = policy.action_probabilities(obs, mask)
    else:
        probs = np.asarray(policy(obs, mask), dtype=np.float64)
    if probs.shape != mask.shape:
        raise ValueError(f"the policy returned probabilities of shape {probs.shape}; expected {mask.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("the policy returned negative or non-finite probabilities")
    if np.abs(probs.sum(axis=1) - 1.0).max() > 1e-6:
        raise ValueError("the policy's probabilities do not sum to 1")
    if (probs[~mask] > 0).any():
        raise ValueError("the policy puts probability on masked actions")
    return probs


@dataclass
class explore:  # noqa: N801 - reads as a verb where it is used: collect(env, explore(rules, 0.1), ...)
    """A logging policy with epsilon exploration: (1 - epsilon) * policy + epsilon * uniform allowed.

    Every allowed action keeps probability >= epsilon / (allowed actions), so any target policy
    that honours the masks is inside its support and OPE stays unbiased.

    :param policy: the base policy (an Agent or a probability callable)
    :param epsilon: share of uniformly random allowed actions
    """

    policy: Policy
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be in [0, 1]")

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        uniform = uniform_over_mask(mask)
        if self.epsilon >= 1.0:
            return uniform
        return (1.0 - self.epsilon) * policy_probabilities(self.policy, obs, mask) \
            + self.epsilon * uniform


def uniform_policy(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A uniformly random allowed action: the ideal exploratory logging policy."""
    return uniform_over_mask(mask)
