"""Double DQN with a replay buffer, a target network, an epsilon schedule and masked argmax.

The value-based alternative to the actor-critic: it learns Q(customer features, action), the
long-term value of each action, and acts greedily over the allowed ones. Masks are honoured
twice: when acting (exploration draws uniformly among allowed actions) and in the TD target (the
next day's best action is looked up among the actions allowed *then*, which is why the replay
buffer stores the next state's mask).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.algos.base import Agent, ProgressCallback, ScoresNetwork, TrainingReport
from agents.common.buffers import ReplayBuffer
from agents.common.config import build_config
from agents.common.masking import masked_argmax, sample_from, uniform_over_mask
from agents.common.networks import apply_mask, mlp
from agents.common.running import ObservationNormalizer
from agents.common.schedules import linear_schedule
from agents.common.threads import torch_threads
from agents.common.vec import CustomerBatch


@dataclass
class DQNConfig:
    """Hyper-parameters of `DQN` (names are `agents.make` keyword arguments)."""

    learning_rate: float = 5e-4
    """Adam step size."""
    buffer_size: int = 200_000
    """Transitions kept in the replay buffer."""
    learning_starts: int = 5_000
    """Env steps (customer-days) collected before the first gradient step."""
    batch_size: int = 256
    """Transitions per gradient step."""
    steps_per_update: int = 64
    """Env steps (customer-days) collected per gradient step (replay ratio = batch / this)."""
    gamma: float = 0.99
    """Discount per day."""
    target_update_interval: int = 10_000
    """Env steps between hard copies of the online network into the target network."""
    tau: float = 1.0
    """Target update mix (1 = hard copy; < 1 = Polyak averaging at every interval)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start: share of uniformly random (allowed) actions."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    exploration_fraction: float = 0.3
    """Share of the budget over which epsilon decays linearly."""
    double_q: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    reward_scale: float = 0.05
    """Multiply rewards before learning (currency units -> O(1) TD targets)."""
    max_grad_norm: float = 10.0
    """Clip the global gradient norm."""
    normalize_observations: bool = True
    """Standardise features with running statistics (frozen when acting)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Widths of the hidden layers of the Q-network."""
    activation: str = "relu"
    """Hidden activation: tanh, relu or elu."""
    torch_threads: int | None = 1
    """Torch threads while fitting; None leaves torch's setting."""
    progress_every: int = 1_000
    """Gradient steps between progress callbacks (and learning-curve points)."""

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.buffer_size < 1 or self.batch_size < 1:
            raise ValueError("learning_rate, buffer_size and batch_size must be positive")
        if self.steps_per_update < 1 or self.target_update_interval < 1 or self.learning_starts < 0:
            raise ValueError("steps_per_update and target_update_interval must be >= 1, "
                             "learning_starts >= 0")
        if not 0.0 < self.gamma <= 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError("gamma and tau must be in (0, 1]")
        for eps in (self.exploration_initial_eps, self.exploration_final_eps):
            if not 0.0 <= eps <= 1.0:
                raise ValueError("exploration epsilons must be in [0, 1]")
        if not 0.0 < self.exploration_fraction <= 1.0:
            raise ValueError("exploration_fraction must be in (0, 1]")
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError("hidden_sizes must be a non-empty tuple of positive widths")
        if self.progress_every < 1:
            raise ValueError("progress_every must be >= 1")
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)


