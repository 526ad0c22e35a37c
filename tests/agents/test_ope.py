"""Off-policy estimators: exact numbers on a hand-computed log, unbiasedness, and every guard."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from agents import ope

# ------------------------------------------------------------------ a tiny hand-computed log
# 4 decisions, 2 actions. Importance weights w = pi(a_i)/p_i = 1/0.5, 0.5/0.5, 0.8/0.25, 0.5/0.8
REWARDS = np.array([1.0, 0.0, 1.0, 0.0])
ACTIONS = np.array([0, 1, 1, 0])
PROPENSITIES = np.array([0.5, 0.5, 0.25, 0.8])
TARGET = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [0.5, 0.5]])
MODEL = np.array([[0.6, 0.2], [0.4, 0.4], [0.0, 0.5], [0.3, 0.1]])
WEIGHTS = np.array([2.0, 1.0, 3.2, 0.625])


def _estimate(method: str, **kwargs):
    return ope.estimate(REWARDS, ACTIONS, PROPENSITIES, TARGET, method=method,
                        reward_model=MODEL, **kwargs)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("dm", (0.6 + 0.4 + 0.4 + 0.2) / 4),
        ("ips", (2.0 + 3.2) / 4),
        ("snips", 5.2 / 6.825),
        ("dr", 0.4 + (0.8 - 0.4 + 1.6 - 0.1875) / 4),
        ("sndr", 0.4 + 1.8125 / 6.825),
    ],
)
def test_estimators_match_hand_computed_values(method, expected):
    assert _estimate(method).value == pytest.approx(expected, abs=1e-12)


def test_estimator_objects_agree_with_estimate():
    estimator = ope.DoublyRobust()
    value = estimator.estimate_policy_value(REWARDS, ACTIONS, PROPENSITIES, TARGET, MODEL)
    assert value == pytest.approx(0.853125, abs=1e-12)


def test_switch_dr_drops_the_correction_of_rows_above_the_threshold():
    estimator = ope.SwitchDoublyRobust(switch_threshold=2.5)  # drops row 2 (w = 3.2)
    value = estimator.estimate_policy_value(REWARDS, ACTIONS, PROPENSITIES, TARGET, MODEL)
    assert value == pytest.approx(0.4 + (0.8 - 0.4 - 0.1875) / 4, abs=1e-12)


def test_clipping_caps_the_weights_and_warns_about_bias():
    result = _estimate("ips", clip=2.0)
    assert result.value == pytest.approx((2.0 + 2.0) / 4, abs=1e-12)
    assert any("clipped" in w for w in result.warnings)


def test_no_clipping_by_default():
    assert _estimate("ips").value == pytest.approx(1.3, abs=1e-12)
    assert not any("clipped" in w for w in _estimate("ips").warnings)


def test_effective_sample_size_is_kish():
    expected = WEIGHTS.sum() ** 2 / np.square(WEIGHTS).sum()
    assert _estimate("dr").effective_sample_size == pytest.approx(expected, abs=1e-12)
    assert ope.effective_sample_size(np.ones(7)) == pytest.approx(7.0)


def test_normal_interval_uses_the_per_row_contributions():
    result = _estimate("ips", confidence=0.9)
    contributions = WEIGHTS * REWARDS
    half = stats.norm.ppf(0.95) * contributions.std(ddof=1) / math.sqrt(4)
    assert (result.lower, result.upper) == pytest.approx((1.3 - half, 1.3 + half), abs=1e-12)
    assert result.n == 4 and result.interval == "normal" and result.confidence == 0.9


def test_bootstrap_interval_is_seeded_and_brackets_the_value():
    first = _estimate("snips", interval="bootstrap", n_bootstrap=200, seed=3)
    again = _estimate("snips", interval="bootstrap", n_bootstrap=200, seed=3)
    assert (first.lower, first.upper) == (again.lower, again.upper)
    assert first.lower <= first.value <= first.upper


def test_estimate_many_skips_model_methods_without_a_model():
    results = ope.estimate_many(REWARDS, ACTIONS, PROPENSITIES, TARGET)
    assert set(results) == {"ips", "snips"}


# ------------------------------------------------------------------ unbiasedness on synthetic logs
def _synthetic_logs(rng: np.random.Generator, reps: int, n: int, n_actions: int = 4):
    """Contextual bandit logs with known expected rewards; logging softmax != target softmax."""
    x = rng.normal(size=(reps, n, 3))
    theta = np.array([[0.5, -0.2, 0.1], [0.0, 0.4, -0.3], [-0.3, 0.1, 0.5], [0.2, 0.2, 0.2]])
    expected = 1.0 / (1.0 + np.exp(-(x @ theta[:n_actions].T)))  # (reps, n, A) P(reward = 1)
    logits_log = x @ np.array([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 0.3], [0.1, 0.1, 0.1]]).T
    logging = np.exp(logits_log) / np.exp(logits_log).sum(-1, keepdims=True)
    logits_target = 2.0 * expected
    target = np.exp(logits_target) / np.exp(logits_target).sum(-1, keepdims=True)
    cumulative = logging.cumsum(-1)
    actions = (rng.random((reps, n, 1)) > cumulative).sum(-1).clip(max=n_actions - 1)
    idx = np.indices(actions.shape)
    propensities = logging[idx[0], idx[1], actions]
    rewards = (rng.random((reps, n)) < expected[idx[0], idx[1], actions]).astype(float)
    truth = (target * expected).sum(-1).mean()  # population value (all reps)
    return rewards, actions, propensities, target, expected, truth


@pytest.mark.parametrize("method", ["ips", "dr"])
def test_ips_and_dr_are_unbiased_on_synthetic_logs(method):
    rng = np.random.default_rng(0)
    reps, n = 300, 400
    rewards, actions, propensities, target, expected, truth = _synthetic_logs(rng, reps, n)
    wrong_model = np.full_like(expected, 0.2)  # badly misspecified: DR must still be unbiased
    values, covered = [], 0
    for r in range(reps):
        result = ope.estimate(rewards[r], actions[r], propensities[r], target[r], method=method,
                              reward_model=wrong_model[r])
        values.append(result.value)
        covered += result.lower <= (target[r] * expected[r]).sum(-1).mean() <= result.upper
    values = np.array(values)
    standard_error = values.std(ddof=1) / math.sqrt(reps)
    assert abs(values.mean() - truth) < 3.5 * standard_error
    assert 0.90 <= covered / reps <= 0.99  # the 95 % interval covers about 95 % of the time


def test_direct_method_with_a_wrong_model_is_biased():
    """The contrast that shows the unbiasedness test can fail: DM inherits the model's error."""
    rng = np.random.default_rng(1)
    rewards, actions, propensities, target, expected, truth = _synthetic_logs(rng, 1, 4000)
    result = ope.estimate(rewards[0], actions[0], propensities[0], target[0], method="dm",
                          reward_model=np.full_like(expected[0], 0.2))
    assert result.upper < truth


