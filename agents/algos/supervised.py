"""The "supervised learning" baseline: a response model of the immediate reward, acted on greedily.

This is what a data-science team typically ships before RL: log an exploratory campaign, fit a
model that predicts each action's immediate reward from the customer's features, then send every
customer the action with the best predicted reward. It is myopic by construction (it never values
what a contact does to tomorrow), which is exactly what the RL agents are benchmarked against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.common.vec import CustomerBatch
from agents.algos.base import Agent, ProgressCallback, ScoresNetwork, TrainingReport
from agents.common.config import build_config
from agents.common.masking import sample_from, uniform_over_mask


@dataclass
class SupervisedConfig:
    """Hyper-parameters of `SupervisedResponseModel` (names are `agents.make` keyword arguments)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the response model (one output per action)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    weight_decay: float = 1e-4
    """L2 penalty (AdamW), keeps rarely-taken actions' predictions near the average."""
    batch_size: int = 512
    """Logged rows per gradient step."""
    epochs: int = 50
    """Most passes over the logged data per `fit_logged` call (early stopping usually ends sooner)."""
    validation_fraction: float = 0.1
    """Share of logged rows held out to decide when to stop training (0 disables it)."""
    patience: int = 3
    """Epochs without a better held-out error before training stops (best weights are kept)."""
    collect_epsilon: float = 1.0
    """Exploration while `fit` collects data: 1.0 is a uniformly random campaign over allowed
    actions (an A/B/n test); lower values mix in the current model's greedy choice."""
    collect_rounds: int = 1
    """`fit` splits its budget into this many collect-then-train rounds (round 1 is uniform)."""

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError("hidden_sizes must be positive")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        if int(self.batch_size) < 1 or int(self.epochs) < 1 or int(self.collect_rounds) < 1:
            raise ValueError("batch_size, epochs and collect_rounds must be >= 1")
        if not 0.0 <= self.collect_epsilon <= 1.0:
            raise ValueError("collect_epsilon must lie in [0, 1]")
        if not 0.0 <= self.validation_fraction < 1.0 or int(self.patience) < 1:
            raise ValueError("validation_fraction must lie in [0, 1) and patience be >= 1")
        self.learning_rate, self.weight_decay = float(self.learning_rate), float(self.weight_decay)
        self.batch_size, self.epochs, self.patience = \
            int(self.batch_size), int(self.epochs), int(self.patience)
        self.validation_fraction = float(self.validation_fraction)
        self.collect_epsilon, self.collect_rounds = \
            float(self.collect_epsilon), int(self.collect_rounds)


