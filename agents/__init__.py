"""agents: the reinforcement-learning library behind the console (no Django imports).

    agent = agents.make("actor_critic", observation_space, action_space, seed=0)
    report = agent.fit(env, total_steps=200_000)
    actions = agent.act(obs, action_mask=mask)
    agent.save("policy.pt"); agent = agents.load("policy.pt")
    artifact = agent.to_bytes(); agent = agents.loads(artifact)
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from agents.algos.base import Agent, TrainingProgress, TrainingReport, box_from_dict, from_saveable

# name -> "module:Class"; modules import lazily so `import agents` stays cheap
_REGISTRY: dict[str, str] = {
    "actor_critic": "agents.algos.actor_critic:ActorCritic",
    "dqn": "agents.algos.dqn:DQN",
    "q_learning": "agents.algos.q_learning:QLearning",
    "linucb": "agents.algos.bandits:LinUCB",
    "thompson": "agents.algos.bandits:LinearThompson",
    "epsilon_greedy": "agents.algos.bandits:EpsilonGreedy",
    "softmax": "agents.algos.bandits:SoftmaxBandit",
    "random": "agents.algos.baselines:RandomPolicy",
    "no_contact": "agents.algos.baselines:NoContactPolicy",
    "rule_based": "agents.algos.baselines:RuleBasedPolicy",
    "supervised": "agents.algos.supervised:SupervisedResponseModel",
}

AGENT_NAMES: tuple[str, ...] = tuple(_REGISTRY)

__all__ = ["AGENT_NAMES", "Agent", "TrainingProgress", "TrainingReport", "load", "loads", "make"]


def _agent_class(name: str) -> type[Agent]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown agent {name!r}; choose one of {', '.join(AGENT_NAMES)}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make(name: str, observation_space: gym.Space, action_space: gym.Space, seed: int = 0,
         **hyperparams: Any) -> Agent:
    """Build the agent called `name` for single-customer spaces; unknown hyper-parameters raise."""
    return _agent_class(name)(observation_space, action_space, seed=seed, **hyperparams)


def load(path: str | Path) -> Agent:
    """Read an agent written by `Agent.save` (tensors and plain values only: no pickled code)."""
    return loads(Path(path).read_bytes())


def loads(artifact: bytes) -> Agent:
    """Read an agent from `Agent.to_bytes` (tensors and plain values only: no pickled code)."""
    payload = torch.load(io.BytesIO(artifact), weights_only=True)
    agent = make(
        payload["name"], box_from_dict(payload["observation_space"]),
        gym.spaces.Discrete(payload["n_actions"]), seed=payload["seed"],
        **from_saveable(payload["hyperparameters"]),
    )
    agent._set_state(from_saveable(payload["state"]))
    agent.rng.bit_generator.state = from_saveable(payload["rng"])
    return agent