def test_dr_with_a_cross_fitted_model_is_accurate():
    rng = np.random.default_rng(2)
    rewards, actions, propensities, target, expected, truth = _synthetic_logs(rng, 1, 20_000)
    x = rng.normal(size=(20_000, 3))  # the model sees noise features: DR still corrects it
    model = ope.fit_reward_model(x, actions[0], rewards[0], 4, folds=2)
    result = ope.estimate(rewards[0], actions[0], propensities[0], target[0], reward_model=model)
    assert result.lower <= (target[0] * expected[0]).sum(-1).mean() <= result.upper
    assert abs(result.value - truth) < 0.02


# ------------------------------------------------------------------ several logging policies
def test_balanced_estimator_pools_the_loggers_propensities():
    rng = np.random.default_rng(4)
    n, a = 20_000, 3
    expected = np.tile(np.array([0.2, 0.5, 0.8]), (n, 1))
    loggers = np.stack([np.tile([0.8, 0.1, 0.1], (n, 1)), np.tile([0.2, 0.3, 0.5], (n, 1))], axis=1)
    logger_ids = (rng.random(n) < 0.25).astype(int)  # 75 % logged by logger 0
    row_probs = loggers[np.arange(n), logger_ids]
    actions = (rng.random((n, 1)) > row_probs.cumsum(1)).sum(1).clip(max=a - 1)
    rewards = (rng.random(n) < expected[np.arange(n), actions]).astype(float)
    target = np.tile([0.0, 0.0, 1.0], (n, 1))
    shares = np.bincount(logger_ids, minlength=2) / n
    per_row = ope.estimate(rewards, actions, row_probs[np.arange(n), actions], target, method="ips")
    balanced = ope.estimate(rewards, actions, row_probs[np.arange(n), actions], target,
                            method="ips", logger_probs=loggers, logger_shares=shares)
    pooled = ope.balanced_propensities(actions, loggers, shares)
    assert balanced.method == "ips (balanced)"
    assert pooled[actions == 2] == pytest.approx(shares @ np.array([0.1, 0.5]))
    assert balanced.lower <= 0.8 <= balanced.upper and per_row.lower <= 0.8 <= per_row.upper
    assert balanced.upper - balanced.lower < per_row.upper - per_row.lower


