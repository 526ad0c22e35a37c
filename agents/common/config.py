"""Hyper-parameter dataclasses: build them from `agents.make(**kwargs)` with clear errors.

The one config style of agents.algos: an algorithm takes `**hyperparams`, builds its documented
dataclass (one docstring per field; checks and type casts in its `__post_init__`) with
`build_config`, and keeps it as `self.config`, whose fields are what `hyperparameters()` saves.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C")


def build_config(config_cls: type[C], agent_name: str, hyperparams: dict[str, Any]) -> C:
    """`config_cls(**hyperparams)`, but an unknown name raises a TypeError that lists the known ones.

    Lists (what `save`/`load` turn tuples into) are turned back into tuples for tuple fields.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(hyperparams) - set(fields))
    if unknown:
        raise TypeError(
            f"unknown hyper-parameter(s) {', '.join(unknown)} for {agent_name}; "
            f"known: {', '.join(fields) or 'none'}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in hyperparams.items()}
    return config_cls(**values)
