"""A customer-response model fitted from a workspace's own logs, to train policies in.

A campaign must not learn by experimenting on its real customers, and the built-in simulator is
somebody else's world. So the console fits how *its* customers respond from *its* logged
decisions: for a customer's features at decision time and the action chosen, the chance of an
open, a click and an unsubscribe, the expected orders and their revenue, and the chance of churn
before the next decision. An ensemble of small networks fitted on bootstrap resamples says where
the logs are thin: members disagree there, and `agents.envs.FittedJourneyEnv` charges a policy for
that disagreement so that it does not learn to exploit the model's errors.

    log = ResponseLog.from_logged(collect(env, rules, steps, info_keys=RESPONSE_INFO_KEYS))
    train, held_out = split_by_days(log, held_out_days=7)
    model = ResponseModel.fit(train, catalogue)
    report = validate(model, held_out)                  # replayed KPIs vs what happened
    model.predict(obs, actions)["conversions"]; ResponseModel.from_bytes(model.to_bytes())

The action enters as `catalogue.attributes[action]` (channel, incentive, window, variant), so
what the logs say about one action informs its neighbours.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from agents.catalogue import Catalogue
from agents.rewards import RewardWeights

__all__ = [
    "OUTCOMES", "RESPONSE_INFO_KEYS", "MIN_CONTACTS", "MIN_DECISIONS", "NotEnoughData",
    "ResponseLog", "ResponseModel", "split_by_days", "validate",
]

OUTCOMES: tuple[str, ...] = ("open", "click", "conversions", "revenue", "unsubscribe", "churn")
"""What the model predicts per decision (each the ensemble mean; see `ResponseModel.predict`)."""
RESPONSE_INFO_KEYS: tuple[str, ...] = (
    "opens", "clicks", "conversions", "net_revenue", "unsubscribes", "churned", "day",
)
"""The simulator's per-customer info keys a `ResponseLog` is built from (`agents.offline.collect`
with ``info_keys=RESPONSE_INFO_KEYS``, then `ResponseLog.from_logged`)."""
MIN_DECISIONS = 2_000
"""Fewer logged decisions than this and `fit` refuses: the model would be mostly prior."""
MIN_CONTACTS = 200
"""Fewer logged contacts than this and `fit` refuses: nothing to learn the actions' effects from."""
RECENT_DAYS = 7
"""Days at the end of the fitted logs whose churn and unsubscribe levels the model is brought to
(`fit`)."""
LEVEL_PRIOR_EVENTS = 30.0
"""Pseudo-events on each side of a recent level's ratio, so that a head with few recent events
keeps the level of the whole history (as `validate` needs `MIN_SUPPORT` events to judge one)."""

_HEADS = ("open", "click", "conversions", "revenue_per_conversion", "unsubscribe", "churn")
_BINARY = (0, 1, 4, 5)  # heads read as probabilities


class NotEnoughData(ValueError):
    """The logs are too thin to fit a response model; the message says how much is needed."""


