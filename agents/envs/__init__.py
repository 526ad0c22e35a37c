"""Simulators: the vectorised customer journey, its scenarios, and a single-customer view.

    env = CustomerJourneyEnv("retail", num_customers=4096, seed=0)      # gymnasium VectorEnv
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(actions)        # info["action_mask"]

`FittedJourneyEnv(model, start_profiles, ...)` is the same VectorEnv with a workspace's own customers
responding as its fitted `agents.response_model.ResponseModel` says; a policy trained there
plans at most `PLANNING_DISCOUNT` ahead.
`CustomerJourneyEnv("tabular", ...)` returns the sibling `TabularJourneyEnv` (same VectorEnv API,
one-hot states, an exact model for `agents.evaluate.optimal_policy`).
"""

from agents.envs.customer_journey import (
    OUTCOME_KEYS,
    CustomerJourneyEnv,
    RuledJourneyEnv,
    draw_profiles,
)
from agents.envs.fitted import PLANNING_DISCOUNT, FittedJourneyEnv
from agents.envs.scenarios import SCENARIOS, Scenario, TabularScenario, get_scenario
from agents.envs.single import SingleCustomerEnv
from agents.envs.tabular import TabularJourneyEnv, one_hot_states

__all__ = [
    "OUTCOME_KEYS",
    "PLANNING_DISCOUNT",
    "SCENARIOS",
    "CustomerJourneyEnv",
    "FittedJourneyEnv",
    "RuledJourneyEnv",
    "Scenario",
    "SingleCustomerEnv",
    "TabularJourneyEnv",
    "TabularScenario",
    "draw_profiles",
    "get_scenario",
    "make_env",
    "one_hot_states",
]


def make_env(
    scenario: str | Scenario | TabularScenario = "retail", num_customers: int = 1024, **kwargs
) -> CustomerJourneyEnv | TabularJourneyEnv:
    """The vector env for `scenario` (either class), same arguments as CustomerJourneyEnv."""
    return CustomerJourneyEnv(scenario, num_customers, **kwargs)
