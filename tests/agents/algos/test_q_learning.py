"""Tabular Q-learning: the discretiser, masked targets, and learning a delayed reward."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents import features
from agents.algos.q_learning import DEFAULT_STATE_FEATURES, QLearning, StateDiscretiser
from agents.catalogue import default_catalogue
from agents.envs import CustomerJourneyEnv
from agents.evaluate import percent_of_optimum
from tests.agents.algos.on_simulator import uplift_vs_random
from tests.agents.common.toy_envs import (
    ToyCampaignEnv,
    ToyCampaignVecEnv,
    average_return,
    optimal_actions,
)

TOY_OBS = gym.spaces.Box(0.0, 1.0, (5,), np.float32)
TOY_ACTIONS = gym.spaces.Discrete(4)


def _make(**kwargs) -> QLearning:
    return agents.make("q_learning", TOY_OBS, TOY_ACTIONS, seed=0, **kwargs)


def test_q_learning_beats_random_on_a_delayed_reward() -> None:
    env = ToyCampaignVecEnv(num_envs=32, horizon=8, seed=1)
    agent = _make()
    agent.fit(env, total_steps=20_000)
    random = agents.make("random", TOY_OBS, TOY_ACTIONS, seed=0)
    learned = average_return(lambda o, m: agent.act(o, m))
    baseline = average_return(lambda o, m: random.act(o, m))
    best = average_return(optimal_actions)
    assert env.violations == 0
    assert learned - baseline > 0.7 * (best - baseline), (learned, baseline, best)


def test_q_learning_values_the_reward_that_lands_tomorrow() -> None:
    # the matching offer earns 0 today and +1 tomorrow: a myopic learner sees no difference with
    # "no contact"; Q-learning must rank it higher
    agent = _make()
    agent.fit(ToyCampaignVecEnv(num_envs=32, horizon=8, seed=2), total_steps=20_000)
    obs = np.zeros((3, 5), np.float32)
    obs[np.arange(3), np.arange(3)] = 1.0  # one customer per mood, day 0, nothing pending
    q = agent.scores(obs)
    assert np.all(q[np.arange(3), np.arange(3) + 1] > q[:, 0] + 0.5)


def test_q_learning_beats_random_on_the_retail_simulator() -> None:
    gain = uplift_vs_random("q_learning", steps=25_000)
    assert gain.ci_low > 0.0, str(gain)


def test_q_learning_nears_the_exact_optimum_on_the_tabular_scenario() -> None:
    env = CustomerJourneyEnv("tabular", num_customers=256, seed=0)
    agent = agents.make("q_learning", env.single_observation_space, env.single_action_space, seed=0)
    agent.fit(env, total_steps=100_000)
    assert percent_of_optimum(agent) > 90.0
    assert percent_of_optimum(agent) > percent_of_optimum(
        agents.make("random", env.single_observation_space, env.single_action_space)) + 30.0


def test_q_learning_learns_from_a_single_env_too() -> None:
    agent = _make()
    agent.fit(ToyCampaignEnv(horizon=8), total_steps=6_000)
    random = agents.make("random", TOY_OBS, TOY_ACTIONS, seed=0)
    assert average_return(lambda o, m: agent.act(o, m)) > average_return(
        lambda o, m: random.act(o, m)) + 1.0


def test_discretiser_keeps_discrete_features_as_they_are() -> None:
    obs = np.array([[0.0, 0.1], [1.0, 0.2], [0.5, 0.3], [1.0, 0.4]], np.float32)
    disc = StateDiscretiser([0, 1], n_bins=2, max_levels=3)
    disc.fit(obs)
    np.testing.assert_array_equal(disc.bins(obs)[:, 0], [0, 2, 1, 2])  # 3 values -> 3 bins
    assert len(disc.edges[1]) == 1  # 4 values > max_levels -> 2 quantile bins


def test_discretiser_numbers_states_and_marks_unseen_ones() -> None:
    disc = StateDiscretiser([0], n_bins=4, max_levels=5)
    disc.fit(np.array([[0.0], [1.0]], np.float32))
    np.testing.assert_array_equal(disc.states(np.array([[1.0], [1.0]]), add_new=True), [0, 0])
    np.testing.assert_array_equal(disc.states(np.array([[0.0], [1.0]])), [-1, 0])
    assert disc.n_states == 1


def test_unseen_states_score_the_initial_value() -> None:
    agent = _make(initial_q=0.25)
    agent.fit(ToyCampaignVecEnv(num_envs=8, seed=0), total_steps=200)
    odd = np.full((1, 5), 0.123, np.float32)  # never produced by the toy env
    assert agent.states(odd)[0] == -1
    np.testing.assert_array_equal(agent.scores(odd), 0.25)


def test_console_features_default_to_a_few_key_ones() -> None:
    agent = agents.make("q_learning", features.observation_space(),
                        gym.spaces.Discrete(default_catalogue().n_actions))
    assert agent.discretiser.feature_indices == [features.feature_index(f)
                                                 for f in DEFAULT_STATE_FEATURES]


def test_state_features_by_name_or_index() -> None:
    agent = agents.make("q_learning", features.observation_space(),
                        gym.spaces.Discrete(default_catalogue().n_actions),
                        state_features=["contacts_7d", 0])
    assert agent.discretiser.feature_indices == [features.feature_index("contacts_7d"), 0]
    with pytest.raises(ValueError, match="unknown state feature"):
        agents.make("q_learning", features.observation_space(),
                    gym.spaces.Discrete(default_catalogue().n_actions), state_features=["shoe_size"])


@pytest.mark.parametrize("kwargs", [dict(gamma=1.0), dict(min_learning_rate=0.0),
                                    dict(exploration_final_eps=1.5), dict(n_bins=0),
                                    dict(state_features=[7])])
def test_invalid_hyperparameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        _make(**kwargs)


def test_a_wide_unknown_observation_needs_named_state_features() -> None:
    wide = gym.spaces.Box(0.0, 1.0, (30,), np.float32)
    with pytest.raises(ValueError, match="needs state_features"):
        agents.make("q_learning", wide, TOY_ACTIONS)
    agent = agents.make("q_learning", wide, TOY_ACTIONS, state_features=[0, 5])
    assert agent.discretiser.feature_indices == [0, 5]
