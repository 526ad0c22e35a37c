"""One code path for a single `gymnasium.Env` and a `gymnasium.vector.VectorEnv` of customers.

Every learner drives its environment through `CustomerBatch`, so none of them has to know whether
it sees one customer (`gymnasium.Env`) or N customers in parallel (`CustomerJourneyEnv`, any
Gymnasium vector env), nor which autoreset mode the vector env uses::

    batch = CustomerBatch(env, observation_space, action_space)   # checks the spaces match
    obs, mask = batch.reset(seed=0)                                # (n, d) float32, (n, A) bool
    while batch.env_steps < total_steps:
        actions = policy(obs, mask)                                # (n,) int, never masked
        step = batch.step(actions)
        learn_from(obs, actions, step.reward, step.next_obs, step.terminated, step.truncated,
                   step.next_mask, where=step.valid)
        obs, mask = step.obs, step.mask
    batch.finished_returns()                                       # episodes that ended, in order

What `step` returns (a `Step`, all arrays have n rows, one per customer slot):

- `obs`, `mask`: what the customer in that slot looks like *now* and which actions are allowed for
  them: the input of the next decision (`info["action_mask"]`, all-True when the env gives none).
- `reward`, `terminated` (churned / unsubscribed from everything: do not bootstrap), `truncated`
  (horizon reached: bootstrap from `next_obs`).
- `next_obs`, `next_mask`: the state the action led to. Equal to `obs` / `mask` except in rows
  whose episode just ended under same-step autoreset, where `obs` is already the next customer.
- `valid`: False in rows where the step was not a transition: under Gymnasium's default NEXT_STEP
  autoreset the step after an episode ends only resets that slot (the action is ignored, the
  reward is 0). Learners drop those rows; episode returns and `env_steps` already account for them.

Autoreset modes: NEXT_STEP (Gymnasium's default, `CustomerJourneyEnv`) is passed through;
SAME_STEP takes `info["final_obs"]` / `info["final_info"]`; DISABLED and a single `gymnasium.Env`
are reset by this class in the same step (so they behave like SAME_STEP). `env_steps` counts
customer-days: n per `step` call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from agents.common.masking import MASK_KEY, validate_mask
from agents.common.masking import mask_from_info as _mask_from_info

__all__ = ["CustomerBatch", "Step", "check_env_spaces"]


@dataclass
class Step:
    """One day for every customer slot (see the module docstring for each field's meaning)."""

    obs: np.ndarray
    mask: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: np.ndarray
    next_mask: np.ndarray
    valid: np.ndarray
    info: dict[str, Any]

    @property
    def done(self) -> np.ndarray:
        """Rows whose episode ended with this step (churn or horizon)."""
        return self.terminated | self.truncated


def check_env_spaces(
    env: gym.Env | gym.vector.VectorEnv, observation_space: gym.Space, action_space: gym.Space,
) -> None:
    """Raise a clear error when `env` is not an env this agent was built for."""
    if isinstance(env, gym.vector.VectorEnv):
        env_obs, env_act = env.single_observation_space, env.single_action_space
    elif isinstance(env, gym.Env):
        env_obs, env_act = env.observation_space, env.action_space
    else:
        raise TypeError(f"env must be a gymnasium.Env or gymnasium.vector.VectorEnv, got {type(env)!r}")
    if not isinstance(env_obs, gym.spaces.Box) or len(env_obs.shape) != 1:
        raise TypeError(f"env needs a 1-D Box observation space, got {env_obs!r}")
    if not isinstance(env_act, gym.spaces.Discrete):
        raise TypeError(f"env needs a Discrete action space, got {env_act!r}")
    if env_obs.shape != observation_space.shape:
        raise ValueError(
            f"env observations have shape {env_obs.shape}; the agent was built for "
            f"{observation_space.shape}"
        )
    if int(env_act.n) != int(action_space.n):
        raise ValueError(f"env has {int(env_act.n)} actions; the agent was built for {int(action_space.n)}")


def mask_from_info(info: Mapping[str, Any] | None, n: int, n_actions: int) -> np.ndarray:
    """`masking.mask_from_info`, as a writable (n, A) array the caller owns (torch needs that)."""
    return np.array(_mask_from_info(info, n, n_actions), dtype=bool, copy=True)


class CustomerBatch:
    """Drive a single env or a vector env as a batch of `n` customer slots (see module docstring).

    :param env: a `gymnasium.Env` (n = 1) or a `gymnasium.vector.VectorEnv` (n = num_envs), with a
        1-D Box observation space and a Discrete action space
    :param observation_space: the single-customer space the learner was built for (checked)
    :param action_space: the single-customer action space the learner was built for (checked)
    :param max_finished: how many finished episode returns to keep for `recent_mean_return`
    """

    def __init__(
        self, env: gym.Env | gym.vector.VectorEnv, observation_space: gym.Space,
        action_space: gym.Space, max_finished: int = 100_000,
    ):
        check_env_spaces(env, observation_space, action_space)
        self.env = env
        self.is_vector = isinstance(env, gym.vector.VectorEnv)
        self.n = int(env.num_envs) if self.is_vector else 1
        self.n_features = int(observation_space.shape[0])
        self.n_actions = int(action_space.n)
        mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) \
            if self.is_vector else None
        if isinstance(mode, str):
            mode = gym.vector.AutoresetMode(mode)
        self.autoreset_mode = mode
        self.env_steps = 0
        self.max_finished = int(max_finished)
        self._returns: list[float] = []
        self._lengths: list[int] = []
        self._running_return = np.zeros(self.n, dtype=np.float64)
        self._running_length = np.zeros(self.n, dtype=np.int64)
        self._pending_reset = np.zeros(self.n, dtype=bool)
        self._obs: np.ndarray | None = None
        self._mask: np.ndarray | None = None

    # ------------------------------------------------------------------ driving the env
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Start every slot with a fresh customer; returns (obs (n, d), mask (n, A))."""
        obs, info = self.env.reset(seed=seed)
        self._obs, self._mask = self._batch_obs(obs), mask_from_info(info, self.n, self.n_actions)
        self._running_return[:] = 0.0
        self._running_length[:] = 0
        self._pending_reset[:] = False
        return self._obs, self._mask

    def step(self, actions: np.ndarray) -> Step:
        """Apply one action per slot; returns the `Step` (see the module docstring)."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n)
        if self.is_vector:
            step = self._step_vector(actions)
        else:
            step = self._step_single(actions)
        self.env_steps += self.n
        self._track_episodes(step)
        self._obs, self._mask = step.obs, step.mask
        return step

    @property
    def obs(self) -> np.ndarray:
        """The current observations (n, d), as last returned by reset/step."""
        if self._obs is None:
            raise RuntimeError("call reset() first")
        return self._obs

    @property
    def mask(self) -> np.ndarray:
        """The current allowed actions (n, A)."""
        if self._mask is None:
            raise RuntimeError("call reset() first")
        return self._mask

    # ------------------------------------------------------------------ episode statistics
    def finished_returns(self) -> np.ndarray:
        """Undiscounted returns of every episode finished so far (oldest first, capped)."""
        return np.asarray(self._returns, dtype=np.float64)

    def finished_lengths(self) -> np.ndarray:
        """Lengths (days) of the episodes in `finished_returns`."""
        return np.asarray(self._lengths, dtype=np.int64)

    @property
    def n_finished(self) -> int:
        return len(self._returns)

    def recent_mean_return(self, last: int | None = None) -> float | None:
        """Mean return of the last `last` finished episodes (default: up to one per slot)."""
        if not self._returns:
            return None
        last = self.n if last is None else int(last)
        return float(np.mean(self._returns[-max(1, last):]))

    # ------------------------------------------------------------------ internals
    def _batch_obs(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        return obs.reshape(self.n, self.n_features)

    def _step_vector(self, actions: np.ndarray) -> Step:
        was_pending = self._pending_reset.copy()
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs = self._batch_obs(obs)
        reward = np.asarray(reward, dtype=np.float64).reshape(self.n)
        terminated = np.asarray(terminated, dtype=bool).reshape(self.n)
        truncated = np.asarray(truncated, dtype=bool).reshape(self.n)
        mask = mask_from_info(info, self.n, self.n_actions)
        done = terminated | truncated
        valid = np.ones(self.n, dtype=bool)
        next_obs, next_mask = obs, mask
        mode = self.autoreset_mode
        if mode == gym.vector.AutoresetMode.NEXT_STEP:
            # the slots that ended last step were only reset now: not a transition
            valid = ~was_pending
            terminated = terminated & valid
            truncated = truncated & valid
            reward = np.where(valid, reward, 0.0)
            self._pending_reset = terminated | truncated
        elif mode == gym.vector.AutoresetMode.SAME_STEP:
            if done.any():
                next_obs, next_mask = self._final_from_info(info, done, obs, mask)
        elif mode == gym.vector.AutoresetMode.DISABLED:
            if done.any():
                next_obs, next_mask = obs.copy(), mask.copy()
                reset_obs, reset_info = self.env.reset(options={"reset_mask": done.copy()})
                reset_obs = self._batch_obs(reset_obs)
                obs = np.where(done[:, None], reset_obs, obs)
                if MASK_KEY in reset_info:
                    reset_mask = np.asarray(reset_info[MASK_KEY], dtype=bool).reshape(self.n, -1)
                    mask = np.where(done[:, None], reset_mask, mask)
                    mask = validate_mask(mask, self.n, self.n_actions)
        else:  # pragma: no cover - Gymnasium has only the three modes
            raise ValueError(f"unsupported autoreset mode {mode!r}")
        return Step(obs=obs, mask=mask, reward=reward, terminated=terminated, truncated=truncated,
                    next_obs=next_obs, next_mask=next_mask, valid=valid, info=info)

    def _final_from_info(
        self, info: Mapping[str, Any], done: np.ndarray, obs: np.ndarray, mask: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Terminal observations (and masks) of same-step-reset rows, from `info["final_obs"]`."""
        next_obs, next_mask = obs.copy(), mask.copy()
        final_obs = info.get("final_obs")
        if final_obs is None:
            raise ValueError("a SAME_STEP vector env must report info['final_obs'] for ended rows")
        for row in np.flatnonzero(done):  # only the few rows that ended today
            next_obs[row] = np.asarray(final_obs[row], dtype=np.float32)
        final_info = info.get("final_info")
        if isinstance(final_info, Mapping) and MASK_KEY in final_info:
            final_masks = final_info[MASK_KEY]
            for row in np.flatnonzero(done):
                row_mask = np.asarray(final_masks[row], dtype=bool)
                if row_mask.shape == (self.n_actions,) and row_mask.any():
                    next_mask[row] = row_mask
        return next_obs, next_mask

    def _step_single(self, actions: np.ndarray) -> Step:
        obs, reward, terminated, truncated, info = self.env.step(int(actions[0]))
        next_obs = self._batch_obs(obs)
        next_mask = mask_from_info(info, 1, self.n_actions)
        reward_arr = np.array([float(reward)])
        terminated_arr = np.array([bool(terminated)])
        truncated_arr = np.array([bool(truncated)])
        obs_now, mask_now = next_obs, next_mask
        if terminated or truncated:
            # reset in the same step so the next decision is about a live customer
            reset_obs, reset_info = self.env.reset()
            obs_now = self._batch_obs(reset_obs)
            mask_now = mask_from_info(reset_info, 1, self.n_actions)
        return Step(obs=obs_now, mask=mask_now, reward=reward_arr, terminated=terminated_arr,
                    truncated=truncated_arr, next_obs=next_obs, next_mask=next_mask,
                    valid=np.ones(1, dtype=bool), info=dict(info))

    def _track_episodes(self, step: Step) -> None:
        self._running_return += np.where(step.valid, step.reward, 0.0)
        self._running_length += step.valid
        done = np.flatnonzero(step.done & step.valid)
        if done.size:
            self._returns.extend(self._running_return[done].tolist())
            self._lengths.extend(self._running_length[done].tolist())
            self._running_return[done] = 0.0
            self._running_length[done] = 0
            if len(self._returns) > self.max_finished:
                del self._returns[: len(self._returns) - self.max_finished]
                del self._lengths[: len(self._lengths) - self.max_finished]
