"""Advantage actor-critic with GAE and PPO-style clipped updates: the console's main agent.

It learns, for every customer, a distribution over the allowed actions (contact or not, on which
channel, with which offer, in which send window) that maximises long-term value: net revenue and
retention over the horizon, not the next click. Masked actions (no consent, caps, quiet hours) get
logit -1e9 before the softmax, so their probability is exactly 0 in training and in serving.

Optionally with a retention constraint (`max_leave_rate`): the reward prices a customer who leaves
at the marketer's weight, and the best policy by that price may still lose more customers than
the marketer accepts. Each customer lost (churned, or unreachable on every channel: what the
retention KPI counts) then costs a price learned alongside the policy, raised while the policy
loses more customers per customer-day than the limit and lowered (not below 0) while it loses
fewer: a Lagrange multiplier by dual ascent (Tessler, Mankowitz & Mannor (2019), "Reward
Constrained Policy Optimization", ICLR). `agents.population.daily_leave_limit` turns "keep as many
customers as the control policy, less N points" into the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.algos.base import Agent, ProgressCallback, ScoresNetwork, TrainingReport
from agents.common.buffers import RolloutBuffer
from agents.common.config import build_config
from agents.common.masking import masked_softmax
from agents.common.networks import (
    masked_entropy, masked_log_probs, mlp, sample_masked, share_through_attributes,
)
from agents.common.running import ObservationNormalizer, RewardScaler
from agents.common.schedules import linear_schedule
from agents.common.threads import torch_threads
from agents.common.vec import CustomerBatch


@dataclass
class ActorCriticConfig:
    """Hyper-parameters of `ActorCritic` (names are `agents.make` keyword arguments)."""

    learning_rate: float = 2e-3
    """Adam step size (annealed linearly to 0 when `anneal_lr`)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly over `total_steps`."""
    n_steps: int = 4
    """Days collected per customer slot before each update (rollout length). Short rollouts over
    many parallel customers give many small PPO steps, which is what moves the policy."""
    gamma: float = 0.99
    """Discount per day: 0.99 looks about 100 days ahead."""
    gae_lambda: float = 0.95
    """GAE's bias/variance trade-off (1 = Monte-Carlo returns, 0 = one-step TD)."""
    n_epochs: int = 5
    """Passes over each rollout."""
    minibatch_size: int = 1024
    """Transitions per gradient step."""
    clip_range: float = 0.2
    """PPO's clipping of the probability ratio."""
    clip_range_vf: float | None = None
    """Clip value updates around the old values (None: no clipping)."""
    ent_coef: float = 0.03
    """Weight of the entropy bonus at the start (keeps exploring channels and offers). 0.03 rather
    than the usual 0.01: more early exploration before the annealing lets the policy commit.
    Measured on `retail` over seeds 0-5 x 3-4 members (BENCHMARKS.md, "actor_critic over seeds"):
    the same mean return per member (71.6), members' net revenue vs the rules +12.4 % on average
    (worst +5.1 %) instead of +11.5 % (worst +2.5 %); a constant 0.01, never annealed, lost
    return (70.4 against 71.9 on the same seeds). What makes the main agent robust is the population, not this weight."""
    ent_coef_final: float | None = 0.0
    """Anneal the entropy weight linearly to this by the end of `fit` (None: constant), so the
    final policy commits to its best actions instead of keeping exploration noise."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm."""
    target_kl: float | None = None
    """Stop the epochs early when the approximate KL exceeds this (None: never)."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    normalize_observations: bool = True
    """Standardise features with running statistics (frozen when acting)."""
    normalize_rewards: bool = True
    """Divide rewards by the running std of the discounted return."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers (separate policy and value networks)."""
    activation: str = "relu"
    """Hidden activation: tanh, relu or elu."""
    action_attributes: np.ndarray | None = None
    """(A, D) what each action is (`Catalogue.attributes`: channel, incentive, window, variant).
    When given, each action's logit has a part shared through its attributes
    (`agents.common.networks.share_through_attributes`); None: every action has weights of its
    own only."""
    max_leave_rate: float | None = None
    """The most customers the policy may lose per customer-day (a share, e.g. 0.0025), met by a
    learned price per customer lost (module docstring); None: a loss costs only the reward's own
    weights."""
    leave_price_step: float = 0.05
    """How fast that price moves: per update, this times the relative excess of the rollout's
    loss rate over `max_leave_rate` (in units of the scaled reward, whose return has std 1).
    Measured on `retail` over six seeds (BENCHMARKS.md, "A retention constraint in training"):
    0.2 let the price run away (the exploring policy loses more customers than its greedy self)
    and lost to the rules; averaging the rate over updates did not help."""
    torch_threads: int | None = 1
    """Torch threads while fitting (small MLPs run fastest on one); None leaves torch's setting."""
    progress_every: int = 1
    """Call the progress callback (and record the learning curve) every this many updates."""

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.n_steps < 1 or self.n_epochs < 1 or self.minibatch_size < 1:
            raise ValueError("n_steps, n_epochs and minibatch_size must be >= 1")
        if not 0.0 < self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError("gamma must be in (0, 1] and gae_lambda in [0, 1]")
        if self.clip_range <= 0:
            raise ValueError("clip_range must be positive")
        if self.ent_coef_final is not None and self.ent_coef_final < 0:
            raise ValueError("ent_coef_final must be >= 0")
        if self.ent_coef < 0 or self.vf_coef < 0 or self.max_grad_norm <= 0:
            raise ValueError("ent_coef and vf_coef must be >= 0 and max_grad_norm > 0")
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError("hidden_sizes must be a non-empty tuple of positive widths")
        if self.progress_every < 1:
            raise ValueError("progress_every must be >= 1")
        if self.max_leave_rate is not None and not 0.0 < self.max_leave_rate < 1.0:
            raise ValueError("max_leave_rate must be a share between 0 and 1 (exclusive), got "
                             f"{self.max_leave_rate!r}")
        if self.leave_price_step <= 0:
            raise ValueError("leave_price_step must be positive")
        if self.action_attributes is not None:
            self.action_attributes = np.asarray(self.action_attributes, dtype=np.float32)
            if self.action_attributes.ndim != 2 or not np.isfinite(self.action_attributes).all():
                raise ValueError("action_attributes must be a finite (actions, attributes) table")
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)


