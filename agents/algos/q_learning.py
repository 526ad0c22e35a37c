"""Tabular Q-learning on discretised customer states (Watkins & Dayan 1992): the seeds' baseline.

A customer's feature vector is mapped to a discrete state by binning a few key features (see
`StateDiscretiser`); each distinct combination of bins gets a row of the Q-table the first time
it is seen. Features that take only a few values (the `tabular` scenario's states) keep one bin
per value, so the discretiser is the identity on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from agents.common.vec import CustomerBatch
from agents.algos.base import Agent, ProgressCallback, TrainingReport
from agents.common.masking import masked_argmax, sample_from, uniform_over_mask

# Features a marketer would segment on first: recency, engagement and recent contact pressure.
DEFAULT_STATE_FEATURES: tuple[str, ...] = (
    "days_since_last_purchase",
    "email_click_rate_30d",
    "contacts_last_7d",
    "fatigue",
)


class StateDiscretiser:
    """Maps feature vectors (n, d) to integer states (n,) by per-feature bins.

    Bin edges come from the first observations seen (`fit`): a feature with at most
    `max_levels` distinct values gets one bin per value (edges at the midpoints), any other gets
    `n_bins` quantile bins. The joint bin index of the chosen features is the state; states are
    numbered in the order they are first met, and a state never seen maps to -1.
    """

    def __init__(self, feature_indices: list[int], n_bins: int, max_levels: int):
        self.feature_indices = list(feature_indices)
        self.n_bins = int(n_bins)
        self.max_levels = int(max_levels)
        self.edges: list[np.ndarray] = []
        self.keys = np.zeros((0, len(self.feature_indices)), dtype=np.int64)  # (S, k) bins per state
        self._lookup: dict[bytes, int] = {}

    @property
    def fitted(self) -> bool:
        return len(self.edges) == len(self.feature_indices)

    @property
    def n_states(self) -> int:
        return self.keys.shape[0]

    def fit(self, obs: np.ndarray) -> None:
        self.edges = []
        for j in self.feature_indices:
            values = np.unique(obs[:, j].astype(np.float64))
            if values.size <= self.max_levels:
                edges = (values[1:] + values[:-1]) / 2.0  # one bin per value: identity
            else:
                qs = np.quantile(obs[:, j], np.linspace(0, 1, self.n_bins + 1)[1:-1])
                edges = np.unique(qs.astype(np.float64))
            self.edges.append(edges)

    def bins(self, obs: np.ndarray) -> np.ndarray:
        """Per-feature bin index, (n, k)."""
        cols = [np.searchsorted(e, obs[:, j], side="right")
                for j, e in zip(self.feature_indices, self.edges, strict=True)]
        return np.stack(cols, axis=1).astype(np.int64) if cols else np.zeros((obs.shape[0], 0), np.int64)

    def states(self, obs: np.ndarray, add_new: bool = False) -> np.ndarray:
        """State id per customer (n,); unseen combinations get a new id or -1."""
        keys = self.bins(obs)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        ids = np.empty(unique.shape[0], dtype=np.int64)
        new_keys = []
        for u, key in enumerate(unique):  # a loop over distinct states, not customers
            state = self._lookup.get(key.tobytes())
            if state is None and add_new:
                state = self.n_states + len(new_keys)
                self._lookup[key.tobytes()] = state
                new_keys.append(key)
            ids[u] = -1 if state is None else state
        if new_keys:
            self.keys = np.concatenate([self.keys, np.stack(new_keys)], axis=0)
        return ids[inverse.reshape(-1)]

    def get_state(self) -> dict[str, Any]:
        return {"edges": [e.copy() for e in self.edges], "keys": self.keys.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.edges = [np.asarray(e, dtype=np.float64) for e in state["edges"]]
        self.keys = np.asarray(state["keys"], dtype=np.int64).reshape(-1, len(self.feature_indices))
        self._lookup = {key.tobytes(): i for i, key in enumerate(self.keys)}


@dataclass
class QLearningConfig:
    gamma: float = 0.95
    """Daily discount factor of future reward."""
    min_learning_rate: float = 0.02
    """Floor of the step size; above it each (state, action) averages its samples (1 / visits)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of training."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    exploration_fraction: float = 0.5
    """Share of the training budget over which epsilon decays linearly."""
    state_features: tuple[str | int, ...] | None = None
    """Features binned into the state, by name (agents.features) or index; None: a default set
    (DEFAULT_STATE_FEATURES if the observation is the console's feature vector, else all)."""
    n_bins: int = 4
    """Quantile bins per continuous state feature."""
    max_levels: int = 12
    """A feature with at most this many distinct values is kept as is (one bin per value)."""
    initial_q: float = 0.0
    """Q-value of an unvisited (state, action)."""


