"""FittedJourneyEnv: the workspace's customers responding as its fitted model says."""

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents.envs import OUTCOME_KEYS, FittedJourneyEnv
from agents.response_model import ResponseModel
from tests.agents.response_logs import rules_logs


@pytest.fixture(scope="module")
def world():
    """A small model fitted on 12 days of retail logs, and the logged customers' profiles."""
    log, env, rules = rules_logs(500, 6_000, seed=21)
    model = ResponseModel.fit(log, env.catalogue, n_members=3, epochs=10, seed=0)
    return model, env.profile.copy(), rules


def _run(env, policy, days=15):
    obs, info = env.reset()
    rewards, violations, outcomes = [], 0.0, []
    for _ in range(days):
        obs, r, term, trunc, info = env.step(policy(obs, info["action_mask"]))
        rewards.append(r)
        violations += info["cap_violations"].sum()
        outcomes.append(info["net_revenue"])
    return obs, np.array(rewards), violations, np.array(outcomes), info


def test_is_a_vector_env_with_the_simulators_info(world):
    model, profiles, _ = world
    env = FittedJourneyEnv(model, profiles, num_customers=32, seed=1)
    assert isinstance(env, gym.vector.VectorEnv)
    obs, info = env.reset()
    assert obs.shape == (32, model.fitted_features) and info["action_mask"].shape == (32, 49)
    _, _, _, _, info = env.step(np.zeros(32, dtype=np.int64))
    for key in (*OUTCOME_KEYS, "action_mask", "mask_reasons", "uncertainty"):
        assert info[key].shape[0] == 32


def test_a_policy_that_respects_the_mask_breaks_no_cap(world):
    model, profiles, rules = world
    env = FittedJourneyEnv(model, profiles, num_customers=64, seed=2)
    _, _, violations, _, _ = _run(env, lambda obs, mask: rules.act(obs, action_mask=mask))
    assert violations == 0


def test_forced_contacts_the_rules_forbid_are_not_sent_and_are_counted(world):
    model, profiles, _ = world
    env = FittedJourneyEnv(model, profiles, num_customers=64, seed=2)
    email = 1  # the same email every day: the weekly cap and the minimum gap forbid it
    _, _, violations, _, info = _run(env, lambda obs, mask: np.full(len(obs), email), days=10)
    assert violations > 0


def test_same_seed_same_trajectory(world):
    model, profiles, rules = world

    def run(seed):
        env = FittedJourneyEnv(model, profiles, num_customers=48, seed=seed)
        return _run(env, lambda obs, mask: rules.act(obs, action_mask=mask))

    (o1, r1, *_), (o2, r2, *_), (o3, r3, *_) = run(5), run(5), run(6)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, r3)


def test_uncertainty_penalty_lowers_the_training_reward_not_the_outcomes(world):
    model, profiles, rules = world

    def run(penalty):
        env = FittedJourneyEnv(model, profiles, num_customers=64, seed=9,
                               uncertainty_penalty=penalty)
        return _run(env, lambda obs, mask: rules.act(obs, action_mask=mask))

    _, r0, _, revenue0, _ = run(0.0)
    _, r1, _, revenue1, _ = run(1.0)
    assert r1.sum() < r0.sum()
    np.testing.assert_array_equal(revenue0, revenue1)


def test_customers_are_drawn_from_the_start_profiles(world):
    model, profiles, _ = world
    env = FittedJourneyEnv(model, profiles.take(np.arange(3)), num_customers=20, seed=0)
    env.reset()
    assert set(np.round(env.profile.tenure_days, 6)) <= set(np.round(profiles.tenure_days[:3], 6))


def test_actor_critic_trains_in_it_unchanged(world):
    model, profiles, _ = world
    env = FittedJourneyEnv(model, profiles, num_customers=64, seed=0)
    agent = agents.make("actor_critic", env.single_observation_space, env.single_action_space)
    report = agent.fit(env, total_steps=4_096)
    assert report is not None
    obs, info = env.reset()
    actions = agent.act(obs, action_mask=info["action_mask"])
    assert info["action_mask"][np.arange(64), actions].all()
