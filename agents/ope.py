"""Off-policy evaluation: what would a new policy have earned on customers we already contacted?

Every logged decision carries the probability with which the logging policy (rules, a bandit, an
earlier RL policy) chose its action. Re-weighting the logged rewards by how much more (or less)
often the *target* policy would have chosen the same action gives an estimate of the target's value
without showing it to a single customer. Estimators follow Open Bandit Pipeline's
`ope/estimators.py`: each one is a small validated dataclass with `estimate_policy_value` and
`estimate_interval`; `estimate(...)` is the one-call entry point the console uses.

The estimand
    V(pi) = E_{x ~ logged customers} [ sum_a pi(a | x) E[r | x, a] ]
is the expected *per-decision* reward of the target on the distribution of customer states that
appears in the logs. On a sequential problem (fatigue, churn) it is not the long-run value of
deploying pi, which would also change the states customers reach; that needs a simulator.

Notation (n logged rows, A actions)
    r_i rewards, a_i logged actions, p_i = mu(a_i | x_i) logged propensities,
    pi(. | x_i) = target_probs[i], w_i = pi(a_i | x_i) / p_i importance weights,
    q(x_i, a) = reward_model[i, a] predicted rewards (DM, DR family),
    dm_i = sum_a pi(a | x_i) q(x_i, a).

Confidence intervals. `interval="normal"` (default): a normal interval from the per-row influence
values psi_i of the estimator (their mean is the estimate; the delta method for the
self-normalised ones), value +- z * sd(psi) / sqrt(n). It treats `reward_model` as fixed: with a
cross-fitted model (`fit_reward_model`) DR's interval stays honest, DM's is too narrow by the model's
own error. `interval="bootstrap"`: a seeded percentile bootstrap over rows (same caveat about the
reward model, which is not refitted per resample).

What the guards can detect. Missing, NaN, zero, negative or > 1 propensities, shape mismatches and
target rows that are not distributions raise ValueError. Support: from one logged propensity per
row we cannot know whether the logging policy could have taken an action it did not take, so
without `logging_probs` we only warn when the target puts mass on actions that never occur in the
logs; pass `logging_probs` (n, A) - the logging policy's full distribution per row, which the
console logs with each decision - and support is checked exactly (ValueError where the target puts
mass on an action the logger gave probability 0). Poor overlap (Kish effective sample size of the
weights < 1 % of n) is reported in `OPEResult.warnings`, or raises with `strict=True`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import stats

__all__ = [
    "METHODS", "DirectMethod", "DoublyRobust", "InverseProbabilityWeighting", "LoggedFeedback",
    "OPEResult", "RewardModel", "SelfNormalizedDoublyRobust", "SelfNormalizedInverseProbabilityWeighting",
    "SwitchDoublyRobust", "balanced_propensities", "check_logged_feedback", "effective_sample_size",
    "estimate", "estimate_difference", "estimate_many", "fit_reward_model", "make_estimator",
]

POOR_OVERLAP_SHARE = 0.01
"""Kish effective sample size below this share of n counts as poor overlap (a warning)."""

PROB_ATOL = 1e-6
"""Tolerance for target rows summing to 1 and for logged vs full logging probabilities."""


# ---------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class LoggedFeedback:
    """Validated logged bandit feedback (see `check_logged_feedback`)."""

    rewards: np.ndarray
    actions: np.ndarray
    propensities: np.ndarray
    target_probs: np.ndarray
    reward_model: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.target_probs.shape[1])

    @property
    def target_on_logged(self) -> np.ndarray:
        """pi(a_i | x_i): the target's probability of the action that was actually taken."""
        return self.target_probs[np.arange(self.n), self.actions]

    @property
    def weights(self) -> np.ndarray:
        """Importance weights w_i = pi(a_i | x_i) / mu(a_i | x_i)."""
        return self.target_on_logged / self.propensities


def _as_float_array(name: str, value: Any, ndim: int) -> np.ndarray:
    if value is None:
        raise ValueError(f"{name} is missing")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    return array


def _check_probability_rows(name: str, probs: np.ndarray) -> None:
    if not np.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (probs < 0).any():
        rows = np.flatnonzero((probs < 0).any(axis=1))[:5].tolist()
        raise ValueError(f"{name} has negative probabilities in row(s) {rows}")
    sums = probs.sum(axis=-1)
    bad = np.abs(sums - 1.0) > PROB_ATOL
    if bad.any():
        index = np.argwhere(bad)[0].tolist()
        raise ValueError(
            f"{name} rows must sum to 1: row {index} sums to {sums[tuple(index)]:.6g}"
        )


