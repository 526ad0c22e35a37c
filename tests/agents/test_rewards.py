import math

import numpy as np
import pytest

from agents.rewards import Outcomes, RewardWeights, reward


def _outcomes(**values):
    base = {
        name: np.zeros(2)
        for name in (
            "opens",
            "clicks",
            "conversions",
            "net_revenue",
            "unsubscribes",
            "churns",
            "contact_cost",
        )
    }
    base.update({k: np.asarray(v, float) for k, v in values.items()})
    return Outcomes(**base)


def test_default_reward_is_net_revenue_minus_cost_and_penalties():
    out = _outcomes(
        net_revenue=[40.0, 0.0], contact_cost=[0.4, 0.05], unsubscribes=[0, 1], churns=[0, 1]
    )
    np.testing.assert_allclose(reward(out), [40.0 - 0.4, -0.05 - 20.0 - 50.0])


def test_every_weight_scales_its_outcome():
    weights = RewardWeights(
        open=1, click=2, conversion=3, revenue=0.5, unsubscribe=-7, churn=-11, contact_cost=-2
    )
    out = _outcomes(
        opens=[1, 0],
        clicks=[1, 0],
        conversions=[1, 0],
        net_revenue=[10, 0],
        unsubscribes=[0, 1],
        churns=[0, 1],
        contact_cost=[1, 0],
    )
    np.testing.assert_allclose(reward(out, weights), [1 + 2 + 3 + 5 - 2, -7 - 11])


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1", True])
def test_non_finite_or_non_numeric_weight_is_rejected(bad):
    with pytest.raises(ValueError, match="finite number"):
        RewardWeights(revenue=bad)


def test_outcomes_of_different_lengths_are_rejected():
    with pytest.raises(ValueError, match="has shape"):
        Outcomes(
            opens=np.zeros(2),
            clicks=np.zeros(3),
            conversions=np.zeros(2),
            net_revenue=np.zeros(2),
            unsubscribes=np.zeros(2),
            churns=np.zeros(2),
            contact_cost=np.zeros(2),
        )


def test_weights_round_trip_through_a_dict():
    weights = RewardWeights(churn=-80.0)
    assert RewardWeights(**weights.to_dict()) == weights
