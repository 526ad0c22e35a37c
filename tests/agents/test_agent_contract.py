"""The `agents` contract (DESIGN.md), checked for every registered agent name.

Every agent is built for the console's spaces (agents.features x the default catalogue), trained
for a few hundred customer-days on a small masked env, then checked: masks are honoured strictly,
seeds reproduce, save/load round-trips, and bad inputs raise clear errors.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import agents
from agents import features
from agents.catalogue import default_catalogue

torch.set_num_threads(1)

OBS_SPACE = features.observation_space()
N_ACTIONS = default_catalogue().n_actions
ACTION_SPACE = gym.spaces.Discrete(N_ACTIONS)
FIT_STEPS = 384


class MaskedCampaignEnv(gym.vector.VectorEnv):
    """Customers with random console-shaped features; reward linear in features per action.

    Each day every contact action is blocked with probability 0.5 ("no contact" never is), so an
    agent that ignores `info["action_mask"]` is caught (`violations`). Episodes last `horizon`
    days; Gymnasium's NEXT_STEP autoreset.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 32, horizon: int = 4, seed: int = 0):
        self.num_envs = num_envs
        self.horizon = horizon
        self.single_observation_space = OBS_SPACE
        self.single_action_space = ACTION_SPACE
        self.observation_space = gym.vector.utils.batch_space(OBS_SPACE, num_envs)
        self.action_space = gym.vector.utils.batch_space(ACTION_SPACE, num_envs)
        weights_rng = np.random.default_rng(1234)
        self.weights = weights_rng.normal(size=(N_ACTIONS, features.N_FEATURES))
        self.rng = np.random.default_rng(seed)
        self.violations = 0

    def _draw(self, rows: np.ndarray) -> None:
        low, high = OBS_SPACE.low, OBS_SPACE.high
        self.obs[rows] = self.rng.uniform(low, high, size=(rows.sum(), len(low))).astype(np.float32)
        blocked = self.rng.random((self.num_envs, N_ACTIONS)) < 0.5
        blocked[:, 0] = False
        self.mask[rows] = ~blocked[rows]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.obs = np.zeros((self.num_envs, features.N_FEATURES), dtype=np.float32)
        self.mask = np.ones((self.num_envs, N_ACTIONS), dtype=bool)
        self.day = np.zeros(self.num_envs, dtype=np.int64)
        self.pending_reset = np.zeros(self.num_envs, dtype=bool)
        self._draw(np.ones(self.num_envs, dtype=bool))
        return self.obs.copy(), {"action_mask": self.mask.copy()}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64)
        live = ~self.pending_reset
        rows = np.arange(self.num_envs)
        self.violations += int((~self.mask[rows, actions] & live).sum())
        reward = np.where(live, (self.obs * self.weights[actions]).sum(axis=1), 0.0)
        self.day = np.where(live, self.day + 1, 0)
        truncated = live & (self.day >= self.horizon)
        self._draw(live | self.pending_reset)
        self.pending_reset = truncated
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self.obs.copy(), reward, terminated, truncated, {"action_mask": self.mask.copy()}


# every registered agent must exist: a missing module fails these tests rather than skipping them
AGENT_PARAMS = list(agents.AGENT_NAMES)


@functools.cache
def trained(name: str, seed: int = 0) -> agents.Agent:
    """An agent of each kind after a short fit (cached: fits are the slow part)."""
    agent = agents.make(name, OBS_SPACE, ACTION_SPACE, seed=seed)
    agent.fit(MaskedCampaignEnv(seed=seed), total_steps=FIT_STEPS)
    return agent


def _batch(seed: int, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(OBS_SPACE.low, OBS_SPACE.high, size=(n, features.N_FEATURES)).astype(np.float32)
    mask = rng.random((n, N_ACTIONS)) < 0.3
    mask[:, 0] = True
    return obs, mask


@st.composite
def obs_and_masks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 6))
    obs = draw(arrays(np.float32, (n, features.N_FEATURES),
                      elements=st.floats(0.0, 1.0, width=32)))
    mask = draw(arrays(np.bool_, (n, N_ACTIONS)))
    # any action (not only "no contact") may be the single allowed one
    keep = draw(st.lists(st.integers(0, N_ACTIONS - 1), min_size=n, max_size=n))
    mask[np.arange(n), keep] = True
    return obs, mask


# ----------------------------------------------------------------------------- masking


