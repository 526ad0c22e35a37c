"""Learning from logged history: datasets of past decisions, offline RL, and warm starts.

Enterprises should not experiment on real customers from scratch. Every decision the console (or
the rules before it) made is a logged tuple (features, action, logging propensity, reward, next
features, done, allowed actions). One module per concern:

- `agents.offline.policies`: logging policies (`explore`, `uniform_policy`) and their checked
  probabilities (`policy_probabilities`);
- `agents.offline.dataset`: such logs in a validated `LoggedDataset` (built by the console from
  its Decision rows, or by `collect(env, policy, steps, seed)` from the simulator under a known
  logging policy) and a policy's `off_policy_value` on them;
- `agents.offline.q_learner`: a long-term action value Q(s, a) learned from them with
  `OfflineQLearner`: fitted Q-iteration with double-Q targets over the *allowed* next actions and
  a conservative (CQL) penalty;
- `agents.offline.pretrain`: warm starts with `pretrain(agent, dataset)`, dispatched on the
  agent's declared `Agent.warm_start` (advantage-weighted distillation for actor-critic, Q
  regression for DQN, the logged rows for response models and linear bandits). The agent then
  continues online with `agent.fit(env, ...)`.

This package re-exports the public names, so `from agents.offline import X` is the stable import.
"""

from __future__ import annotations

from agents.offline.dataset import LoggedDataset, collect, off_policy_value
from agents.offline.policies import Policy, explore, policy_probabilities, uniform_policy
from agents.offline.pretrain import (
    MIN_DISTILL_STEPS, WARM_STARTS, PretrainReport, discounted_running_returns,
    distil_policy, pretrain,
)
from agents.offline.q_learner import OfflineQConfig, OfflineQLearner

__all__ = [
    "MIN_DISTILL_STEPS", "WARM_STARTS", "LoggedDataset", "OfflineQConfig", "OfflineQLearner",
    "Policy", "PretrainReport", "collect", "discounted_running_returns", "distil_policy",
    "explore", "off_policy_value", "policy_probabilities", "pretrain", "uniform_policy",
]
