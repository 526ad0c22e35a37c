"""Which action each customer gets, from the policies' probabilities: no database, no clock.

`decisions_create` reads the customers under their locks and their inputs (serving), asks the
policies for probabilities, then calls `choose`; what it returns is logged as is. Kept pure so
that the rules a compliance officer asks about (the holdout gets the rules as written, every
allowed action keeps a propensity above 0 while exploring, a masked action is never chosen) are
tested on arrays alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.common.masking import uniform_over_mask


@dataclass(frozen=True)
class Choice:
    """The chosen actions and what the log keeps of how they were chosen."""

    actions: np.ndarray
    """(n,) the chosen action's index per customer."""
    probabilities: np.ndarray
    """(n, A) the distribution each customer's action was drawn from (its logged propensities)."""
    deciding_probabilities: np.ndarray
    """(n, A) the deciding policy's own distribution, before exploration: what is explained."""
    greedy: np.ndarray
    """(n,) whether the row took its distribution's most likely action instead of a draw."""


def choose(*, live: np.ndarray, control: np.ndarray | None, holdout: np.ndarray,
           allowed: np.ndarray, greedy: bool, exploration_share: float,
           draws: np.ndarray) -> Choice:
    """Draw each customer's action.

    `live` and `control` are (n, A) probabilities over allowed actions (`control` may be None
    when no row is in the holdout); `draws` are n uniforms in [0, 1). Holdout rows follow the
    control policy greedily; the other rows sample the live policy mixed with
    `exploration_share` of uniform over their allowed actions (unless the campaign is `greedy`).
    """
    n = live.shape[0]
    rows = np.arange(n)
    deciding = live
    probabilities = live
    if not greedy and exploration_share > 0:
        # an exploration floor: every allowed action keeps a logged propensity > 0 (OPE needs it)
        probabilities = (1 - exploration_share) * live \
            + exploration_share * uniform_over_mask(allowed)
    if holdout.any():
        if control is None:
            raise ValueError("holdout rows need the control policy's probabilities")
        probabilities = np.where(holdout[:, None], control, probabilities)
        deciding = np.where(holdout[:, None], control, deciding)
    row_greedy = holdout | greedy  # the control group gets the rules as written, no exploration
    if row_greedy.any():
        one_hot = np.zeros_like(probabilities)
        one_hot[rows, probabilities.argmax(axis=1)] = 1.0
        probabilities = np.where(row_greedy[:, None], one_hot, probabilities)
    draws = np.asarray(draws, dtype=np.float64).reshape(n, 1)
    actions = np.minimum((draws > probabilities.cumsum(axis=1)).sum(axis=1),
                         probabilities.shape[1] - 1)
    actions = np.where(probabilities[rows, actions] > 0, actions, probabilities.argmax(axis=1))
    if not allowed[rows, actions].all():  # the agents contract; checked, never assumed
        raise RuntimeError("a policy chose a masked action")
    return Choice(actions=actions, probabilities=probabilities, deciding_probabilities=deciding,
                  greedy=np.asarray(row_greedy, dtype=bool))
