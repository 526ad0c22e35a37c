"""Masked logits: zero probability, no sampling of masked actions, seeded initialisation, and
scores shared through the actions' attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from torch import nn

from agents.common.networks import (
    apply_mask, masked_entropy, masked_log_probs, mlp, sample_masked, share_through_attributes,
)


@settings(max_examples=50, deadline=None)
@given(mask=arrays(bool, st.tuples(st.integers(1, 20), st.integers(2, 10))).filter(
    lambda m: bool(m.any(axis=1).all())), seed=st.integers(0, 1000))
def test_masked_actions_have_zero_probability_and_are_never_sampled(mask, seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(mask.shape, generator=generator) * 30
    mask_t = torch.from_numpy(mask)
    probs = torch.softmax(apply_mask(logits, mask_t), dim=-1)
    assert (probs[~mask_t] == 0).all()
    actions = sample_masked(logits, mask_t, generator)
    assert mask[np.arange(len(mask)), actions.numpy()].all()
    entropy = masked_entropy(masked_log_probs(logits, mask_t), mask_t)
    assert torch.isfinite(entropy).all() and (entropy >= -1e-6).all()


def test_entropy_of_uniform_over_allowed_is_log_of_their_count():
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    entropy = masked_entropy(masked_log_probs(torch.zeros(2, 4), mask), mask)
    np.testing.assert_allclose(entropy.numpy(), [np.log(2), np.log(4)], rtol=1e-6)


def test_sampling_follows_the_masked_softmax():
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]])).repeat(20_000, 1)
    mask = torch.tensor([[True, False, True]]).repeat(20_000, 1)
    actions = sample_masked(logits, mask, torch.Generator().manual_seed(0))
    share = np.bincount(actions.numpy(), minlength=3) / 20_000
    np.testing.assert_allclose(share, [0.2 / 0.7, 0.0, 0.5 / 0.7], atol=0.015)


def test_mlp_initialisation_depends_only_on_the_generator_seed():
    first = mlp(4, 3, (8,), generator=torch.Generator().manual_seed(5))
    second = mlp(4, 3, (8,), generator=torch.Generator().manual_seed(5))
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_mlp_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        mlp(4, 3, activation="swish")


# three actions: the first two share an attribute (say, the SMS channel), the third does not
SHARING = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)


def _scorer(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(4, 3)


def test_a_layer_sharing_through_attributes_starts_as_the_layer_without():
    plain, shared = _scorer(), share_through_attributes(_scorer(), SHARING)
    hidden = torch.randn(5, 4)
    torch.testing.assert_close(shared(hidden), plain(hidden))
    assert isinstance(shared, nn.Linear)


def test_what_is_learned_for_one_action_moves_the_actions_sharing_its_attributes():
    layer = share_through_attributes(_scorer(), SHARING)
    shared_parts = [p for name, p in layer.named_parameters() if name.endswith(".shared")]
    hidden = torch.ones(1, 4)
    before = layer(hidden).detach()
    optimizer = torch.optim.SGD(shared_parts, lr=0.1)
    (-layer(hidden)[0, 0]).backward()  # raise the first action's score through what it shares
    optimizer.step()
    after = layer(hidden).detach()
    assert after[0, 1] > before[0, 1]  # the action that shares its attribute moves with it
    torch.testing.assert_close(after[0, 2], before[0, 2])  # the other one does not


def test_attribute_rows_must_match_the_layers_actions():
    with pytest.raises(ValueError, match="one row per action"):
        share_through_attributes(_scorer(), SHARING[:2])
