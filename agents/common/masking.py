"""Action masks: validation and masked versions of softmax / argmax / sampling.

A mask is a bool array of shape (n, A): True where the action may be taken. Masking lives here
once so every agent honours it the same way: a masked action gets probability exactly 0 and is
never returned by argmax or sampling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

MASK_KEY = "action_mask"


def validate_mask(action_mask: Any, n: int, n_actions: int) -> np.ndarray:
    """Return `action_mask` as a bool (n, A) array, or all-True when it is None.

    Raises ValueError for a wrong shape or a row with no allowed action, because either means the
    caller built the constraints wrongly and silently picking something would break a contact rule.
    """
    if action_mask is None:
        return np.ones((n, n_actions), dtype=bool)
    mask = np.asarray(action_mask)
    if mask.ndim == 1:
        if mask.shape[0] != n_actions:
            raise ValueError(
                f"action_mask has shape {mask.shape}; expected ({n_actions},) or ({n}, {n_actions})"
            )
        mask = np.broadcast_to(mask, (n, n_actions))
    if mask.shape != (n, n_actions):
        raise ValueError(f"action_mask has shape {mask.shape}; expected ({n}, {n_actions})")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("action_mask must be boolean (or 0/1)")
        mask = mask.astype(bool)
    empty_rows = np.flatnonzero(~mask.any(axis=1))
    if empty_rows.size:
        raise ValueError(
            f"action_mask allows no action in row(s) {empty_rows[:5].tolist()}: "
            "keep 'no contact' allowed"
        )
    return np.ascontiguousarray(mask)


def mask_from_info(info: Mapping[str, Any] | None, n: int, n_actions: int) -> np.ndarray:
    """The mask an env reported in `info["action_mask"]`, or all-True when it reports none."""
    if not info or MASK_KEY not in info:
        return np.ones((n, n_actions), dtype=bool)
    return validate_mask(info[MASK_KEY], n, n_actions)


def masked_softmax(logits: np.ndarray, mask: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax over allowed actions; masked entries are exactly 0."""
    scaled = np.where(mask, logits / temperature, -np.inf)
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    weights = np.where(mask, np.exp(scaled), 0.0)
    return weights / weights.sum(axis=1, keepdims=True)


def masked_argmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Index of the best allowed action per row (first one on ties)."""
    return np.where(mask, values, -np.inf).argmax(axis=1)


def uniform_over_mask(mask: np.ndarray) -> np.ndarray:
    """The uniform distribution over each row's allowed actions."""
    allowed = mask.astype(np.float64)
    return allowed / allowed.sum(axis=1, keepdims=True)


def greedy_probabilities(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One-hot on the masked argmax: the propensity of a deterministic policy."""
    probs = np.zeros(mask.shape, dtype=np.float64)
    probs[np.arange(mask.shape[0]), masked_argmax(values, mask)] = 1.0
    return probs


def sample_from(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one action per row of `probs` (vectorised inverse-CDF sampling)."""
    cumulative = probs.cumsum(axis=1)
    cumulative[:, -1] = 1.0
    draws = rng.random((probs.shape[0], 1))
    actions = (draws > cumulative).sum(axis=1)
    # guard against float round-off landing on a zero-probability (masked) action
    bad = probs[np.arange(probs.shape[0]), actions] <= 0
    if bad.any():
        actions[bad] = probs[bad].argmax(axis=1)
    return actions