# ------------------------------------------------------------------------------------ the logs
@dataclass
class ResponseLog:
    """Logged decisions and what followed each (until the customer's next decision).

    Row-aligned arrays, one row per customer-day on which an action was chosen (action 0 is "no
    contact"). Validated on construction.

    :param obs: (n, d) feature vector at decision time (`agents.features` layout of the catalogue)
    :param actions: (n,) catalogue action index
    :param opens: (n,) messages opened
    :param clicks: (n,) links clicked
    :param conversions: (n,) orders
    :param revenue: (n,) net revenue of those orders
    :param unsubscribes: (n,) 1 where the customer unsubscribed
    :param churned: (n,) the customer churned
    :param days: (n,) day index of the decision (to hold out the most recent days), optional
    :param n_actions: catalogue size, to check the actions' range (optional)
    :param propensities: (n,) the logging policy's probability of the logged action, in (0, 1]
        (optional; `ResponseModel.fit` balances the rows with it, see ``balance``)
    """

    obs: np.ndarray
    actions: np.ndarray
    opens: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray
    revenue: np.ndarray
    unsubscribes: np.ndarray
    churned: np.ndarray
    days: np.ndarray | None = None
    n_actions: int | None = None
    propensities: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.obs = np.asarray(self.obs, dtype=np.float32)
        if self.obs.ndim != 2:
            raise ValueError(f"obs must be (n, d), got shape {self.obs.shape}")
        n = self.obs.shape[0]
        if not np.isfinite(self.obs).all():
            raise ValueError("obs must be finite (no NaN or inf feature values)")
        actions = np.asarray(self.actions)
        if actions.shape != (n,):
            raise ValueError(f"actions must have shape ({n},), got {actions.shape}")
        if actions.size and not np.all(np.mod(actions, 1) == 0):
            raise ValueError("actions must be whole catalogue action indices")
        self.actions = actions.astype(np.int64)
        if n and self.actions.min() < 0:
            raise ValueError("actions must be >= 0 (0 is 'no contact')")
        if self.n_actions is not None and n and self.actions.max() >= self.n_actions:
            raise ValueError(f"actions must lie in [0, {self.n_actions}); found "
                             f"{int(self.actions.max())}")
        for name in ("opens", "clicks", "conversions", "revenue", "unsubscribes"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{name} must be finite (found NaN or inf)")
            if name != "revenue" and (value < 0).any():
                raise ValueError(f"{name} are counts and must be >= 0")
            setattr(self, name, value)
        churned = np.asarray(self.churned)
        if churned.shape != (n,):
            raise ValueError(f"churned must have shape ({n},), got {churned.shape}")
        self.churned = churned.astype(bool)
        if self.days is not None:
            days = np.asarray(self.days)
            if days.shape != (n,) or not np.isfinite(days.astype(np.float64)).all():
                raise ValueError(f"days must be ({n},) finite day indices")
            self.days = days.astype(np.int64)
        if self.propensities is not None:
            propensities = np.asarray(self.propensities, dtype=np.float64)
            if propensities.shape != (n,):
                raise ValueError(f"propensities must have shape ({n},), got {propensities.shape}")
            if not np.isfinite(propensities).all() or (propensities <= 0).any() \
                    or (propensities > 1.0 + 1e-6).any():
                raise ValueError("propensities must lie in (0, 1]")
            self.propensities = propensities

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def n_contacts(self) -> int:
        return int((self.actions > 0).sum())

    def subset(self, rows: np.ndarray) -> ResponseLog:
        """The rows selected by an index or boolean array."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return ResponseLog(**{k: v[rows] if isinstance(v, np.ndarray) else v
                              for k, v in values.items()})

    @classmethod
    def from_logged(cls, dataset: Any, n_actions: int | None = None) -> ResponseLog:
        """From an `agents.offline.LoggedDataset` collected with ``info_keys=RESPONSE_INFO_KEYS``
        (its extras hold the outcomes; "day" is optional)."""
        extras = dataset.extras
        missing = [k for k in RESPONSE_INFO_KEYS[:-1] if k not in extras]
        if missing:
            raise ValueError(f"the logs lack the outcomes {missing}; collect them with "
                             "info_keys=RESPONSE_INFO_KEYS")
        return cls(
            obs=dataset.obs, actions=dataset.actions, opens=extras["opens"],
            clicks=extras["clicks"], conversions=extras["conversions"],
            revenue=extras["net_revenue"], unsubscribes=extras["unsubscribes"],
            churned=extras["churned"] > 0.5, days=extras.get("day"),
            n_actions=n_actions if n_actions is not None else dataset.n_actions,
            propensities=dataset.propensities,
        )


def split_by_days(log: ResponseLog, held_out_days: int = 7) -> tuple[ResponseLog, ResponseLog]:
    """(earlier days, the last `held_out_days` days): validation on the most recent days, as the
    model will be used on what comes next, not on a random shuffle of the past."""
    if log.days is None:
        raise ValueError("the log has no days: cannot hold out the most recent ones")
    if held_out_days < 1:
        raise ValueError("held_out_days must be >= 1")
    recent = log.days > log.days.max() - int(held_out_days)
    if recent.all():
        raise ValueError(f"the log covers only {held_out_days} days or fewer: nothing to fit on")
    return log.subset(~recent), log.subset(recent)


def _balancing_weights(log: ResponseLog, balance: float) -> np.ndarray | None:
    """(n,) row weights with mean 1: inverse propensity relative to the median row's, capped at
    `balance` (None when there is nothing to balance)."""
    if not np.isfinite(balance) or balance < 1:
        raise ValueError(f"balance must be a number >= 1, got {balance}")
    if balance == 1 or log.propensities is None:
        return None
    weights = np.minimum(np.median(log.propensities) / log.propensities, float(balance))
    return weights / weights.mean()


# ------------------------------------------------------------------------------------ the model
class _Ensemble(nn.Module):
    """M independent MLPs evaluated as one batched matmul per layer (fast on a CPU)."""

    def __init__(self, members: int, in_features: int, hidden: tuple[int, ...],
                 out_features: int, generator: torch.Generator):
        super().__init__()
        sizes = (in_features, *hidden, out_features)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            gain = math.sqrt(2.0) if i < len(sizes) - 2 else 0.1
            w = torch.empty(members, a, b)
            for m in range(members):
                nn.init.orthogonal_(w[m], gain=gain, generator=generator)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(members, 1, b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in) -> (M, B, out)."""
        h = torch.matmul(x.unsqueeze(0), self.weights[0]) + self.biases[0]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = torch.matmul(torch.relu(h), w) + b
        return h


class ResponseModel:
    """How customers respond to each catalogue action, fitted from a workspace's logs.

    Input: the features at decision time (standardised with the logs' mean and spread) and the
    action's catalogue attributes. Heads per row: P(open), P(click), expected orders (Poisson
    rate), net revenue per order, P(unsubscribe), P(churn); opens, clicks and unsubscribes are 0
    for "no contact" by construction. `n_members` networks, each fitted on
    a bootstrap resample of the rows (Poisson(1) row weights), from different initial weights.
    """

    def __init__(self, catalogue: Catalogue, n_features: int, *, n_members: int = 5,
                 hidden_sizes: tuple[int, ...] = (64, 64), seed: int = 0):
        self.catalogue = catalogue
        self.fitted_features = int(n_features)
        self.n_members = int(n_members)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.seed = int(seed)
        self.n_rows = 0
        self.fit_seconds = 0.0
        self.recent_levels: dict[str, float] = {}
        """Factor the churn and unsubscribe rates were brought to the last logged days by (`fit`'s
        ``recent_days``)."""
        self.recent_days: int | None = None
        self.obs_mean = np.zeros(self.fitted_features, dtype=np.float32)
        self.obs_scale = np.ones(self.fitted_features, dtype=np.float32)
        self.revenue_scale = 1.0
        self._attributes = torch.as_tensor(catalogue.attributes)
        self._cost = catalogue.cost.astype(np.float64)
        generator = torch.Generator().manual_seed(self.seed)
        self.net = _Ensemble(self.n_members, self.fitted_features + self._attributes.shape[1],
                             self.hidden_sizes, len(_HEADS), generator)

    # -------------------------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls, log: ResponseLog, catalogue: Catalogue, *, n_members: int = 5, seed: int = 0,
        epochs: int | None = None, hidden_sizes: tuple[int, ...] = (64, 64),
        batch_size: int | None = None, learning_rate: float = 3e-3,
        balance: float = 1.0, recent_days: int | None = RECENT_DAYS,
    ) -> ResponseModel:
        """Fit the ensemble on `log` (raises NotEnoughData when it is too thin).

        :param epochs: passes over the rows; None: about 1,500 gradient steps, at least 2 passes
            and at most 200 (1,000,000 rows fit in about a minute on one CPU thread)
        :param batch_size: rows per gradient step; None: n / 8 within [256, 4096]
        :param balance: where the log has propensities, weight each row by the inverse of its
            propensity relative to the median row's, capped at `balance`: the rules choose an
            action for the customers they expect it to suit, so on their own rows an action's
            effect is mixed up with whom it went to; the exploration rows (rare, hence heavy)
            say what the action does to anyone. 1 (the default), or a log without propensities:
            every row counts once. Measured (BENCHMARKS.md, "Learning from the workspace's own
            logs"): a cap of 10 fits the exploration rows better and keeps retention nearer the
            rules', but the policies trained in it captured less of the oracle's uplift.
        :param recent_days: after fitting, bring the levels of leaving (the churn and unsubscribe
            rates) to what the last `recent_days` logged days show, keeping how they vary with
            the customer and the action (`recent_levels` records the factors). The customers
            still here are not the average of the history: those likely to leave have left, so a
            model of the whole history over-predicted churn on the next week by 11-23 % on half
            the large benchmark runs (BENCHMARKS.md, issue 17), and the policy is trained for the
            customers of today. Opens, clicks and orders have no such drift to correct, and
            levelling them on a week's few clicks moved the demo's held-out clicks out of
            tolerance. None, or a log without days: no levelling.
        """
        n, n_contacts = len(log), log.n_contacts
        if n < MIN_DECISIONS or n_contacts < MIN_CONTACTS:
            raise NotEnoughData(
                f"a response model needs at least {MIN_DECISIONS:,} logged decisions with at "
                f"least {MIN_CONTACTS:,} contacts; the logs have {n:,} decisions and "
                f"{n_contacts:,} contacts")
        if log.actions.max() >= catalogue.n_actions:
            raise ValueError(f"logged actions go up to {int(log.actions.max())} but the "
                             f"catalogue has {catalogue.n_actions} actions")
        if recent_days is not None and (isinstance(recent_days, bool)
                                        or not isinstance(recent_days, int) or recent_days < 1):
            raise ValueError(f"recent_days must be a whole number of days >= 1, got "
                             f"{recent_days!r}")
        started = time.perf_counter()
        model = cls(catalogue, log.obs.shape[1], n_members=n_members, hidden_sizes=hidden_sizes,
                    seed=seed)
        model.n_rows = n
        model.obs_mean = log.obs.mean(axis=0)
        model.obs_scale = np.maximum(log.obs.std(axis=0), 1e-3).astype(np.float32)
        ordered = log.conversions > 0
        per_order = np.where(ordered, log.revenue / np.maximum(log.conversions, 1e-9), 0.0)
        model.revenue_scale = float(max(per_order[ordered].mean(), 1e-6)) if ordered.any() else 1.0

        batch = int(batch_size or min(4096, max(256, n // 8)))
        steps_per_epoch = math.ceil(n / batch)
        epochs = int(epochs or min(200, max(2, math.ceil(1500 / steps_per_epoch))))
        rng = np.random.default_rng(seed)
        # bootstrap: each member sees each row a Poisson(1) number of times
        boot = torch.as_tensor(rng.poisson(1.0, size=(n, model.n_members)).astype(np.float32))
        row_weights = _balancing_weights(log, balance)
        if row_weights is not None:
            boot *= torch.as_tensor(row_weights, dtype=torch.float32)[:, None]
        x_obs = model._standardise(log.obs)
        actions = torch.as_tensor(log.actions)
        targets = torch.as_tensor(np.stack([
            np.minimum(log.opens, 1.0), np.minimum(log.clicks, 1.0), log.conversions,
            per_order / model.revenue_scale, np.minimum(log.unsubscribes, 1.0),
            log.churned.astype(np.float64),
        ], axis=1), dtype=torch.float32)
        model._start_at_base_rates(targets)
        optimiser = torch.optim.Adam(model.net.parameters(), lr=learning_rate, weight_decay=1e-5)
        total = epochs * steps_per_epoch
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=learning_rate, total_steps=total, pct_start=0.1)
        for _ in range(epochs):
            order = torch.as_tensor(rng.permutation(n))
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                loss = model._loss(x_obs[idx], actions[idx], targets[idx], boot[idx].T)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
        model.epochs = epochs
        if recent_days is not None and log.days is not None:
            model._level_to(log.subset(log.days > log.days.max() - recent_days))
            model.recent_days = recent_days
        model.fit_seconds = time.perf_counter() - started
        return model

    def _start_at_base_rates(self, targets: torch.Tensor) -> None:
        """Start every head at the logs' average (the last layer's bias), not at even odds.

        Churn and unsubscribes happen on a few days in a thousand: from even odds the gradient
        steps go on pulling their rates down and, stopped early, the model over-predicts them
        (churn by 16-36 % on the held-out days before this; BENCHMARKS.md, issue 17)."""
        rates = targets.double().mean(dim=0).clamp(1e-6, 1 - 1e-6)
        start = torch.zeros(len(_HEADS), dtype=torch.float64)
        for h in _BINARY:
            start[h] = torch.logit(rates[h])
        start[2] = torch.log(targets[:, 2].double().mean().clamp_min(1e-6))  # Poisson rate
        start[3] = math.log(math.expm1(1.0))  # softplus(start) = 1 = the mean revenue per order
        with torch.no_grad():
            self.net.biases[-1].copy_(start.to(torch.float32).expand_as(self.net.biases[-1]))

    def _level_to(self, recent: ResponseLog) -> None:
        """Shift the unsubscribe and churn heads' last bias so that the ensemble's mean prediction
        on `recent` matches what happened there, shrunk towards no change by
        `LEVEL_PRIOR_EVENTS`."""
        with torch.no_grad():
            out = self.net(torch.cat([self._standardise(recent.obs),
                                      self._attributes[torch.as_tensor(recent.actions)]], dim=1))
        out = out.double().numpy()  # (M, n, H)
        contacted = self.catalogue.channel_index[recent.actions] >= 0
        leaving = {  # head: (its outcome, the rows it can happen on)
            4: (np.minimum(recent.unsubscribes, 1.0), contacted),
            5: (recent.churned.astype(np.float64), np.ones(len(recent), dtype=bool)),
        }
        shift, levels = np.zeros(len(_HEADS)), {}
        for head, (outcome, rows) in leaving.items():
            if not rows.any():
                continue
            logits = out[:, rows, head]
            predicted = float((1.0 / (1.0 + np.exp(-logits))).mean(axis=0).sum())
            events = float(outcome[rows].sum())
            target = predicted * (events + LEVEL_PRIOR_EVENTS) / (predicted + LEVEL_PRIOR_EVENTS)
            for _ in range(20):  # Newton on the shared logit shift
                p = 1.0 / (1.0 + np.exp(-(logits + shift[head])))
                gap = p.mean(axis=0).sum() - target
                slope = (p * (1.0 - p)).mean(axis=0).sum()
                if abs(gap) < 1e-6 * max(target, 1.0) or slope <= 0:
                    break
                shift[head] -= gap / slope
            levels[_HEADS[head]] = target / predicted if predicted > 0 else 1.0
        with torch.no_grad():
            self.net.biases[-1] += torch.as_tensor(shift, dtype=torch.float32)
        self.recent_levels = levels

    def _loss(self, x_obs: torch.Tensor, actions: torch.Tensor, y: torch.Tensor,
              weight: torch.Tensor) -> torch.Tensor:
        """Bootstrap-weighted negative log-likelihood of every head, summed over members.
        `weight` is (M, B)."""
        out = self.net(torch.cat([x_obs, self._attributes[actions]], dim=1))  # (M, B, H)
        bce = nn.functional.binary_cross_entropy_with_logits
        losses = [bce(out[..., h], y[:, h].expand_as(out[..., h]), reduction="none")
                  for h in _BINARY]
        rate = out[..., 2].clamp(-20.0, 10.0)
        losses.append(torch.exp(rate) - y[:, 2] * rate)  # Poisson
        ordered = (y[:, 2] > 0).float()
        revenue = nn.functional.softplus(out[..., 3])
        losses.append(ordered * (revenue - y[:, 3]) ** 2)
        per_row = torch.stack(losses, dim=0).sum(dim=0)  # (M, B)
        return (per_row * weight).sum() / weight.shape[1]

    def _standardise(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((np.asarray(obs, dtype=np.float32) - self.obs_mean)
                               / self.obs_scale)

    # ------------------------------------------------------------------------------ predicting
    def member_predictions(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Each member's predictions, (M, n) per outcome of `OUTCOMES` (revenue = expected net
        revenue of the decision: orders x revenue per order)."""
        obs = np.asarray(obs, dtype=np.float32)
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if obs.ndim != 2 or obs.shape[1] != self.fitted_features:
            raise ValueError(f"obs must be (n, {self.fitted_features}), got {obs.shape}")
        if obs.shape[0] != actions.shape[0]:
            raise ValueError("obs and actions must have the same number of rows")
        if actions.size and (actions.min() < 0 or actions.max() >= self.catalogue.n_actions):
            raise ValueError(f"actions must lie in [0, {self.catalogue.n_actions})")
        parts = []
        with torch.no_grad():
            for start in range(0, max(obs.shape[0], 1), 65_536):
                x = self._standardise(obs[start:start + 65_536])
                a = torch.as_tensor(actions[start:start + 65_536])
                out = self.net(torch.cat([x, self._attributes[a]], dim=1))
                parts.append(out)
        out = torch.cat(parts, dim=1).double().numpy()
        p = 1.0 / (1.0 + np.exp(-out))
        # opens, clicks and unsubscribes answer a message: none where none was sent
        p[..., (0, 1, 4)] *= (self.catalogue.channel_index[actions] >= 0)[None, :, None]
        conversions = np.exp(np.clip(out[..., 2], -20.0, 10.0))
        per_order = np.logaddexp(0.0, out[..., 3]) * self.revenue_scale  # softplus
        return {
            "open": p[..., 0], "click": p[..., 1], "conversions": conversions,
            "revenue": conversions * per_order, "unsubscribe": p[..., 4], "churn": p[..., 5],
        }

    def member_rewards(self, predictions: dict[str, np.ndarray], actions: np.ndarray,
                       reward_weights: RewardWeights | None = None) -> np.ndarray:
        """(M, n) each member's expected one-day reward of the decisions."""
        w = reward_weights or RewardWeights()
        return (w.open * predictions["open"] + w.click * predictions["click"]
                + w.conversion * predictions["conversions"] + w.revenue * predictions["revenue"]
                + w.unsubscribe * predictions["unsubscribe"] + w.churn * predictions["churn"]
                + w.contact_cost * self._cost[np.asarray(actions, dtype=np.int64).reshape(-1)])

    def predict(self, obs: np.ndarray, actions: np.ndarray,
                reward_weights: RewardWeights | None = None) -> dict[str, np.ndarray]:
        """(n,) per outcome of `OUTCOMES`, the ensemble mean: "open", "click", "unsubscribe",
        "churn" are probabilities, "conversions" expected orders, "revenue" expected net revenue;
        plus "revenue_per_conversion", "reward" (expected one-day reward under `reward_weights`,
        default RewardWeights()) and "uncertainty": the spread (std) of that reward across the
        members - large where the logs say little about this customer and action."""
        members = self.member_predictions(obs, actions)
        rewards = self.member_rewards(members, actions, reward_weights)
        out = {k: v.mean(axis=0) for k, v in members.items()}
        out["revenue_per_conversion"] = out["revenue"] / np.maximum(out["conversions"], 1e-12)
        out["reward"] = rewards.mean(axis=0)
        out["uncertainty"] = rewards.std(axis=0)
        return out

    def expected_reward(self, obs: np.ndarray, actions: np.ndarray,
                        reward_weights: RewardWeights | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) across members of the expected one-day reward of each decision."""
        rewards = self.member_rewards(self.member_predictions(obs, actions), actions,
                                      reward_weights)
        return rewards.mean(axis=0), rewards.std(axis=0)

    # ------------------------------------------------------------------------------ saving
    def to_bytes(self) -> bytes:
        """Tensors and plain values only (read back with torch.load(weights_only=True))."""
        payload = {
            "format": 1,
            "catalogue": json.dumps(self.catalogue.to_dict()),
            "fitted_features": self.fitted_features, "n_members": self.n_members,
            "hidden_sizes": list(self.hidden_sizes), "seed": self.seed, "n_rows": self.n_rows,
            "fit_seconds": float(self.fit_seconds), "revenue_scale": float(self.revenue_scale),
            "recent_levels": {k: float(v) for k, v in self.recent_levels.items()},
            "recent_days": self.recent_days,
            "obs_mean": torch.as_tensor(self.obs_mean), "obs_scale": torch.as_tensor(self.obs_scale),
            "state": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ResponseModel:
        payload = torch.load(io.BytesIO(data), weights_only=True)
        if payload.get("format") != 1:
            raise ValueError("not a response model written by ResponseModel.to_bytes")
        model = cls(Catalogue.from_dict(json.loads(payload["catalogue"])),
                    payload["fitted_features"], n_members=payload["n_members"],
                    hidden_sizes=tuple(payload["hidden_sizes"]), seed=payload["seed"])
        model.net.load_state_dict(payload["state"])
        model.n_rows = int(payload["n_rows"])
        model.fit_seconds = float(payload["fit_seconds"])
        model.revenue_scale = float(payload["revenue_scale"])
        model.recent_levels = dict(payload.get("recent_levels", {}))
        model.recent_days = payload.get("recent_days")
        model.obs_mean = payload["obs_mean"].numpy()
        model.obs_scale = payload["obs_scale"].numpy()
        return model


# ------------------------------------------------------------------------------ validation
_KPIS: tuple[tuple[str, str, str], ...] = (
    # (KPI name, log field, prediction key)
    ("open_rate", "opens", "open"),
    ("click_rate", "clicks", "click"),
    ("conversion_rate", "conversions", "conversions"),
    ("revenue_per_decision", "revenue", "revenue"),
    ("unsubscribe_rate", "unsubscribes", "unsubscribe"),
    ("churn_rate", "churned", "churn"),
)
MIN_SUPPORT = 30
"""A KPI counts towards `within_tolerance` only when the held-out rows hold this many events."""


def _kpi_rows(observed: np.ndarray, predicted: np.ndarray, z: float,
              tolerance: float) -> dict[str, Any]:
    n = observed.shape[0]
    mean = float(observed.mean())
    half = z * float(observed.std(ddof=1)) / math.sqrt(n) if n > 1 else float("inf")
    pred = float(predicted.mean())
    miss = abs(pred - mean) / abs(mean) if mean != 0 else (0.0 if pred == 0 else float("inf"))
    support = int((observed != 0).sum())
    inside = mean - half <= pred <= mean + half
    return {
        "observed": mean, "ci_low": mean - half, "ci_high": mean + half, "predicted": pred,
        "relative_miss": miss if math.isfinite(miss) else None, "rows": n, "events": support,
        "enough_support": support >= MIN_SUPPORT,
        "within_tolerance": bool(inside or miss <= tolerance),
    }


def _kpis(log: ResponseLog, predicted: dict[str, np.ndarray], rows: np.ndarray, z: float,
          tolerance: float) -> dict[str, Any]:
    return {name: _kpi_rows(np.asarray(getattr(log, field), dtype=np.float64)[rows],
                            predicted[key][rows], z, tolerance)
            for name, field, key in _KPIS}


def validate(model: ResponseModel, held_out: ResponseLog, *, tolerance: float = 0.10,
             confidence: float = 0.95) -> dict[str, Any]:
    """Replay the logged actions of `held_out` through the model and compare with what happened.

    Totals per decision (open, click, conversion, revenue, unsubscribe and churn rates): the
    observed mean with its `confidence` interval, the predicted mean and the relative miss; the
    same per channel, offer and send window (by catalogue key; "no_contact" for action 0).
    ``within_tolerance`` is True when every total KPI with at least MIN_SUPPORT events is within
    `tolerance` (relative) of the observed value or inside its interval; ``worst_miss`` names the
    KPI with the largest relative miss among those that fail (among all of those when none
    fails: a miss inside a wide interval is not what flags a model); ``recent_levels`` what the
    model's churn and unsubscribe rates were brought to (`ResponseModel.recent_levels`, with its
    ``days``; absent when not levelled). JSON-safe.
    """
    if len(held_out) < 2:
        raise ValueError("validation needs at least two held-out rows")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    predicted = model.predict(held_out.obs, held_out.actions)
    everything = np.ones(len(held_out), dtype=bool)
    totals = _kpis(held_out, predicted, everything, z, tolerance)
    cat = model.catalogue
    breakdowns: dict[str, dict[str, Any]] = {}
    for name, index, keys in (("by_channel", cat.channel_index, cat.channel_keys),
                              ("by_offer", cat.offer_index, cat.offer_keys),
                              ("by_send_window", cat.window_index, cat.window_keys)):
        group = index[held_out.actions]
        breakdowns[name] = {
            ("no_contact" if g < 0 else keys[g]): _kpis(held_out, predicted, group == g, z,
                                                        tolerance)
            for g in np.unique(group) if (group == g).sum() >= 2
        }
    counted = {k: v for k, v in totals.items() if v["enough_support"]}
    return {
        "rows": len(held_out), "tolerance": tolerance, "confidence": confidence,
        "totals": totals, **breakdowns,
        "within_tolerance": all(v["within_tolerance"] for v in counted.values()),
        **({"recent_levels": {"days": model.recent_days, "factors": dict(model.recent_levels)}}
           if model.recent_levels else {}),
        "worst_miss": _worst_miss(totals),
    }


def _worst_miss(totals: dict[str, Any]) -> dict[str, Any] | None:
    """The KPI with enough events and the largest relative miss among those outside tolerance
    (among all of them when none is): a miss inside a wide interval is not what flags a model."""
    counted = {k: v for k, v in totals.items() if v["enough_support"]}
    failing = {k: v for k, v in counted.items() if not v["within_tolerance"]}
    candidates = failing or counted
    worst = max(candidates, key=lambda k: candidates[k]["relative_miss"] or 0.0, default=None)
    return None if worst is None else {"kpi": worst,
                                       "relative_miss": candidates[worst]["relative_miss"]}
