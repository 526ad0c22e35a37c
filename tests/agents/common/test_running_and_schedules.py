"""Running statistics and schedules."""

from __future__ import annotations

import numpy as np
import pytest

from agents.common.running import ObservationNormalizer, RewardScaler, RunningMeanStd
from agents.common.schedules import constant_schedule, linear_schedule


def test_running_moments_match_numpy_over_many_batches():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4))
    stats = RunningMeanStd((4,), epsilon=0.0 + 1e-12)
    for chunk in np.array_split(data, 7):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats.var, data.var(axis=0), rtol=1e-6)


def test_observation_normaliser_standardises_and_clips():
    norm = ObservationNormalizer(2, clip=3.0)
    norm.update(np.random.default_rng(1).normal(5.0, 0.5, size=(5000, 2)))
    out = norm(np.array([[5.0, 100.0]]))
    assert abs(out[0, 0]) < 0.1 and out[0, 1] == 3.0 and out.dtype == np.float32


def test_disabled_normaliser_is_the_identity():
    norm = ObservationNormalizer(2, enabled=False)
    norm.update(np.ones((10, 2)) * 7)
    np.testing.assert_array_equal(norm(np.array([[1.0, 2.0]])), [[1.0, 2.0]])


def test_reward_scaler_brings_currency_rewards_to_unit_scale():
    scaler = RewardScaler(64, gamma=0.9)
    rng = np.random.default_rng(2)
    for _ in range(200):
        reward = rng.normal(0, 50, 64)
        scaler.update(reward, np.zeros(64, bool), np.ones(64, bool))
    scaled = scaler.scale(rng.normal(0, 50, 10_000))
    assert 0.2 < scaled.std() < 1.0  # the return's std is larger than one day's reward std


def test_linear_schedule_reaches_the_end_value_and_stays():
    schedule = linear_schedule(1.0, 0.1, end_fraction=0.5)
    assert schedule(0.0) == 1.0
    assert schedule(0.25) == pytest.approx(0.55)
    assert schedule(0.5) == schedule(0.9) == pytest.approx(0.1)
    assert constant_schedule(0.3)(0.7) == 0.3


def test_linear_schedule_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="end_fraction"):
        linear_schedule(1.0, 0.0, end_fraction=0.0)
