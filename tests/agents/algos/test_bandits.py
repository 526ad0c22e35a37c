"""Contextual bandits: the shared ridge model, each exploration rule, and learning on a toy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

import agents
from agents.algos.bandits import EpsilonGreedy, LinearThompson, LinUCB, SoftmaxBandit
from agents.common.masking import masked_softmax
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

BANDITS = ("linucb", "thompson", "epsilon_greedy", "softmax")


def _make(name: str, **kwargs) -> agents.Agent:
    return agents.make(name, OBS_SPACE, ACTION_SPACE, seed=0, **kwargs)


def _linear_data(n: int, seed: int = 0, noise: float = 0.1):
    rng = np.random.default_rng(seed)
    obs = rng.random((n, N_FEATURES)).astype(np.float32)
    actions = rng.integers(0, N_ACTIONS, n)
    rewards = (obs * WEIGHTS[actions]).sum(axis=1) + noise * rng.standard_normal(n)
    return obs, actions, rewards


# ----------------------------------------------------------------------------- learning


@pytest.mark.parametrize("name", BANDITS)
def test_bandit_beats_random_on_a_tiny_budget(name: str) -> None:
    env = LinearRewardVecEnv(num_envs=32, seed=1)
    agent = _make(name)
    agent.fit(env, total_steps=3_000)
    obs, mask = fresh_customers()
    learned = expected_reward(agent.act(obs, mask), obs)
    random = expected_reward(agents.make("random", OBS_SPACE, ACTION_SPACE, seed=0).act(obs, mask), obs)
    best = expected_reward(best_actions(obs, mask), obs)
    assert env.violations == 0
    # closes most of the gap between random and the best allowed action
    assert learned - random > 0.8 * (best - random), (learned, random, best)


@pytest.mark.parametrize("name, hyperparams", [
    ("linucb", {}), ("thompson", {"propensity_draws": 32}), ("epsilon_greedy", {}), ("softmax", {}),
])
def test_bandit_beats_random_on_the_retail_simulator(name: str, hyperparams: dict) -> None:
    gain = uplift_vs_random(name, steps=25_000, **hyperparams)
    assert gain.ci_low > 0.0, str(gain)


def test_batched_update_equals_one_customer_at_a_time() -> None:
    obs, actions, rewards = _linear_data(200)
    batched, sequential = _make("linucb"), _make("linucb")
    batched.update(obs, actions, rewards)
    for i in range(len(rewards)):
        sequential.update(obs[i:i + 1], actions[i:i + 1], rewards[i:i + 1])
    np.testing.assert_allclose(batched.theta, sequential.theta, atol=1e-9)
    np.testing.assert_allclose(batched.gram_inv, sequential.gram_inv, atol=1e-9)
    np.testing.assert_array_equal(batched.counts, np.bincount(actions, minlength=N_ACTIONS))


def test_sample_weight_counts_a_row_that_many_times() -> None:
    obs, actions, rewards = _linear_data(50)
    weighted, repeated = _make("linucb"), _make("linucb")
    weights = np.arange(50) % 3  # 0, 1 or 2 copies of each row
    weighted.update(obs, actions, rewards, sample_weight=weights)
    idx = np.repeat(np.arange(50), weights)
    repeated.update(obs[idx], actions[idx], rewards[idx])
    np.testing.assert_allclose(weighted.theta, repeated.theta, atol=1e-9)
    np.testing.assert_allclose(weighted.gram_inv, repeated.gram_inv, atol=1e-9)


def test_ridge_model_recovers_the_true_reward_weights() -> None:
    obs, actions, rewards = _linear_data(20_000)
    agent = _make("epsilon_greedy", ridge=1e-3)
    agent.update(obs, actions, rewards)
    # theta = [intercept, weights...]
    np.testing.assert_allclose(agent.theta[:, 0], 0.0, atol=0.05)
    np.testing.assert_allclose(agent.theta[:, 1:], WEIGHTS, atol=0.05)


def test_scores_are_expected_immediate_rewards() -> None:
    obs, actions, rewards = _linear_data(20_000, noise=0.0)
    agent = _make("thompson", ridge=1e-6)
    agent.update(obs, actions, rewards)
    probe, _ = fresh_customers(50)
    np.testing.assert_allclose(agent.scores(probe), probe @ WEIGHTS.T, atol=1e-3)


@pytest.mark.parametrize("bad, match", [
    (dict(actions=np.array([0, N_ACTIONS])), "actions must lie in"),
    (dict(rewards=np.array([1.0, np.nan])), "rewards must be finite"),
    (dict(rewards=np.array([1.0])), "same number of rows"),
    (dict(sample_weight=np.array([1.0, -1.0])), "sample_weight"),
])
def test_update_refuses_bad_batches(bad: dict, match: str) -> None:
    batch = dict(obs=np.zeros((2, N_FEATURES), np.float32), actions=np.array([0, 1]),
                 rewards=np.array([1.0, 2.0]))
    batch.update(bad)
    with pytest.raises(ValueError, match=match):
        _make("softmax").update(**batch)


@pytest.mark.parametrize("name, kwargs, match", [
    ("linucb", dict(alpha=-1.0), "alpha"),
    ("linucb", dict(ridge=0.0), "ridge"),
    ("thompson", dict(posterior_scale=-0.1), "posterior_scale"),
    ("thompson", dict(propensity_draws=0), "propensity_draws"),
    ("epsilon_greedy", dict(epsilon=1.5), "epsilon"),
    ("softmax", dict(temperature=0.0), "temperature"),
])
def test_invalid_hyperparameters_are_refused(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _make(name, **kwargs)


# ----------------------------------------------------------------------------- LinUCB


def test_linucb_bonus_shrinks_for_the_action_it_has_data_on() -> None:
    agent: LinUCB = _make("linucb")
    obs = np.full((1, N_FEATURES), 0.5, np.float32)
    before = agent.ucb_bonus(obs)[0]
    agent.update(np.repeat(obs, 50, axis=0), np.full(50, 2), np.zeros(50))
    after = agent.ucb_bonus(obs)[0]
    assert after[2] < 0.2 * before[2]
    np.testing.assert_allclose(np.delete(after, 2), np.delete(before, 2))


def test_linucb_prefers_an_untried_action_over_a_known_mediocre_one() -> None:
    agent: LinUCB = _make("linucb", alpha=2.0)
    obs = np.full((1, N_FEATURES), 0.5, np.float32)
    mask = np.zeros((1, N_ACTIONS), bool)
    mask[0, [1, 2]] = True
    agent.update(np.repeat(obs, 100, axis=0), np.full(100, 1), np.full(100, 0.1))
    probs = agent.action_probabilities(obs, mask)
    np.testing.assert_array_equal(probs[0], np.eye(N_ACTIONS)[2])  # one-hot on the optimistic one


def test_linucb_without_bonus_is_greedy_on_expected_reward() -> None:
    obs, actions, rewards = _linear_data(2_000)
    agent = _make("linucb", alpha=0.0)
    agent.update(obs, actions, rewards)
    probe, mask = fresh_customers(200)
    greedy = np.where(mask, agent.scores(probe), -np.inf).argmax(axis=1)
    np.testing.assert_array_equal(agent.act(probe, mask), greedy)
    assert (greedy == best_actions(probe, mask)).mean() > 0.95


# ----------------------------------------------------------------------------- Thompson


def test_thompson_propensities_match_the_gaussian_race_between_two_actions() -> None:
    agent: LinearThompson = _make("thompson", propensity_draws=20_000)
    agent.update(*_linear_data(30, seed=3))
    obs = np.full((1, N_FEATURES), 0.5, np.float32)
    mask = np.zeros((1, N_ACTIONS), bool)
    mask[0, [1, 2]] = True
    mean, std = agent.scores(obs)[0], agent.reward_std(obs)[0]
    exact = norm.cdf((mean[1] - mean[2]) / np.hypot(std[1], std[2]))  # P(draw_1 > draw_2)
    probs = agent.action_probabilities(obs, mask)[0]
    assert probs[1] == pytest.approx(exact, abs=0.015)
    assert probs[1] + probs[2] == pytest.approx(1.0)


def test_thompson_propensities_are_a_deterministic_function_of_the_inputs() -> None:
    agent = _make("thompson")
    agent.update(*_linear_data(30))
    obs, mask = fresh_customers(20)
    np.testing.assert_array_equal(agent.action_probabilities(obs, mask),
                                  agent.action_probabilities(obs, mask))


def test_thompson_exploits_the_posterior_mean_when_deterministic() -> None:
    agent = _make("thompson")
    agent.update(*_linear_data(300))
    obs, mask = fresh_customers(100)
    greedy = np.where(mask, agent.scores(obs), -np.inf).argmax(axis=1)
    np.testing.assert_array_equal(agent.act(obs, mask, deterministic=True), greedy)


def test_thompson_without_posterior_width_is_greedy() -> None:
    agent = _make("thompson", posterior_scale=0.0)
    agent.update(*_linear_data(500))
    obs, mask = fresh_customers(50)
    probs = agent.action_probabilities(obs, mask)
    np.testing.assert_array_equal(probs, np.eye(N_ACTIONS)[agent.act(obs, mask)])


# ----------------------------------------------------------------------------- epsilon-greedy, softmax


def test_epsilon_greedy_probabilities_mix_greedy_and_uniform_over_allowed() -> None:
    agent: EpsilonGreedy = _make("epsilon_greedy", epsilon=0.2)
    agent.update(*_linear_data(2_000))
    obs, mask = fresh_customers(100)
    probs = agent.action_probabilities(obs, mask)
    greedy = np.where(mask, agent.scores(obs), -np.inf).argmax(axis=1)
    allowed = mask.sum(axis=1)
    rows = np.arange(len(obs))
    np.testing.assert_allclose(probs[rows, greedy], 0.8 + 0.2 / allowed)
    other = mask.copy()
    other[rows, greedy] = False
    np.testing.assert_allclose(probs[other], np.repeat(0.2 / allowed, other.sum(axis=1)))


def test_softmax_probabilities_are_boltzmann_over_predicted_rewards() -> None:
    agent: SoftmaxBandit = _make("softmax", temperature=0.3)
    agent.update(*_linear_data(2_000))
    obs, mask = fresh_customers(100)
    np.testing.assert_allclose(agent.action_probabilities(obs, mask),
                               masked_softmax(agent.scores(obs) / 0.3, mask))


def test_softmax_with_lower_temperature_is_greedier() -> None:
    data = _linear_data(2_000)
    obs, mask = fresh_customers(200)
    rows = np.arange(len(obs))
    greedy = best_actions(obs, mask)
    share = []
    for temperature in (1.0, 0.1):
        agent = _make("softmax", temperature=temperature)
        agent.update(*data)
        share.append(agent.action_probabilities(obs, mask)[rows, greedy].mean())
    assert share[1] > share[0] + 0.2
