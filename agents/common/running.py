"""Running statistics: observation normalisation and reward scaling for the deep learners.

Customer features arrive roughly in [0, 1] but with very different spreads (a consent flag vs a
recency), and rewards are in currency units (a purchase of 80, a churn of -50): networks learn
faster on standardised inputs and targets, so the deep learners keep running moments here.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanStd:
    """Mean and variance over everything seen so far (Chan et al.'s parallel update, as in SB3).

    :param shape: shape of one sample (e.g. (n_features,) or ())
    :param epsilon: pseudo-count of the initial (0, 1) estimate, so early updates are stable
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of samples (first axis = samples) into the moments."""
        batch = np.asarray(batch, dtype=np.float64)
        if batch.shape[0] == 0:
            return
        batch_mean, batch_var, batch_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(state["count"])


class ObservationNormalizer:
    """(obs - mean) / std, clipped; frozen outside `update` so acting never changes it.

    :param n_features: width of an observation
    :param clip: clip normalised features to [-clip, clip]
    :param enabled: False makes it the identity (but it still validates shapes)
    """

    def __init__(self, n_features: int, clip: float = 5.0, enabled: bool = True):
        self.stats = RunningMeanStd((n_features,))
        self.clip = float(clip)
        self.enabled = bool(enabled)

    def update(self, obs: np.ndarray) -> None:
        if self.enabled:
            self.stats.update(obs)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return np.asarray(obs, dtype=np.float32)
        normalised = (obs - self.stats.mean) / np.sqrt(self.stats.var + 1e-8)
        return np.clip(normalised, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state)


class RewardScaler:
    """Divide rewards by the running std of the discounted return (SB3 VecNormalize's reward part).

    Keeps value targets O(1) whatever the currency, without shifting rewards (a shift would change
    the optimal policy when episodes can end early, e.g. by churn).

    :param n_slots: number of parallel customer slots
    :param gamma: the learner's discount
    :param enabled: False makes `scale` the identity
    """

    def __init__(self, n_slots: int, gamma: float, enabled: bool = True):
        self.stats = RunningMeanStd(())
        self.gamma = float(gamma)
        self.enabled = bool(enabled)
        self._returns = np.zeros(n_slots, dtype=np.float64)

    def resize(self, n_slots: int) -> None:
        """Start tracking a (possibly different) number of slots, e.g. for a new `fit` call."""
        self._returns = np.zeros(n_slots, dtype=np.float64)

    def update(self, reward: np.ndarray, done: np.ndarray, valid: np.ndarray) -> None:
        if not self.enabled:
            return
        self._returns = np.where(valid, self._returns * self.gamma + reward, self._returns)
        self.stats.update(self._returns[valid])
        self._returns[done] = 0.0

    def scale(self, reward: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return reward
        return reward / np.sqrt(self.stats.var + 1e-8)

    @property
    def factor(self) -> float:
        """What one unit of reward becomes after scaling."""
        return float(1.0 / np.sqrt(self.stats.var + 1e-8)) if self.enabled else 1.0

    def state_dict(self) -> dict[str, Any]:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state)