def check_logged_feedback(
    rewards: Any, actions: Any, propensities: Any, target_probs: Any,
    reward_model: Any = None, logging_probs: Any = None,
) -> LoggedFeedback:
    """Validate logged data for OPE and return it as float/int numpy arrays.

    Raises ValueError (never returns a silently wrong number) for missing, NaN, zero, negative or
    > 1 propensities, mismatched lengths, actions outside [0, A), target rows that are not
    probability distributions, and - when `logging_probs` (n, A) is given - target mass on actions
    outside the logging policy's support or propensities that disagree with `logging_probs`.
    """
    rewards = _as_float_array("rewards", rewards, 1)
    target_probs = _as_float_array("target_probs", target_probs, 2)
    n = rewards.shape[0]
    if n == 0:
        raise ValueError("no logged rows: rewards is empty")
    if not np.isfinite(rewards).all():
        raise ValueError("rewards contains NaN or infinite values")
    if target_probs.shape[0] != n:
        raise ValueError(f"target_probs has {target_probs.shape[0]} rows but rewards has {n}")
    n_actions = target_probs.shape[1]
    _check_probability_rows("target_probs", target_probs)

    if actions is None:
        raise ValueError("actions is missing")
    actions_raw = np.asarray(actions)
    if actions_raw.ndim != 1 or actions_raw.shape[0] != n:
        raise ValueError(f"actions must have shape ({n},), got {actions_raw.shape}")
    if not np.issubdtype(actions_raw.dtype, np.integer):
        if not np.issubdtype(actions_raw.dtype, np.floating) or not np.isfinite(actions_raw).all() \
                or (actions_raw != np.round(actions_raw)).any():
            raise ValueError("actions must be integer action indices")
    actions_int = actions_raw.astype(np.int64)
    if actions_int.min() < 0 or actions_int.max() >= n_actions:
        raise ValueError(f"actions must lie in [0, {n_actions}) (target_probs has {n_actions} columns)")

    if propensities is None and logging_probs is not None:
        propensities = np.asarray(logging_probs, dtype=np.float64)[np.arange(n), actions_int]
    propensities = _as_float_array("propensities", propensities, 1)
    if propensities.shape[0] != n:
        raise ValueError(f"propensities has {propensities.shape[0]} rows but rewards has {n}")
    if np.isnan(propensities).any():
        rows = np.flatnonzero(np.isnan(propensities))[:5].tolist()
        raise ValueError(f"propensities are missing (NaN) in row(s) {rows}")
    if not np.isfinite(propensities).all():
        raise ValueError("propensities contains infinite values")
    if (propensities <= 0).any():
        rows = np.flatnonzero(propensities <= 0)[:5].tolist()
        raise ValueError(
            f"propensities must be > 0: zero or negative in row(s) {rows} "
            "(a logged action always had a positive probability; check the logging)"
        )
    if (propensities > 1 + PROB_ATOL).any():
        rows = np.flatnonzero(propensities > 1 + PROB_ATOL)[:5].tolist()
        raise ValueError(f"propensities must be <= 1: row(s) {rows}")
    propensities = np.minimum(propensities, 1.0)

    if reward_model is not None:
        reward_model = _as_float_array("reward_model", reward_model, 2)
        if reward_model.shape != target_probs.shape:
            raise ValueError(
                f"reward_model has shape {reward_model.shape}; expected {target_probs.shape}"
            )
        if not np.isfinite(reward_model).all():
            raise ValueError("reward_model contains NaN or infinite values")

    if logging_probs is not None:
        logging_probs = _as_float_array("logging_probs", logging_probs, 2)
        if logging_probs.shape != target_probs.shape:
            raise ValueError(
                f"logging_probs has shape {logging_probs.shape}; expected {target_probs.shape}"
            )
        _check_probability_rows("logging_probs", logging_probs)
        outside = (target_probs > 0) & (logging_probs <= 0)
        if outside.any():
            rows = np.flatnonzero(outside.any(axis=1))
            mass = float(np.where(outside, target_probs, 0.0).sum() / n)
            raise ValueError(
                f"target puts mass on actions outside the logging policy's support in "
                f"{rows.size} row(s) (first {rows[:5].tolist()}; {mass:.1%} of its mass): "
                "no estimator can evaluate it without bias"
            )
        logged = logging_probs[np.arange(n), actions_int]
        mismatch = np.abs(logged - propensities) > PROB_ATOL
        if mismatch.any():
            rows = np.flatnonzero(mismatch)[:5].tolist()
            raise ValueError(f"propensities disagree with logging_probs in row(s) {rows}")

    return LoggedFeedback(rewards, actions_int, propensities, target_probs, reward_model)


