"""A contextual-bandit stand-in for tests: the immediate reward is linear in the features.

Action a's expected reward for a customer with features x is ``x @ WEIGHTS[a]``; observed rewards
add Gaussian noise. Each day every action except 0 is blocked with probability `block_prob`.
Episodes last `horizon` days (NEXT_STEP autoreset). `expected_reward(policy)` scores a policy
exactly (no reward noise) on fresh customers, so learners can be compared with random.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

N_FEATURES = 3
WEIGHTS = np.array([
    [0.0, 0.0, 0.0],    # no contact: always 0
    [2.0, -1.0, 0.0],   # best for customers high on feature 0
    [-1.0, 2.0, 0.0],   # best for customers high on feature 1
    [0.0, -1.0, 1.5],   # best for customers high on feature 2
    [-0.5, -0.5, -0.5],  # never worth it
])
N_ACTIONS = WEIGHTS.shape[0]
OBS_SPACE = gym.spaces.Box(0.0, 1.0, (N_FEATURES,), np.float32)
ACTION_SPACE = gym.spaces.Discrete(N_ACTIONS)


class LinearRewardVecEnv(gym.vector.VectorEnv):
    """N customers with uniform features; reward linear in the features per action."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 32, horizon: int = 5, block_prob: float = 0.3,
                 noise: float = 0.5, seed: int = 0):
        self.num_envs, self.horizon, self.block_prob, self.noise = num_envs, horizon, block_prob, noise
        self.single_observation_space, self.single_action_space = OBS_SPACE, ACTION_SPACE
        self.observation_space = gym.vector.utils.batch_space(OBS_SPACE, num_envs)
        self.action_space = gym.vector.utils.batch_space(ACTION_SPACE, num_envs)
        self.rng = np.random.default_rng(seed)
        self.violations = 0

    def _draw(self, rows: np.ndarray) -> None:
        self.obs[rows] = self.rng.random((rows.sum(), N_FEATURES)).astype(np.float32)
        blocked = self.rng.random((self.num_envs, N_ACTIONS)) < self.block_prob
        blocked[:, 0] = False
        self.mask[rows] = ~blocked[rows]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.obs = np.zeros((self.num_envs, N_FEATURES), dtype=np.float32)
        self.mask = np.ones((self.num_envs, N_ACTIONS), dtype=bool)
        self.day = np.zeros(self.num_envs, dtype=np.int64)
        self.pending_reset = np.zeros(self.num_envs, dtype=bool)
        self._draw(np.ones(self.num_envs, dtype=bool))
        return self.obs.copy(), {"action_mask": self.mask.copy()}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64)
        live = ~self.pending_reset
        self.violations += int((~self.mask[np.arange(self.num_envs), actions] & live).sum())
        mean = (self.obs * WEIGHTS[actions]).sum(axis=1)
        reward = np.where(live, mean + self.noise * self.rng.standard_normal(self.num_envs), 0.0)
        self.day = np.where(live, self.day + 1, 0)
        truncated = live & (self.day >= self.horizon)
        self._draw(np.ones(self.num_envs, dtype=bool))
        self.pending_reset = truncated
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self.obs.copy(), reward, terminated, truncated, {"action_mask": self.mask.copy()}


def fresh_customers(n: int = 2000, seed: int = 99, block_prob: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.random((n, N_FEATURES)).astype(np.float32)
    mask = rng.random((n, N_ACTIONS)) >= block_prob
    mask[:, 0] = True
    return obs, mask


def expected_reward(actions: np.ndarray, obs: np.ndarray) -> float:
    """Mean expected immediate reward of `actions` for customers `obs` (no noise)."""
    return float((obs * WEIGHTS[actions]).sum(axis=1).mean())


def best_actions(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, obs @ WEIGHTS.T, -np.inf).argmax(axis=1)