@pytest.mark.parametrize("name", AGENT_PARAMS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=obs_and_masks())
def test_masked_actions_get_probability_zero_and_are_never_chosen(name: str, case) -> None:
    obs, mask = case
    agent = trained(name)
    probs = agent.action_probabilities(obs, mask)
    assert probs.shape == mask.shape
    assert np.all(probs[~mask] == 0.0)
    assert np.all(probs >= 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    for deterministic in (True, False):
        actions = agent.act(obs, mask, deterministic=deterministic)
        assert actions.shape == (obs.shape[0],)
        assert mask[np.arange(obs.shape[0]), actions].all()


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_training_never_takes_a_masked_action(name: str) -> None:
    env = MaskedCampaignEnv(seed=5)
    agents.make(name, OBS_SPACE, ACTION_SPACE, seed=5).fit(env, total_steps=FIT_STEPS)
    assert env.violations == 0


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_a_one_dimensional_mask_applies_to_every_customer(name: str) -> None:
    obs, _ = _batch(1, n=4)
    mask = np.zeros(N_ACTIONS, dtype=bool)
    mask[[0, 7]] = True
    probs = trained(name).action_probabilities(obs, mask)
    assert np.all(probs[:, ~mask] == 0.0)


# ----------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_same_seed_gives_the_same_policy(name: str) -> None:
    first = agents.make(name, OBS_SPACE, ACTION_SPACE, seed=11)
    second = agents.make(name, OBS_SPACE, ACTION_SPACE, seed=11)
    first.fit(MaskedCampaignEnv(seed=3), total_steps=FIT_STEPS)
    second.fit(MaskedCampaignEnv(seed=3), total_steps=FIT_STEPS)
    obs, mask = _batch(2)
    np.testing.assert_array_equal(first.action_probabilities(obs, mask),
                                  second.action_probabilities(obs, mask))
    np.testing.assert_array_equal(first.act(obs, mask, deterministic=False),
                                  second.act(obs, mask, deterministic=False))


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_save_and_load_reproduce_actions_and_probabilities(name: str, tmp_path) -> None:
    agent = trained(name)
    obs, mask = _batch(3)
    path = agent.save(tmp_path / f"{name}.pt")
    loaded = agents.load(path)
    assert type(loaded) is type(agent)
    assert loaded.hyperparameters() == agent.hyperparameters()
    np.testing.assert_array_equal(loaded.scores(obs), agent.scores(obs))
    np.testing.assert_array_equal(loaded.action_probabilities(obs, mask),
                                  agent.action_probabilities(obs, mask))
    np.testing.assert_array_equal(loaded.act(obs, mask), agent.act(obs, mask))
    # the sampling generator's state travels too: the next random draws match
    np.testing.assert_array_equal(loaded.act(obs, mask, deterministic=False),
                                  agent.act(obs, mask, deterministic=False))


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_bytes_round_trip_reproduces_the_policy_without_a_file(name: str) -> None:
    agent = trained(name)
    obs, mask = _batch(4)
    loaded = agents.loads(agent.to_bytes())
    assert type(loaded) is type(agent)
    np.testing.assert_array_equal(loaded.action_probabilities(obs, mask),
                                  agent.action_probabilities(obs, mask))


def test_bytes_and_file_hold_the_same_policy(tmp_path) -> None:
    agent = trained("actor_critic")
    obs, mask = _batch(5)
    from_file = agents.load(agent.save(tmp_path / "policy.pt"))
    from_bytes = agents.loads(agent.to_bytes())
    np.testing.assert_array_equal(from_file.scores(obs), from_bytes.scores(obs))


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_fit_reports_its_env_steps(name: str) -> None:
    agent = agents.make(name, OBS_SPACE, ACTION_SPACE, seed=0)
    report = agent.fit(MaskedCampaignEnv(seed=0), total_steps=FIT_STEPS)
    assert report.algorithm == name
    assert report.env_steps == 0 or report.env_steps >= FIT_STEPS
    assert report.wall_seconds >= 0


# ----------------------------------------------------------------------------- clear errors


def test_unknown_agent_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown agent 'nope'"):
        agents.make("nope", OBS_SPACE, ACTION_SPACE)


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_non_box_observation_space_is_refused(name: str) -> None:
    with pytest.raises(TypeError, match="1-D Box observation space"):
        agents.make(name, gym.spaces.Discrete(5), ACTION_SPACE)


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_non_discrete_action_space_is_refused(name: str) -> None:
    with pytest.raises(TypeError, match="Discrete action space"):
        agents.make(name, OBS_SPACE, gym.spaces.Box(0.0, 1.0, (3,)))


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_unknown_hyperparameter_is_refused(name: str) -> None:
    with pytest.raises(TypeError):
        agents.make(name, OBS_SPACE, ACTION_SPACE, no_such_setting=1)


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_mask_of_wrong_shape_is_refused(name: str) -> None:
    obs, _ = _batch(4, n=3)
    with pytest.raises(ValueError, match="action_mask has shape"):
        trained(name).action_probabilities(obs, np.ones((3, N_ACTIONS + 1), dtype=bool))
    with pytest.raises(ValueError, match="action_mask has shape"):
        trained(name).act(obs, np.ones((2, N_ACTIONS), dtype=bool))


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_mask_row_with_no_allowed_action_is_refused(name: str) -> None:
    obs, mask = _batch(5, n=3)
    mask[1] = False
    with pytest.raises(ValueError, match=r"allows no action in row\(s\) \[1\]"):
        trained(name).action_probabilities(obs, mask)
    with pytest.raises(ValueError, match="allows no action"):
        trained(name).act(obs, mask, deterministic=False)


@pytest.mark.parametrize("name", AGENT_PARAMS)
def test_observations_of_wrong_width_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="obs has shape"):
        trained(name).action_probabilities(np.zeros((2, features.N_FEATURES + 1), np.float32))
