"""Warm starts: `pretrain(agent, dataset)` fits an agent to logged decisions before it goes online.

How an agent is warm-started is the agent's declaration (`Agent.warm_start`), not guessed from
its attributes: "actor_critic" distils the advantage-weighted policy of an offline Q into its
policy and value networks, "q_network" regresses its Q-network on the offline Q,
"response_model" and "linear_bandit" train their reward models on the logged rows.

Hooks used on "actor_critic" agents (agents.algos.actor_critic.ActorCritic): `policy`
(nn.Module: normalised features -> logits), `value` (nn.Module: normalised features -> value in
scaled reward units), `obs_normalizer` (ObservationNormalizer), `reward_scaler` (RewardScaler)
and `config.gamma`. On "q_network" agents (agents.algos.dqn.DQN): `q_net`, `target_net`,
`obs_normalizer`, `config.reward_scale`, `config.gamma`. "response_model": `fit_logged`;
"linear_bandit": `update`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from agents.algos.base import Agent
from agents.common.networks import masked_log_probs
from agents.common.running import RunningMeanStd
from agents.common.threads import torch_threads
from agents.offline.dataset import LoggedDataset
from agents.offline.q_learner import OfflineQLearner

__all__ = [
    "MIN_DISTILL_STEPS", "WARM_STARTS", "PretrainReport", "discounted_running_returns",
    "distil_policy", "pretrain",
]


WARM_STARTS: tuple[str, ...] = ("response_model", "linear_bandit", "actor_critic", "q_network")
"""The values of `Agent.warm_start` that `pretrain` knows (see agents.algos.base.Agent)."""


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

    Dispatches on the agent's declared `warm_start` (agents.algos.base.Agent). "actor_critic":
    learn Q offline (`OfflineQLearner`, the agent's gamma) unless `q_learner` is given, then for
    `epochs` passes distil the advantage-weighted policy into `agent.policy` (cross-entropy over
    the allowed actions) and V(s) = sum_a pi(a | s) Q(s, a) into `agent.value` (in the agent's
    reward scale, which is set from the logged discounted returns). Its feature normaliser starts
    from the logs' moments. "q_network": regress `q_net` (and copy into `target_net`) on the
    offline Q in its reward scale. "response_model": `fit_logged` on (features, action, reward);
    "linear_bandit": `update` on the rows; both weighted by 1 / propensity when
    `importance_weighted`. Agents that declare none (rules, random, tabular Q-learning) raise
    TypeError.

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

    how = agent.warm_start
    if how not in WARM_STARTS:
        raise TypeError(f"pretrain does not know how to warm-start {type(agent).__name__} "
                        f"(its warm_start is {how!r}; known: {', '.join(WARM_STARTS)})")
    weights = 1.0 / dataset.propensities if importance_weighted else None
    if how == "response_model":
        stats = agent.fit_logged(dataset.obs, dataset.actions, dataset.rewards,
                                 sample_weight=weights, epochs=epochs)
        report = PretrainReport(agent.name, "response_model", len(dataset), stats=dict(stats))
    elif how == "linear_bandit":
        agent.update(dataset.obs, dataset.actions, dataset.rewards, sample_weight=weights)
        report = PretrainReport(agent.name, "response_model", len(dataset))
    else:  # "actor_critic" or "q_network": both distil an offline Q
        learner = q_learner or _learn_q(agent, dataset, seed, q_gradient_steps, cql_alpha, q_options,
                                        progress)
        if how == "actor_critic":
            report = _distil_actor_critic(agent, dataset, learner, epochs, temperature, prior,
                                          batch_size, learning_rate, seed)
        else:
            report = _distil_dqn(agent, dataset, learner, epochs, batch_size, learning_rate, seed)
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


def _policy_cross_entropy(agent: Any, obs: torch.Tensor, masks: torch.Tensor,
                          target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of an actor_critic's policy to target distributions over the allowed actions
    (masked actions have target 0); `obs` already normalised by the agent."""
    log_probs = masked_log_probs(agent.policy(obs), masks)
    return -(target_probs * torch.where(masks, log_probs, 0.0)).sum(dim=1).mean()


def distil_policy(agent: Agent, obs: np.ndarray, masks: np.ndarray, target_probs: np.ndarray, *,
                  epochs: int = 10, batch_size: int = 1024, learning_rate: float = 1e-3,
                  seed: int = 0) -> float:
    """Fit an actor_critic's policy network to `target_probs` (n, A) on the states `obs` (its
    feature normaliser and value network are left as they are); returns the final cross-entropy.

    What `agents.population.keep_consensus` uses to make one network choose as the population's
    members do together; the warm start distils its offline policy with the same loss."""
    if agent.warm_start != "actor_critic":
        raise TypeError(f"distil_policy fits an actor_critic's policy, not {agent.name}'s")
    if not (obs.shape[0] == masks.shape[0] == target_probs.shape[0]) or obs.shape[0] < 1:
        raise ValueError("obs, masks and target_probs must have the same number (>= 1) of rows")
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise ValueError("epochs, batch_size and learning_rate must be positive")
    with torch_threads(getattr(agent.config, "torch_threads", 1)):
        obs_t = torch.from_numpy(agent.obs_normalizer(obs))
        masks_t = torch.from_numpy(np.asarray(masks, dtype=bool))
        probs_t = torch.from_numpy(np.asarray(target_probs, dtype=np.float32))
        optimizer = torch.optim.Adam(agent.policy.parameters(), lr=learning_rate)
        loss = torch.zeros(())
        for idx in _minibatches(obs.shape[0], batch_size, epochs, np.random.default_rng(seed)):
            loss = _policy_cross_entropy(agent, obs_t[idx], masks_t[idx], probs_t[idx])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.policy.parameters(), 1.0)
            optimizer.step()
    return float(loss.detach())


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
        policy_loss = _policy_cross_entropy(agent, obs[idx], masks_t[idx], probs_t[idx])
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
