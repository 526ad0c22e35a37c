"""Experience storage for the deep learners: a rollout buffer (on-policy, GAE) and a replay buffer.

Both store whole batches of customers per day (no Python loop per customer) and the action masks,
because a masked learner needs them again at update time: PPO re-evaluates log-probabilities under
the same mask, double DQN takes its target argmax over the *next* state's allowed actions only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class RolloutBuffer:
    """`n_steps` days x `n_slots` customers of on-policy experience, with GAE.

    :param n_steps: days collected per slot before each update
    :param n_slots: customers in parallel
    :param n_features: observation width
    :param n_actions: number of actions
    """

    def __init__(self, n_steps: int, n_slots: int, n_features: int, n_actions: int):
        self.n_steps, self.n_slots = n_steps, n_slots
        shape = (n_steps, n_slots)
        self.obs = np.zeros(shape + (n_features,), dtype=np.float32)
        self.masks = np.zeros(shape + (n_actions,), dtype=bool)
        self.actions = np.zeros(shape, dtype=np.int64)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.done = np.zeros(shape, dtype=bool)
        self.valid = np.zeros(shape, dtype=bool)
        # value of the state a step led to, where it is not the next row's obs (truncated rows)
        self.bootstrap_values = np.zeros(shape, dtype=np.float32)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        self.pos = 0

    def add(self, obs: np.ndarray, masks: np.ndarray, actions: np.ndarray, log_probs: np.ndarray,
            values: np.ndarray) -> None:
        """Record the decision part of day `pos` (the outcome comes with `add_outcome`)."""
        t = self.pos
        self.obs[t], self.masks[t], self.actions[t] = obs, masks, actions
        self.log_probs[t], self.values[t] = log_probs, values

    def add_outcome(self, rewards: np.ndarray, terminated: np.ndarray, done: np.ndarray,
                    valid: np.ndarray, bootstrap_values: np.ndarray) -> None:
        t = self.pos
        self.rewards[t], self.terminated[t], self.done[t] = rewards, terminated, done
        self.valid[t], self.bootstrap_values[t] = valid, bootstrap_values
        self.pos += 1

    @property
    def full(self) -> bool:
        return self.pos >= self.n_steps

    def compute_advantages(self, last_values: np.ndarray, gamma: float, gae_lambda: float) -> None:
        """Generalised advantage estimation (Schulman et al. 2016), masked for churn and horizon.

        delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
        V(s_{t+1}) is the next row's value unless the episode ended at t: a churned customer
        (terminated) has no future; a customer reaching the horizon (truncated) still had one, so
        we bootstrap from the value of their final state.
        """
        next_advantage = np.zeros(self.n_slots, dtype=np.float32)
        for t in reversed(range(self.n_steps)):
            following = last_values if t == self.n_steps - 1 else self.values[t + 1]
            next_value = np.where(self.done[t], self.bootstrap_values[t], following)
            next_value = next_value * (1.0 - self.terminated[t])
            delta = self.rewards[t] + gamma * next_value - self.values[t]
            next_advantage = delta + gamma * gae_lambda * (1.0 - self.done[t]) * next_advantage
            self.advantages[t] = next_advantage
        self.returns = self.advantages + self.values

    def flat(self) -> dict[str, torch.Tensor]:
        """The valid transitions as flat tensors (rows where a slot was only being reset dropped)."""
        keep = self.valid.reshape(-1)
        def take(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array.reshape((-1,) + array.shape[2:])[keep])
        return {"obs": take(self.obs), "masks": take(self.masks), "actions": take(self.actions),
                "log_probs": take(self.log_probs), "values": take(self.values),
                "advantages": take(self.advantages), "returns": take(self.returns)}

    def reset(self) -> None:
        self.pos = 0


@dataclass
class ReplaySample:
    """A minibatch of transitions as tensors."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    next_masks: torch.Tensor


class ReplayBuffer:
    """A circular buffer of (s, a, r, s', terminated, mask of s') for off-policy learners.

    Stores raw observations (normalise at sample time, so changing statistics do not stale the
    buffer) and the next state's mask, needed for the masked max / argmax in the TD target.

    :param capacity: transitions kept (oldest overwritten first)
    :param n_features: observation width
    :param n_actions: number of actions
    """

    def __init__(self, capacity: int, n_features: int, n_actions: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, n_features), dtype=np.float32)
        self.next_obs = np.zeros((capacity, n_features), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.next_masks = np.zeros((capacity, n_actions), dtype=bool)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, next_masks: np.ndarray) -> None:
        """Append a batch of transitions (one per customer row)."""
        n = len(actions)
        if n == 0:
            return
        if n > self.capacity:  # keep only the newest
            obs, actions, rewards = obs[-self.capacity:], actions[-self.capacity:], rewards[-self.capacity:]
            next_obs, terminated = next_obs[-self.capacity:], terminated[-self.capacity:]
            next_masks, n = next_masks[-self.capacity:], self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx], self.actions[idx], self.rewards[idx] = obs, actions, rewards
        self.next_obs[idx], self.terminated[idx], self.next_masks[idx] = next_obs, terminated, next_masks
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplaySample:
        """Uniform minibatch (with replacement) drawn with the agent's generator."""
        if self.size == 0:
            raise ValueError("the replay buffer is empty")
        idx = rng.integers(0, self.size, size=batch_size)
        return ReplaySample(
            obs=torch.from_numpy(self.obs[idx]), actions=torch.from_numpy(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]), next_obs=torch.from_numpy(self.next_obs[idx]),
            terminated=torch.from_numpy(self.terminated[idx]),
            next_masks=torch.from_numpy(self.next_masks[idx]),
        )
