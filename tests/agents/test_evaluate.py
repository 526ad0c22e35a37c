import numpy as np
import pytest

from agents.evaluate import KPI_NAMES, as_policy, evaluate, leave_rate, optimal_policy, uplift
from tests.agents.common.toy_envs import ToyCampaignVecEnv


def test_report_has_every_kpi_with_an_interval_around_it():
    report = evaluate("random", "retail", customers=300, days=20, seed=0)
    assert set(report.kpis) == set(KPI_NAMES)
    for name in KPI_NAMES:
        value, low, high = report[name]
        assert low <= value <= high, name
    assert report.cap_violations_total == 0
    assert report["contacts_per_customer"].value > 1
    assert 0 < report["open_rate"].value < 1 and 0 <= report["retention"].value <= 1


def test_doing_nothing_contacts_nobody():
    report = evaluate("no_contact", "retail", customers=200, days=15, seed=0)
    assert report["contacts_per_customer"].value == 0
    assert np.isnan(report["open_rate"].value)
    assert report["net_revenue_per_customer"].value > 0  # people still buy on their own


def test_same_seed_gives_the_same_customers_and_draws_to_every_policy():
    quiet = evaluate("no_contact", "retail", customers=300, days=20, seed=5)
    again = evaluate("no_contact", "retail", customers=300, days=20, seed=5)
    np.testing.assert_array_equal(
        quiet.per_customer["net_revenue"], again.per_customer["net_revenue"]
    )

    def email_half(obs, mask):
        # contacts only the first half of the cohort
        actions = np.zeros(len(obs), dtype=np.int64)
        actions[:150] = np.where(mask[:150, 1], 1, 0)
        return actions

    busy = evaluate(email_half, "retail", customers=300, days=20, seed=5)
    np.testing.assert_array_equal(
        busy.per_customer["net_revenue"][150:], quiet.per_customer["net_revenue"][150:]
    )
    assert not np.array_equal(
        busy.per_customer["contacts"][:150], quiet.per_customer["contacts"][:150]
    )


def test_a_policy_that_ignores_the_mask_shows_violations():
    report = evaluate(lambda obs, mask: np.full(len(obs), 1), "retail", customers=100, days=10)
    assert report.cap_violations_total > 0 and report["cap_violations"].value > 0


def test_paired_uplift_is_tighter_than_the_kpi_intervals():
    base = evaluate("no_contact", "retail", customers=800, days=30, seed=1)
    other = evaluate("random", "retail", customers=800, days=30, seed=1)
    change = uplift(other, base)
    assert change.ci_low <= change.value <= change.ci_high
    expected = other["net_revenue_per_customer"].value / base["net_revenue_per_customer"].value - 1
    assert change.value == pytest.approx(expected)


def test_uplift_needs_the_same_cohort():
    a = evaluate("no_contact", "retail", customers=50, days=5, seed=1)
    b = evaluate("no_contact", "retail", customers=50, days=5, seed=2)
    with pytest.raises(ValueError, match="same scenario, cohort"):
        uplift(a, b)
    with pytest.raises(ValueError, match="per-customer KPIs"):
        uplift(a, a, kpi="open_rate")


def test_an_agent_is_evaluated_through_act():
    class Quiet:
        def act(self, obs, action_mask=None, deterministic=True):
            assert action_mask is not None and deterministic
            return np.zeros(len(obs), dtype=np.int64)

    report = evaluate(Quiet(), "retail", customers=50, days=5)
    assert report["contacts_per_customer"].value == 0


def test_tabular_policies_can_be_evaluated_by_simulation():
    policy, _ = optimal_policy("tabular")
    report = evaluate(policy, "tabular", customers=200, days=30)
    assert report.cap_violations_total == 0 and report["mean_return"].value > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"agent_or_policy": "greedy"}, ValueError, "unknown policy name"),
        ({"agent_or_policy": 3}, TypeError, "expected an Agent"),
        ({"customers": 1}, ValueError, "customers must be >= 2"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    args = {"agent_or_policy": "random", "scenario": "retail", "customers": 10, "days": 2, **kwargs}
    with pytest.raises(error, match=match):
        evaluate(**args)


def test_as_policy_random_only_picks_allowed_actions():
    mask = np.zeros((100, 5), bool)
    mask[:, 0] = True
    mask[:, 3] = True
    actions = as_policy("random")(np.zeros((100, 2)), mask)
    assert set(actions.tolist()) <= {0, 3} and len(set(actions.tolist())) == 2


def test_kpis_can_be_broken_down_by_starting_segment():
    from agents.envs import get_scenario

    names = get_scenario("retail").segment_names
    report = evaluate("no_contact", "retail", customers=600, days=20, seed=0)
    by_segment = report.by_segment("net_revenue", names)
    assert set(by_segment) <= set(names) and len(by_segment) >= 5
    assert by_segment["loyal"] > by_segment["dormant"]  # loyal customers buy on their own


def test_a_policy_that_never_contacts_loses_no_toy_customer_and_a_random_one_does():
    quiet = leave_rate("no_contact", ToyCampaignVecEnv(num_envs=32, seed=0), 2_000)
    careless = leave_rate("random", ToyCampaignVecEnv(num_envs=32, seed=0), 2_000)

    assert quiet == 0.0 and careless > 0.01


def test_a_leave_rate_over_no_customer_days_is_refused():
    with pytest.raises(ValueError, match="customer_days"):
        leave_rate("random", ToyCampaignVecEnv(num_envs=4), 0)
