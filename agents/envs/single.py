"""One customer as a plain gymnasium.Env (for env_checker, notebooks and single-env agents)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.envs.customer_journey import CustomerJourneyEnv


class SingleCustomerEnv(gym.Env):
    """A `CustomerJourneyEnv` (or `TabularJourneyEnv`) with one customer, as a gymnasium.Env.

    Same dynamics, spaces and info keys (arrays of length 1 become scalars; the mask becomes
    shape (A,)). Call `reset` after an episode ends, as with any gymnasium.Env.

    :param scenario: scenario name or object, as for CustomerJourneyEnv
    :param kwargs: any other CustomerJourneyEnv argument except num_customers
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: Any = "retail", **kwargs: Any):
        self._vec = CustomerJourneyEnv(scenario, num_customers=1, **kwargs)
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self._vec.reset(seed=int(self.np_random.integers(2**31)))
        self._done = False
        return obs[0], _single(info)

    def step(self, action: Any):
        if self._done:
            raise RuntimeError("the episode has ended: call reset()")
        obs, rew, terminated, truncated, info = self._vec.step(np.asarray([action], dtype=np.int64))
        self._done = bool(terminated[0] or truncated[0])
        return obs[0], float(rew[0]), bool(terminated[0]), bool(truncated[0]), _single(info)


def _single(info: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in info.items():
        value = np.asarray(value)
        out[key] = value[0] if value.ndim >= 1 and value.shape[0] == 1 else value
    return out