class ActorCritic(Agent):
    """Masked advantage actor-critic trained with PPO's clipped surrogate and GAE.

    Proximal Policy Optimization: Schulman, Wolski, Dhariwal, Radford & Klimov (2017),
    "Proximal Policy Optimization Algorithms", arXiv:1707.06347. Advantages: Schulman, Moritz,
    Levine, Jordan & Abbeel (2016), "High-Dimensional Continuous Control Using Generalized
    Advantage Estimation", ICLR. Invalid-action masking in the logits: Huang & Ontañón (2022),
    "A Closer Look at Invalid Action Masking in Policy Gradient Algorithms", FLAIRS.

    `scores(obs)` are the policy's logits (n, A); `action_probabilities` is their softmax over the
    allowed actions; `act(..., deterministic=True)` takes the most likely allowed action.

    :param observation_space: the single-customer feature space (1-D Box)
    :param action_space: the catalogue (Discrete; action 0 is "no contact")
    :param seed: seeds initial weights, exploration, minibatch order and env resets
    :param hyperparams: fields of `ActorCriticConfig`
    """

    name = "actor_critic"
    warm_start = "actor_critic"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        super().__init__(observation_space, action_space, seed=seed)
        self.config = build_config(ActorCriticConfig, self.name, hyperparams)
        cfg = self.config
        init = torch.Generator().manual_seed(self.seed)
        self.policy = mlp(self.n_features, self.n_actions, cfg.hidden_sizes, cfg.activation,
                          output_gain=0.01, generator=init)
        if cfg.action_attributes is not None:
            share_through_attributes(self.policy[-1], cfg.action_attributes)
        self.value = mlp(self.n_features, 1, cfg.hidden_sizes, cfg.activation, output_gain=1.0,
                         generator=init)
        self.optimizer = torch.optim.Adam(
            list(self.policy.parameters()) + list(self.value.parameters()),
            lr=cfg.learning_rate, eps=1e-5,
        )
        self.obs_normalizer = ObservationNormalizer(self.n_features, enabled=cfg.normalize_observations)
        self.reward_scaler = RewardScaler(1, cfg.gamma, enabled=cfg.normalize_rewards)
        self.updates = 0
        self.leave_price = 0.0
        """The learned price of a customer lost, in scaled reward (0 without `max_leave_rate`)."""
        self._ent_coef = self.config.ent_coef

    # ------------------------------------------------------------------ policy
    def scores(self, obs: np.ndarray) -> np.ndarray:
        obs = self._check_obs(obs)
        with torch.inference_mode():
            return self.policy(torch.from_numpy(self.obs_normalizer(obs))).numpy().astype(np.float64)

    def scores_network(self) -> ScoresNetwork:
        """The policy network behind the normaliser: its logits are `scores`."""
        return ScoresNetwork(self.policy, self.obs_normalizer)

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return masked_softmax(self.scores(obs), mask)

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
        buffer = RolloutBuffer(cfg.n_steps, batch.n, self.n_features, self.n_actions)
        self.reward_scaler.resize(batch.n)
        lr_schedule = linear_schedule(cfg.learning_rate, 0.0) if cfg.anneal_lr else None
        ent_schedule = linear_schedule(cfg.ent_coef, cfg.ent_coef if cfg.ent_coef_final is None
                                       else cfg.ent_coef_final)
        obs, mask = batch.reset(seed=int(self.rng.integers(2**31 - 1)))
        self.obs_normalizer.update(obs)
        steps_per_update = cfg.n_steps * batch.n
        n_updates = max(1, -(-total_steps // steps_per_update))  # ceil: spend at least the budget

        for update in range(n_updates):
            if lr_schedule is not None:
                for group in self.optimizer.param_groups:
                    group["lr"] = max(lr_schedule(update / n_updates), cfg.learning_rate * 0.01)
            self._ent_coef = ent_schedule(update / n_updates)

            # 1. collect n_steps days for every customer slot with the current (masked) policy
            buffer.reset()
            lost = customer_days = 0
            while not buffer.full:
                obs_in = torch.from_numpy(self.obs_normalizer(obs))
                mask_in = torch.from_numpy(mask)
                with torch.inference_mode():
                    logits = self.policy(obs_in)
                    values = self.value(obs_in).squeeze(-1)
                    actions = sample_masked(logits, mask_in, self.torch_generator)
                    log_probs = masked_log_probs(logits, mask_in).gather(1, actions[:, None])[:, 0]
                buffer.add(obs_in.numpy(), mask, actions.numpy(), log_probs.numpy(), values.numpy())
                step = batch.step(actions.numpy())

                # 2. scale the reward (a customer lost also costs the learned price); bootstrap
                #    customers who reached the horizon (truncated) from the value of their final
                #    state, not those who churned (terminated)
                self.reward_scaler.update(step.reward, step.done, step.valid)
                rewards = self.reward_scaler.scale(step.reward)
                leaving = step.terminated & step.valid
                lost += int(leaving.sum())
                customer_days += int(step.valid.sum())
                if self.leave_price:
                    rewards = rewards - np.float32(self.leave_price) * leaving
                bootstrap = np.zeros(batch.n, dtype=np.float32)
                truncated = np.flatnonzero(step.truncated & step.valid)
                if truncated.size:
                    with torch.inference_mode():
                        final = torch.from_numpy(self.obs_normalizer(step.next_obs[truncated]))
                        bootstrap[truncated] = self.value(final).squeeze(-1).numpy()
                buffer.add_outcome(rewards, step.terminated & step.valid, step.done & step.valid,
                                   step.valid, bootstrap)
                obs, mask = step.obs, step.mask
                self.obs_normalizer.update(obs[step.valid] if step.valid.any() else obs[:0])

            # 3. generalised advantage estimates from the value of today's state
            with torch.inference_mode():
                last_values = self.value(torch.from_numpy(self.obs_normalizer(obs))).squeeze(-1)
            buffer.compute_advantages(last_values.numpy(), cfg.gamma, cfg.gae_lambda)

            # 4. PPO epochs over shuffled minibatches; the price of a lost customer follows
            stats = self._update(buffer.flat())
            self.updates += 1
            leave_rate = lost / max(1, customer_days)
            if cfg.max_leave_rate is not None and customer_days:
                excess = leave_rate / cfg.max_leave_rate - 1.0
                self.leave_price = max(0.0, self.leave_price + cfg.leave_price_step * excess)
            stats.update(leave_rate=leave_rate, leave_price=self.leave_price)

            # 5. learning curve + progress callback
            mean_return = batch.recent_mean_return()
            last = update == n_updates - 1
            if (update + 1) % cfg.progress_every == 0 or last:
                if mean_return is not None:
                    report.record(batch.env_steps, mean_return)
                if not self._report_progress(callback, report, batch.env_steps, total_steps,
                                             mean_return, started):
                    break

        report.env_steps = batch.env_steps
        report.extra.update(stats)
        report.extra["episodes_finished"] = float(batch.n_finished)
        if batch.n_finished:
            report.extra["final_mean_episode_return"] = float(batch.recent_mean_return())

    def _update(self, data: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config
        n = data["obs"].shape[0]
        clip_fractions, approx_kl = [], 0.0
        policy_loss = value_loss = entropy = torch.zeros(())
        for _ in range(cfg.n_epochs):
            order = torch.from_numpy(self.rng.permutation(n))
            for start in range(0, n, cfg.minibatch_size):
                idx = order[start:start + cfg.minibatch_size]
                obs, masks, actions = data["obs"][idx], data["masks"][idx], data["actions"][idx]
                advantages = data["advantages"][idx]
                if cfg.normalize_advantage and len(idx) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                # new log-probabilities of the taken actions under the same masks
                log_probs_all = masked_log_probs(self.policy(obs), masks)
                log_probs = log_probs_all.gather(1, actions[:, None])[:, 0]
                ratio = torch.exp(log_probs - data["log_probs"][idx])

                # clipped surrogate objective (PPO eq. 7), as a loss to minimise
                surrogate = torch.min(ratio * advantages,
                                      torch.clamp(ratio, 1 - cfg.clip_range, 1 + cfg.clip_range) * advantages)
                policy_loss = -surrogate.mean()

                # value regression on the GAE returns (optionally clipped around the old values)
                values = self.value(obs).squeeze(-1)
                returns = data["returns"][idx]
                if cfg.clip_range_vf is not None:
                    old = data["values"][idx]
                    clipped = old + torch.clamp(values - old, -cfg.clip_range_vf, cfg.clip_range_vf)
                    value_loss = 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
                else:
                    value_loss = 0.5 * ((values - returns) ** 2).mean()

                # entropy bonus over the allowed actions keeps trying other channels and offers
                entropy = masked_entropy(log_probs_all, masks).mean()
                loss = policy_loss + cfg.vf_coef * value_loss - self._ent_coef * entropy

                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(
                    list(self.policy.parameters()) + list(self.value.parameters()), cfg.max_grad_norm)
                self.optimizer.step()

                with torch.no_grad():
                    log_ratio = log_probs - data["log_probs"][idx]
                    approx_kl = float(((ratio - 1) - log_ratio).mean())
                    clip_fractions.append(float(((ratio - 1).abs() > cfg.clip_range).float().mean()))
            if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                break
        return {"policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach()),
                "entropy": float(entropy.detach()), "approx_kl": approx_kl,
                "clip_fraction": float(np.mean(clip_fractions)) if clip_fractions else 0.0}

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        return {
            "policy": {k: v.detach().clone() for k, v in self.policy.state_dict().items()},
            "value": {k: v.detach().clone() for k, v in self.value.state_dict().items()},
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
            "updates": self.updates,
            "leave_price": self.leave_price,
            "torch_generator": self.torch_generator.get_state(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.value.load_state_dict(state["value"])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.updates = int(state["updates"])
        self.leave_price = float(state.get("leave_price", 0.0))  # absent from older files
        self.torch_generator.set_state(state["torch_generator"])
