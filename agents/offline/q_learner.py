"""Offline Q-learning: long-term action values learned from logs only (`OfflineQLearner`).

Its own module because it is an agent in its own right (`fit`, `scores`, `save`) and the warm
starts (agents.offline.pretrain) only consume its `scores` and improved policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.algos.base import Agent, ProgressCallback, ScoresNetwork, TrainingReport
from agents.common.config import build_config
from agents.common.networks import apply_mask, mlp
from agents.common.running import ObservationNormalizer
from agents.common.threads import torch_threads
from agents.offline.dataset import LoggedDataset, collect
from agents.offline.policies import uniform_policy

__all__ = ["OfflineQConfig", "OfflineQLearner"]


@dataclass
class OfflineQConfig:
    """Hyper-parameters of `OfflineQLearner` (its keyword arguments, and `pretrain`'s q_options)."""

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
        self.config = build_config(OfflineQConfig, self.name, hyperparams)
        init = torch.Generator().manual_seed(self.seed)
        self.q_net = mlp(self.n_features, self.n_actions, self.config.hidden_sizes, "relu",
                         generator=init)
        self.target_net = mlp(self.n_features, self.n_actions, self.config.hidden_sizes, "relu")
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self.obs_normalizer = ObservationNormalizer(self.n_features, clip=5.0)
        self.reward_scale = 1.0  # the network predicts Q / reward_scale

    def _normalise(self, obs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.obs_normalizer(obs))

    def scores_network(self) -> ScoresNetwork:
        """The Q-network behind the logs' feature normalisation, in reward units."""
        return ScoresNetwork(self.q_net, self.obs_normalizer, self.reward_scale)

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
        self.obs_normalizer = ObservationNormalizer(self.n_features, clip=5.0)
        self.obs_normalizer.update(dataset.obs)
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
                "obs_stats": self.obs_normalizer.state_dict(), "reward_scale": self.reward_scale}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.obs_normalizer.load_state_dict(state["obs_stats"])
        self.reward_scale = float(state["reward_scale"])
