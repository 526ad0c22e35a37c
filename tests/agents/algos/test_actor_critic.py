"""actor_critic: masking, reproducibility, persistence, learning on the toy campaign, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import agents
from agents.algos.actor_critic import ActorCritic
from tests.agents.common.toy_envs import (
    N_ACTIONS, N_FEATURES, ToyCampaignEnv, ToyCampaignVecEnv, average_return, optimal_actions,
)

FAST = {"n_steps": 16, "minibatch_size": 512}


def _spaces():
    env = ToyCampaignVecEnv(num_envs=4)
    return env.single_observation_space, env.single_action_space


def _trained(seed: int = 0, steps: int = 12_000, **overrides) -> ActorCritic:
    env = ToyCampaignVecEnv(num_envs=64, seed=seed)
    agent = agents.make("actor_critic", *_spaces(), seed=seed, **{**FAST, **overrides})
    agent.fit(env, total_steps=steps)
    return agent


@pytest.fixture(scope="module")
def trained() -> ActorCritic:
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
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    for deterministic in (True, False):
        actions = trained.act(obs, mask, deterministic=deterministic)
        assert mask[np.arange(len(actions)), actions].all()


def test_deterministic_act_is_the_most_likely_allowed_action(trained):
    rng = np.random.default_rng(3)
    obs = rng.random((50, N_FEATURES)).astype(np.float32)
    mask = rng.random((50, N_ACTIONS)) < 0.5
    mask[:, 0] = True
    scores = np.where(mask, trained.scores(obs), -np.inf)
    np.testing.assert_array_equal(trained.act(obs, mask), scores.argmax(axis=1))


def test_scores_are_logits_whose_masked_softmax_is_the_policy(trained):
    obs = np.random.default_rng(4).random((7, N_FEATURES)).astype(np.float32)
    logits = trained.scores(obs)
    assert logits.shape == (7, N_ACTIONS)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(trained.action_probabilities(obs), expected, rtol=1e-6)


def test_training_never_breaks_a_mask():
    env = ToyCampaignVecEnv(num_envs=32, seed=5, block_prob=0.6)
    agent = agents.make("actor_critic", *_spaces(), seed=5, **FAST)
    agent.fit(env, total_steps=3_000)
    assert env.violations == 0


def test_same_seed_gives_the_same_actions_after_fit():
    obs = np.random.default_rng(7).random((30, N_FEATURES)).astype(np.float32)
    first, second = _trained(seed=11, steps=2_000), _trained(seed=11, steps=2_000)
    np.testing.assert_array_equal(first.action_probabilities(obs), second.action_probabilities(obs))
    np.testing.assert_array_equal(first.act(obs, deterministic=False),
                                  second.act(obs, deterministic=False))


def test_different_seeds_give_different_policies():
    obs = np.random.default_rng(7).random((30, N_FEATURES)).astype(np.float32)
    first, second = _trained(seed=1, steps=2_000), _trained(seed=2, steps=2_000)
    assert not np.allclose(first.action_probabilities(obs), second.action_probabilities(obs))


def test_save_and_load_reproduce_actions_and_probabilities(trained, tmp_path):
    obs = np.random.default_rng(8).random((40, N_FEATURES)).astype(np.float32)
    mask = np.random.default_rng(9).random((40, N_ACTIONS)) < 0.6
    mask[:, 0] = True
    loaded = agents.load(trained.save(tmp_path / "ac.pt"))
    assert isinstance(loaded, ActorCritic)
    assert loaded.config == trained.config
    np.testing.assert_array_equal(loaded.action_probabilities(obs, mask),
                                  trained.action_probabilities(obs, mask))
    np.testing.assert_array_equal(loaded.act(obs, mask), trained.act(obs, mask))
    # the sampling generator is restored too: stochastic actions match draw for draw
    np.testing.assert_array_equal(loaded.act(obs, mask, deterministic=False),
                                  trained.act(obs, mask, deterministic=False))


def test_a_policy_sharing_through_action_attributes_saves_and_loads(tmp_path):
    attributes = np.random.default_rng(3).random((N_ACTIONS, 3)).astype(np.float32)
    agent = _trained(steps=2_000, action_attributes=attributes)
    obs = np.random.default_rng(8).random((20, N_FEATURES)).astype(np.float32)
    loaded = agents.load(agent.save(tmp_path / "ac.pt"))
    np.testing.assert_array_equal(loaded.config.action_attributes, attributes)
    np.testing.assert_array_equal(loaded.action_probabilities(obs), agent.action_probabilities(obs))


def test_a_lost_customer_is_priced_while_the_policy_loses_more_than_its_limit():
    constrained = _trained(steps=4_000, max_leave_rate=1e-4)

    assert constrained.leave_price > 0.0


def test_a_limit_the_policy_keeps_leaves_a_lost_customer_unpriced():
    generous = _trained(steps=4_000, max_leave_rate=0.9)

    assert generous.leave_price == 0.0


def test_a_tighter_limit_prices_a_lost_customer_higher():
    tight = _trained(steps=4_000, max_leave_rate=1e-4)
    loose = _trained(steps=4_000, max_leave_rate=0.02)

    assert tight.leave_price > loose.leave_price


def test_without_a_limit_losses_are_measured_but_never_priced():
    report = agents.make("actor_critic", *_spaces(), seed=0, **FAST).fit(
        ToyCampaignVecEnv(num_envs=64, seed=0), total_steps=4_000)

    assert report.extra["leave_price"] == 0.0 and report.extra["leave_rate"] > 0.0


def test_the_price_of_a_lost_customer_is_saved_and_loaded(tmp_path):
    constrained = _trained(steps=2_000, max_leave_rate=1e-4)

    loaded = agents.load(constrained.save(tmp_path / "ac.pt"))

    assert loaded.leave_price == constrained.leave_price > 0.0


def test_learns_the_toy_campaign_far_better_than_random(trained):
    learned = average_return(lambda obs, mask: trained.act(obs, mask))
    random = average_return(_random_policy(0))
    best = average_return(optimal_actions)
    assert learned > random + 0.7 * (best - random)


def test_learns_from_a_single_gymnasium_env():
    agent = agents.make("actor_critic", *_spaces(), seed=0, n_steps=64, minibatch_size=64)
    report = agent.fit(ToyCampaignEnv(), total_steps=6_000)
    assert report.env_steps >= 6_000
    assert average_return(lambda obs, mask: agent.act(obs, mask)) > average_return(_random_policy(0)) + 1.0


@pytest.mark.parametrize("mode", list(gym.vector.AutoresetMode))
def test_learns_under_every_autoreset_mode(mode):
    env = ToyCampaignVecEnv(num_envs=64, seed=2, autoreset_mode=mode)
    agent = agents.make("actor_critic", *_spaces(), seed=2, **FAST)
    agent.fit(env, total_steps=8_000)
    assert average_return(lambda obs, mask: agent.act(obs, mask)) > average_return(_random_policy(0)) + 1.5


def test_report_has_a_learning_curve_and_the_steps_spent():
    agent = agents.make("actor_critic", *_spaces(), seed=0, **FAST)
    report = agent.fit(ToyCampaignVecEnv(num_envs=64, seed=0), total_steps=6_000)
    assert report.algorithm == "actor_critic"
    assert report.env_steps >= 6_000
    assert len(report.curve_steps) == len(report.curve_returns) >= 3
    assert report.curve_steps == sorted(report.curve_steps)
    assert report.curve_returns[-1] > report.curve_returns[0]
    assert report.wall_seconds > 0


def test_progress_callback_is_called_and_can_cancel():
    seen = []
    def callback(progress):
        seen.append(progress)
        return len(seen) < 2
    agent = agents.make("actor_critic", *_spaces(), seed=0, **FAST)
    report = agent.fit(ToyCampaignVecEnv(num_envs=64, seed=0), total_steps=50_000, callback=callback)
    assert len(seen) == 2 and report.cancelled
    assert report.env_steps < 50_000
    assert 0 < seen[-1].fraction < 1 and seen[-1].total_steps == 50_000


def test_unknown_hyper_parameter_is_rejected():
    with pytest.raises(TypeError, match="unknown hyper-parameter.*learning_rat"):
        agents.make("actor_critic", *_spaces(), learning_rat=0.1)


@pytest.mark.parametrize("bad, match", [
    ({"gamma": 1.5}, "gamma"), ({"n_steps": 0}, "n_steps"), ({"clip_range": 0}, "clip_range"),
    ({"hidden_sizes": ()}, "hidden_sizes"), ({"activation": "sigmoid"}, "activation"),
    ({"ent_coef_final": -0.1}, "ent_coef_final"),
    ({"action_attributes": np.ones((N_ACTIONS + 1, 2))}, "one row per action"),
    ({"action_attributes": np.full((N_ACTIONS, 2), np.nan)}, "action_attributes"),
    ({"max_leave_rate": 0.0}, "max_leave_rate"), ({"max_leave_rate": 1.0}, "max_leave_rate"),
    ({"max_leave_rate": -0.01}, "max_leave_rate"), ({"leave_price_step": 0.0}, "leave_price_step"),
])
def test_invalid_hyper_parameter_values_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        agents.make("actor_critic", *_spaces(), **bad)


def test_wrong_space_types_are_rejected():
    obs_space, action_space = _spaces()
    with pytest.raises(TypeError, match="Discrete action space"):
        agents.make("actor_critic", obs_space, gym.spaces.Box(0, 1, (3,)))
    with pytest.raises(TypeError, match="1-D Box observation space"):
        agents.make("actor_critic", gym.spaces.Discrete(5), action_space)


def test_env_that_does_not_match_the_agent_is_rejected():
    agent = agents.make("actor_critic", gym.spaces.Box(0, 1, (N_FEATURES + 1,)), gym.spaces.Discrete(N_ACTIONS))
    with pytest.raises(ValueError, match="observations have shape"):
        agent.fit(ToyCampaignVecEnv(num_envs=4), total_steps=100)


def test_mask_of_the_wrong_shape_is_rejected(trained):
    obs = np.zeros((3, N_FEATURES), dtype=np.float32)
    with pytest.raises(ValueError, match="action_mask has shape"):
        trained.act(obs, np.ones((3, N_ACTIONS + 1), dtype=bool))


def test_mask_row_allowing_nothing_is_rejected(trained):
    mask = np.ones((3, N_ACTIONS), dtype=bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"allows no action in row\(s\) \[1\]"):
        trained.action_probabilities(np.zeros((3, N_FEATURES), dtype=np.float32), mask)


def test_observation_of_the_wrong_width_is_rejected(trained):
    with pytest.raises(ValueError, match="obs has shape"):
        trained.act(np.zeros((2, N_FEATURES + 2), dtype=np.float32))


@pytest.mark.expensive
def test_reaches_the_toy_optimum_with_a_larger_budget():
    agent = _trained(seed=3, steps=60_000)
    best = average_return(optimal_actions)
    assert average_return(lambda obs, mask: agent.act(obs, mask)) >= 0.97 * best
