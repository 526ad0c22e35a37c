"""CustomerBatch: one code path for single envs and vector envs in every autoreset mode."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.common.vec import CustomerBatch
from tests.agents.common.toy_envs import N_ACTIONS, ToyCampaignEnv, ToyCampaignVecEnv, optimal_actions

MODES = list(gym.vector.AutoresetMode)


def _batch(env) -> CustomerBatch:
    if isinstance(env, gym.vector.VectorEnv):
        return CustomerBatch(env, env.single_observation_space, env.single_action_space)
    return CustomerBatch(env, env.observation_space, env.action_space)


def _run(batch: CustomerBatch, days: int):
    obs, mask = batch.reset(seed=0)
    steps = []
    for _ in range(days):
        actions = optimal_actions(obs, mask)
        step = batch.step(actions)
        steps.append((obs, mask, actions, step))
        obs, mask = step.obs, step.mask
    return steps


def test_reset_gives_batched_observations_and_masks():
    batch = _batch(ToyCampaignVecEnv(num_envs=5, seed=0))
    obs, mask = batch.reset(seed=0)
    assert obs.shape == (5, 5) and obs.dtype == np.float32
    assert mask.shape == (5, N_ACTIONS) and mask.dtype == bool and mask[:, 0].all()


def test_single_env_is_a_batch_of_one():
    batch = _batch(ToyCampaignEnv(horizon=3))
    steps = _run(batch, 9)
    assert batch.n == 1 and batch.env_steps == 9
    assert all(step.obs.shape == (1, 5) and step.valid.all() for *_, step in steps)
    assert batch.n_finished == 3 and (batch.finished_lengths() == 3).all()


@pytest.mark.parametrize("mode", MODES)
def test_every_autoreset_mode_ends_episodes_within_the_horizon(mode):
    batch = _batch(ToyCampaignVecEnv(num_envs=1, horizon=4, seed=0, block_prob=0.0, autoreset_mode=mode))
    _run(batch, 40)
    assert batch.n_finished >= 8
    assert (batch.finished_lengths() <= 4).all()


def test_next_step_autoreset_marks_the_reset_step_invalid():
    batch = _batch(ToyCampaignVecEnv(num_envs=3, horizon=2, seed=0, block_prob=0.0))
    steps = _run(batch, 6)
    for (_, _, _, step), (_, _, _, following) in zip(steps, steps[1:]):
        ended = step.done & step.valid
        assert not following.valid[ended].any()
        assert following.valid[~ended].all()
        assert (following.reward[~following.valid] == 0).all()
        assert not following.done[~following.valid].any()


@pytest.mark.parametrize("mode", [gym.vector.AutoresetMode.SAME_STEP, gym.vector.AutoresetMode.DISABLED])
def test_same_step_modes_give_the_final_state_in_next_obs(mode):
    batch = _batch(ToyCampaignVecEnv(num_envs=4, horizon=3, seed=1, block_prob=0.0, autoreset_mode=mode))
    steps = _run(batch, 9)
    ended_any = False
    for _, _, _, step in steps:
        assert step.valid.all()
        ended = step.done
        # the final state is the horizon day (day feature 1.0); obs is already a new customer (day 0)
        assert (step.next_obs[step.truncated, 4] == 1.0).all()
        assert (step.obs[ended, 4] == 0.0).all()
        assert np.array_equal(step.next_obs[~ended], step.obs[~ended])
        ended_any |= ended.any()
    assert ended_any


def test_episode_returns_count_only_real_transitions():
    batch = _batch(ToyCampaignVecEnv(num_envs=8, horizon=5, seed=2, block_prob=0.0))
    steps = _run(batch, 60)
    total_reward = sum(step.reward[step.valid].sum() for *_, step in steps)
    still_running = batch._running_return.sum()
    assert batch.finished_returns().sum() + still_running == pytest.approx(total_reward)
    assert batch.env_steps == 8 * 60
    # optimal play on an unblocked toy: each finished episode earns (horizon - 1) delayed +1s
    assert batch.recent_mean_return() == pytest.approx(4.0)


def test_missing_mask_means_everything_allowed():
    class NoMask(gym.Wrapper):
        def reset(self, **kwargs):
            obs, _ = self.env.reset(**kwargs)
            return obs, {}
        def step(self, action):
            obs, reward, term, trunc, _ = self.env.step(action)
            return obs, reward, term, trunc, {}
    batch = _batch(NoMask(ToyCampaignEnv()))
    _, mask = batch.reset(seed=0)
    assert mask.all()


def test_env_with_wrong_spaces_is_rejected():
    env = ToyCampaignVecEnv(num_envs=2)
    with pytest.raises(ValueError, match="env has 4 actions; the agent was built for 5"):
        CustomerBatch(env, env.single_observation_space, gym.spaces.Discrete(5))
    with pytest.raises(TypeError, match="gymnasium.Env or gymnasium.vector.VectorEnv"):
        CustomerBatch(object(), env.single_observation_space, env.single_action_space)


def test_step_before_reset_is_an_error():
    batch = _batch(ToyCampaignVecEnv(num_envs=2))
    with pytest.raises(RuntimeError, match="reset"):
        batch.step(np.zeros(2, dtype=int))
