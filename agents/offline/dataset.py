"""Logged decisions: the validated `LoggedDataset`, its collection from the simulator under a
known logging policy (`collect`), and the off-policy value of a policy on it.

The console builds the same dataset from its Decision rows; everything offline learns from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents import ope
from agents.common.masking import sample_from, validate_mask
from agents.common.vec import CustomerBatch
from agents.offline.policies import Policy, policy_probabilities

__all__ = ["LoggedDataset", "collect", "off_policy_value"]


@dataclass
class LoggedDataset:
    """Logged decisions: one row per customer-day on which a logging policy chose an action.

    Validated on construction (shapes, finite values, propensities in (0, 1], masks allow the
    logged action). Row order matters only for `customer_ids`: a customer's rows in time order.

    :param obs: (n, d) feature vectors when the decision was made
    :param actions: (n,) logged actions
    :param propensities: (n,) probability the logging policy gave the logged action
    :param rewards: (n,) reward observed for the decision
    :param next_obs: (n, d) the customer's features on the following day
    :param dones: (n,) the customer's journey ended after this row (churn, unsubscribe, horizon)
    :param terminated: (n,) the journey ended with no future value (churn / unsubscribed from
        everything); None = same as `dones`. Rows done but not terminated are bootstrapped.
    :param masks: (n, A) allowed actions when deciding; None = all allowed
    :param next_masks: (n, A) allowed actions on the next day; None = all allowed
    :param logging_probs: (n, A) the logging policy's full distribution (exact OPE support checks)
    :param customer_ids: (n,) which customer journey each row belongs to (rows in time order)
    :param logger_ids: (n,) which logging policy produced each row (several loggers)
    :param extras: other per-row outcomes, e.g. {"net_revenue": (n,)}
    :param n_actions: number of actions A (inferred from masks / logging_probs / actions if None)
    """

    obs: np.ndarray
    actions: np.ndarray
    propensities: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    dones: np.ndarray
    terminated: np.ndarray | None = None
    masks: np.ndarray | None = None
    next_masks: np.ndarray | None = None
    logging_probs: np.ndarray | None = None
    customer_ids: np.ndarray | None = None
    logger_ids: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    n_actions: int | None = None

    def __post_init__(self) -> None:
        self.obs = np.asarray(self.obs, dtype=np.float32)
        if self.obs.ndim != 2:
            raise ValueError(f"obs must be (n, d), got shape {self.obs.shape}")
        n, d = self.obs.shape
        if n == 0:
            raise ValueError("a logged dataset needs at least one row")
        self.next_obs = np.asarray(self.next_obs, dtype=np.float32)
        if self.next_obs.shape != (n, d):
            raise ValueError(f"next_obs has shape {self.next_obs.shape}; expected {(n, d)}")
        if not (np.isfinite(self.obs).all() and np.isfinite(self.next_obs).all()):
            raise ValueError("obs and next_obs must be finite")
        self.actions = self._vector("actions", self.actions, n, np.int64)
        self.rewards = self._vector("rewards", self.rewards, n, np.float64)
        if not np.isfinite(self.rewards).all():
            raise ValueError("rewards must be finite")
        self.propensities = self._vector("propensities", self.propensities, n, np.float64)
        if np.isnan(self.propensities).any():
            raise ValueError("propensities are missing (NaN) for some rows")
        if (self.propensities <= 0).any() or (self.propensities > 1 + ope.PROB_ATOL).any():
            raise ValueError("propensities must lie in (0, 1]")
        self.dones = self._vector("dones", self.dones, n, bool)
        self.terminated = self.dones.copy() if self.terminated is None else \
            self._vector("terminated", self.terminated, n, bool)
        if (self.terminated & ~self.dones).any():
            raise ValueError("a terminated row must also be done")

        inferred = None
        for name in ("masks", "next_masks", "logging_probs"):
            value = getattr(self, name)
            if value is not None:
                inferred = np.asarray(value).shape[1] if np.asarray(value).ndim == 2 else inferred
        if self.n_actions is None:
            self.n_actions = int(inferred if inferred is not None else self.actions.max() + 1)
        self.n_actions = int(self.n_actions)
        if self.actions.min() < 0 or self.actions.max() >= self.n_actions:
            raise ValueError(f"actions must lie in [0, {self.n_actions})")
        if self.masks is not None:
            self.masks = validate_mask(self.masks, n, self.n_actions)
            if not self.masks[np.arange(n), self.actions].all():
                raise ValueError("a logged action is masked in its own row: the logs are inconsistent")
        if self.next_masks is not None:
            self.next_masks = validate_mask(self.next_masks, n, self.n_actions)
        if self.logging_probs is not None:
            self.logging_probs = np.asarray(self.logging_probs, dtype=np.float32)
            if self.logging_probs.shape != (n, self.n_actions):
                raise ValueError(f"logging_probs must be (n, A) = {(n, self.n_actions)}")
            logged = self.logging_probs[np.arange(n), self.actions]
            if np.abs(logged - self.propensities).max() > 1e-4:
                raise ValueError("propensities disagree with logging_probs")
        for name in ("customer_ids", "logger_ids"):
            if getattr(self, name) is not None:
                setattr(self, name, self._vector(name, getattr(self, name), n, np.int64))
        self.extras = {key: self._vector(f"extras[{key!r}]", value, n, np.float64)
                       for key, value in self.extras.items()}

    @staticmethod
    def _vector(name: str, value: Any, n: int, dtype: Any) -> np.ndarray:
        if value is None:
            raise ValueError(f"{name} is missing")
        array = np.asarray(value)
        if array.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
        return array.astype(dtype, copy=False)

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.obs.shape[1])

    def allowed(self) -> np.ndarray:
        """(n, A) allowed actions when deciding (all True when the logs carry no masks)."""
        return self.masks if self.masks is not None else np.ones((len(self), self.n_actions), bool)

    def next_allowed(self) -> np.ndarray:
        return self.next_masks if self.next_masks is not None else \
            np.ones((len(self), self.n_actions), bool)

    def subset(self, rows: np.ndarray) -> LoggedDataset:
        """The rows selected by an index or boolean array (customer order kept)."""
        rows = np.asarray(rows)
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                values[f.name] = value[rows]
            elif f.name == "extras":
                values[f.name] = {k: v[rows] for k, v in value.items()}
            else:
                values[f.name] = value
        return LoggedDataset(**values)

    def split(self, fraction: float, seed: int = 0) -> tuple[LoggedDataset, LoggedDataset]:
        """Split by customer (all of a customer's rows on the same side) into (first, rest)."""
        if not 0.0 < fraction < 1.0:
            raise ValueError("fraction must be in (0, 1)")
        ids = self.customer_ids if self.customer_ids is not None else np.arange(len(self))
        unique = np.unique(ids)
        chosen = np.random.default_rng(seed).random(unique.size) < fraction
        first = np.isin(ids, unique[chosen])
        return self.subset(first), self.subset(~first)

    @staticmethod
    def concatenate(datasets: Sequence[LoggedDataset]) -> LoggedDataset:
        """One dataset from several (e.g. several logging policies); optional columns must agree."""
        if not datasets:
            raise ValueError("nothing to concatenate")
        values: dict[str, Any] = {}
        offset = 0
        ids = []
        for data in datasets:  # keep customer ids distinct across datasets
            if data.customer_ids is not None:
                ids.append(data.customer_ids + offset)
                offset += int(data.customer_ids.max()) + 1
        for f in fields(LoggedDataset):
            parts = [getattr(d, f.name) for d in datasets]
            if f.name == "n_actions":
                if len(set(parts)) != 1:
                    raise ValueError("datasets have different numbers of actions")
                values[f.name] = parts[0]
            elif f.name == "extras":
                keys = set.intersection(*(set(p) for p in parts))
                values[f.name] = {k: np.concatenate([p[k] for p in parts]) for k in keys}
            elif f.name == "customer_ids":
                values[f.name] = np.concatenate(ids) if len(ids) == len(datasets) else None
            elif all(p is not None for p in parts):
                values[f.name] = np.concatenate(parts)
            else:
                values[f.name] = None
        return LoggedDataset(**values)

    def save(self, path: str | Path) -> Path:
        """Write the dataset as a compressed .npz (no pickled objects)."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        arrays.update({f"extras__{k}": v for k, v in self.extras.items()})
        np.savez_compressed(path, n_actions=np.array(self.n_actions), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LoggedDataset:
        with np.load(Path(path), allow_pickle=False) as data:
            values: dict[str, Any] = {k: data[k] for k in data.files
                                      if not k.startswith("extras__") and k != "n_actions"}
            values["extras"] = {k[len("extras__"):]: data[k] for k in data.files
                                if k.startswith("extras__")}
            values["n_actions"] = int(data["n_actions"])
        return cls(**values)


def collect(
    env: gym.Env | gym.vector.VectorEnv, policy: Policy, steps: int, seed: int = 0, *,
    info_keys: Sequence[str] = ("net_revenue",), logger_id: int | None = None,
) -> LoggedDataset:
    """Run `policy` on the simulator for `steps` customer-days and log what a CRM would log.

    Actions are sampled from the policy's probabilities with a generator seeded by `seed`, and the
    propensity of each sampled action is recorded with the full distribution (`logging_probs`).
    Rows where a vector env only reset a slot (Gymnasium's NEXT_STEP autoreset) are not decisions
    and are dropped. `info_keys` are per-customer outcome arrays from the env's info kept as extras.

    :param env: a gymnasium Env or VectorEnv (e.g. `CustomerJourneyEnv`)
    :param policy: logging policy: an Agent or a callable (obs, mask) -> probabilities (n, A)
    :param steps: customer-days to log (the dataset has exactly this many rows)
    :param seed: seeds the env reset and the action sampling
    :param info_keys: extra per-customer outcomes to keep (missing keys are skipped)
    :param logger_id: tag every row with this logging-policy id (for multi-logger OPE)
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if isinstance(env, gym.vector.VectorEnv):
        observation_space, action_space = env.single_observation_space, env.single_action_space
    else:
        observation_space, action_space = env.observation_space, env.action_space
    batch = CustomerBatch(env, observation_space, action_space)
    rng = np.random.default_rng(seed)
    obs, mask = batch.reset(seed=seed)
    customer = np.arange(batch.n)
    next_customer = batch.n
    columns: dict[str, list[np.ndarray]] = {k: [] for k in (
        "obs", "actions", "propensities", "rewards", "next_obs", "dones", "terminated", "masks",
        "next_masks", "logging_probs", "customer_ids")}
    extras: dict[str, list[np.ndarray]] = {k: [] for k in info_keys}
    rows = 0
    while rows < steps:
        # 1. the logging policy's distribution over today's allowed actions, and its draw
        probs = policy_probabilities(policy, obs, mask)
        actions = sample_from(probs, rng)
        # 2. one day passes for every customer slot
        step = batch.step(actions)
        keep = step.valid
        # 3. log the decisions that really happened (not the slots that were only reset)
        for name, value in (
            ("obs", obs), ("actions", actions), ("propensities", probs[np.arange(batch.n), actions]),
            ("rewards", step.reward), ("next_obs", step.next_obs), ("dones", step.done),
            ("terminated", step.terminated), ("masks", mask), ("next_masks", step.next_mask),
            ("logging_probs", probs.astype(np.float32)), ("customer_ids", customer),
        ):
            columns[name].append(np.asarray(value)[keep])
        for key in info_keys:
            if key in step.info:
                extras[key].append(np.asarray(step.info[key], dtype=np.float64).reshape(batch.n)[keep])
        rows += int(keep.sum())
        # 4. a finished journey's slot gets a new customer id
        ended = np.flatnonzero(step.done & keep)
        customer[ended] = next_customer + np.arange(ended.size)
        next_customer += ended.size
        obs, mask = step.obs, step.mask
    arrays = {name: np.concatenate(parts)[:steps] for name, parts in columns.items()}
    kept_extras = {k: np.concatenate(v)[:steps] for k, v in extras.items() if v}
    logger = None if logger_id is None else np.full(steps, int(logger_id))
    return LoggedDataset(**arrays, logger_ids=logger, extras=kept_extras,
                         n_actions=int(action_space.n))


def off_policy_value(
    dataset: LoggedDataset, policy: Policy, *, method: str = "dr", reward_model: str = "ridge",
    folds: int = 2, seed: int = 0, **estimate_kwargs: Any,
) -> ope.OPEResult:
    """Estimate `policy`'s per-decision value on the logged customers (`agents.ope.estimate`).

    Fits a cross-fitted reward model of kind `reward_model` ("ridge" or "mlp") when the method
    needs one; uses the dataset's full logging distribution, when present, to check support exactly.
    """
    target = policy_probabilities(policy, dataset.obs, dataset.allowed())
    model = None
    if method in ("dm", "dr", "sndr", "switch_dr"):
        model = ope.fit_reward_model(dataset.obs, dataset.actions, dataset.rewards,
                                     dataset.n_actions, kind=reward_model, folds=folds, seed=seed)
    return ope.estimate(dataset.rewards, dataset.actions, dataset.propensities, target,
                        method=method, reward_model=model, logging_probs=dataset.logging_probs,
                        **estimate_kwargs)
