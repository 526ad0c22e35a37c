"""One config style in agents.algos: `**hyperparams` into a documented dataclass (build_config)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import gymnasium as gym
import pytest

import agents
from agents import features
from agents.algos.bandits import LinUCBConfig
from agents.catalogue import default_catalogue

OBS_SPACE = features.observation_space()
ACTION_SPACE = gym.spaces.Discrete(default_catalogue().n_actions)


@pytest.mark.parametrize("name", agents.AGENT_NAMES)
def test_an_unknown_hyper_parameter_is_named_with_the_known_ones(name):
    with pytest.raises(TypeError, match=f"unknown hyper-parameter.*no_such_knob.*for {name}"):
        agents.make(name, OBS_SPACE, ACTION_SPACE, no_such_knob=1)


@pytest.mark.parametrize("name", agents.AGENT_NAMES)
def test_every_field_of_the_config_is_documented(name):
    config = agents.make(name, OBS_SPACE, ACTION_SPACE).config
    assert dataclasses.is_dataclass(config) and type(config).__doc__
    tree = ast.parse(textwrap.dedent(inspect.getsource(type(config))))
    body = tree.body[0].body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            following = body[i + 1] if i + 1 < len(body) else None
            assert isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant), \
                f"{type(config).__name__}.{node.target.id} has no docstring"


@pytest.mark.parametrize("name", agents.AGENT_NAMES)
def test_the_saved_hyper_parameters_rebuild_the_same_config(name):
    agent = agents.make(name, OBS_SPACE, ACTION_SPACE)
    rebuilt = agents.loads(agent.to_bytes())
    assert rebuilt.hyperparameters() == agent.hyperparameters()
    assert repr(rebuilt.config) == repr(agent.config)


def test_values_are_cast_as_before_the_configs_took_keyword_arguments():
    """Ints for float fields, lists for tuples: stored as before, so saved files agree."""
    bandit = agents.make("linucb", OBS_SPACE, ACTION_SPACE, alpha=2, ridge=3)
    assert bandit.hyperparameters() == {"alpha": 2.0, "ridge": 3.0}
    assert isinstance(bandit.config.alpha, float)
    model = agents.make("supervised", OBS_SPACE, ACTION_SPACE, hidden_sizes=[8, 4], epochs=2.0)
    assert model.config.hidden_sizes == (8, 4) and isinstance(model.config.epochs, int)
    tabular = agents.make("q_learning", OBS_SPACE, ACTION_SPACE, state_features=[0, 1], n_bins=3.0)
    assert tabular.config.state_features == (0, 1) and isinstance(tabular.config.n_bins, int)
    assert LinUCBConfig(alpha=1).alpha == 1.0
