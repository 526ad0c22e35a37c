"""Learning from logged history: datasets of past decisions, offline RL, and warm starts.

Enterprises should not experiment on real customers from scratch. Every decision the console (or
the rules before it) made is a logged tuple (features, action, logging propensity, reward, next
features, done, allowed actions). This module

- holds such logs in a validated `LoggedDataset` (built by the console from its Decision rows, or
  by `collect(env, policy, steps, seed)` from the simulator under a known logging policy);
- learns a long-term action value Q(s, a) from them with `OfflineQLearner`: fitted Q-iteration
  with double-Q targets over the *allowed* next actions and a conservative (CQL) penalty;
- warm-starts agents with `pretrain(agent, dataset)`: `actor_critic` by distilling the
  advantage-weighted policy pi(a | s) ~ mu(a | s) exp(Q(s, a) / temperature) (AWR / AWAC's
  closed-form target) into its policy network and V(s) = sum_a pi(a | s) Q(s, a) into its value
  network; `dqn` by regressing its Q-network on the offline Q; `supervised` and the linear bandits by
  training their response models on the logged (features, action, reward) rows. The agent then
  continues online with `agent.fit(env, ...)`.

Hooks used on `actor_critic` (public attributes of agents.algos.actor_critic.ActorCritic, not
edited here): `policy` (nn.Module: normalised features -> logits), `value` (nn.Module: normalised
features -> value in scaled reward units), `obs_normalizer` (ObservationNormalizer),
`reward_scaler` (RewardScaler) and `config.gamma`. On `dqn`: `q_net`, `target_net`,
`obs_normalizer`, `config.reward_scale`, `config.gamma`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from agents import ope
from agents.algos.base import Agent, ProgressCallback, TrainingReport
from agents.common.masking import sample_from, uniform_over_mask, validate_mask
from agents.common.networks import apply_mask, masked_log_probs, mlp
from agents.common.running import RunningMeanStd
from agents.common.threads import torch_threads
from agents.common.vec import CustomerBatch

__all__ = [
    "LoggedDataset", "OfflineQConfig", "OfflineQLearner", "PretrainReport", "collect", "explore",
    "off_policy_value", "policy_probabilities", "pretrain",
]

Policy = Agent | Callable[[np.ndarray, np.ndarray], np.ndarray]
"""An Agent, or a callable (obs (n, d), mask (n, A)) -> action probabilities (n, A)."""


# ---------------------------------------------------------------------------------- the logs
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


# ---------------------------------------------------------------------------------- logging policies
def policy_probabilities(policy: Policy, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, A) action probabilities of an Agent or a probability callable, checked against the mask."""
    if isinstance(policy, Agent):
        probs = policy.action_probabilities(obs, mask)
    else:
        probs = np.asarray(policy(obs, mask), dtype=np.float64)
    if probs.shape != mask.shape:
        raise ValueError(f"the policy returned probabilities of shape {probs.shape}; expected {mask.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("the policy returned negative or non-finite probabilities")
    if np.abs(probs.sum(axis=1) - 1.0).max() > 1e-6:
        raise ValueError("the policy's probabilities do not sum to 1")
    if (probs[~mask] > 0).any():
        raise ValueError("the policy puts probability on masked actions")
    return probs


@dataclass
class explore:  # noqa: N801 - reads as a verb where it is used: collect(env, explore(rules, 0.1), ...)
    """A logging policy with epsilon exploration: (1 - epsilon) * policy + epsilon * uniform allowed.

    Every allowed action keeps probability >= epsilon / (allowed actions), so any target policy
    that honours the masks is inside its support and OPE stays unbiased.

    :param policy: the base policy (an Agent or a probability callable)
    :param epsilon: share of uniformly random allowed actions
    """

    policy: Policy
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be in [0, 1]")

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        uniform = uniform_over_mask(mask)
        if self.epsilon >= 1.0:
            return uniform
        return (1.0 - self.epsilon) * policy_probabilities(self.policy, obs, mask) \
            + self.epsilon * uniform


def uniform_policy(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A uniformly random allowed action: the ideal exploratory logging policy."""
    return uniform_over_mask(mask)


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


# ---------------------------------------------------------------------------------- offline Q-learning
@dataclass
class OfflineQConfig:
    """Hyper-parameters of `OfflineQLearner`."""

    gamma: float = 0.99
    """Discount per day (use the agent's own when warm-starting it)."""
    gradient_steps: int = 20_000
    """Minibatch updates over the fixed logs."""
    batch_size: int = 512
    """Logged transitions per update."""
    learning_rate: float = 1e-3
    """Adam step size."""
    tau: float = 0.01
    """Polyak mix of the online network into the target network after each update."""
    cql_alpha: float = 0.1
    """Weight of the conservative penalty logsumexp_a Q(s, a) - Q(s, a_logged) (0: plain FQI)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer widths of the Q-network."""
    max_grad_norm: float = 10.0
    """Clip the global gradient norm."""
    torch_threads: int | None = 1
    """Torch threads while learning; None leaves torch's setting."""

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma <= 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError("gamma and tau must be in (0, 1]")
        if self.gradient_steps < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("gradient_steps, batch_size and learning_rate must be positive")
        if self.cql_alpha < 0:
            raise ValueError("cql_alpha must be >= 0")
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)


class OfflineQLearner(Agent):
    """Long-term action values learned from logs only: double fitted-Q with a conservative penalty.

    The TD target r + gamma * Q_target(s', argmax_{allowed a'} Q(s', a')) (no bootstrap after churn)
    is regressed on minibatches of the fixed logs (Ernst, Geurts & Wehenkel 2005, "Tree-Based
    Batch Mode Reinforcement Learning", JMLR; double Q: van Hasselt et al. 2016), plus CQL's
    penalty alpha * (logsumexp over allowed actions of Q(s, .) - Q(s, a_logged)) that keeps actions
    the logs rarely tried from looking better than they are (Kumar, Zhou, Tucker & Levine 2020,
    "Conservative Q-Learning for Offline Reinforcement Learning", NeurIPS). `scores(obs)` are the
    Q-values in reward units; the policy is greedy over the allowed actions. `fit(env, steps)`
    logs `steps` customer-days with a uniform random allowed action and learns from them;
    `fit_offline(dataset)` learns from existing logs. Not in the `agents.make` registry.

    :param observation_space: the single-customer feature space (1-D Box)
    :param action_space: the catalogue (Discrete)
    :param seed: seeds initial weights and minibatch sampling
    :param hyperparams: fields of `OfflineQConfig`
    """

    name = "offline_q"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        super().__init__(observation_space, action_space, seed=seed)
        self.config = OfflineQConfig(**hyperparams)
        init = torch.Generator().manual_seed(self.seed)
        self.q_net = mlp(self.n_features, self.n_actions, self.config.hidden_sizes, "relu",
                         generator=init)
        self.target_net = mlp(self.n_features, self.n_actions, self.config.hidden_sizes, "relu")
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self.obs_stats = RunningMeanStd((self.n_features,))
        self.reward_scale = 1.0  # the network predicts Q / reward_scale

    def _normalise(self, obs: np.ndarray) -> torch.Tensor:
        normalised = (obs - self.obs_stats.mean) / np.sqrt(self.obs_stats.var + 1e-8)
        return torch.from_numpy(np.clip(normalised, -5.0, 5.0).astype(np.float32))

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Q(s, a) for every action, (n, A), in reward units."""
        obs = self._check_obs(obs)
        with torch.inference_mode():
            return self.q_net(self._normalise(obs)).numpy().astype(np.float64) * self.reward_scale

    def _fit(self, env: gym.Env | gym.vector.VectorEnv, total_steps: int, report: TrainingReport,
             callback: ProgressCallback | None) -> None:
        dataset = collect(env, uniform_policy, total_steps, seed=self.seed)
        report.env_steps = len(dataset)
        report.extra.update(self.fit_offline(dataset))

    def fit_offline(self, dataset: LoggedDataset,
                    progress: Callable[[float], Any] | None = None) -> dict[str, float]:
        """Learn Q from `dataset` (continues from the current weights); returns training statistics.

        `progress(fraction)` is called about every 1 % of the gradient steps (a progress bar; it
        may raise to stop the learning)."""
        if dataset.n_features != self.n_features or dataset.n_actions != self.n_actions:
            raise ValueError("the dataset's features / actions do not match this learner's spaces")
        with torch_threads(self.config.torch_threads):
            return self._learn(dataset, progress)

    def _learn(self, dataset: LoggedDataset,
               progress: Callable[[float], Any] | None = None) -> dict[str, float]:
        cfg = self.config
        started = time.perf_counter()
        # features standardised with the logs' moments; rewards divided by their std (O(1) targets)
        self.obs_stats = RunningMeanStd((self.n_features,))
        self.obs_stats.update(dataset.obs)
        std = float(dataset.rewards.std())
        self.reward_scale = std if std > 1e-8 else 1.0
        obs, next_obs = self._normalise(dataset.obs), self._normalise(dataset.next_obs)
        actions = torch.from_numpy(dataset.actions)
        rewards = torch.from_numpy((dataset.rewards / self.reward_scale).astype(np.float32))
        alive = torch.from_numpy((~dataset.terminated).astype(np.float32))
        masks = torch.from_numpy(dataset.allowed())
        next_masks = torch.from_numpy(dataset.next_allowed())
        optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.learning_rate)
        td_loss = cql_gap = torch.zeros(())
        report_every = max(1, cfg.gradient_steps // 100)
        for step in range(cfg.gradient_steps):
            if progress is not None and step % report_every == 0:
                progress(step / cfg.gradient_steps)
            idx = torch.from_numpy(self.rng.integers(0, len(dataset), cfg.batch_size))
            q_all = self.q_net(obs[idx])
            q_taken = q_all.gather(1, actions[idx, None]).squeeze(1)
            with torch.no_grad():
                # 1. double Q: the online network picks tomorrow's best *allowed* action ...
                next_best = apply_mask(self.q_net(next_obs[idx]), next_masks[idx]).argmax(dim=1)
                # ... and the target network values it; churned customers have no future
                next_value = self.target_net(next_obs[idx]).gather(1, next_best[:, None]).squeeze(1)
                target = rewards[idx] + cfg.gamma * alive[idx] * next_value
            # 2. TD regression (Huber) on the logged action
            td_loss = nn.functional.smooth_l1_loss(q_taken, target)
            # 3. conservative penalty: push down all allowed actions, push up the logged one
            cql_gap = (torch.logsumexp(apply_mask(q_all, masks[idx]), dim=1) - q_taken).mean()
            loss = td_loss + cfg.cql_alpha * cql_gap
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.q_net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            # 4. the target network trails the online one (Polyak averaging)
            with torch.no_grad():
                for target_param, param in zip(self.target_net.parameters(), self.q_net.parameters()):
                    target_param.lerp_(param, cfg.tau)
        return {"td_loss": float(td_loss.detach()), "cql_gap": float(cql_gap.detach()),
                "gradient_steps": float(cfg.gradient_steps), "rows": float(len(dataset)),
                "seconds": time.perf_counter() - started}

    def advantage_weighted_probabilities(
        self, obs: np.ndarray, mask: np.ndarray, temperature: float,
        prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """pi(a | s) ~ prior(a | s) exp((Q(s, a) - max Q) / (temperature * reward std)) over allowed a.

        AWR / AWAC's closed-form improved policy (Peng et al. 2019; Nair et al. 2020): with a
        uniform prior it is a softmax of Q; with the logging policy as prior it stays close to what
        the logs support. `temperature` is in units of the logged rewards' standard deviation.
        """
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        q = self.scores(obs) / self.reward_scale
        logits = q / temperature
        if prior is not None:
            logits = logits + np.log(np.maximum(prior, 1e-12))
        logits = np.where(mask, logits, -np.inf)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.where(mask, np.exp(logits), 0.0)
        return weights / weights.sum(axis=1, keepdims=True)

    def _get_state(self) -> dict[str, Any]:
        return {"q_net": {k: v.detach().clone() for k, v in self.q_net.state_dict().items()},
                "target_net": {k: v.detach().clone() for k, v in self.target_net.state_dict().items()},
                "obs_stats": self.obs_stats.state_dict(), "reward_scale": self.reward_scale}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.obs_stats.load_state_dict(state["obs_stats"])
        self.reward_scale = float(state["reward_scale"])


# ---------------------------------------------------------------------------------- warm starts
@dataclass
class PretrainReport:
    """What `pretrain` did to an agent."""

    algorithm: str
    """The agent that was warm-started."""
    method: str
    """How: 'awr_distillation' (actor_critic), 'q_regression' (dqn), 'response_model'."""
    rows: int
    """Logged rows learned from."""
    wall_seconds: float = 0.0
    """Time spent."""
    agreement: float | None = None
    """Share of logged states where the agent's greedy action equals the offline-learned one."""
    stats: dict[str, float] = field(default_factory=dict)
    """Losses and other figures of the steps taken."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pretrain(
    agent: Agent, dataset: LoggedDataset, *, epochs: int = 5, q_learner: OfflineQLearner | None = None,
    q_gradient_steps: int = 20_000, cql_alpha: float = 0.1, q_options: dict[str, Any] | None = None,
    temperature: float = 0.05,
    prior: str = "uniform", batch_size: int = 1024, learning_rate: float = 1e-3,
    importance_weighted: bool = False, seed: int | None = None,
    progress: Callable[[float], Any] | None = None,
) -> PretrainReport:
    """Warm-start `agent` from logged decisions; continue online afterwards with `agent.fit`.

    actor_critic: learn Q offline (`OfflineQLearner`, the agent's gamma) unless `q_learner` is
    given, then for `epochs` passes distil the advantage-weighted policy into `agent.policy`
    (cross-entropy over the allowed actions) and V(s) = sum_a pi(a | s) Q(s, a) into `agent.value`
    (in the agent's reward scale, which is set from the logged discounted returns). Its feature
    normaliser starts from the logs' moments. dqn: regress `q_net` (and copy into `target_net`)
    on the offline Q in its reward scale. supervised: `fit_logged` on (features, action, reward);
    linear bandits: `update` on the rows; both weighted by 1 / propensity when `importance_weighted`.
    Other agents (rules, random, tabular Q-learning) raise TypeError.

    For a conservative online fine-tuning make the agent with a smaller learning rate (e.g.
    `agents.make("actor_critic", ..., learning_rate=3e-4)`): PPO's clipped steps then stay close
    to the warm start.

    :param agent: the agent to warm-start (modified in place)
    :param dataset: the logged decisions
    :param epochs: passes over the logs when distilling into the agent's networks (more when the
        logs are small: at least `MIN_DISTILL_STEPS` minibatch steps)
    :param q_learner: an already fitted `OfflineQLearner` to distil from (skips learning Q)
    :param q_gradient_steps: gradient steps of the offline Q-learning
    :param cql_alpha: conservative penalty of the offline Q-learning
    :param q_options: other `OfflineQConfig` fields for the offline Q-learning (e.g. hidden_sizes)
    :param temperature: policy temperature, in units of the logged rewards' std (smaller = greedier)
    :param prior: "uniform" or "logging" (multiply by the logging policy: stays closer to the logs)
    :param batch_size: rows per distillation step
    :param learning_rate: Adam step size of the distillation (a fresh optimiser: the agent's own
        optimiser state is left untouched)
    :param importance_weighted: supervised and bandits: weight rows by 1 / propensity
    :param seed: seeds the offline learner and minibatch order (default: the agent's seed)
    :param progress: called with the fraction done (0 to 1) during the offline Q-learning, which
        is most of the time, and with 1 at the end (a progress bar; it may raise to stop)
    """
    with torch_threads(getattr(getattr(agent, "config", None), "torch_threads", 1)):
        report = _pretrain(agent, dataset, epochs, q_learner, q_gradient_steps, cql_alpha,
                           q_options, temperature, prior, batch_size, learning_rate,
                           importance_weighted, seed, progress)
    if progress is not None:
        progress(1.0)
    return report


def _pretrain(agent: Agent, dataset: LoggedDataset, epochs: int, q_learner: OfflineQLearner | None,
              q_gradient_steps: int, cql_alpha: float, q_options: dict[str, Any] | None,
              temperature: float, prior: str, batch_size: int, learning_rate: float,
              importance_weighted: bool, seed: int | None,
              progress: Callable[[float], Any] | None = None) -> PretrainReport:
    started = time.perf_counter()
    seed = agent.seed if seed is None else int(seed)
    if dataset.n_features != agent.n_features or dataset.n_actions != agent.n_actions:
        raise ValueError(
            f"the logs have {dataset.n_features} features / {dataset.n_actions} actions; the agent "
            f"expects {agent.n_features} / {agent.n_actions}"
        )
    if epochs < 1 or batch_size < 1 or learning_rate <= 0 or temperature <= 0:
        raise ValueError("epochs, batch_size, learning_rate and temperature must be positive")
    if prior not in ("uniform", "logging"):
        raise ValueError("prior must be 'uniform' or 'logging'")
    if prior == "logging" and dataset.logging_probs is None:
        raise ValueError("prior='logging' needs dataset.logging_probs")

    if hasattr(agent, "fit_logged"):  # supervised response model
        weights = 1.0 / dataset.propensities if importance_weighted else None
        stats = agent.fit_logged(dataset.obs, dataset.actions, dataset.rewards,
                                 sample_weight=weights, epochs=epochs)
        report = PretrainReport(agent.name, "response_model", len(dataset), stats=dict(stats))
    elif hasattr(agent, "update") and not hasattr(agent, "policy"):  # linear bandits
        weights = 1.0 / dataset.propensities if importance_weighted else None
        agent.update(dataset.obs, dataset.actions, dataset.rewards, sample_weight=weights)
        report = PretrainReport(agent.name, "response_model", len(dataset))
    elif all(hasattr(agent, a) for a in ("policy", "value", "obs_normalizer", "reward_scaler")):
        learner = q_learner or _learn_q(agent, dataset, seed, q_gradient_steps, cql_alpha, q_options,
                                        progress)
        report = _distil_actor_critic(agent, dataset, learner, epochs, temperature, prior,
                                      batch_size, learning_rate, seed)
    elif all(hasattr(agent, a) for a in ("q_net", "target_net", "obs_normalizer")):
        learner = q_learner or _learn_q(agent, dataset, seed, q_gradient_steps, cql_alpha, q_options,
                                        progress)
        report = _distil_dqn(agent, dataset, learner, epochs, batch_size, learning_rate, seed)
    else:
        raise TypeError(f"pretrain does not know how to warm-start {type(agent).__name__}")
    report.wall_seconds = time.perf_counter() - started
    return report


def _learn_q(agent: Agent, dataset: LoggedDataset, seed: int, steps: int, cql_alpha: float,
             options: dict[str, Any] | None,
             progress: Callable[[float], Any] | None = None) -> OfflineQLearner:
    gamma = float(getattr(getattr(agent, "config", None), "gamma", 0.99))
    settings = {"gamma": gamma, "gradient_steps": steps, "cql_alpha": cql_alpha, **(options or {})}
    learner = OfflineQLearner(agent.observation_space, agent.action_space, seed=seed, **settings)
    # the distillation that follows takes a few percent of the time: leave it the last 5 %
    learner.fit_offline(dataset, None if progress is None else lambda done: progress(0.95 * done))
    return learner


def discounted_running_returns(dataset: LoggedDataset, gamma: float) -> np.ndarray:
    """R_t = gamma * R_{t-1} + r_t along each customer's rows (what RewardScaler tracks online)."""
    rewards = dataset.rewards
    if dataset.customer_ids is None:
        return lfilter([1.0], [1.0, -gamma], rewards)
    order = np.argsort(dataset.customer_ids, kind="stable")  # rows stay in time order per customer
    ids, r = dataset.customer_ids[order], rewards[order]
    running = lfilter([1.0], [1.0, -gamma], r)
    starts = np.r_[0, np.flatnonzero(np.diff(ids)) + 1]
    segment = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, r.size]))
    start = starts[segment]
    carry = np.where(start > 0, running[np.maximum(start - 1, 0)], 0.0)
    # remove what the previous customer's stream carried into this one
    running = running - carry * gamma ** (np.arange(r.size) - start + 1)
    out = np.empty_like(running)
    out[order] = running
    return out


MIN_DISTILL_STEPS = 300
"""Distillation takes at least this many minibatch steps, however small the logs (extra epochs)."""


def _minibatches(n: int, batch_size: int, epochs: int, rng: np.random.Generator):
    per_epoch = -(-n // batch_size)
    epochs = max(epochs, -(-MIN_DISTILL_STEPS // per_epoch))
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield torch.from_numpy(order[start:start + batch_size])


def _distil_actor_critic(agent: Any, dataset: LoggedDataset, learner: OfflineQLearner, epochs: int,
                         temperature: float, prior: str, batch_size: int, learning_rate: float,
                         seed: int) -> PretrainReport:
    gamma = float(agent.config.gamma)
    # 1. start the agent's feature normaliser and reward scale from the logs, as if it had seen them
    agent.obs_normalizer.stats = RunningMeanStd((agent.n_features,))
    agent.obs_normalizer.update(dataset.obs)
    if agent.reward_scaler.enabled:
        agent.reward_scaler.stats = RunningMeanStd(())
        agent.reward_scaler.stats.update(discounted_running_returns(dataset, gamma))
    factor = agent.reward_scaler.factor

    # 2. targets from the offline Q: the improved policy and its value V = sum_a pi Q
    masks = dataset.allowed()
    logging = dataset.logging_probs if prior == "logging" else None
    target_probs = learner.advantage_weighted_probabilities(dataset.obs, masks, temperature, logging)
    target_values = (target_probs * learner.scores(dataset.obs)).sum(axis=1) * factor
    obs = torch.from_numpy(agent.obs_normalizer(dataset.obs))
    probs_t = torch.from_numpy(target_probs.astype(np.float32))
    values_t = torch.from_numpy(target_values.astype(np.float32))
    masks_t = torch.from_numpy(masks)

    # 3. supervised distillation with a fresh optimiser (the agent's own Adam state is untouched)
    params = list(agent.policy.parameters()) + list(agent.value.parameters())
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    policy_loss = value_loss = torch.zeros(())
    rng = np.random.default_rng(seed)
    for idx in _minibatches(len(dataset), batch_size, epochs, rng):
        log_probs = masked_log_probs(agent.policy(obs[idx]), masks_t[idx])
        # cross-entropy to the advantage-weighted target (masked actions have target 0)
        policy_loss = -(probs_t[idx] * torch.where(masks_t[idx], log_probs, 0.0)).sum(dim=1).mean()
        value_loss = 0.5 * ((agent.value(obs[idx]).squeeze(-1) - values_t[idx]) ** 2).mean()
        loss = policy_loss + value_loss
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    greedy_agent = agent.act(dataset.obs, masks, deterministic=True)
    greedy_q = learner.act(dataset.obs, masks, deterministic=True)
    return PretrainReport(
        agent.name, "awr_distillation", len(dataset), agreement=float((greedy_agent == greedy_q).mean()),
        stats={"policy_cross_entropy": float(policy_loss.detach()),
               "value_loss": float(value_loss.detach()), "reward_scale_factor": float(factor),
               "mean_target_value": float(target_values.mean() / factor)},
    )


def _distil_dqn(agent: Any, dataset: LoggedDataset, learner: OfflineQLearner, epochs: int,
                batch_size: int, learning_rate: float, seed: int) -> PretrainReport:
    scale = float(getattr(agent.config, "reward_scale", 1.0))
    agent.obs_normalizer.stats = RunningMeanStd((agent.n_features,))
    agent.obs_normalizer.update(dataset.obs)
    obs = torch.from_numpy(agent.obs_normalizer(dataset.obs))
    # regress in the learner's O(1) units so the fit does not depend on the agent's reward scale
    unit = scale * learner.reward_scale
    targets = torch.from_numpy((learner.scores(dataset.obs) / learner.reward_scale).astype(np.float32))
    optimizer = torch.optim.Adam(agent.q_net.parameters(), lr=learning_rate)
    loss = torch.zeros(())
    for idx in _minibatches(len(dataset), batch_size, epochs, np.random.default_rng(seed)):
        loss = nn.functional.mse_loss(agent.q_net(obs[idx]) / unit, targets[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    agent.target_net.load_state_dict(agent.q_net.state_dict())
    masks = dataset.allowed()
    agreement = float((agent.act(dataset.obs, masks) == learner.act(dataset.obs, masks)).mean())
    return PretrainReport(agent.name, "q_regression", len(dataset), agreement=agreement,
                          stats={"q_mse": float(loss.detach())})