def _mlp(n_inputs: int, hidden: tuple[int, ...], n_outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_inputs
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class SupervisedResponseModel(Agent):
    """Greedy policy on a neural response model of the immediate reward per action.

    The model is a small MLP with one output per action trained by (optionally weighted) squared
    error on the logged action's output only - the "direct method" reward model of the
    off-policy-evaluation literature (Dudik, Langford & Li, ICML 2011). `fit` collects its own
    training data with a uniformly random allowed action per customer-day (then, with
    `collect_rounds` > 1, epsilon-greedy on the current model); `fit_logged` trains on history.
    Targets are divided by their standard deviation during training for a well-scaled loss, and
    training stops early on a held-out share of the rows.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds initialisation, data collection and minibatch order
    :param hyperparams: fields of `SupervisedConfig`
    """

    name = "supervised"
    warm_start = "response_model"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        super().__init__(observation_space, action_space, seed=seed)
        self.config = build_config(SupervisedConfig, self.name, hyperparams)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = _mlp(self.n_features, self.config.hidden_sizes, self.n_actions)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.config.learning_rate,
                                           weight_decay=self.config.weight_decay)
        self.reward_scale = 1.0  # std of the training rewards; the net predicts reward / scale
        self.trained_rows = 0

    # -------------------------------------------------------------- the response model
    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Predicted immediate reward of every action, (n, A)."""
        obs = self._check_obs(obs)
        with torch.no_grad():
            out = self.net(torch.from_numpy(obs)).numpy().astype(np.float64)
        return out * self.reward_scale

    def scores_network(self) -> ScoresNetwork:
        """The response network on the raw features, times the reward scale it was trained at."""
        return ScoresNetwork(self.net, None, float(self.reward_scale))

    def fit_logged(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                   sample_weight: np.ndarray | None = None, epochs: int | None = None) -> dict[str, float]:
        """Train the response model on logged (features, action, immediate reward) rows.

        Continues from the current weights (a warm start). `sample_weight` (n,) reweights rows,
        e.g. by 1 / logging propensity to undo a skewed logging policy. `validation_fraction` of
        the rows are held out: training stops after `patience` epochs without a better held-out
        error and keeps the best weights. Returns the last epoch's training and the best held-out
        weighted mean squared error (reward units squared), the rows and the epochs run.
        """
        obs = self._check_obs(obs)
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        n = obs.shape[0]
        if actions.shape[0] != n or rewards.shape[0] != n:
            raise ValueError("obs, actions and rewards must have the same number of rows")
        if n == 0:
            raise ValueError("no logged rows to learn from")
        if actions.min() < 0 or actions.max() >= self.n_actions:
            raise ValueError(f"actions must lie in [0, {self.n_actions})")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        if sample_weight is None:
            weights = np.ones(n)
        else:
            weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if weights.shape[0] != n or not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("sample_weight must be n finite values >= 0")
            if weights.sum() <= 0:
                raise ValueError("sample_weight sums to 0")
            weights = weights * (n / weights.sum())  # mean 1 keeps the step size meaningful

        if self.trained_rows == 0:  # fix the target scale once, from the first data seen
            std = float(np.sqrt(np.average((rewards - np.average(rewards, weights=weights)) ** 2,
                                           weights=weights)))
            self.reward_scale = std if std > 1e-8 else 1.0
        x = torch.from_numpy(obs)
        a = torch.from_numpy(actions)
        y = torch.from_numpy((rewards / self.reward_scale).astype(np.float32))
        w = torch.from_numpy(weights.astype(np.float32))
        # hold out rows to stop training when the fit stops generalising (early stopping)
        order = self.rng.permutation(n)
        n_valid = int(self.config.validation_fraction * n) if n >= 50 else 0
        valid, train = torch.from_numpy(order[:n_valid]), order[n_valid:]
        batch, patience = self.config.batch_size, self.config.patience
        best_loss, best_state, stale, epochs_run = np.inf, None, 0, 0
        train_loss = 0.0
        for _ in range(int(epochs or self.config.epochs)):
            epochs_run += 1
            shuffled = torch.from_numpy(self.rng.permutation(train))
            loss_sum = 0.0
            for start in range(0, len(train), batch):
                idx = shuffled[start:start + batch]
                # 1. predicted reward of the action that was actually taken
                pred = self.net(x[idx]).gather(1, a[idx, None]).squeeze(1)
                # 2. weighted squared error against the observed immediate reward
                loss = (w[idx] * (pred - y[idx]) ** 2).mean()
                # 3. one AdamW step
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                loss_sum += float(loss.detach()) * len(idx)
            train_loss = loss_sum / max(1, len(train))
            if n_valid == 0:
                continue
            # 4. held-out error; keep the best weights, stop after `patience` epochs without gain
            valid_loss = self._weighted_mse(x[valid], a[valid], y[valid], w[valid])
            if valid_loss < best_loss - 1e-6:
                best_loss, stale = valid_loss, 0
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.trained_rows += n
        scale2 = self.reward_scale ** 2
        stats = {"mse": train_loss * scale2, "rows": float(n), "epochs": float(epochs_run)}
        if n_valid:
            stats["validation_mse"] = best_loss * scale2
        return stats

    def _weighted_mse(self, x: torch.Tensor, a: torch.Tensor, y: torch.Tensor,
                      w: torch.Tensor) -> float:
        with torch.no_grad():
            total = 0.0
            for start in range(0, x.shape[0], 65_536):
                rows = slice(start, start + 65_536)
                pred = self.net(x[rows]).gather(1, a[rows, None]).squeeze(1)
                total += float((w[rows] * (pred - y[rows]) ** 2).sum())
        return total / max(1, x.shape[0])

    # -------------------------------------------------------------- learning from the env
    def _fit(
        self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
        report: TrainingReport, callback: ProgressCallback | None,
    ) -> None:
        started = time.perf_counter()
        batch = CustomerBatch(env, self.observation_space, self.action_space)
        obs, mask = batch.reset(seed=self.seed)
        rounds = self.config.collect_rounds
        finished_at_report = 0
        for round_index in range(rounds):
            budget = total_steps * (round_index + 1) // rounds
            logged_obs, logged_actions, logged_rewards = [], [], []
            first = round_index == 0 and self.trained_rows == 0
            explore = 1.0 if first else self.config.collect_epsilon
            while batch.env_steps < budget:
                # 1. the exploratory campaign: uniform over allowed actions (or epsilon-greedy)
                probs = explore * uniform_over_mask(mask)
                if explore < 1.0:
                    probs = probs + (1.0 - explore) * self.action_probabilities(obs, mask)
                actions = sample_from(probs, self.rng)
                # 2. one day passes; keep the rows whose action was really taken
                step = batch.step(actions)
                valid = step.valid
                logged_obs.append(obs[valid])
                logged_actions.append(actions[valid])
                logged_rewards.append(step.reward[valid])
                obs, mask = step.obs, step.mask
                if not self._report_progress(callback, report, batch.env_steps, total_steps,
                                             batch.recent_mean_return(), started):
                    break
            # 3. fit the response model on everything this round logged
            if sum(len(r) for r in logged_rewards):
                stats = self.fit_logged(np.concatenate(logged_obs), np.concatenate(logged_actions),
                                        np.concatenate(logged_rewards))
                for key in ("mse", "validation_mse", "epochs"):
                    if key in stats:
                        report.extra[f"round_{round_index}_{key}"] = stats[key]
            if batch.n_finished > finished_at_report:
                report.record(batch.env_steps, batch.recent_mean_return())
                finished_at_report = batch.n_finished
            if report.cancelled:
                break
        report.env_steps = batch.env_steps

    # -------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            "net": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "reward_scale": float(self.reward_scale),
            "trained_rows": int(self.trained_rows),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.reward_scale = float(state["reward_scale"])
        self.trained_rows = int(state["trained_rows"])
