"""Masked logits: zero probability, no sampling of masked actions, seeded initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from agents.common.networks import apply_mask, masked_entropy, masked_log_probs, mlp, sample_masked


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
