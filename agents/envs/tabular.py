"""The `tabular` scenario as a vector env: the same API as CustomerJourneyEnv, an exact model."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from agents.envs.customer_journey import outcome_info
from agents.envs.scenarios import TabularScenario, get_scenario
from agents.rewards import Outcomes, RewardWeights, reward


def tabular_observation_space(scenario: TabularScenario) -> gym.spaces.Box:
    return gym.spaces.Box(0.0, 1.0, shape=(scenario.n_states,), dtype=np.float32)


def one_hot_states(scenario: TabularScenario, states: np.ndarray | None = None) -> np.ndarray:
    """(n, S) float32 observation of `states` (all states, in order, when None)."""
    states = np.arange(scenario.n_states) if states is None else np.asarray(states)
    obs = np.zeros((states.shape[0], scenario.n_states), dtype=np.float32)
    obs[np.arange(states.shape[0]), states] = 1.0
    return obs


class TabularJourneyEnv(gym.vector.VectorEnv):
    """N customers of the small `tabular` MDP (engagement x fatigue), one day per step.

    The sibling of `CustomerJourneyEnv` for the scenario whose optimum is known exactly
    (`agents.evaluate.optimal_policy`). ``CustomerJourneyEnv("tabular", ...)`` builds this class.

    ## Action Space
    ``Discrete(4)``: no contact, email - content, email - 20 % off, SMS - 20 % off.
    ``info["action_mask"]`` blocks every contact while the customer is saturated (the cap).

    ## Observation Space
    ``Box(0, 1, (12,))`` float32: the one-hot index of the state
    (engagement in lapsed / cooling / active / fan) x (fatigue in fresh / tired / saturated).

    ## Rewards
    ``agents.rewards.reward`` of the day's outcomes: an order's net value (Bernoulli), minus the
    contact cost, churn penalty on churn. Its mean is ``scenario.expected_rewards(weights)``.

    ## Episode End
    Terminated on churn; truncated after ``horizon_days`` (default 200, where gamma ** 200 is
    negligible). Next-step autoreset, as `CustomerJourneyEnv`.

    ## Arguments
    :param scenario: "tabular" or a `TabularScenario`
    :param num_customers: N
    :param reward_weights: `RewardWeights` (opens, clicks and unsubscribes are not modelled)
    :param contact_rules: must be None (the cap is part of the model)
    :param catalogue: must be None (the four actions are part of the model)
    :param horizon_days: truncation (default: the scenario's)
    :param seed: seed of the first reset
    :param enabled_actions: (4,) bool, actions switched on (None: all)
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        scenario: str | TabularScenario = "tabular",
        num_customers: int = 1024,
        reward_weights: RewardWeights | None = None,
        contact_rules: Any = None,
        catalogue: Any = None,
        horizon_days: int | None = None,
        seed: int | None = None,
        enabled_actions: np.ndarray | None = None,
    ):
        scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        if not isinstance(scenario, TabularScenario):
            raise TypeError(f"TabularJourneyEnv needs a TabularScenario, got {scenario!r}")
        if contact_rules is not None or catalogue is not None:
            raise ValueError(
                "the tabular scenario fixes its own actions and cap: "
                "contact_rules and catalogue must be None"
            )
        if int(num_customers) < 1:
            raise ValueError("num_customers must be >= 1")
        self.scenario = scenario
        self.num_envs = int(num_customers)
        self.reward_weights = reward_weights or RewardWeights()
        self.horizon_days = int(horizon_days or scenario.horizon_days)
        self.enabled_actions = (
            None if enabled_actions is None else np.asarray(enabled_actions, bool)
        )
        if self.enabled_actions is not None and self.enabled_actions.shape != (scenario.n_actions,):
            raise ValueError(f"enabled_actions must have shape ({scenario.n_actions},)")
        self.single_observation_space = tabular_observation_space(scenario)
        self.single_action_space = gym.spaces.Discrete(scenario.n_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._init_seed = seed
        self._seeded = False
        allowed = scenario.allowed.copy()
        if self.enabled_actions is not None:
            allowed &= self.enabled_actions[None, :]
            allowed[:, 0] = True
        self.allowed = allowed
        self._cum_next = np.cumsum(scenario.transitions, axis=2)  # (S, A, S); the rest is churn

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._seeded:
            seed = self._init_seed
        super().reset(seed=seed)
        self._seeded = True
        root = int(self.np_random.integers(2**62))
        self._daily_rng = np.random.default_rng([root, 1])
        self._newcomer_rng = np.random.default_rng([root, 2])
        self._state = self._draw_states(self.num_envs)
        self._age = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        return self._obs(), {"action_mask": self.allowed[self._state]}

    def step(self, actions: Any):
        n, sc = self.num_envs, self.scenario
        actions = np.asarray(actions).reshape(-1)
        if actions.shape != (n,):
            raise ValueError(f"actions must have shape ({n},), got {np.shape(actions)}")
        actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= sc.n_actions:
            raise ValueError(f"actions must lie in [0, {sc.n_actions})")
        live = ~self._needs_reset
        s = self._state
        a = np.where(live, actions, 0)
        violation = ~self.allowed[s, a]
        a = np.where(violation, 0, a)
        # the day's draws (fixed shape: common random numbers across policies)
        u = self._daily_rng.random((2, n))
        ordered = live & (u[0] < sc.purchase_prob[s, a])
        cum = self._cum_next[s, a]  # (n, S)
        nxt = (u[1][:, None] >= cum).sum(axis=1)  # == S: the churn remainder
        churned = live & (nxt >= sc.n_states)
        contacted = a > 0
        zeros = np.zeros(n)
        outcomes = Outcomes(
            opens=zeros,
            clicks=zeros,
            conversions=ordered.astype(np.float64),
            net_revenue=np.where(ordered, sc.order_value[a], 0.0),
            unsubscribes=zeros,
            churns=churned.astype(np.float64),
            contact_cost=np.where(live, sc.contact_cost[a], 0.0),
        )
        rewards = reward(outcomes, self.reward_weights)
        self._state = np.where(live & ~churned, np.minimum(nxt, sc.n_states - 1), s)
        self._age += 1
        terminated = churned
        truncated = live & ~churned & (self._age >= self.horizon_days)
        if (~live).any():  # next-step autoreset
            rows = np.flatnonzero(~live)
            self._state[rows] = self._draw_states(rows.shape[0])
            self._age[rows] = 0
        self._needs_reset = terminated | truncated
        info = {
            "action_mask": self.allowed[self._state],
            **outcome_info(outcomes, violation & live, a),
            "discounted_conversions": (ordered & (a >= 2)).astype(np.float64),
            "contacted": (contacted & live).astype(np.float64),
            "reset": ~live,
        }
        return self._obs(), rewards, terminated, truncated, info

    def _draw_states(self, k: int) -> np.ndarray:
        return self._newcomer_rng.choice(self.scenario.n_states, size=k, p=self.scenario.initial)

    def _obs(self) -> np.ndarray:
        return one_hot_states(self.scenario, self._state)

    @property
    def states(self) -> np.ndarray:
        """(N,) current state index per customer."""
        return self._state.copy()
