"""dqn: masked acting and targets, reproducibility, persistence, learning on the toy, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import agents
from agents.algos.dqn import DQN
from agents.common.buffers import ReplayBuffer
from tests.agents.common.toy_envs import (
    N_ACTIONS, N_FEATURES, ToyCampaignEnv, ToyCampaignVecEnv, average_return, optimal_actions,
)

FAST = {"learning_starts": 500, "target_update_interval": 1_000, "steps_per_update": 8,
        "batch_size": 64, "reward_scale": 1.0, "hidden_sizes": (64, 64), "progress_every": 100}


def _spaces():
    env = ToyCampaignVecEnv(num_envs=4)
    return env.single_observation_space, env.single_action_space


def _trained(seed: int = 0, steps: int = 8_000, env=None, **overrides) -> DQN:
    env = env if env is not None else ToyCampaignVecEnv(num_envs=32, seed=seed)
    agent = agents.make("dqn", *_spaces(), seed=seed, **{**FAST, **overrides})
    agent.fit(env, total_steps=steps)
    return agent


@pytest.fixture(scope="module")
def trained() -> DQN:
    return _trained()


def _random_policy(seed: int):
    rng = np.random.default_rng(seed)
    def policy(obs, mask):
        probs = mask / mask.sum(axis=1, keepdims=True)
        return (rng.random((len(obs), 1)) > probs.cumsum(axis=1)).sum(axis=1)
    return policy


mask_rows = arrays(bool, st.tuples(st.integers(1, 12), st.just(N_ACTIONS))).filter(
    lambda m: bool(m.any(axis=1).all()))


@settings(max_examples=60, deadline=None)
@given(mask=mask_rows, seed=st.integers(0, 2**16))
def test_masked_actions_get_zero_probability_and_are_never_chosen(trained, mask, seed):
    obs = np.random.default_rng(seed).random((mask.shape[0], N_FEATURES)).astype(np.float32)
    probs = trained.action_probabilities(obs, mask)
    assert np.all(probs[~mask] == 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    for deterministic in (True, False):
        actions = trained.act(obs, mask, deterministic=deterministic)
        assert mask[np.arange(len(actions)), actions].all()


def test_acts_greedily_on_the_best_allowed_q_value(trained):
    rng = np.random.default_rng(3)
    obs = rng.random((50, N_FEATURES)).astype(np.float32)
    mask = rng.random((50, N_ACTIONS)) < 0.5
    mask[:, 0] = True
    q = trained.scores(obs)
    assert q.shape == (50, N_ACTIONS)
    np.testing.assert_array_equal(trained.act(obs, mask), np.where(mask, q, -np.inf).argmax(axis=1))


def test_exploration_during_training_never_breaks_a_mask():
    env = ToyCampaignVecEnv(num_envs=32, seed=5, block_prob=0.6)
    _trained(seed=5, steps=3_000, env=env)
    assert env.violations == 0


def test_double_q_target_ignores_actions_masked_in_the_next_state():
    agent = agents.make("dqn", *_spaces(), seed=0, **{**FAST, "gamma": 0.5})
    replay = ReplayBuffer(10, N_FEATURES, N_ACTIONS)
    next_obs = np.zeros((1, N_FEATURES), dtype=np.float32)
    # make the masked action 3 look hugely valuable in both networks
    with torch.no_grad():
        for net in (agent.q_net, agent.target_net):
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.tensor([1.0, 2.0, 0.0, 100.0]))
    next_mask = np.array([[True, True, True, False]])
    replay.add(next_obs, np.array([0]), np.array([0.0], dtype=np.float32), next_obs,
               np.array([False]), next_mask)
    agent.config.learning_rate = 0.0
    for group in agent.optimizer.param_groups:
        group["lr"] = 0.0
    stats = agent._gradient_step(replay)
    # Q(s, 0) = 1, target = 0 + 0.5 * Q_target(s', argmax allowed = 1) = 1.0: zero TD error
    assert stats["td_loss"] == pytest.approx(0.0, abs=1e-10)


def test_same_seed_gives_the_same_actions_after_fit():
    obs = np.random.default_rng(7).random((30, N_FEATURES)).astype(np.float32)
    first, second = _trained(seed=11, steps=2_000), _trained(seed=11, steps=2_000)
    np.testing.assert_array_equal(first.scores(obs), second.scores(obs))
    np.testing.assert_array_equal(first.act(obs), second.act(obs))


def test_save_and_load_reproduce_actions_and_probabilities(trained, tmp_path):
    obs = np.random.default_rng(8).random((40, N_FEATURES)).astype(np.float32)
    mask = np.random.default_rng(9).random((40, N_ACTIONS)) < 0.6
    mask[:, 0] = True
    loaded = agents.load(trained.save(tmp_path / "dqn.pt"))
    assert isinstance(loaded, DQN)
    assert loaded.config == trained.config
    np.testing.assert_array_equal(loaded.scores(obs), trained.scores(obs))
    np.testing.assert_array_equal(loaded.action_probabilities(obs, mask),
                                  trained.action_probabilities(obs, mask))
    np.testing.assert_array_equal(loaded.act(obs, mask), trained.act(obs, mask))


def test_learns_the_toy_campaign_far_better_than_random(trained):
    learned = average_return(lambda obs, mask: trained.act(obs, mask))
    random = average_return(_random_policy(0))
    best = average_return(optimal_actions)
    assert learned > random + 0.7 * (best - random)


def test_learns_from_a_single_gymnasium_env():
    agent = _trained(seed=0, steps=4_000, env=ToyCampaignEnv(), steps_per_update=2)
    assert average_return(lambda obs, mask: agent.act(obs, mask)) > average_return(_random_policy(0)) + 1.0


def test_report_has_a_learning_curve():
    agent = agents.make("dqn", *_spaces(), seed=0, **FAST)
    report = agent.fit(ToyCampaignVecEnv(num_envs=32, seed=0), total_steps=4_000)
    assert report.algorithm == "dqn" and report.env_steps >= 4_000
    assert len(report.curve_steps) == len(report.curve_returns) >= 3
    assert report.extra["gradient_steps"] > 0


def test_progress_callback_can_cancel():
    calls = []
    agent = agents.make("dqn", *_spaces(), seed=0, **FAST)
    report = agent.fit(ToyCampaignVecEnv(num_envs=32, seed=0), total_steps=100_000,
                       callback=lambda p: calls.append(p) or False)
    assert len(calls) == 1 and report.cancelled and report.env_steps < 100_000


def test_unknown_hyper_parameter_is_rejected():
    with pytest.raises(TypeError, match="unknown hyper-parameter.*epsilon"):
        agents.make("dqn", *_spaces(), epsilon=0.1)


@pytest.mark.parametrize("bad, match", [
    ({"gamma": 0.0}, "gamma"), ({"buffer_size": 0}, "buffer_size"),
    ({"exploration_final_eps": 1.5}, "epsilon"), ({"tau": 2.0}, "tau"),
])
def test_invalid_hyper_parameter_values_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        agents.make("dqn", *_spaces(), **bad)


def test_wrong_space_types_are_rejected():
    obs_space, action_space = _spaces()
    with pytest.raises(TypeError, match="Discrete action space"):
        agents.make("dqn", obs_space, gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(TypeError, match="1-D Box observation space"):
        agents.make("dqn", gym.spaces.Box(0, 1, (2, 3)), action_space)


def test_mask_of_the_wrong_shape_and_empty_rows_are_rejected(trained):
    obs = np.zeros((3, N_FEATURES), dtype=np.float32)
    with pytest.raises(ValueError, match="action_mask has shape"):
        trained.act(obs, np.ones((2, N_ACTIONS), dtype=bool))
    with pytest.raises(ValueError, match="allows no action"):
        trained.act(obs, np.zeros((3, N_ACTIONS), dtype=bool))