def balanced_propensities(actions: Any, logger_probs: Any, logger_shares: Any) -> np.ndarray:
    """Pooled propensity of each logged action under the mixture of several logging policies.

    With K logging policies mu_k that produced shares s_k of the rows, the balanced estimator of
    Agarwal et al. (2017, "Effective Evaluation Using Logged Bandit Feedback from Multiple
    Loggers", KDD) uses mu_bar(a | x) = sum_k s_k mu_k(a | x) for every row instead of the
    propensity of the logger that happened to log it. It is unbiased and its variance is never
    worse than that of naive per-logger IPS, and the target needs support only under the mixture.

    :param actions: (n,) logged actions
    :param logger_probs: (n, K, A) each logging policy's distribution over actions for each row
    :param logger_shares: (K,) share of the rows each logging policy logged (sums to 1), e.g.
        ``np.bincount(logger_ids, minlength=K) / n``
    :return: (n,) pooled propensities mu_bar(a_i | x_i)
    """
    probs = _as_float_array("logger_probs", logger_probs, 3)
    shares = _as_float_array("logger_shares", logger_shares, 1)
    n, k, _ = probs.shape
    if shares.shape[0] != k:
        raise ValueError(f"logger_shares has {shares.shape[0]} entries but logger_probs has {k} loggers")
    if not np.isfinite(shares).all() or (shares < 0).any() or abs(shares.sum() - 1.0) > PROB_ATOL:
        raise ValueError("logger_shares must be non-negative and sum to 1")
    _check_probability_rows("logger_probs", probs)
    actions = np.asarray(actions)
    if actions.shape != (n,):
        raise ValueError(f"actions must have shape ({n},), got {actions.shape}")
    pooled = np.einsum("k,nka->na", shares, probs)
    return pooled[np.arange(n), actions.astype(np.int64)]


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2: how many on-policy rows the logs are worth."""
    weights = np.asarray(weights, dtype=np.float64)
    denominator = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / denominator) if denominator > 0 else 0.0


# ---------------------------------------------------------------------------------- estimators
@dataclass
class BaseOffPolicyEstimator(ABC):
    """Shared machinery: validation, normal and bootstrap intervals.

    Subclasses implement `_value(data, counts)` - the estimate with rows weighted by bootstrap
    multiplicities `counts` (all ones for the plain estimate) - and `_influence(data)`, per-row
    values whose mean is the estimate and whose spread gives the normal interval.
    """

    estimator_name: ClassVar[str] = "base"
    needs_reward_model: ClassVar[bool] = False

    @abstractmethod
    def _value(self, data: LoggedFeedback, counts: np.ndarray) -> float:
        """The estimate with row i counted counts[i] times."""

    @abstractmethod
    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        """(n,) per-row contributions: mean = estimate, sd / sqrt(n) = standard error."""

    def _weights(self, data: LoggedFeedback) -> np.ndarray:
        return data.weights

    def _check(self, rewards: Any, actions: Any, propensities: Any, target_probs: Any,
               reward_model: Any) -> LoggedFeedback:
        if self.needs_reward_model and reward_model is None:
            raise ValueError(
                f"{self.estimator_name} needs reward_model (n, A) predicted rewards; "
                "fit one with agents.ope.fit_reward_model"
            )
        data = check_logged_feedback(rewards, actions, propensities, target_probs, reward_model)
        return data

    def estimate_policy_value(
        self, rewards: Any, actions: Any, propensities: Any, target_probs: Any,
        reward_model: Any = None,
    ) -> float:
        """Estimated per-decision value of the target policy on the logged customers."""
        data = self._check(rewards, actions, propensities, target_probs, reward_model)
        return self._value(data, np.ones(data.n))

    def estimate_interval(
        self, rewards: Any, actions: Any, propensities: Any, target_probs: Any,
        reward_model: Any = None, *, confidence: float = 0.95, interval: str = "normal",
        n_bootstrap: int = 1000, seed: int = 0,
    ) -> tuple[float, float, float]:
        """(estimate, lower, upper) at `confidence`, normal (default) or seeded bootstrap."""
        data = self._check(rewards, actions, propensities, target_probs, reward_model)
        return self._interval(data, confidence, interval, n_bootstrap, seed)

    def _interval(self, data: LoggedFeedback, confidence: float, interval: str,
                  n_bootstrap: int, seed: int) -> tuple[float, float, float]:
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        value = self._value(data, np.ones(data.n))
        if interval == "normal":
            influence = self._influence(data)
            se = float(influence.std(ddof=1) / math.sqrt(data.n)) if data.n > 1 else math.inf
            z = float(stats.norm.ppf(0.5 + confidence / 2))
            return value, value - z * se, value + z * se
        if interval == "bootstrap":
            if n_bootstrap < 10:
                raise ValueError("n_bootstrap must be >= 10")
            rng = np.random.default_rng(seed)
            draws = np.empty(n_bootstrap)
            for b in range(n_bootstrap):  # one resample of all rows per iteration (vectorised inside)
                counts = np.bincount(rng.integers(0, data.n, data.n), minlength=data.n)
                draws[b] = self._value(data, counts.astype(np.float64))
            alpha = (1.0 - confidence) / 2
            lower, upper = np.quantile(draws, [alpha, 1.0 - alpha])
            return value, float(lower), float(upper)
        raise ValueError(f"interval must be 'normal' or 'bootstrap', got {interval!r}")


def _check_clip(clip: float | None) -> None:
    if clip is not None and (not math.isfinite(clip) or clip <= 0):
        raise ValueError(f"clip must be a positive number or None, got {clip}")


def _mean(values: np.ndarray, counts: np.ndarray) -> float:
    return float(values @ counts / counts.sum())


@dataclass
class DirectMethod(BaseOffPolicyEstimator):
    """Direct Method (DM): trust a reward model, ignore the propensities.

        V_DM = 1/n sum_i sum_a pi(a | x_i) q(x_i, a)

    Low variance, biased whenever the reward model is wrong on the actions the target prefers.
    Beygelzimer & Langford (2009), "The Offset Tree for Learning with Partial Labels", KDD.
    """

    estimator_name: ClassVar[str] = "dm"
    needs_reward_model: ClassVar[bool] = True

    def _value(self, data: LoggedFeedback, counts: np.ndarray) -> float:
        return _mean(self._influence(data), counts)

    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        return (data.target_probs * data.reward_model).sum(axis=1)


@dataclass
class InverseProbabilityWeighting(BaseOffPolicyEstimator):
    """Inverse Probability Weighting (IPS): re-weight each logged reward by pi / mu.

        V_IPS = 1/n sum_i w_i r_i,   w_i = pi(a_i | x_i) / mu(a_i | x_i)   (optionally min(w_i, clip))

    Unbiased when the logging propensities are right and the target's support is covered; its
    variance grows with the weights. Horvitz & Thompson (1952); Precup, Sutton & Singh (2000).

    :param clip: cap on the importance weights (biased, lower variance); None = no clipping
    """

    clip: float | None = None
    estimator_name: ClassVar[str] = "ips"

    def __post_init__(self) -> None:
        _check_clip(self.clip)

    def _weights(self, data: LoggedFeedback) -> np.ndarray:
        weights = data.weights
        return weights if self.clip is None else np.minimum(weights, self.clip)

    def _value(self, data: LoggedFeedback, counts: np.ndarray) -> float:
        return _mean(self._influence(data), counts)

    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        return self._weights(data) * data.rewards


@dataclass
class SelfNormalizedInverseProbabilityWeighting(InverseProbabilityWeighting):
    """Self-normalised IPS (SNIPS): divide by the sum of the weights instead of n.

        V_SNIPS = sum_i w_i r_i / sum_i w_i

    Slightly biased, consistent, far lower variance than IPS and invariant to adding a constant to
    every reward. Swaminathan & Joachims (2015), "The Self-Normalized Estimator for
    Counterfactual Learning", NeurIPS. Interval: delta method, psi_i = V + w_i (r_i - V) / mean(w).

    :param clip: cap on the importance weights; None = no clipping
    """

    estimator_name: ClassVar[str] = "snips"

    def _value(self, data: LoggedFeedback, counts: np.ndarray) -> float:
        weights = self._weights(data) * counts
        total = weights.sum()
        if total <= 0:
            raise ValueError("the target gives zero probability to every logged action: no overlap")
        return float(weights @ data.rewards / total)

    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        weights = self._weights(data)
        value = self._value(data, np.ones(data.n))
        return value + weights * (data.rewards - value) / weights.mean()


@dataclass
class DoublyRobust(BaseOffPolicyEstimator):
    """Doubly Robust (DR): the Direct Method plus an IPS correction of the model's error.

        V_DR = 1/n sum_i [ sum_a pi(a | x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ]

    Unbiased if either the propensities or the reward model are right, and with a reasonable
    model its variance is much lower than IPS's. Dudik, Langford & Li (2011), "Doubly Robust Policy
    Evaluation and Learning", ICML. Fit `reward_model` with cross-fitting (`fit_reward_model`) so the
    correction term stays unbiased.

    :param clip: cap on the importance weights; None = no clipping
    """

    clip: float | None = None
    estimator_name: ClassVar[str] = "dr"
    needs_reward_model: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_clip(self.clip)

    def _weights(self, data: LoggedFeedback) -> np.ndarray:
        weights = data.weights
        return weights if self.clip is None else np.minimum(weights, self.clip)

    def _parts(self, data: LoggedFeedback) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        direct = (data.target_probs * data.reward_model).sum(axis=1)
        residual = data.rewards - data.reward_model[np.arange(data.n), data.actions]
        return direct, self._weights(data), residual

    def _value(self, data: LoggedFeedback, counts: np.ndarray) -> float:
        return _mean(self._influence(data), counts)

    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        direct, weights, residual = self._parts(data)
        return direct + weights * residual


@dataclass
class SelfNormalizedDoublyRobust(DoublyRobust):
    """Self-normalised DR (SNDR): DR whose correction term is self-normalised like SNIPS.

        V_SNDR = 1/n sum_i dm_i + sum_i w_i (r_i - q(x_i, a_i)) / sum_i w_i

    Kallus & Uehara (2019), "Intrinsically Efficient, Stable, and Bounded Off-Policy Evaluation for
    Reinforcement Learning", NeurIPS; as in Open Bandit Pipeline's SelfNormalizedDoublyRobust.

    :param clip: cap on the importance weights; None = no clipping
    """

    estimator_name: ClassVar[str] = "sndr"

    def _value(self, data: LoggedFeedback, counts: np.ndarray) -> float:
        direct, weights, residual = self._parts(data)
        total = (weights * counts).sum()
        if total <= 0:
            raise ValueError("the target gives zero probability to every logged action: no overlap")
        return _mean(direct, counts) + float((weights * counts) @ residual / total)

    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        direct, weights, residual = self._parts(data)
        correction = float(weights @ residual / weights.sum())
        return direct + correction + weights * (residual - correction) / weights.mean()


@dataclass
class SwitchDoublyRobust(DoublyRobust):
    """Switch-DR: use the DR correction only where the weight is at most `switch_threshold`.

        V_switch = 1/n sum_i [ dm_i + 1{w_i <= tau} w_i (r_i - q(x_i, a_i)) ]

    Rows with huge weights fall back to the model, trading bias for variance. Wang, Agarwal &
    Dudik (2017), "Optimal and Adaptive Off-policy Evaluation in Contextual Bandits", ICML.

    :param switch_threshold: tau, the largest importance weight still corrected
    """

    switch_threshold: float = 50.0
    estimator_name: ClassVar[str] = "switch_dr"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not math.isfinite(self.switch_threshold) or self.switch_threshold <= 0:
            raise ValueError(f"switch_threshold must be positive, got {self.switch_threshold}")

    def _influence(self, data: LoggedFeedback) -> np.ndarray:
        direct, weights, residual = self._parts(data)
        return direct + np.where(weights <= self.switch_threshold, weights * residual, 0.0)


_ESTIMATORS: dict[str, type[BaseOffPolicyEstimator]] = {
    "dm": DirectMethod,
    "ips": InverseProbabilityWeighting,
    "snips": SelfNormalizedInverseProbabilityWeighting,
    "dr": DoublyRobust,
    "sndr": SelfNormalizedDoublyRobust,
    "switch_dr": SwitchDoublyRobust,
}
METHODS: tuple[str, ...] = tuple(_ESTIMATORS)


def make_estimator(method: str, clip: float | None = None) -> BaseOffPolicyEstimator:
    """The estimator object for `method` ("dm", "ips", "snips", "dr", "sndr", "switch_dr")."""
    if method not in _ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "dm":
        if clip is not None:
            raise ValueError("clip has no meaning for the direct method (it uses no weights)")
        return DirectMethod()
    return _ESTIMATORS[method](clip=clip)


# ---------------------------------------------------------------------------------- one call
@dataclass
class OPEResult:
    """An off-policy estimate with its interval and the diagnostics a reviewer needs."""

    value: float
    """Estimated per-decision value of the target policy on the logged customers."""
    lower: float
    """Lower end of the confidence interval."""
    upper: float
    """Upper end of the confidence interval."""
    n: int
    """Number of logged decisions used."""
    effective_sample_size: float
    """Kish effective sample size of the importance weights: how many on-policy rows they are worth."""
    method: str
    """Estimator: dm, ips, snips, dr, sndr or switch_dr (+ ' (balanced)' for the multi-logger form)."""
    confidence: float = 0.95
    """Coverage of [lower, upper]."""
    interval: str = "normal"
    """How the interval was built: 'normal' (per-row influence values) or 'bootstrap'."""
    warnings: list[str] = field(default_factory=list)
    """Everything that makes the number less trustworthy (poor overlap, suspected support gaps, clipping)."""

    @property
    def ess_share(self) -> float:
        """Effective sample size as a share of n."""
        return self.effective_sample_size / self.n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(
    rewards: Any, actions: Any, propensities: Any, target_probs: Any, *,
    method: str = "dr", reward_model: Any = None, confidence: float = 0.95,
    clip: float | None = None, interval: str = "normal", n_bootstrap: int = 1000, seed: int = 0,
    logging_probs: Any = None, logger_probs: Any = None, logger_shares: Any = None,
    strict: bool = False,
) -> OPEResult:
    """Estimate a target policy's per-decision value from logged decisions.

    :param rewards: (n,) observed reward of each logged decision
    :param actions: (n,) logged action indices
    :param propensities: (n,) probability with which the logging policy chose the logged action
        (from whichever policy logged the row); may be None when `logging_probs` or
        `logger_probs` is given
    :param target_probs: (n, A) the target policy's probability of every action for each row
    :param method: "dm", "ips", "snips", "dr" (default), "sndr" or "switch_dr"
    :param reward_model: (n, A) predicted rewards, needed by dm and the DR family (see
        `fit_reward_model`)
    :param confidence: coverage of the interval
    :param clip: cap on the importance weights (adds bias; a warning says so); None = no clipping
    :param interval: "normal" (influence values) or "bootstrap" (seeded percentile bootstrap)
    :param n_bootstrap: bootstrap resamples
    :param seed: seeds the bootstrap
    :param logging_probs: optional (n, A) full logging distribution per row: support is then
        checked exactly
    :param logger_probs: optional (n, K, A) distributions of K logging policies that together
        produced the logs; with `logger_shares` this gives the balanced (multiple-logger) estimator
    :param logger_shares: (K,) share of rows each logging policy produced
    :param strict: raise ValueError instead of warning on poor overlap
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    estimator = make_estimator(method, clip)
    if estimator.needs_reward_model and reward_model is None:
        raise ValueError(
            f"method {method!r} needs reward_model (n, A) predicted rewards; "
            "fit one with agents.ope.fit_reward_model"
        )
    name = method
    if logger_probs is not None:
        if logger_shares is None:
            raise ValueError("logger_probs needs logger_shares (share of rows per logging policy)")
        if propensities is not None:  # still validate what was logged, so bad logs never pass
            check_logged_feedback(rewards, actions, propensities, target_probs)
        pooled_rows = np.einsum(
            "k,nka->na", _as_float_array("logger_shares", logger_shares, 1),
            _as_float_array("logger_probs", logger_probs, 3),
        )
        propensities = balanced_propensities(actions, logger_probs, logger_shares)
        logging_probs = pooled_rows
        name = f"{method} (balanced)"
    data = check_logged_feedback(
        rewards, actions, propensities, target_probs, reward_model, logging_probs
    )

    weights = estimator._weights(data)
    if not (weights > 0).any():
        raise ValueError(
            "the target gives zero probability to every logged action: no overlap, nothing to estimate"
        )
    ess = effective_sample_size(weights)
    notes: list[str] = []
    if ess < POOR_OVERLAP_SHARE * data.n:
        message = (
            f"poor overlap: effective sample size {ess:.1f} is {ess / data.n:.2%} of n={data.n} "
            f"(< {POOR_OVERLAP_SHARE:.0%}); the target rarely takes the actions that were logged"
        )
        if strict:
            raise ValueError(message)
        notes.append(message)
    if logging_probs is None:
        seen = np.bincount(data.actions, minlength=data.n_actions) > 0
        unseen_mass = float(data.target_probs[:, ~seen].sum() / data.n)
        if unseen_mass > 0:
            unseen = np.flatnonzero(~seen)[:10].tolist()
            notes.append(
                f"possible support gap: the target puts {unseen_mass:.2%} of its mass on actions "
                f"never seen in the logs ({unseen}); IPS/SNIPS/DR ignore it, so pass logging_probs "
                "to check support exactly"
            )
    if clip is not None:
        clipped = float((data.weights > clip).mean())
        notes.append(f"weights clipped at {clip:g} on {clipped:.2%} of rows: the estimate is biased")

    value, lower, upper = estimator._interval(data, confidence, interval, n_bootstrap, seed)
    return OPEResult(
        value=value, lower=lower, upper=upper, n=data.n, effective_sample_size=ess, method=name,
        confidence=confidence, interval=interval, warnings=notes,
    )


def estimate_many(
    rewards: Any, actions: Any, propensities: Any, target_probs: Any, *,
    methods: tuple[str, ...] = ("dm", "ips", "snips", "dr"), reward_model: Any = None,
    **kwargs: Any,
) -> dict[str, OPEResult]:
    """`estimate` for several methods at once (methods needing a model are skipped without one)."""
    return {
        method: estimate(rewards, actions, propensities, target_probs, method=method,
                         reward_model=reward_model, **kwargs)
        for method in methods
        if reward_model is not None or not _ESTIMATORS[method].needs_reward_model
    }


def estimate_difference(
    rewards: Any, actions: Any, propensities: Any, target_probs: Any, baseline_probs: Any, *,
    method: str = "dr", reward_model: Any = None, confidence: float = 0.95,
    clip: float | None = None, logging_probs: Any = None,
) -> OPEResult:
    """The target's value minus the baseline's, both estimated on the same logged rows, with a
    paired interval.

    Two policies scored on one log share most of their error (the same customers, the same reward
    model), so the interval of their difference, from the per-row differences of the influence
    values, is far narrower than two separate intervals suggest; comparing one policy's lower
    bound with the other's point estimate ignores that and refuses real improvements. The
    effective sample size reported is the target's (how much of the log speaks for it).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    estimator = make_estimator(method, clip)
    if estimator.needs_reward_model and reward_model is None:
        raise ValueError(f"method {method!r} needs reward_model (n, A) predicted rewards; "
                         "fit one with agents.ope.fit_reward_model")
    target = check_logged_feedback(rewards, actions, propensities, target_probs, reward_model,
                                   logging_probs)
    baseline = check_logged_feedback(rewards, actions, propensities, baseline_probs,
                                     reward_model, logging_probs)
    if target.n < 2:
        raise ValueError("a paired interval needs at least 2 logged decisions")
    ones = np.ones(target.n)
    value = estimator._value(target, ones) - estimator._value(baseline, ones)
    differences = estimator._influence(target) - estimator._influence(baseline)
    half = (float(stats.norm.ppf(0.5 + confidence / 2))
            * float(differences.std(ddof=1)) / math.sqrt(target.n))
    ess = effective_sample_size(estimator._weights(target))
    notes = []
    if ess < POOR_OVERLAP_SHARE * target.n:
        notes.append(f"poor overlap: the target's effective sample size {ess:.1f} is "
                     f"{ess / target.n:.2%} of n={target.n}")
    return OPEResult(value=float(value), lower=float(value - half), upper=float(value + half),
                     n=target.n, effective_sample_size=ess, method=f"{method} difference",
                     confidence=confidence, warnings=notes)


# ---------------------------------------------------------------------------------- reward model
@dataclass
class RewardModel:
    """Predicted immediate reward of every action for a customer's feature vector.

    `kind="ridge"`: one ridge regression per action on the features plus an intercept, shrunk
    towards the overall mean reward (actions with few logged rows fall back to it).
    `kind="mlp"`: a small torch network with one output per action, trained on the squared error of
    the logged action's output (Dudik et al. 2011 use any regression; this one shares what actions
    have in common).

    :param n_actions: number of actions A
    :param kind: "ridge" or "mlp"
    :param alpha: ridge penalty
    :param hidden: MLP hidden width
    :param epochs: MLP passes over the data
    :param batch_size: MLP minibatch
    :param learning_rate: MLP Adam step size
    :param seed: MLP initialisation and shuffling
    """

    n_actions: int
    kind: str = "ridge"
    alpha: float = 1.0
    hidden: int = 64
    epochs: int = 20
    batch_size: int = 512
    learning_rate: float = 3e-3
    seed: int = 0
    _coef: np.ndarray | None = field(default=None, init=False, repr=False)
    _net: torch.nn.Module | None = field(default=None, init=False, repr=False)
    _offset: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_actions < 1:
            raise ValueError("n_actions must be >= 1")
        if self.kind not in ("ridge", "mlp"):
            raise ValueError(f"kind must be 'ridge' or 'mlp', got {self.kind!r}")
        if self.alpha < 0 or self.epochs < 1 or self.batch_size < 1 or self.hidden < 1:
            raise ValueError("alpha >= 0, epochs >= 1, batch_size >= 1 and hidden >= 1 are required")

    def fit(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> RewardModel:
        obs = np.asarray(obs, dtype=np.float64)
        actions = np.asarray(actions, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        if obs.ndim != 2 or obs.shape[0] != actions.shape[0] or actions.shape != rewards.shape:
            raise ValueError("obs (n, d), actions (n,) and rewards (n,) must have matching n")
        self._offset = float(rewards.mean())
        if self.kind == "ridge":
            self._fit_ridge(obs, actions, rewards - self._offset)
        else:
            self._fit_mlp(obs, actions, rewards - self._offset)
        return self

    def _fit_ridge(self, obs: np.ndarray, actions: np.ndarray, centred: np.ndarray) -> None:
        design = np.hstack([obs, np.ones((obs.shape[0], 1))])
        d = design.shape[1]
        self._coef = np.zeros((self.n_actions, d))
        penalty = max(self.alpha, 1e-8) * np.eye(d)
        for action in range(self.n_actions):  # one small d x d solve per action (not per customer)
            rows = actions == action
            if rows.any():
                x = design[rows]
                self._coef[action] = np.linalg.solve(x.T @ x + penalty, x.T @ centred[rows])

    def _fit_mlp(self, obs: np.ndarray, actions: np.ndarray, centred: np.ndarray) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self._net = torch.nn.Sequential(
            torch.nn.Linear(obs.shape[1], self.hidden), torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden), torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.n_actions),
        )
        optimiser = torch.optim.Adam(self._net.parameters(), lr=self.learning_rate)
        x = torch.as_tensor(obs, dtype=torch.float32)
        a = torch.as_tensor(actions)
        r = torch.as_tensor(centred, dtype=torch.float32)
        n = x.shape[0]
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, self.batch_size):
                batch = order[start:start + self.batch_size]
                # squared error of the logged action's predicted reward only (bandit feedback)
                predicted = self._net(x[batch]).gather(1, a[batch, None]).squeeze(1)
                loss = torch.nn.functional.mse_loss(predicted, r[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """(n, A) predicted rewards."""
        obs = np.asarray(obs, dtype=np.float64)
        if self.kind == "ridge":
            if self._coef is None:
                raise RuntimeError("fit the reward model first")
            design = np.hstack([obs, np.ones((obs.shape[0], 1))])
            return design @ self._coef.T + self._offset
        if self._net is None:
            raise RuntimeError("fit the reward model first")
        with torch.no_grad():
            out = self._net(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        return out.astype(np.float64) + self._offset


def fit_reward_model(
    obs: Any, actions: Any, rewards: Any, n_actions: int, *, kind: str = "ridge",
    folds: int = 2, seed: int = 0, **model_kwargs: Any,
) -> np.ndarray:
    """Cross-fitted (n, A) predicted rewards for the logged rows, ready for `estimate(reward_model=...)`.

    Each row's predictions come from a model fitted on the other folds, so the DR correction's
    residual r_i - q(x_i, a_i) is not shrunk by overfitting to that very row (Chernozhukov et al.
    2018, "Double/debiased machine learning"). `folds=1` fits and predicts on all rows.
    """
    obs = np.asarray(obs, dtype=np.float64)
    actions = np.asarray(actions, dtype=np.int64)
    rewards = np.asarray(rewards, dtype=np.float64)
    n = obs.shape[0]
    if folds < 1 or folds > n:
        raise ValueError(f"folds must be in [1, n], got {folds}")
    if folds == 1:
        return RewardModel(n_actions, kind=kind, seed=seed, **model_kwargs).fit(
            obs, actions, rewards).predict(obs)
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    predictions = np.empty((n, n_actions))
    for fold in range(folds):
        held_out = fold_of == fold
        model = RewardModel(n_actions, kind=kind, seed=seed + fold, **model_kwargs)
        model.fit(obs[~held_out], actions[~held_out], rewards[~held_out])
        predictions[held_out] = model.predict(obs[held_out])
    return predictions
