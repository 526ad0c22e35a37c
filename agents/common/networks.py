"""Small torch networks shared by the deep learners (CPU-sized MLPs) and masked logits."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

MASKED_LOGIT = -1e9
"""Logit given to a masked action: exp(MASKED_LOGIT - max) is exactly 0 in float32."""

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def mlp(
    in_features: int, out_features: int, hidden_sizes: tuple[int, ...] = (64, 64),
    activation: str = "tanh", output_gain: float = 1.0, generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A multi-layer perceptron with orthogonal initialisation (as in PPO implementations).

    Hidden layers get gain sqrt(2), the output layer `output_gain` (0.01 for policy logits so the
    first policy is near-uniform over allowed actions, 1 for values). `generator` makes the
    initial weights depend on the agent's seed only.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden_sizes:
        layers += [_init(nn.Linear(width, size), np.sqrt(2.0), generator), _ACTIVATIONS[activation]()]
        width = size
    layers.append(_init(nn.Linear(width, out_features), output_gain, generator))
    return nn.Sequential(*layers)


def _init(layer: nn.Linear, gain: float, generator: torch.Generator | None) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain=gain, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


class SharedThroughAttributes(nn.Module):
    """An action-scoring layer's weights (or bias) as each action's own plus `attributes @ shared`.

    What the policy learns about one SMS or one discount then moves every action with that channel
    or incentive, which is what a new or rarely tried action needs. `shared` starts at 0, so the
    layer starts as it would without it. A parametrisation keeps the layer an `nn.Linear` whose
    `weight` is the sum, which is what explanations fold (`agents.explain.torch_chosen_scores`).
    """

    def __init__(self, attributes: torch.Tensor, tail: tuple[int, ...]):
        super().__init__()
        self.register_buffer("attributes", attributes)
        self.shared = nn.Parameter(torch.zeros(attributes.shape[1], *tail))

    def forward(self, own: torch.Tensor) -> torch.Tensor:
        return own + self.attributes @ self.shared


def share_through_attributes(layer: nn.Linear, attributes: np.ndarray) -> nn.Linear:
    """Give `layer` (hidden -> one score per action) a part shared through the actions' attributes.

    :param attributes: (A, D), one row per output of `layer` (`Catalogue.attributes`)
    """
    table = torch.as_tensor(np.asarray(attributes, dtype=np.float32))
    if table.ndim != 2 or table.shape[0] != layer.out_features:
        raise ValueError(f"action attributes must have one row per action ({layer.out_features}), "
                         f"got shape {tuple(table.shape)}")
    parametrize.register_parametrization(layer, "weight",
                                         SharedThroughAttributes(table, (layer.in_features,)))
    parametrize.register_parametrization(layer, "bias", SharedThroughAttributes(table, ()))
    return layer


def apply_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with masked actions pushed to MASKED_LOGIT: their probability is exactly 0."""
    return torch.where(mask, logits, torch.full_like(logits, MASKED_LOGIT))


def masked_log_probs(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log softmax over allowed actions (masked entries are very negative, never used)."""
    return torch.log_softmax(apply_mask(logits, mask), dim=-1)


def masked_entropy(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Entropy of the masked distribution, per row (masked actions contribute exactly 0)."""
    # masked entries have probability exactly 0 and a finite log-probability (~ MASKED_LOGIT),
    # so 0 * log p = 0 there without a second mask
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def sample_masked(logits: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One action per row from softmax(masked logits) by the Gumbel-max trick (seeded)."""
    uniform = torch.rand(logits.shape, generator=generator).clamp_(1e-12, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(uniform))
    return torch.where(mask, logits + gumbel, torch.full_like(logits, -torch.inf)).argmax(dim=-1)
