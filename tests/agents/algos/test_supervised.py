"""The supervised response model: learns immediate rewards, from the env or from logs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import agents
from agents.algos.supervised import SupervisedResponseModel
from tests.agents.algos.on_simulator import uplift_vs_random
from tests.agents.algos.linear_toy import (
    ACTION_SPACE,
    N_ACTIONS,
    N_FEATURES,
    OBS_SPACE,
    WEIGHTS,
    LinearRewardVecEnv,
    best_actions,
    expected_reward,
    fresh_customers,
)

torch.set_num_threads(1)


def _make(**kwargs) -> SupervisedResponseModel:
    return agents.make("supervised", OBS_SPACE, ACTION_SPACE, seed=0, **kwargs)


def _logs(n: int, seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    obs = rng.random((n, N_FEATURES)).astype(np.float32)
    actions = rng.integers(0, N_ACTIONS, n)
    rewards = scale * ((obs * WEIGHTS[actions]).sum(axis=1) + 0.1 * rng.standard_normal(n))
    return obs, actions, rewards


def test_supervised_beats_random_on_a_tiny_budget() -> None:
    env = LinearRewardVecEnv(num_envs=32, seed=2)
    agent = _make(epochs=20)
    report = agent.fit(env, total_steps=3_000)
    obs, mask = fresh_customers()
    learned = expected_reward(agent.act(obs, mask), obs)
    random = expected_reward(agents.make("random", OBS_SPACE, ACTION_SPACE).act(obs, mask), obs)
    best = expected_reward(best_actions(obs, mask), obs)
    assert env.violations == 0
    assert report.env_steps >= 3_000
    assert learned - random > 0.8 * (best - random), (learned, random, best)


def test_supervised_beats_random_on_the_retail_simulator() -> None:
    # 200k customer-days: with send windows in the customers local time (every send a daytime
    # one) the early gain over random is small (+1 % [-6, +9] at 50k, +35 % [+24, +46] at 200k)
    gain = uplift_vs_random("supervised", steps=200_000)
    assert gain.ci_low > 0.0, str(gain)


def test_fit_logged_learns_each_actions_reward() -> None:
    agent = _make(epochs=30)
    stats = agent.fit_logged(*_logs(5_000))
    probe, _ = fresh_customers(500)
    error = np.abs(agent.scores(probe) - probe @ WEIGHTS.T).mean()
    assert error < 0.1
    assert stats["rows"] == 5_000 and stats["mse"] < 0.1


def test_training_stops_early_when_held_out_error_stops_improving() -> None:
    rng = np.random.default_rng(0)
    obs = rng.random((2_000, N_FEATURES)).astype(np.float32)
    noise = rng.standard_normal(2_000)  # nothing to learn: the held-out error cannot keep falling
    stats = _make(epochs=200, patience=2).fit_logged(obs, rng.integers(0, N_ACTIONS, 2_000), noise)
    assert stats["epochs"] < 200
    assert stats["validation_mse"] == pytest.approx(1.0, abs=0.2)


def test_scores_are_in_reward_units() -> None:
    small, large = _make(epochs=10), _make(epochs=10)
    small.fit_logged(*_logs(2_000))
    large.fit_logged(*_logs(2_000, scale=100.0))
    probe, _ = fresh_customers(100)
    np.testing.assert_allclose(large.scores(probe), 100.0 * small.scores(probe), rtol=1e-3, atol=1e-2)


def test_sample_weight_zero_ignores_rows() -> None:
    obs, actions, rewards = _logs(3_000)
    poisoned = rewards.copy()
    weights = np.ones_like(rewards)
    lie = actions == 4
    poisoned[lie] = 10.0  # these rows claim action 4 is great ...
    weights[lie] = 0.0    # ... but carry no weight
    agent = _make(epochs=20)
    agent.fit_logged(obs, actions, poisoned, sample_weight=weights)
    probe, _ = fresh_customers(200)
    assert agent.scores(probe)[:, 4].mean() < 2.0


def test_fit_logged_continues_from_the_current_model() -> None:
    agent = _make(epochs=5)
    agent.fit_logged(*_logs(2_000))
    probe, _ = fresh_customers(200)
    first = np.abs(agent.scores(probe) - probe @ WEIGHTS.T).mean()
    agent.fit_logged(*_logs(2_000, seed=1))
    assert np.abs(agent.scores(probe) - probe @ WEIGHTS.T).mean() < first


def test_collect_rounds_alternate_collecting_and_training() -> None:
    env = LinearRewardVecEnv(num_envs=32, seed=4)
    report = _make(collect_rounds=3, collect_epsilon=0.3).fit(env, total_steps=1_500)
    assert {"round_0_mse", "round_1_mse", "round_2_mse"} <= set(report.extra)
    assert env.violations == 0


@pytest.mark.parametrize("bad, match", [
    (dict(actions=np.array([0, 9])), "actions must lie in"),
    (dict(rewards=np.array([np.inf, 0.0])), "rewards must be finite"),
    (dict(sample_weight=np.array([-1.0, 1.0])), "sample_weight"),
    (dict(sample_weight=np.zeros(2)), "sums to 0"),
    (dict(rewards=np.array([1.0])), "same number of rows"),
])
def test_fit_logged_refuses_bad_logs(bad: dict, match: str) -> None:
    logs = dict(obs=np.zeros((2, N_FEATURES), np.float32), actions=np.array([0, 1]),
                rewards=np.array([0.0, 1.0]))
    logs.update(bad)
    with pytest.raises(ValueError, match=match):
        _make().fit_logged(**logs)


@pytest.mark.parametrize("kwargs", [dict(hidden_sizes=[0]), dict(learning_rate=0.0),
                                    dict(epochs=0), dict(collect_epsilon=1.5)])
def test_invalid_hyperparameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        _make(**kwargs)