class DQN(Agent):
    """Deep Q-network with double-Q targets and action masking.

    Mnih et al. (2015), "Human-level control through deep reinforcement learning", Nature 518;
    van Hasselt, Guez & Silver (2016), "Deep Reinforcement Learning with Double Q-learning", AAAI.
    `scores(obs)` are the Q-values (n, A) in scaled reward units; the policy is greedy over the
    allowed actions (probability 1 on the masked argmax).

    :param observation_space: the single-customer feature space (1-D Box)
    :param action_space: the catalogue (Discrete; action 0 is "no contact")
    :param seed: seeds initial weights, exploration, replay sampling and env resets
    :param hyperparams: fields of `DQNConfig`
    """

    name = "dqn"
    warm_start = "q_network"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        super().__init__(observation_space, action_space, seed=seed)
        self.config = build_config(DQNConfig, self.name, hyperparams)
        cfg = self.config
        init = torch.Generator().manual_seed(self.seed)
        self.q_net = mlp(self.n_features, self.n_actions, cfg.hidden_sizes, cfg.activation,
                         output_gain=1.0, generator=init)
        self.target_net = mlp(self.n_features, self.n_actions, cfg.hidden_sizes, cfg.activation)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.learning_rate)
        self.obs_normalizer = ObservationNormalizer(self.n_features, enabled=cfg.normalize_observations)
        self.gradient_steps = 0

    # ------------------------------------------------------------------ policy
    def scores(self, obs: np.ndarray) -> np.ndarray:
        obs = self._check_obs(obs)
        with torch.inference_mode():
            return self.q_net(torch.from_numpy(self.obs_normalizer(obs))).numpy().astype(np.float64)

    def scores_network(self) -> ScoresNetwork:
        """The online Q-network behind the normaliser: its Q-values are `scores`."""
        return ScoresNetwork(self.q_net, self.obs_normalizer)

    # ------------------------------------------------------------------ training
    def _fit(self, env: gym.Env | gym.vector.VectorEnv, total_steps: int, report: TrainingReport,
             callback: ProgressCallback | None) -> None:
        with torch_threads(self.config.torch_threads):
            self._train(env, total_steps, report, callback)

    def _train(self, env: gym.Env | gym.vector.VectorEnv, total_steps: int, report: TrainingReport,
               callback: ProgressCallback | None) -> None:
        cfg = self.config
        started = time.perf_counter()
        batch = CustomerBatch(env, self.observation_space, self.action_space)
        replay = ReplayBuffer(cfg.buffer_size, self.n_features, self.n_actions)
        epsilon = linear_schedule(cfg.exploration_initial_eps, cfg.exploration_final_eps,
                                  cfg.exploration_fraction)
        obs, mask = batch.reset(seed=int(self.rng.integers(2**31 - 1)))
        self.obs_normalizer.update(obs)
        owed_updates = 0.0
        since_target = 0
        next_report = self.gradient_steps + cfg.progress_every
        stats: dict[str, float] = {}

        while batch.env_steps < total_steps:
            # 1. epsilon-greedy over the allowed actions only
            eps = epsilon(batch.env_steps / total_steps)
            greedy = masked_argmax(self.scores(obs), mask)
            explore = self.rng.random(batch.n) < eps
            actions = greedy
            if explore.any():
                actions = greedy.copy()
                actions[explore] = sample_from(uniform_over_mask(mask[explore]), self.rng)
            step = batch.step(actions)

            # 2. store real transitions with the next state's mask (for the masked TD target);
            #    a truncated customer keeps terminated=False so the target bootstraps
            keep = step.valid
            replay.add(obs[keep], actions[keep], step.reward[keep] * cfg.reward_scale,
                       step.next_obs[keep], step.terminated[keep], step.next_mask[keep])
            obs, mask = step.obs, step.mask
            self.obs_normalizer.update(obs[keep])

            # 3. gradient steps at the configured replay ratio
            if batch.env_steps >= cfg.learning_starts:
                owed_updates += batch.n / cfg.steps_per_update
                while owed_updates >= 1.0:
                    stats = self._gradient_step(replay)
                    owed_updates -= 1.0

            # 4. refresh the target network
            since_target += batch.n
            if since_target >= cfg.target_update_interval:
                since_target = 0
                self._update_target()

            # 5. learning curve + progress callback
            if self.gradient_steps >= next_report or batch.env_steps >= total_steps:
                next_report = self.gradient_steps + cfg.progress_every
                mean_return = batch.recent_mean_return()
                if mean_return is not None:
                    report.record(batch.env_steps, mean_return)
                if not self._report_progress(callback, report, batch.env_steps, total_steps,
                                             mean_return, started):
                    break

        report.env_steps = batch.env_steps
        report.extra.update(stats)
        report.extra["gradient_steps"] = float(self.gradient_steps)
        report.extra["episodes_finished"] = float(batch.n_finished)
        if batch.n_finished:
            report.extra["final_mean_episode_return"] = float(batch.recent_mean_return())

    def _gradient_step(self, replay: ReplayBuffer) -> dict[str, float]:
        cfg = self.config
        sample = replay.sample(cfg.batch_size, self.rng)
        obs = torch.from_numpy(self.obs_normalizer(sample.obs.numpy()))
        next_obs = torch.from_numpy(self.obs_normalizer(sample.next_obs.numpy()))
        with torch.no_grad():
            # compute next Q-values with the target network, over the next day's allowed actions
            next_q_target = apply_mask(self.target_net(next_obs), sample.next_masks)
            if cfg.double_q:
                # double DQN: the online network chooses, the target network evaluates
                next_actions = apply_mask(self.q_net(next_obs), sample.next_masks).argmax(dim=1)
                next_q = next_q_target.gather(1, next_actions[:, None])[:, 0]
            else:
                next_q = next_q_target.max(dim=1).values
            # churn ends the customer's value; the horizon does not (bootstrapped)
            target = sample.rewards + cfg.gamma * (~sample.terminated).float() * next_q
        q = self.q_net(obs).gather(1, sample.actions[:, None])[:, 0]
        loss = F.smooth_l1_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        # clip gradient norm
        nn.utils.clip_grad_norm_(self.q_net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        return {"td_loss": float(loss.detach()), "mean_q": float(q.detach().mean())}

    def _update_target(self) -> None:
        tau = self.config.tau
        with torch.no_grad():
            for target, online in zip(self.target_net.parameters(), self.q_net.parameters(), strict=True):
                target.mul_(1.0 - tau).add_(online, alpha=tau)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            "q_net": {k: v.detach().clone() for k, v in self.q_net.state_dict().items()},
            "target_net": {k: v.detach().clone() for k, v in self.target_net.state_dict().items()},
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "gradient_steps": self.gradient_steps,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.gradient_steps = int(state["gradient_steps"])
