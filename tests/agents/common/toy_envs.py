"""A tiny customer-journey stand-in for tests: a contextual choice with a delayed reward and masks.

Each customer shows one of three "moods" (one-hot); contacting with the matching offer (action
mood + 1) earns +1 *the next day*; a wrong offer costs 0.3 today and makes the customer churn
(terminate) with probability 0.1; "no contact" (action 0) is free and always allowed. Each day
every offer is blocked with probability 0.3 (the mask), so a learner that ignores masks breaks
rules. Episodes last `horizon` days (truncation). The optimal policy: the matching offer when it
is allowed, else no contact.

Observation: [mood one-hot (3), reward pending (1), day / horizon (1)].
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

N_ACTIONS = 4
N_FEATURES = 5


class _ToyCore:
    def __init__(self, n: int, horizon: int, block_prob: float, rng: np.random.Generator):
        self.n, self.horizon, self.block_prob, self.rng = n, horizon, block_prob, rng
        self.mood = np.zeros(n, dtype=np.int64)
        self.pending = np.zeros(n, dtype=bool)
        self.day = np.zeros(n, dtype=np.int64)
        self.mask = np.ones((n, N_ACTIONS), dtype=bool)

    def reset_rows(self, rows: np.ndarray) -> None:
        self.mood[rows] = self.rng.integers(0, 3, size=rows.sum())
        self.pending[rows] = False
        self.day[rows] = 0
        self._draw_mask(rows)

    def _draw_mask(self, rows: np.ndarray) -> None:
        blocked = self.rng.random((self.n, N_ACTIONS)) < self.block_prob
        blocked[:, 0] = False
        self.mask[rows] = ~blocked[rows]

    def obs(self) -> np.ndarray:
        out = np.zeros((self.n, N_FEATURES), dtype=np.float32)
        out[np.arange(self.n), self.mood] = 1.0
        out[:, 3] = self.pending
        out[:, 4] = self.day / self.horizon
        return out

    def step(self, actions: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        reward = np.where(self.pending, 1.0, 0.0)
        contacted = actions > 0
        correct = actions == self.mood + 1
        wrong = contacted & ~correct
        if np.any(~self.mask[np.arange(self.n), actions] & rows):
            self.violations += 1
        reward = reward - 0.3 * wrong
        churn = wrong & (self.rng.random(self.n) < 0.1)
        self.pending = correct
        self.day = self.day + 1
        truncated = (self.day >= self.horizon) & ~churn
        self.mood = np.where(rows, self.rng.integers(0, 3, size=self.n), self.mood)
        self._draw_mask(rows)
        return reward, churn, truncated

    violations = 0


class ToyCampaignVecEnv(gym.vector.VectorEnv):
    """N toy customers in parallel with Gymnasium's autoreset (NEXT_STEP by default)."""

    def __init__(self, num_envs: int = 16, horizon: int = 8, block_prob: float = 0.3,
                 autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.NEXT_STEP,
                 seed: int | None = None):
        self.num_envs = num_envs
        self.metadata = {"autoreset_mode": autoreset_mode}
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (N_FEATURES,), np.float32)
        self.single_action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._core = _ToyCore(num_envs, horizon, block_prob, np.random.default_rng(seed))
        self._autoreset = np.zeros(num_envs, dtype=bool)

    @property
    def violations(self) -> int:
        return self._core.violations

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._core.rng = np.random.default_rng(seed)
        rows = np.ones(self.num_envs, dtype=bool)
        if options and "reset_mask" in options:
            rows = np.asarray(options["reset_mask"], dtype=bool)
        self._core.reset_rows(rows)
        self._autoreset[rows] = False
        return self._core.obs(), {"action_mask": self._core.mask.copy()}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64)
        mode = self.metadata["autoreset_mode"]
        live = ~self._autoreset if mode == gym.vector.AutoresetMode.NEXT_STEP else \
            np.ones(self.num_envs, dtype=bool)
        reward, churn, truncated = self._core.step(actions, live)
        reward, churn, truncated = np.where(live, reward, 0.0), churn & live, truncated & live
        info: dict[str, Any] = {}
        if mode == gym.vector.AutoresetMode.NEXT_STEP and self._autoreset.any():
            self._core.reset_rows(self._autoreset)
        done = churn | truncated
        if mode == gym.vector.AutoresetMode.SAME_STEP and done.any():
            final_obs = np.empty(self.num_envs, dtype=object)
            obs_now = self._core.obs()
            for row in np.flatnonzero(done):
                final_obs[row] = obs_now[row]
            info["final_obs"] = final_obs
            info["final_info"] = {"action_mask": self._core.mask.copy()}
            self._core.reset_rows(done)
        self._autoreset = done if mode == gym.vector.AutoresetMode.NEXT_STEP else \
            np.zeros(self.num_envs, dtype=bool)
        info["action_mask"] = self._core.mask.copy()
        return self._core.obs(), reward, churn, truncated, info


class ToyCampaignEnv(gym.Env):
    """One toy customer (a plain `gymnasium.Env`)."""

    def __init__(self, horizon: int = 8, block_prob: float = 0.3):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (N_FEATURES,), np.float32)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self._horizon, self._block_prob = horizon, block_prob
        self._core: _ToyCore | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._core is None or seed is not None:
            self._core = _ToyCore(1, self._horizon, self._block_prob, self.np_random)
        self._core.reset_rows(np.ones(1, dtype=bool))
        return self._core.obs()[0], {"action_mask": self._core.mask[0].copy()}

    def step(self, action):
        reward, churn, truncated = self._core.step(np.array([int(action)]), np.ones(1, dtype=bool))
        return (self._core.obs()[0], float(reward[0]), bool(churn[0]), bool(truncated[0]),
                {"action_mask": self._core.mask[0].copy()})


def optimal_actions(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The toy's optimal policy: the matching offer when allowed, else no contact."""
    best = obs[:, :3].argmax(axis=1) + 1
    allowed = mask[np.arange(len(best)), best]
    return np.where(allowed, best, 0)


def average_return(policy, episodes: int = 400, seed: int = 123, horizon: int = 8) -> float:
    """Mean undiscounted return of `policy(obs, mask) -> actions` over fresh toy customers."""
    env = ToyCampaignVecEnv(num_envs=episodes, horizon=horizon, seed=seed)
    obs, info = env.reset(seed=seed)
    mask = info["action_mask"]
    total = np.zeros(episodes)
    alive = np.ones(episodes, dtype=bool)
    for _ in range(horizon):
        actions = np.asarray(policy(obs, mask))
        obs, reward, terminated, truncated, info = env.step(actions)
        total += np.where(alive, reward, 0.0)
        alive &= ~(terminated | truncated)
        mask = info["action_mask"]
        if not alive.any():
            break
    return float(total.mean())