# ------------------------------------------------------------------ reward model
@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_reward_model_recovers_per_action_linear_rewards(kind):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6000, 2))
    actions = rng.integers(0, 3, 6000)
    coef = np.array([[1.0, 0.0], [0.0, -1.0], [0.5, 0.5]])
    rewards = (x @ coef.T)[np.arange(6000), actions] + 0.1 * rng.normal(size=6000)
    model = ope.RewardModel(3, kind=kind, epochs=10, seed=0).fit(x, actions, rewards)
    test_x = rng.normal(size=(200, 2))
    assert np.abs(model.predict(test_x) - test_x @ coef.T).mean() < 0.15


def test_cross_fitted_predictions_have_one_row_per_logged_decision():
    rng = np.random.default_rng(6)
    predictions = ope.fit_reward_model(rng.normal(size=(100, 2)), rng.integers(0, 3, 100),
                                       rng.random(100), 3, folds=3)
    assert predictions.shape == (100, 3) and np.isfinite(predictions).all()


# ------------------------------------------------------------------ guards
@pytest.mark.parametrize(
    ("bad_propensities", "match"),
    [
        (None, "propensities is missing"),
        ([0.5, np.nan, 0.25, 0.8], r"missing \(NaN\)"),
        ([0.5, 0.0, 0.25, 0.8], "must be > 0"),
        ([0.5, -0.5, 0.25, 0.8], "must be > 0"),
        ([0.5, 1.5, 0.25, 0.8], "must be <= 1"),
        ([0.5, 0.5, 0.25], "has 3 rows"),
    ],
)
def test_bad_propensities_raise(bad_propensities, match):
    with pytest.raises(ValueError, match=match):
        ope.estimate(REWARDS, ACTIONS, bad_propensities, TARGET, method="ips")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rewards": [1.0, 0.0, 1.0]}, "target_probs has 4 rows but rewards has 3"),
        ({"rewards": [1.0, np.nan, 1.0, 0.0]}, "rewards contains NaN"),
        ({"actions": [0, 1, 2, 0]}, r"actions must lie in \[0, 2\)"),
        ({"actions": [0, 1, 1]}, r"actions must have shape \(4,\)"),
        ({"actions": [0.0, 0.5, 1.0, 0.0]}, "integer action indices"),
        ({"target_probs": TARGET * 0.9}, "rows must sum to 1"),
        ({"target_probs": np.array([[1.2, -0.2]] * 4)}, "negative probabilities"),
        ({"target_probs": TARGET[:, :1]}, "rows must sum to 1"),
        ({"target_probs": TARGET.ravel()}, "must be 2-dimensional"),
    ],
)
def test_malformed_logs_raise(kwargs, match):
    inputs = {"rewards": REWARDS, "actions": ACTIONS, "propensities": PROPENSITIES,
              "target_probs": TARGET} | kwargs
    with pytest.raises(ValueError, match=match):
        ope.estimate(**inputs, method="ips")


def test_empty_logs_raise():
    with pytest.raises(ValueError, match="no logged rows"):
        ope.estimate([], [], [], np.zeros((0, 2)), method="ips")


def test_dr_without_a_reward_model_raises():
    with pytest.raises(ValueError, match="needs reward_model"):
        ope.estimate(REWARDS, ACTIONS, PROPENSITIES, TARGET, method="dr")


def test_reward_model_of_the_wrong_shape_raises():
    with pytest.raises(ValueError, match="reward_model has shape"):
        ope.estimate(REWARDS, ACTIONS, PROPENSITIES, TARGET, reward_model=MODEL[:, :1])


def test_unknown_method_and_bad_options_raise():
    with pytest.raises(ValueError, match="unknown method"):
        _estimate("magic")
    with pytest.raises(ValueError, match="clip must be a positive"):
        _estimate("ips", clip=0.0)
    with pytest.raises(ValueError, match="confidence must be in"):
        _estimate("ips", confidence=1.0)
    with pytest.raises(ValueError, match="interval must be"):
        _estimate("ips", interval="jackknife")
    with pytest.raises(ValueError, match="switch_threshold must be positive"):
        ope.SwitchDoublyRobust(switch_threshold=-1.0)


