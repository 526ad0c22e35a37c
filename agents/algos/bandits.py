"""Contextual bandits: myopic learners that maximise the immediate reward of each contact.

Each keeps one ridge-regression model of the immediate reward per action (the "disjoint" linear
model of Li et al. 2010): for action a, the Gram matrix ``G_a = ridge * I + sum x x^T`` and
``b_a = sum r x`` over the customer-days on which a was taken, so ``theta_a = G_a^-1 b_a``. The
four agents share that model and differ only in how they explore:

- ``linucb``          optimism: the mean plus ``alpha * sqrt(x^T G_a^-1 x)`` (Li et al. 2010);
- ``thompson``        a posterior draw of every action's reward (Agrawal & Goyal 2013);
- ``epsilon_greedy``  greedy with probability 1 - epsilon, else uniform over allowed actions;
- ``softmax``         Boltzmann exploration over the predicted rewards.

They never look past today's reward, which is why they are the "myopic" rows of the benchmark:
they cannot learn that a discount today costs margin and fatigue tomorrow.

Updates are batched over the customers of a day: one Gram update per action (a loop over actions,
never over customers), then one batched solve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


import gymnasium as gym
import numpy as np

from agents.algos.base import Agent, ProgressCallback, TrainingReport
from agents.common.config import build_config
from agents.common.masking import (
    greedy_probabilities,
    masked_argmax,
    masked_softmax,
    sample_from,
    uniform_over_mask,
    validate_mask,
)
from agents.common.progress import CurveReporter
from agents.common.vec import CustomerBatch

# ----------------------------------------------------------------------------- the shared model


class _LinearRewardBandit(Agent):
    """Per-action ridge models of the immediate reward, updated over a batch of customer-days.

    Subclasses choose the exploration (`_explore`) and the reported policy (`_probabilities`).
    """

    name: ClassVar[str]
    warm_start = "linear_bandit"
    config: Any

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0):
        super().__init__(observation_space, action_space, seed=seed)
        if not self.config.ridge > 0:
            raise ValueError("ridge must be positive (it keeps every Gram matrix invertible)")
        self.n_inputs = self.n_features + 1  # the features plus an intercept
        eye = np.eye(self.n_inputs)
        self.gram = np.repeat(eye[None] * self.config.ridge, self.n_actions, axis=0)  # (A, p, p)
        self.moment = np.zeros((self.n_actions, self.n_inputs))  # b_a = sum r x, (A, p)
        self.counts = np.zeros(self.n_actions, dtype=np.int64)  # customer-days per action
        self._refresh()

    # -------------------------------------------------------------- model
    def _design(self, obs: np.ndarray) -> np.ndarray:
        """Features plus intercept column, float64: (n, p)."""
        obs = np.asarray(obs, dtype=np.float64)
        return np.concatenate([np.ones((obs.shape[0], 1)), obs], axis=1)

    def _refresh(self) -> None:
        """Recompute G_a^-1 and theta_a for every action in one batched call."""
        self.gram_inv = np.linalg.inv(self.gram)
        self.gram_inv = 0.5 * (self.gram_inv + self.gram_inv.transpose(0, 2, 1))  # keep symmetric
        self.theta = np.einsum("apq,aq->ap", self.gram_inv, self.moment)

    def update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
               sample_weight: np.ndarray | None = None) -> None:
        """Add a batch of observed (customer features, action, immediate reward) to the models.

        Public so the console can update a live bandit from attributed outcomes (or warm-start it
        from logs), not only in `fit`. `sample_weight` (n,) makes it a weighted ridge regression,
        e.g. 1 / logging propensity for history from a skewed policy.
        """
        obs = self._check_obs(obs)
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if not (obs.shape[0] == actions.shape[0] == rewards.shape[0]):
            raise ValueError("obs, actions and rewards must have the same number of rows")
        if actions.size and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(f"actions must lie in [0, {self.n_actions})")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        if sample_weight is None:
            weights = np.ones_like(rewards)
        else:
            weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if weights.shape != rewards.shape or not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("sample_weight must be n finite values >= 0")
        if actions.size == 0:
            return
        x = self._design(obs)
        for action in np.unique(actions):  # a loop over actions, vectorised over customers
            rows = actions == action
            xa, wa = x[rows], weights[rows]
            self.gram[action] += (xa * wa[:, None]).T @ xa
            self.moment[action] += xa.T @ (wa * rewards[rows])
            self.counts[action] += int(rows.sum())
        self._refresh()

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """Expected immediate reward of every action, (n, A)."""
        x = self._design(self._check_obs(obs))
        return x @ self.theta.T

    def score_uncertainty(self, obs: np.ndarray) -> np.ndarray:
        """The posterior's uncertainty of each predicted reward (`reward_std`)."""
        return self.reward_std(obs)

    def reward_std(self, obs: np.ndarray) -> np.ndarray:
        """Uncertainty of each action's predicted reward, sqrt(x^T G_a^-1 x): (n, A)."""
        x = self._design(self._check_obs(obs))
        n, p = x.shape
        # every action's G_a^-1 side by side, (p, A * p): x G_a^-1 for all actions is one GEMM
        stacked = self.gram_inv.transpose(1, 0, 2).reshape(p, self.n_actions * p)
        quad = np.empty((n, self.n_actions))
        chunk = max(1, 4_000_000 // (self.n_actions * p))  # rows per GEMM: ~32 MB of float64
        for start in range(0, n, chunk):
            rows = x[start:start + chunk]
            projected = (rows @ stacked).reshape(rows.shape[0], self.n_actions, p)
            quad[start:start + chunk] = np.einsum("nap,np->na", projected, rows)
        return np.sqrt(np.maximum(quad, 0.0))

    # -------------------------------------------------------------- learning
    def _explore(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The action taken for each customer while learning."""
        return sample_from(self.action_probabilities(obs, mask), self.rng)

    def _fit(
        self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
        report: TrainingReport, callback: ProgressCallback | None,
    ) -> None:
        batch = CustomerBatch(env, self.observation_space, self.action_space)
        obs, mask = batch.reset(seed=self.seed)
        progress = CurveReporter(self, report, callback, total_steps)
        reward_sum = 0.0
        while batch.env_steps < total_steps:
            # 1. choose today's action for every customer, honouring today's mask
            actions = self._explore(obs, mask)
            # 2. one day passes: rewards arrive (autoreset days carry no learning signal)
            step = batch.step(actions)
            valid = step.valid
            # 3. regress the immediate reward on the features of the action taken (myopic target)
            self.update(obs[valid], actions[valid], step.reward[valid])
            reward_sum += float(step.reward[valid].sum())
            obs, mask = step.obs, step.mask
            if not progress.after_step(batch):
                break
        report.env_steps = batch.env_steps
        report.extra["mean_reward_per_customer_day"] = reward_sum / max(1, batch.env_steps)

    # -------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, Any]:
        return {"gram": self.gram, "moment": self.moment, "counts": self.counts}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.gram = np.asarray(state["gram"], dtype=np.float64).copy()
        self.moment = np.asarray(state["moment"], dtype=np.float64).copy()
        self.counts = np.asarray(state["counts"], dtype=np.int64).copy()
        self._refresh()


# ----------------------------------------------------------------------------- LinUCB


@dataclass
class LinUCBConfig:
    """Hyper-parameters of `LinUCB` (names are `agents.make` keyword arguments)."""

    alpha: float = 1.0
    """Width of the confidence bonus, in reward units per standard error (exploration strength)."""
    ridge: float = 1.0
    """Ridge penalty lambda: the prior precision of every action's reward model."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError("alpha must be a finite number >= 0")
        self.alpha, self.ridge = float(self.alpha), float(self.ridge)


class LinUCB(_LinearRewardBandit):
    """LinUCB with disjoint linear models (Li, Chu, Langford & Schapire, WWW 2010, Algorithm 1).

    Picks, among the allowed actions, the one with the highest upper confidence bound
    ``x^T theta_a + alpha * sqrt(x^T G_a^-1 x)``. The policy is deterministic, so its
    `action_probabilities` are one-hot on that action; `scores` are the expected immediate reward
    without the bonus, and `ucb_bonus` exposes the bonus so explanations can name it.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds the tie-breaking while learning
    :param hyperparams: fields of `LinUCBConfig` (alpha: confidence-bonus width; ridge)
    """

    name = "linucb"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        self.config = build_config(LinUCBConfig, self.name, hyperparams)
        super().__init__(observation_space, action_space, seed=seed)

    def ucb_bonus(self, obs: np.ndarray) -> np.ndarray:
        """The optimism added to each action's expected reward, (n, A)."""
        return self.config.alpha * self.reward_std(obs)

    def exploration_bonus(self, obs: np.ndarray) -> np.ndarray:
        """LinUCB ranks actions by reward plus `ucb_bonus`: explanations name the bonus."""
        return self.ucb_bonus(obs)

    def upper_confidence_bound(self, obs: np.ndarray) -> np.ndarray:
        """Expected immediate reward plus the bonus: what LinUCB maximises, (n, A)."""
        return self.scores(obs) + self.ucb_bonus(obs)

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return greedy_probabilities(self.upper_confidence_bound(obs), mask)

    def _explore(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # random tie-breaking among equal bounds (all actions tie before any data)
        ucb = self.upper_confidence_bound(obs)
        jitter = 1e-9 * self.rng.random(ucb.shape)
        return masked_argmax(ucb + jitter, mask)


# ----------------------------------------------------------------------------- Thompson sampling


@dataclass
class LinearThompsonConfig:
    """Hyper-parameters of `LinearThompson` (names are `agents.make` keyword arguments)."""

    posterior_scale: float = 1.0
    """v: scales the posterior covariance v^2 G_a^-1 (larger explores more)."""
    ridge: float = 1.0
    """Ridge penalty lambda: the prior precision of every action's reward model."""
    propensity_draws: int = 256
    """Monte-Carlo posterior draws per customer used to estimate `action_probabilities`."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.posterior_scale) and self.posterior_scale >= 0):
            raise ValueError("posterior_scale must be a finite number >= 0")
        if int(self.propensity_draws) < 1:
            raise ValueError("propensity_draws must be >= 1")
        self.posterior_scale, self.ridge = float(self.posterior_scale), float(self.ridge)
        self.propensity_draws = int(self.propensity_draws)


class LinearThompson(_LinearRewardBandit):
    """Linear Thompson sampling (Agrawal & Goyal, ICML 2013), one Gaussian posterior per action.

    For a customer with features x, action a's reward is drawn from
    ``N(x^T theta_a, v^2 x^T G_a^-1 x)`` - the exact marginal of drawing theta_a from its posterior,
    and independent across actions because the models are disjoint - and the best allowed draw
    is taken. Drawing per customer (not one theta per day) keeps a day's batch diverse.

    Propensities: the probability that an action wins the draw has no closed form, so
    `action_probabilities` estimates it with `propensity_draws` Monte-Carlo draws per customer
    from a generator seeded by the agent's seed, making it a deterministic function of
    (features, mask, model). Acting with ``deterministic=False`` samples from that estimate, so a
    logged propensity is exactly the probability with which the logged action was drawn.
    ``deterministic=True`` exploits without drawing: the allowed action with the best posterior
    mean (the `scores`), as a fully trained Thompson sampler would; its propensity is 1, not
    `action_probabilities`, which describe the sampling policy. Allowed actions that never won a
    draw get probability 0: use `epsilon_greedy` or `softmax` when a logging policy needs full
    support.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds posterior draws
    :param hyperparams: fields of `LinearThompsonConfig` (posterior_scale: v, the posterior
        width; ridge; propensity_draws: Monte-Carlo draws per customer for `action_probabilities`)
    """

    name = "thompson"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        self.config = build_config(LinearThompsonConfig, self.name, hyperparams)
        super().__init__(observation_space, action_space, seed=seed)

    def sample_rewards(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One posterior draw of every action's immediate reward per customer, (n, A)."""
        mean, std = self.scores(obs), self.reward_std(obs)
        return mean + self.config.posterior_scale * std * rng.standard_normal(mean.shape)

    def _explore(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return masked_argmax(self.sample_rewards(obs, self.rng), mask)

    def act(self, obs: np.ndarray, action_mask: Any = None, deterministic: bool = True) -> np.ndarray:
        if deterministic:  # exploit on the posterior mean: no Monte-Carlo needed
            obs = self._check_obs(obs)
            mask = validate_mask(action_mask, obs.shape[0], self.n_actions)
            return masked_argmax(self.scores(obs), mask)
        return super().act(obs, action_mask, deterministic=False)

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mean, std = self.scores(obs), self.config.posterior_scale * self.reward_std(obs)
        n, n_actions = mean.shape
        draws = self.config.propensity_draws
        rng = np.random.default_rng([self.seed, 0x7E0])  # fixed: probabilities are a function
        wins = np.zeros((n, n_actions))
        chunk = max(1, 2_000_000 // max(1, n_actions * draws))  # bound memory to ~16 MB a chunk
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            noise = rng.standard_normal((draws, min(chunk, n - start), n_actions))
            sampled = mean[rows][None] + std[rows][None] * noise
            sampled = np.where(mask[rows][None], sampled, -np.inf)
            best = sampled.argmax(axis=2)  # (draws, rows): the winner of each draw
            m = best.shape[1]
            flat = (np.arange(m)[None, :] * n_actions + best).ravel()
            wins[rows] = np.bincount(flat, minlength=m * n_actions).reshape(m, n_actions)
        return wins / draws


# ----------------------------------------------------------------------------- epsilon-greedy


@dataclass
class EpsilonGreedyConfig:
    """Hyper-parameters of `EpsilonGreedy` (names are `agents.make` keyword arguments)."""

    epsilon: float = 0.1
    """Share of customers given a uniformly random allowed action (learning and propensities)."""
    ridge: float = 1.0
    """Ridge penalty lambda: the prior precision of every action's reward model."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must lie in [0, 1]")
        self.epsilon, self.ridge = float(self.epsilon), float(self.ridge)


class EpsilonGreedy(_LinearRewardBandit):
    """Epsilon-greedy over per-action ridge reward models (Sutton & Barto 2018, section 2.2).

    With probability 1 - epsilon the allowed action with the highest predicted immediate reward,
    otherwise a uniformly random allowed action; `action_probabilities` are exactly that mixture,
    so every allowed action has probability >= epsilon / (allowed actions) - usable as a logging
    policy for off-policy evaluation.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds the exploration draws
    :param hyperparams: fields of `EpsilonGreedyConfig` (epsilon: exploration share in [0, 1];
        ridge)
    """

    name = "epsilon_greedy"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        self.config = build_config(EpsilonGreedyConfig, self.name, hyperparams)
        super().__init__(observation_space, action_space, seed=seed)

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        eps = self.config.epsilon
        return (1.0 - eps) * greedy_probabilities(self.scores(obs), mask) + eps * uniform_over_mask(mask)


# ----------------------------------------------------------------------------- softmax


@dataclass
class SoftmaxBanditConfig:
    """Hyper-parameters of `SoftmaxBandit` (names are `agents.make` keyword arguments)."""

    temperature: float = 1.0
    """Boltzmann temperature in reward units: lower is greedier."""
    ridge: float = 1.0
    """Ridge penalty lambda: the prior precision of every action's reward model."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError("temperature must be a finite number > 0")
        self.temperature, self.ridge = float(self.temperature), float(self.ridge)


class SoftmaxBandit(_LinearRewardBandit):
    """Boltzmann (softmax) exploration over per-action ridge reward models (Sutton & Barto 2018,
    section 2.8; Vermorel & Mohri 2005).

    Action a is taken with probability proportional to ``exp(r_hat_a(x) / temperature)`` over the
    allowed actions; those are the true propensities.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds the exploration draws
    :param hyperparams: fields of `SoftmaxBanditConfig` (temperature: Boltzmann temperature
        (> 0), in reward units; ridge)
    """

    name = "softmax"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        self.config = build_config(SoftmaxBanditConfig, self.name, hyperparams)
        super().__init__(observation_space, action_space, seed=seed)

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return masked_softmax(self.scores(obs), mask, self.config.temperature)


__all__ = ["EpsilonGreedy", "LinUCB", "LinearThompson", "SoftmaxBandit"]
