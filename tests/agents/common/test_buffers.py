"""Rollout buffer (GAE with churn vs horizon) and replay buffer (masks, wrap-around)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.common.buffers import ReplayBuffer, RolloutBuffer


def _fill(rewards, values, terminated, truncated, bootstrap, valid=None):
    n_steps, n = np.shape(rewards)
    buffer = RolloutBuffer(n_steps, n, 2, 3)
    valid = np.ones((n_steps, n), bool) if valid is None else np.asarray(valid)
    for t in range(n_steps):
        buffer.add(np.zeros((n, 2)), np.ones((n, 3), bool), np.zeros(n, int), np.zeros(n), values[t])
        done = np.asarray(terminated[t]) | np.asarray(truncated[t])
        buffer.add_outcome(np.asarray(rewards[t]), np.asarray(terminated[t]), done, valid[t],
                           np.asarray(bootstrap[t]))
    return buffer


def test_gae_with_lambda_one_is_the_discounted_return_plus_bootstrap():
    gamma = 0.9
    buffer = _fill([[1.0], [2.0], [3.0]], [[0.5], [0.4], [0.3]], [[False]] * 3, [[False]] * 3, [[0.0]] * 3)
    buffer.compute_advantages(np.array([10.0]), gamma, 1.0)
    expected_return0 = 1 + gamma * 2 + gamma**2 * 3 + gamma**3 * 10
    assert buffer.returns[0, 0] == pytest.approx(expected_return0, rel=1e-6)
    assert buffer.advantages[0, 0] == pytest.approx(expected_return0 - 0.5, rel=1e-6)


def test_churn_cuts_the_future_but_the_horizon_bootstraps():
    gamma = 0.9
    # slot 0 churns (terminated) at t=0, slot 1 reaches the horizon (truncated) with final value 5
    buffer = _fill([[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [7.0, 7.0]],
                   [[True, False], [False, False]], [[False, True], [False, False]],
                   [[0.0, 5.0], [0.0, 0.0]])
    buffer.compute_advantages(np.array([3.0, 3.0]), gamma, 0.95)
    assert buffer.returns[0, 0] == pytest.approx(1.0)
    assert buffer.returns[0, 1] == pytest.approx(1.0 + gamma * 5.0)


def test_flat_drops_rows_that_were_only_resets():
    valid = [[True, True], [True, False]]
    buffer = _fill([[1, 1], [1, 1]], [[0, 0], [0, 0]], [[False] * 2] * 2, [[False] * 2] * 2,
                   [[0, 0]] * 2, valid)
    buffer.compute_advantages(np.zeros(2), 0.9, 0.9)
    assert buffer.flat()["obs"].shape == (3, 2)


def test_replay_buffer_keeps_the_newest_transitions_and_their_next_masks():
    replay = ReplayBuffer(4, 2, 3)
    for start in range(0, 6, 2):
        rows = np.arange(start, start + 2)
        replay.add(np.stack([rows, rows], 1).astype(np.float32), rows, rows.astype(np.float32),
                   np.zeros((2, 2), np.float32), rows % 2 == 0, np.eye(3, dtype=bool)[rows % 3])
    assert len(replay) == 4
    assert sorted(replay.actions.tolist()) == [2, 3, 4, 5]
    sample = replay.sample(64, np.random.default_rng(0))
    assert set(sample.actions.tolist()) <= {2, 3, 4, 5}
    np.testing.assert_array_equal(sample.next_masks.numpy(), np.eye(3, dtype=bool)[sample.actions.numpy() % 3])
    np.testing.assert_array_equal(sample.terminated.numpy(), sample.actions.numpy() % 2 == 0)


def test_sampling_an_empty_replay_buffer_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, 2, 3).sample(8, np.random.default_rng(0))