class QLearning(Agent):
    """Tabular Q-learning (Watkins & Dayan, Machine Learning 1992) with epsilon-greedy exploration.

    Each customer-day updates ``Q(s, a) += rate * (r + gamma * max_{a' allowed} Q(s', a') - Q(s, a))``
    with no bootstrap when the customer churned; the max only runs over the actions the next day's
    mask allows, and acting is greedy over allowed actions. The customers of a day are applied as
    one batched update per visited (state, action): the mean TD error with the rate that averaging
    those samples would give.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds exploration
    :param gamma: discount factor
    :param min_learning_rate: step-size floor
    :param exploration_initial_eps: epsilon at the start
    :param exploration_final_eps: epsilon at the end of the decay
    :param exploration_fraction: share of the budget for the decay
    :param state_features: names or indices of the features binned into the state
    :param n_bins: quantile bins per continuous feature
    :param max_levels: distinct values under which a feature is used as is
    :param initial_q: value of unvisited entries
    """

    name = "q_learning"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 gamma: float = 0.95, min_learning_rate: float = 0.02,
                 exploration_initial_eps: float = 1.0, exploration_final_eps: float = 0.05,
                 exploration_fraction: float = 0.5,
                 state_features: tuple[str | int, ...] | list[str | int] | None = None,
                 n_bins: int = 4, max_levels: int = 12, initial_q: float = 0.0):
        super().__init__(observation_space, action_space, seed=seed)
        if not 0.0 <= gamma < 1.0:
            raise ValueError("gamma must lie in [0, 1)")
        if not 0.0 < min_learning_rate <= 1.0:
            raise ValueError("min_learning_rate must lie in (0, 1]")
        for eps in (exploration_initial_eps, exploration_final_eps):
            if not 0.0 <= eps <= 1.0:
                raise ValueError("exploration epsilons must lie in [0, 1]")
        if not 0.0 < exploration_fraction <= 1.0:
            raise ValueError("exploration_fraction must lie in (0, 1]")
        if int(n_bins) < 1 or int(max_levels) < 1:
            raise ValueError("n_bins and max_levels must be >= 1")
        self.config = QLearningConfig(
            gamma=float(gamma), min_learning_rate=float(min_learning_rate),
            exploration_initial_eps=float(exploration_initial_eps),
            exploration_final_eps=float(exploration_final_eps),
            exploration_fraction=float(exploration_fraction),
            state_features=None if state_features is None else tuple(state_features),
            n_bins=int(n_bins), max_levels=int(max_levels), initial_q=float(initial_q),
        )
        self.discretiser = StateDiscretiser(self._feature_indices(), self.config.n_bins,
                                            self.config.max_levels)
        self.q_table = np.zeros((0, self.n_actions))  # (S, A), grows as states are met
        self.visits = np.zeros((0, self.n_actions), dtype=np.int64)

    def _feature_indices(self) -> list[int]:
        wanted = self.config.state_features
        if wanted is None:
            names = _console_feature_names()
            if names is not None and len(names) == self.n_features and all(
                    f in names for f in DEFAULT_STATE_FEATURES):
                wanted = DEFAULT_STATE_FEATURES
            else:
                return list(range(self.n_features))
        indices = []
        names = _console_feature_names()
        for f in wanted:
            if isinstance(f, str):
                if names is None or f not in names or len(names) != self.n_features:
                    raise ValueError(f"unknown state feature {f!r} for this observation space")
                indices.append(names.index(f))
            else:
                if not 0 <= int(f) < self.n_features:
                    raise ValueError(f"state feature index {f} out of range")
                indices.append(int(f))
        return indices

    # -------------------------------------------------------------- the table
    def _grow(self) -> None:
        missing = self.discretiser.n_states - self.q_table.shape[0]
        if missing > 0:
            self.q_table = np.vstack([self.q_table,
                                      np.full((missing, self.n_actions), self.config.initial_q)])
            self.visits = np.vstack([self.visits, np.zeros((missing, self.n_actions), np.int64)])

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of every action in each customer's discretised state, (n, A)."""
        obs = self._check_obs(obs)
        out = np.full((obs.shape[0], self.n_actions), self.config.initial_q)
        if not self.discretiser.fitted:
            return out
        states = self.discretiser.states(obs)
        seen = states >= 0
        out[seen] = self.q_table[states[seen]]
        return out

    def states(self, obs: np.ndarray) -> np.ndarray:
        """Discrete state id per customer (-1 for a state never met in training)."""
        obs = self._check_obs(obs)
        if not self.discretiser.fitted:
            return np.full(obs.shape[0], -1, dtype=np.int64)
        return self.discretiser.states(obs)

    def _epsilon(self, steps: int, total_steps: int) -> float:
        c = self.config
        progress = min(1.0, steps / (c.exploration_fraction * total_steps))
        return c.exploration_initial_eps + progress * (c.exploration_final_eps - c.exploration_initial_eps)

    # -------------------------------------------------------------- learning
    def _fit(
        self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
        report: TrainingReport, callback: ProgressCallback | None,
    ) -> None:
        c = self.config
        started = time.perf_counter()
        batch = CustomerBatch(env, self.observation_space, self.action_space)
        obs, mask = batch.reset(seed=self.seed)
        if not self.discretiser.fitted:
            self.discretiser.fit(obs)
        report_every = max(1, total_steps // 50)
        next_report, finished_at_report = report_every, 0
        states = self.discretiser.states(obs, add_new=True)
        self._grow()
        rows = np.arange(batch.n)
        while batch.env_steps < total_steps:
            # 1. epsilon-greedy over the allowed actions
            eps = self._epsilon(batch.env_steps, total_steps)
            greedy = np.zeros(mask.shape)
            greedy[rows, masked_argmax(self.q_table[states], mask)] = 1.0
            actions = sample_from((1 - eps) * greedy + eps * uniform_over_mask(mask), self.rng)
            # 2. one day passes
            step = batch.step(actions)
            next_states = self.discretiser.states(step.next_obs, add_new=True)
            self._grow()
            # 3. TD target: reward + discounted best allowed next action (none after churn)
            next_q = np.where(step.next_mask, self.q_table[next_states], -np.inf).max(axis=1)
            target = step.reward + c.gamma * np.where(step.terminated, 0.0, next_q)
            # 4. batched update: per visited (state, action), its mean TD error at the rate that
            #    averaging those samples gives, never below the floor
            valid = step.valid
            flat = states[valid] * self.n_actions + actions[valid]
            q_flat, visits = self.q_table.reshape(-1), self.visits.reshape(-1)
            td = target[valid] - q_flat[flat]
            count = np.bincount(flat, minlength=q_flat.size)
            td_sum = np.bincount(flat, weights=td, minlength=q_flat.size)
            touched = np.flatnonzero(count)
            visits[touched] += count[touched]
            rate = np.maximum(count[touched] / visits[touched],
                              1.0 - (1.0 - c.min_learning_rate) ** count[touched])
            q_flat[touched] += rate * td_sum[touched] / count[touched]
            # 5. move on (slots whose customer left now hold a new customer)
            obs, mask = step.obs, step.mask
            states = next_states if step.obs is step.next_obs else self.discretiser.states(obs, add_new=True)
            self._grow()
            if batch.env_steps >= next_report or batch.env_steps >= total_steps:
                next_report += report_every
                mean_return = None
                if batch.n_finished > finished_at_report:
                    mean_return = batch.recent_mean_return()
                    report.record(batch.env_steps, mean_return)
                    finished_at_report = batch.n_finished
                if not self._report_progress(callback, report, batch.env_steps, total_steps,
                                             mean_return, started):
                    break
        report.env_steps = batch.env_steps
        report.extra["n_states"] = float(self.discretiser.n_states)

    # -------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, Any]:
        return {"q_table": self.q_table, "visits": self.visits,
                "discretiser": self.discretiser.get_state(), "fitted": self.discretiser.fitted}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.q_table = np.asarray(state["q_table"], dtype=np.float64).reshape(-1, self.n_actions).copy()
        self.visits = np.asarray(state["visits"], dtype=np.int64).reshape(-1, self.n_actions).copy()
        if state["fitted"]:
            self.discretiser.set_state(state["discretiser"])


def _console_feature_names() -> list[str] | None:
    """The console's feature names, if agents.features exists yet."""
    try:
        from agents.features import FEATURE_NAMES
    except ImportError:
        return None
    return list(FEATURE_NAMES)