def test_target_outside_the_logging_support_raises_when_logging_probs_are_given():
    logging_probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.75, 0.25], [0.8, 0.2]])
    target = TARGET.copy()
    target[3] = [0.0, 1.0]
    ope.estimate(REWARDS, ACTIONS, PROPENSITIES, target, method="ips", logging_probs=logging_probs)
    logging_probs[3] = [1.0, 0.0]  # action 1 impossible for the logger in row 3
    with pytest.raises(ValueError, match="outside the logging policy's support"):
        ope.estimate(REWARDS, ACTIONS, [0.5, 0.5, 0.25, 1.0], target, method="ips",
                     logging_probs=logging_probs)


def test_propensities_that_disagree_with_logging_probs_raise():
    logging_probs = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="disagree with logging_probs"):
        ope.estimate(REWARDS, ACTIONS, PROPENSITIES, TARGET, method="ips",
                     logging_probs=logging_probs)


def test_actions_never_logged_give_a_support_warning():
    target = np.tile([0.0, 0.5, 0.5], (4, 1))
    result = ope.estimate(REWARDS, ACTIONS, PROPENSITIES, target, method="ips")
    assert any("possible support gap" in w and "[2]" in w for w in result.warnings)


def test_poor_overlap_warns_and_strict_raises():
    n = 10_000
    rewards, actions = np.ones(n), np.zeros(n, dtype=int)
    propensities = np.full(n, 0.5)
    propensities[0] = 1e-6  # one row with a huge weight dominates: ESS ~ 1
    target = np.tile([1.0, 0.0], (n, 1))
    result = ope.estimate(rewards, actions, propensities, target, method="snips")
    assert result.effective_sample_size < 0.01 * n
    assert any("poor overlap" in w for w in result.warnings)
    with pytest.raises(ValueError, match="poor overlap"):
        ope.estimate(rewards, actions, propensities, target, method="snips", strict=True)


def test_no_overlap_at_all_raises():
    with pytest.raises(ValueError, match="no overlap"):
        # the target always picks the action that was NOT logged
        ope.estimate(REWARDS, ACTIONS, PROPENSITIES,
                     np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), method="snips")


def test_multi_logger_guards():
    loggers = np.full((4, 2, 2), 0.5)
    with pytest.raises(ValueError, match="needs logger_shares"):
        ope.estimate(REWARDS, ACTIONS, PROPENSITIES, TARGET, method="ips", logger_probs=loggers)
    with pytest.raises(ValueError, match="sum to 1"):
        ope.balanced_propensities(ACTIONS, loggers, [0.5, 0.6])
    with pytest.raises(ValueError, match="has 3 entries"):
        ope.balanced_propensities(ACTIONS, loggers, [0.2, 0.3, 0.5])


def test_paired_difference_of_a_policy_with_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    n, actions = 500, 3
    logged = rng.integers(0, actions, n)
    target = rng.dirichlet(np.ones(actions), n)
    result = ope.estimate_difference(rng.normal(size=n), logged, np.full(n, 1 / actions), target,
                                     target, method="dr", reward_model=rng.normal(size=(n, actions)))
    assert (result.value, result.lower, result.upper) == (0.0, 0.0, 0.0)


def test_paired_interval_is_narrower_than_the_two_separate_ones_it_replaces():
    # two policies that agree on most rows: their errors are shared and cancel in the difference
    rng = np.random.default_rng(1)
    n, actions = 4000, 4
    logged = rng.integers(0, actions, n)
    rewards = rng.normal(loc=logged == 2, scale=1.0)
    model = np.tile(np.eye(actions)[2], (n, 1)) * 0.8
    baseline = np.full((n, actions), 1 / actions)
    target = 0.9 * baseline + 0.1 * np.eye(actions)[np.full(n, 2)]
    kwargs = dict(method="dr", reward_model=model)
    paired = ope.estimate_difference(rewards, logged, np.full(n, 1 / actions), target, baseline,
                                     **kwargs)
    alone = [ope.estimate(rewards, logged, np.full(n, 1 / actions), p, **kwargs)
             for p in (target, baseline)]
    assert paired.value == pytest.approx(alone[0].value - alone[1].value)
    assert paired.upper - paired.lower < 0.5 * min(a.upper - a.lower for a in alone)
    assert paired.lower > 0  # the better policy is recognised as better


def test_paired_difference_refuses_target_rows_that_are_not_distributions():
    n = 10
    with pytest.raises(ValueError):
        ope.estimate_difference(np.zeros(n), np.zeros(n, dtype=int), np.full(n, 0.5),
                                np.full((n, 2), 0.7), np.full((n, 2), 0.5), method="snips")
