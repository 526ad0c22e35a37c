"""agents.population: member seeds, the held-out selection cohort, and which member is kept."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from agents import population
from agents.envs import CustomerJourneyEnv


def test_member_zero_keeps_the_runs_seed_and_neighbouring_runs_share_no_member():
    assert population.member_seeds(7, 3) == [7, 1007, 2007]
    neighbours = [set(population.member_seeds(seed, 3)) for seed in range(6)]
    assert all(not (a & b) for i, a in enumerate(neighbours) for b in neighbours[i + 1:])


@pytest.mark.parametrize("size", [0, -1, population.MAX_SIZE + 1, 2.5, True, "3"])
def test_a_population_size_out_of_range_is_refused_in_words(size):
    with pytest.raises(ValueError, match="population size must be a whole number from 1"):
        population.member_seeds(0, size)


def test_the_selection_cohort_is_not_an_evaluation_or_training_seed():
    seeds = set(population.member_seeds(5, population.MAX_SIZE))
    assert population.selection_seed(5) not in seeds | {5, 10_000 + 5}


def test_the_highest_held_out_value_is_kept_and_the_first_of_equals():
    assert population.choose_member([1.0, 3.0, 2.0]) == 1
    assert population.choose_member([3.0, 1.0, 3.0]) == 0


def test_a_member_without_a_value_is_never_kept():
    values = [None, population.MemberValue(1000, 2.0, 1.0, 3.0), float("nan")]
    assert population.choose_member(values) == 1


def test_choosing_among_members_that_all_failed_says_so():
    with pytest.raises(ValueError, match="no member of the population finished"):
        population.choose_member([None, None])


def test_held_out_value_is_paired_every_member_meets_the_same_customers():
    env = CustomerJourneyEnv("retail", num_customers=8, seed=0)
    agent = agents.make("no_contact", env.single_observation_space, env.single_action_space)
    first = population.held_out_value(agent, seed=4, customers=50, days=10)
    again = population.held_out_value(agent, seed=4, customers=50, days=10)
    other_run = population.held_out_value(agent, seed=5, customers=50, days=10)

    assert first == again
    assert first.value != other_run.value
    assert first.ci_low <= first.value <= first.ci_high and np.isfinite(first.value)


def member(seed: int, value: float, retention: float | None) -> population.MemberValue:
    return population.MemberValue(seed, value, value - 1.0, value + 1.0, retention)


CONTROL = member(0, 10.0, 0.80)


def test_a_member_losing_more_than_a_point_of_retention_to_the_control_is_not_kept():
    values = [member(0, 20.0, 0.795), member(1000, 25.0, 0.785), member(2000, 18.0, 0.81)]

    assert population.choose_member(values, control=CONTROL, retention_tolerance=0.01) == 0


def test_when_no_member_keeps_retention_the_highest_return_is_kept():
    values = [member(0, 20.0, 0.70), member(1000, 25.0, 0.75)]

    assert population.choose_member(values, control=CONTROL, retention_tolerance=0.01) == 1


def test_without_a_guardrail_or_the_controls_retention_the_best_return_is_kept():
    values = [member(0, 20.0, 0.80), member(1000, 25.0, 0.50)]

    assert population.choose_member(values, control=CONTROL) == 1
    assert population.choose_member(values, control=member(0, 10.0, None),
                                    retention_tolerance=0.01) == 1
    assert population.within_retention_guardrail(0.5, None, 0.01) is None
    assert population.within_retention_guardrail(0.5, 0.8, None) is None
    assert population.within_retention_guardrail(0.795, 0.80, 0.01) is True


@pytest.mark.parametrize("tolerance", [-0.01, 1.5])
def test_a_retention_tolerance_that_is_not_a_share_is_refused(tolerance):
    with pytest.raises(ValueError, match="retention_tolerance must be a share"):
        population.choose_member([member(0, 1.0, 0.8)], control=CONTROL,
                                 retention_tolerance=tolerance)


def test_a_member_whose_retention_is_unknown_yields_to_one_within_the_guardrail():
    values = [member(0, 30.0, None), member(1000, 20.0, 0.80)]

    assert population.choose_member(values, control=CONTROL, retention_tolerance=0.01) == 1


def test_without_a_tolerance_the_daily_leave_limit_is_the_controls_own_rate():
    assert population.daily_leave_limit(0.0025, 0.0, 90) == pytest.approx(0.0025)


def test_a_retention_tolerance_spreads_over_the_days_as_a_higher_daily_limit():
    assert population.daily_leave_limit(0.0025, 0.009, 90) == pytest.approx(0.0026)


@pytest.mark.parametrize("control, tolerance, days, match", [
    (-0.1, 0.0, 90, "control_leave_rate"), (1.0, 0.0, 90, "control_leave_rate"),
    (0.002, -0.01, 90, "tolerance"), (0.002, 1.5, 90, "tolerance"), (0.002, 0.01, 0, "days"),
])
def test_a_daily_leave_limit_from_impossible_figures_is_refused(control, tolerance, days, match):
    with pytest.raises(ValueError, match=match):
        population.daily_leave_limit(control, tolerance, days)


def test_held_out_value_reports_the_share_of_customers_retained():
    env = CustomerJourneyEnv("retail", num_customers=8, seed=0)
    agent = agents.make("no_contact", env.single_observation_space, env.single_action_space)

    value = population.held_out_value(agent, seed=4, customers=50, days=10)

    assert 0.0 <= value.retention <= 1.0
    assert population.MemberValue(**value.to_dict()) == value


# ------------------------------------------------------------------ the consensus of members
def _leaning(members_masks: np.ndarray, towards: str, weight: float) -> np.ndarray:
    """Targets that put `weight` on the first or last allowed action, the rest spread evenly."""
    masks = members_masks
    allowed = masks.sum(axis=1, keepdims=True)
    target = np.where(masks, (1.0 - weight) / np.maximum(allowed - 1, 1), 0.0)
    pick = np.argmax(masks, axis=1) if towards == "first" else \
        masks.shape[1] - 1 - np.argmax(masks[:, ::-1], axis=1)
    target[np.arange(len(masks)), pick] = weight
    return target


@pytest.fixture(scope="module")
def toy_members():
    """Two actor_critics of the toy campaign: one leaning hard on the last allowed action, one
    leaning lightly on the first; together they choose the last."""
    from agents import offline
    from tests.agents.common.toy_envs import ToyCampaignVecEnv

    env = ToyCampaignVecEnv(num_envs=64, horizon=8, seed=0)
    states = offline.collect(env, offline.uniform_policy, 4_000, seed=0)
    masks = states.allowed()
    members = []
    for seed, towards, weight in ((0, "last", 0.8), (1, "first", 0.4)):
        member = agents.make("actor_critic", env.single_observation_space,
                             env.single_action_space, seed=seed)
        offline.distil_policy(member, states.obs, masks, _leaning(masks, towards, weight),
                              epochs=5, seed=seed)
        members.append(member)
    return members, states, ToyCampaignVecEnv


def test_consensus_probabilities_are_the_members_average(toy_members):
    members, states, _ = toy_members
    masks = states.allowed()
    average = population.consensus_probabilities(members, states.obs, masks)
    expected = (members[0].action_probabilities(states.obs, masks)
                + members[1].action_probabilities(states.obs, masks)) / 2
    assert np.allclose(average, expected)


def test_the_kept_consensus_chooses_as_the_members_do_together_not_as_its_start(toy_members):
    members, states, make_env = toy_members
    masks = states.allowed()
    joint = population.consensus_probabilities(members, states.obs, masks).argmax(axis=1)
    start_alone = members[1].act(states.obs, masks)

    kept, made = population.keep_consensus(members, start=1, env=make_env(num_envs=64, horizon=8,
                                                                           seed=5),
                                           steps=3_000, seed=0)

    assert (start_alone == joint).mean() < 0.5
    assert (kept.act(states.obs, masks) == joint).mean() > 0.9
    assert made.members == 2 and made.states == 3_000 and made.agreement > 0.9


def test_keeping_the_consensus_leaves_the_members_as_they_were(toy_members):
    members, states, make_env = toy_members
    masks = states.allowed()
    before = members[1].action_probabilities(states.obs, masks)

    kept, _ = population.keep_consensus(members, start=1, env=make_env(num_envs=64, horizon=8,
                                                                        seed=5),
                                        steps=1_000, seed=0)

    assert kept is not members[1]
    assert np.array_equal(members[1].action_probabilities(states.obs, masks), before)


@pytest.mark.parametrize("start", [-1, 2])
def test_a_consensus_started_from_no_member_is_refused(toy_members, start):
    members, _, make_env = toy_members
    with pytest.raises(ValueError, match="start must index one of the 2 members"):
        population.keep_consensus(members, start=start, env=make_env(num_envs=8), steps=10, seed=0)


def test_a_consensus_of_no_members_is_refused():
    with pytest.raises(ValueError, match="at least one member"):
        population.consensus_probabilities([], np.zeros((1, 3)))
