"""The scenarios' parameters are validated, and the retail world has the trade-offs it claims."""

import dataclasses

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from agents.envs import SCENARIOS, CustomerJourneyEnv, get_scenario


def test_every_listed_scenario_builds():
    assert SCENARIOS == ("retail", "churn_rescue", "tabular")
    for name in SCENARIOS:
        assert get_scenario(name).name == name


def test_retail_has_the_required_segments():
    names = get_scenario("retail").segment_names
    assert {"loyal", "deal_seeker", "at_risk", "dormant", "new"} <= set(names) and len(names) >= 5


def test_unknown_scenario_is_rejected():
    with pytest.raises(ValueError, match="unknown scenario"):
        get_scenario("moon_base")


def test_overrides_replace_fields():
    assert get_scenario("retail", horizon_days=30).horizon_days == 30


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"segment_weights": np.array([0.5, 0.5, 0.5, 0, 0, 0])}, "sum to 1"),
        ({"open_prob": np.ones((6, 3))}, "open_prob must have shape"),
        ({"churn_hazard": np.full(6, 1.5)}, "probabilities"),
        ({"segment_moves": (("loyal", "vip", "order", 0.1),)}, "unknown segment"),
        ({"segment_moves": (("loyal", "new", "birthday", 0.1),)}, "trigger"),
        ({"drift": {"open_prob": np.zeros((6, 4))}}, "without drift_day"),
        ({"drift_day": 3, "drift": {"open_prob": np.zeros((2, 2))}}, "same shape"),
    ],
)
def test_bad_scenario_is_rejected(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(get_scenario("retail"), **change)


def test_segment_moves_are_probability_rows():
    scenario = get_scenario("retail")
    for trigger in ("order", "incentive_order", "inactive"):
        np.testing.assert_allclose(scenario.move_matrix(trigger).sum(axis=1), 1.0)


# ---------------------------------------------------------------------------------------------
# the trade-offs the simulator must keep (segment-aware checks with ground truth)
def _run(policy, scenario="retail", n=3000, days=60, seed=0):
    """Per-customer totals of the starting cohort and its starting segments."""
    env = CustomerJourneyEnv(scenario, num_customers=n, horizon_days=days, seed=seed)
    obs, info = env.reset()
    segments = env.segments
    totals = {
        k: np.zeros(n)
        for k in ("net_revenue", "opens", "contacted", "unsubscribes", "return", "conversions")
    }
    alive = np.ones(n, bool)
    for day in range(days):
        actions = policy(env, obs, info["action_mask"], day)
        obs, rewards, terminated, truncated, info = env.step(actions)
        for key in totals:
            if key != "return":
                totals[key] += np.where(alive, info[key], 0.0)
        totals["return"] += np.where(alive, rewards, 0.0)
        alive &= ~(terminated | truncated)
    return totals, segments, alive


def _every(channel, offer, window, days):
    def policy(env, obs, mask, day):
        a = env.catalogue.index_of(channel, offer, window)
        return np.where((day % days == 0) & mask[:, a], a, 0)

    return policy


def _nothing(env, obs, mask, day):
    return np.zeros(len(obs), dtype=np.int64)


def _segment_mean(result, name, key="return"):
    totals, segments, _ = result
    index = get_scenario("retail").segment_names.index(name)
    return totals[key][segments == index].mean()


def test_discounts_pay_off_for_deal_seekers_and_cost_margin_on_loyal_customers():
    nothing = _run(_nothing)
    content = _run(_every("email", "content", "morning", 7))
    discount = _run(_every("email", "discount_20", "morning", 7))
    assert _segment_mean(discount, "deal_seeker") > _segment_mean(content, "deal_seeker") + 5
    assert _segment_mean(discount, "deal_seeker") > _segment_mean(nothing, "deal_seeker") + 5
    # loyal customers would have bought anyway: the coupon gives margin away
    assert _segment_mean(discount, "loyal") < _segment_mean(content, "loyal") - 5


def test_sms_responds_best_and_unsubscribes_most():
    email = _run(_every("email", "content", "evening", 7))
    sms = _run(_every("sms", "content", "evening", 7))
    assert (
        sms[0]["opens"].sum() / sms[0]["contacted"].sum()
        > email[0]["opens"].sum() / email[0]["contacted"].sum()
    )
    assert (
        sms[0]["unsubscribes"].sum() / sms[0]["contacted"].sum()
        > 2 * email[0]["unsubscribes"].sum() / email[0]["contacted"].sum()
    )


def test_fatigue_lowers_the_open_rate():
    # the same email every 3 days (cap: 2 a week) vs every 14 days
    often = _run(_every("email", "content", "morning", 3), days=42)
    rarely = _run(_every("email", "content", "morning", 14), days=42)
    rate = lambda r: r[0]["opens"].sum() / r[0]["contacted"].sum()  # noqa: E731
    assert rate(often) < 0.95 * rate(rarely)


def test_doing_nothing_beats_contacting_dormant_customers_by_sms():
    nothing = _run(_nothing)
    sms = _run(_every("sms", "discount_10", "evening", 7))
    assert _segment_mean(nothing, "dormant") > _segment_mean(sms, "dormant")


def test_some_orders_land_days_after_the_contact():
    env = CustomerJourneyEnv("retail", num_customers=2000, seed=0)
    _, info = env.reset()
    a = env.catalogue.index_of("email", "discount_20", "evening")
    _, _, _, _, info = env.step(np.where(info["action_mask"][:, a], a, 0))
    clicked = info["clicks"] > 0
    later = np.zeros(2000)
    for _ in range(5):
        _, _, _, _, info = env.step(np.zeros(2000, dtype=np.int64))
        later += info["discounted_conversions"]
    # discounted orders without a new contact: clicks from day 0 landing later (coupons too)
    assert later[clicked].mean() > later[~clicked].mean() + 0.05


def test_behaviour_reveals_the_hidden_segment():
    """After a month of weekly contacts, a linear model reads the segment from the features."""

    def policy(env, obs, mask, day):
        options = [
            env.catalogue.index_of("email", "discount_20", "evening"),
            env.catalogue.index_of("email", "content", "midday"),
        ]
        a = options[(day // 7) % 2]
        return np.where((day % 7 == 0) & mask[:, a], a, 0)

    env = CustomerJourneyEnv("retail", num_customers=6000, horizon_days=60, seed=4)
    obs, info = env.reset()
    start_segments = env.segments
    for day in range(30):
        obs, _, terminated, truncated, info = env.step(policy(env, obs, info["action_mask"], day))
    keep = ~info["reset"]
    segments = env.segments[keep]
    x = obs[keep]
    model = LinearDiscriminantAnalysis().fit(x[:4000], segments[:4000])
    accuracy = model.score(x[4000:], segments[4000:])
    majority = np.bincount(segments).max() / len(segments)
    assert accuracy > majority + 0.25
    assert start_segments.shape == (6000,)


def test_a_policy_that_infers_segments_from_behaviour_beats_the_marketers_rules():
    """The headroom RL is for: guess the segment from the features, then act per segment."""
    import gymnasium as gym

    import agents
    from agents.evaluate import evaluate, uplift
    from agents.features import feature_index, observation_space

    env = CustomerJourneyEnv("retail", num_customers=8000, seed=123)
    obs, info = env.reset()
    rng = np.random.default_rng(0)
    xs, ys = [obs.copy()], [env.segments]
    for day in range(20):
        weights = info["action_mask"] * 1.0
        weights[:, 0] *= 8
        probs = weights / weights.sum(axis=1, keepdims=True)
        actions = np.minimum((rng.random((len(probs), 1)) > probs.cumsum(axis=1)).sum(axis=1), 48)
        obs, _, _, _, info = env.step(actions)
        if day % 10 == 9:
            xs.append(obs.copy())
            ys.append(env.segments)
    guess = LinearDiscriminantAnalysis().fit(np.concatenate(xs), np.concatenate(ys))
    names = get_scenario("retail").segment_names
    plan = {
        "loyal": ("content", "morning"),
        "deal_seeker": ("discount_20", "evening"),
        "at_risk": ("discount_20", "evening"),
        "new": ("content", "midday"),
        "browser": ("discount_20", "midday"),
    }  # dormant: leave alone
    catalogue = env.catalogue
    recent = np.log1p(3) / np.log1p(365) - 1e-6

    def per_segment(obs, mask):
        segment = guess.predict(obs)
        actions = np.zeros(len(obs), dtype=np.int64)
        due = obs[:, feature_index("email_days_since_contact")] >= recent
        for name, (offer, window) in plan.items():
            for w in (window, "morning", "midday", "evening"):
                a = catalogue.index_of("email", offer, w)
                pick = (segment == names.index(name)) & due & mask[:, a] & (actions == 0)
                actions[pick] = a
        return actions

    rules = agents.make("rule_based", observation_space(), gym.spaces.Discrete(catalogue.n_actions))
    smart = evaluate(per_segment, "retail", customers=2500, seed=3)
    baseline = evaluate(rules, "retail", customers=2500, seed=3)
    assert smart.cap_violations_total == baseline.cap_violations_total == 0
    assert uplift(smart, baseline, "net_revenue_per_customer").ci_low > 0.05
    assert uplift(smart, baseline, "mean_return").ci_low > 0.05


# ----------------------------------------------------------------------------- any catalogue
def _offer_catalogue(*offers):
    from agents.catalogue import DEFAULT_CHANNELS, DEFAULT_SEND_WINDOWS, default_catalogue

    return default_catalogue(DEFAULT_CHANNELS, offers, DEFAULT_SEND_WINDOWS)


def test_a_discount_between_two_anchors_responds_between_them():
    from agents.catalogue import Offer

    scenario = get_scenario("retail")
    offers = (Offer("d10", "10 %", "percent_off", 10.0), Offer("d15", "15 %", "percent_off", 15.0),
              Offer("d20", "20 %", "percent_off", 20.0))
    click = scenario.for_catalogue(_offer_catalogue(*offers)).offer_click
    assert np.all(click[:, 0] <= click[:, 1]) and np.all(click[:, 1] <= click[:, 2])
    assert click[:, 1] == pytest.approx((click[:, 0] + click[:, 2]) / 2)


def test_an_amount_off_or_a_gift_is_worth_its_share_of_the_order():
    from agents.catalogue import Offer

    scenario = get_scenario("retail")
    # 10 % of each segment's order value, as an amount off and as a gift that costs as much
    value = float(scenario.order_value[0]) * 0.10
    offers = (Offer("d10", "10 %", "percent_off", 10.0), Offer("cash", "Cash", "amount_off", value),
              Offer("gift", "Gift", "gift", redemption_cost=value))
    click = scenario.for_catalogue(_offer_catalogue(*offers)).offer_click
    assert click[0, 1] == pytest.approx(click[0, 0]) and click[0, 2] == pytest.approx(click[0, 0])


def test_a_channel_the_scenario_does_not_know_behaves_like_the_average_one():
    from agents.catalogue import DEFAULT_OFFERS, DEFAULT_SEND_WINDOWS, Channel, default_catalogue

    scenario = get_scenario("retail")
    catalogue = default_catalogue((Channel("email", "Email"), Channel("whatsapp", "WhatsApp")),
                                  DEFAULT_OFFERS, DEFAULT_SEND_WINDOWS)
    response = scenario.for_catalogue(catalogue)
    assert response.open_prob[:, 0] == pytest.approx(scenario.open_prob[:, 0])
    assert response.open_prob[:, 1] == pytest.approx(scenario.open_prob.mean(axis=1))
    assert response.history_contacts_per_week[1] == 0.0  # no past campaigns on a new channel


def test_message_variants_have_their_own_hidden_effect():
    scenario = get_scenario("retail")
    assert scenario.variant_effect("default") == 1.0
    effects = {scenario.variant_effect(v) for v in ("A", "B", "subject: last chance")}
    assert len(effects) == 3
    assert all(abs(e - 1.0) <= scenario.variant_spread for e in effects)
