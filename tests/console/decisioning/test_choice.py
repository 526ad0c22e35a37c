"""`choose`: the holdout, the exploration floor and the draw, on arrays alone."""

from __future__ import annotations

import numpy as np
import pytest

from crm_console.decisioning.choice import choose

ALLOWED = np.array([[True, True, True], [True, False, True]])
LIVE = np.array([[0.7, 0.2, 0.1], [0.9, 0.0, 0.1]])
CONTROL = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _choose(**overrides):
    arguments = dict(live=LIVE, control=CONTROL, holdout=np.array([False, False]),
                     allowed=ALLOWED, greedy=False, exploration_share=0.0,
                     draws=np.array([0.5, 0.5]))
    return choose(**{**arguments, **overrides})


def test_a_draw_picks_the_action_whose_cumulative_probability_it_falls_under():
    assert _choose(draws=np.array([0.05, 0.95])).actions.tolist() == [0, 2]


def test_the_holdout_gets_the_control_policys_top_action_with_propensity_one():
    choice = _choose(holdout=np.array([True, False]), draws=np.array([0.99, 0.0]))
    assert choice.actions[0] == 1
    assert choice.probabilities[0].tolist() == [0.0, 1.0, 0.0]
    assert choice.greedy.tolist() == [True, False]


def test_exploration_keeps_every_allowed_action_above_zero_and_masked_ones_at_zero():
    probabilities = _choose(exploration_share=0.3).probabilities
    assert (probabilities[ALLOWED] > 0).all()
    assert (probabilities[~ALLOWED] == 0).all()
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_exploration_is_not_applied_to_the_holdout():
    choice = _choose(holdout=np.array([True, True]), exploration_share=0.5)
    assert choice.probabilities.tolist() == CONTROL.tolist()


def test_the_deciding_probabilities_are_the_policys_own_before_exploration():
    choice = _choose(exploration_share=0.5, holdout=np.array([False, True]))
    assert choice.deciding_probabilities.tolist() == [LIVE[0].tolist(), CONTROL[1].tolist()]


def test_a_greedy_campaign_takes_the_most_likely_action_whatever_the_draw():
    choice = _choose(greedy=True, exploration_share=0.5, draws=np.array([0.99, 0.99]))
    assert choice.actions.tolist() == [0, 0]
    assert choice.greedy.all()


def test_a_policy_that_puts_weight_on_a_masked_action_is_refused():
    bad = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    with pytest.raises(RuntimeError, match="masked action"):
        _choose(live=bad, draws=np.array([0.5, 0.5]))


def test_holdout_rows_without_the_control_policy_are_refused():
    with pytest.raises(ValueError, match="control"):
        _choose(control=None, holdout=np.array([True, False]))
