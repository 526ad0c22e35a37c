"""The one home of the report intervals: a mean over customers and a ratio of totals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.common.intervals import mean_with_se, ratio_with_se, z_score


def test_z_score_of_95_percent_is_1_96():
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)


def test_mean_and_its_standard_error():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, se = mean_with_se(values)
    assert mean == 2.5
    assert se == pytest.approx(np.std(values, ddof=1) / 2)


def test_one_value_has_no_spread_and_no_values_no_mean():
    assert mean_with_se(np.array([7.0])) == (7.0, 0.0)
    assert all(math.isnan(v) for v in mean_with_se(np.array([])))


def test_a_ratio_of_totals_weighs_customers_by_their_denominator():
    opens, contacts = np.array([1.0, 0.0, 3.0]), np.array([1.0, 1.0, 4.0])
    ratio, se = ratio_with_se(opens, contacts)
    assert ratio == pytest.approx(4 / 6)  # not the mean of per-customer rates (0.58)
    assert se > 0


def test_customers_with_the_same_rate_give_a_ratio_without_error():
    ratio, se = ratio_with_se(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))
    assert (ratio, se) == (0.5, pytest.approx(0.0, abs=1e-12))


def test_a_ratio_over_nothing_is_not_a_number():
    assert all(math.isnan(v) for v in ratio_with_se(np.array([1.0]), np.array([0.0])))
    assert all(math.isnan(v) for v in ratio_with_se(np.array([]), np.array([])))


def test_the_ratio_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(400):
        contacts = rng.integers(1, 6, size=300).astype(float)
        opens = rng.binomial(contacts.astype(int), 0.3).astype(float)
        ratio, se = ratio_with_se(opens, contacts)
        covered += abs(ratio - 0.3) <= z_score(0.95) * se
    assert 0.92 <= covered / 400 <= 0.98
