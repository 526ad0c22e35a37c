import numpy as np
import pytest

from agents.envs import CustomerJourneyEnv, TabularJourneyEnv, get_scenario, one_hot_states
from agents.evaluate import optimal_policy, percent_of_optimum, policy_value, value_iteration


def test_value_iteration_solves_a_hand_made_mdp():
    # two states; in s0 "wait" gives 0 and stays, "go" gives 1 and moves to s1; s1 pays 2 per day
    # forever with its only action. With gamma 0.5: V(s1) = 2 / (1 - 0.5) = 4,
    # Q(s0, go) = 1 + 0.5 * 4 = 3 > Q(s0, wait) = 0 + 0.5 * V(s0) -> V(s0) = 3.
    transitions = np.zeros((2, 2, 2))
    transitions[0, 0, 0] = 1.0
    transitions[0, 1, 1] = 1.0
    transitions[1, :, 1] = 1.0
    rewards = np.array([[0.0, 1.0], [2.0, 2.0]])
    values, policy = value_iteration(transitions, rewards, gamma=0.5)
    np.testing.assert_allclose(values, [3.0, 4.0], atol=1e-8)
    assert policy[0] == 1


def test_value_iteration_respects_the_mask_and_terminal_mass():
    # "go" is masked; "wait" ends the episode half the time (rows sum to 0.5)
    transitions = np.zeros((1, 2, 1))
    transitions[0, 0, 0] = 0.5
    transitions[0, 1, 0] = 1.0
    rewards = np.array([[1.0, 10.0]])
    values, policy = value_iteration(transitions, rewards, 0.9, allowed=np.array([[True, False]]))
    assert policy[0] == 0
    np.testing.assert_allclose(values, [1.0 / (1 - 0.9 * 0.5)])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 1.0}, "gamma"),
        ({"allowed": np.zeros((2, 2), bool)}, "at least one allowed"),
        ({"transitions": np.zeros((2, 2, 3))}, "transitions must be"),
    ],
)
def test_value_iteration_rejects_bad_inputs(kwargs, match):
    args = {"transitions": np.zeros((2, 2, 2)), "rewards": np.zeros((2, 2)), "gamma": 0.9, **kwargs}
    with pytest.raises(ValueError, match=match):
        value_iteration(**args)


def test_the_optimum_beats_every_sampled_policy_and_the_myopic_one():
    scenario = get_scenario("tabular")
    policy, best = optimal_policy(scenario)
    assert policy_value(policy, scenario) == pytest.approx(best)
    assert percent_of_optimum(policy, scenario) == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        candidate = np.where(scenario.allowed[np.arange(12), a := rng.integers(0, 4, 12)], a, 0)
        assert policy_value(candidate, scenario) <= best + 1e-9
    myopic = np.where(scenario.allowed, scenario.expected_rewards(), -np.inf).argmax(axis=1)
    assert policy_value(myopic, scenario) < 0.8 * best  # greed for today's order costs later


def test_the_optimal_policy_is_not_trivial():
    policy, _ = optimal_policy("tabular")
    assert len(set(policy.tolist())) >= 2


def test_simulated_returns_match_the_exact_policy_value():
    scenario = get_scenario("tabular")
    policy, _ = optimal_policy(scenario)
    n = 4000
    env = CustomerJourneyEnv(scenario, num_customers=n, seed=1)
    obs, info = env.reset()
    discounted, alive, discount = np.zeros(n), np.ones(n, bool), 1.0
    for _ in range(150):
        obs, rewards, terminated, truncated, info = env.step(policy[obs.argmax(axis=1)])
        discounted += np.where(alive, discount * rewards, 0.0)
        discount *= scenario.gamma
        alive &= ~(terminated | truncated)
    half_width = 3 * discounted.std() / np.sqrt(n)
    assert abs(discounted.mean() - policy_value(policy, scenario)) < half_width


def test_masked_actions_in_the_tabular_env_are_counted():
    env = TabularJourneyEnv(num_customers=500, seed=0)
    env.reset()
    sms = 3
    saw_violation = False
    for _ in range(10):
        _, _, _, _, info = env.step(np.full(500, sms))
        saw_violation |= info["cap_violations"].sum() > 0
    assert saw_violation  # two SMS in a row saturate a customer; the third is blocked


def test_policy_value_rejects_a_policy_that_uses_masked_actions():
    probs = np.full((12, 4), 0.25)
    with pytest.raises(ValueError, match="masked action"):
        policy_value(probs, "tabular")


def test_one_hot_observations_identify_states():
    obs = one_hot_states(get_scenario("tabular"))
    np.testing.assert_array_equal(obs, np.eye(12, dtype=np.float32))


def test_exact_values_need_a_tabular_scenario():
    with pytest.raises(ValueError, match="tabular scenario"):
        optimal_policy("retail")


def test_tabular_env_rejects_contact_rules():
    with pytest.raises(ValueError, match="contact_rules and catalogue must be None"):
        TabularJourneyEnv(contact_rules=object())


def test_the_optimum_needs_both_engagement_and_fatigue():
    """No rule that ignores one of the two state variables gets near the optimum."""
    import itertools

    scenario = get_scenario("tabular")
    n_f = 3
    blind_to_engagement = max(
        percent_of_optimum(
            np.array([(fresh, tired, 0)[s % n_f] for s in range(scenario.n_states)]), scenario
        )
        for fresh, tired in itertools.product(range(4), repeat=2)
    )
    blind_to_fatigue = max(
        percent_of_optimum(
            np.array([
                per_level[s // n_f] if scenario.allowed[s, per_level[s // n_f]] else 0
                for s in range(scenario.n_states)
            ]),
            scenario,
        )
        for per_level in itertools.product(range(4), repeat=4)
    )
    assert blind_to_engagement < 85.0 and blind_to_fatigue < 85.0
