import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents import features
from agents.catalogue import DEFAULT_CHANNELS as CHANNELS
from agents.envs import CustomerJourneyEnv, SingleCustomerEnv, TabularJourneyEnv, get_scenario
from agents.rewards import Outcomes, RewardWeights, reward


def _random_actions(mask, rng, contact_bias=1.0):
    weights = mask.astype(float)
    weights[:, 0] *= contact_bias
    probs = weights / weights.sum(axis=1, keepdims=True)
    return np.minimum(
        (rng.random((len(mask), 1)) > probs.cumsum(axis=1)).sum(axis=1), mask.shape[1] - 1
    )


def test_is_a_gymnasium_vector_env_with_next_step_autoreset(small_env):
    assert isinstance(small_env, gym.vector.VectorEnv)
    assert small_env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    assert small_env.single_observation_space == features.observation_space()
    assert small_env.single_action_space == gym.spaces.Discrete(49)


def test_reset_returns_observations_in_space_and_a_mask(small_env):
    obs, info = small_env.reset()
    assert obs.shape == (64, features.N_FEATURES) and obs.dtype == np.float32
    assert small_env.observation_space.contains(obs)
    mask = info["action_mask"]
    assert mask.shape == (64, 49) and mask.dtype == bool and mask[:, 0].all()
    assert (mask[:, 1:].sum(axis=1) < 48).any()  # consent and quiet hours bite somewhere


def test_same_seed_same_trajectory_different_seed_different():
    def run(seed):
        env = CustomerJourneyEnv("retail", num_customers=32, seed=seed)
        obs, info = env.reset()
        rng = np.random.default_rng(0)
        total = []
        for _ in range(15):
            obs, r, *_, info = env.step(_random_actions(info["action_mask"], rng))
            total.append(r)
        return obs, np.array(total)

    (o1, r1), (o2, r2), (o3, _) = run(3), run(3), run(4)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(o1, o3)


def test_common_random_numbers_leave_untouched_customers_identical():
    """Contacting half of the customers must not change what happens to the other half."""

    def run(contact_first_half):
        env = CustomerJourneyEnv("retail", num_customers=40, horizon_days=200, seed=11)
        obs, info = env.reset()
        rng = np.random.default_rng(1)
        revenue, alive = np.zeros(40), np.ones(40, bool)
        for _ in range(25):
            actions = _random_actions(info["action_mask"], rng, contact_bias=0.2)
            if not contact_first_half:
                actions[:] = 0
            actions[20:] = 0
            obs, _, terminated, truncated, info = env.step(actions)
            revenue += np.where(alive, info["net_revenue"], 0.0)
            alive &= ~(terminated | truncated)
        return revenue[20:], alive[20:], obs[20:][alive[20:]]

    quiet, busy = run(False), run(True)
    for a, b in zip(quiet, busy, strict=True):
        np.testing.assert_array_equal(a, b)  # (replacement customers are not compared)


def test_a_masked_action_is_not_sent_and_is_counted_as_a_violation(small_env):
    _, info = small_env.reset()
    blocked = np.argwhere(~info["action_mask"])
    row, action = blocked[0]
    actions = np.zeros(64, dtype=np.int64)
    actions[row] = action
    _, _, _, _, info = small_env.step(actions)
    assert info["cap_violations"][row] == 1 and info["cap_violations"].sum() == 1
    assert info["contacted"][row] == 0 and info["contact_cost"][row] == 0


def test_honouring_the_mask_gives_zero_violations(small_env):
    _, info = small_env.reset()
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, _, _, _, info = small_env.step(_random_actions(info["action_mask"], rng, 0.1))
        assert info["cap_violations"].sum() == 0


def test_episodes_truncate_at_the_horizon_and_reset_on_the_next_step():
    env = CustomerJourneyEnv("retail", num_customers=50, horizon_days=3, seed=0)
    env.reset()
    done = np.zeros(50, bool)
    for _ in range(3):
        _, _, terminated, truncated, _ = env.step(np.zeros(50, dtype=np.int64))
        done |= terminated
    assert (truncated | done).all() and not (truncated & done).any()
    # next step: the finished customers are replaced; their action is ignored, reward 0
    sms = env.catalogue.index_of("email", "content", "morning")
    obs, rewards, terminated, truncated, info = env.step(np.full(50, sms))
    assert info["reset"].all() and (rewards == 0).all() and info["contacted"].sum() == 0
    assert not terminated.any() and not truncated.any()
    assert (env.profile.tenure_days > 0).all()


def test_churn_terminates_the_episode():
    env = CustomerJourneyEnv("churn_rescue", num_customers=300, seed=2)
    env.reset()
    terminated_seen = False
    for _ in range(30):
        _, rewards, terminated, _, info = env.step(np.zeros(300, dtype=np.int64))
        assert np.array_equal(terminated & (info["churned"] > 0), info["churned"] > 0)
        terminated_seen |= terminated.any()
    assert terminated_seen


def test_reward_is_the_reward_function_of_the_reported_outcomes():
    weights = RewardWeights(open=0.5, click=1.0, unsubscribe=-30.0)
    env = CustomerJourneyEnv("retail", num_customers=64, reward_weights=weights, seed=5)
    _, info = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, rewards, _, _, info = env.step(_random_actions(info["action_mask"], rng))
        outcomes = Outcomes(
            info["opens"],
            info["clicks"],
            info["conversions"],
            info["net_revenue"],
            info["unsubscribes"],
            info["churned"],
            info["contact_cost"],
        )
        np.testing.assert_allclose(rewards, reward(outcomes, weights))


def test_features_rebuilt_from_the_events_equal_what_the_simulator_shows():
    """The console path: replaying the env's events through record_* gives the same observation."""
    env = CustomerJourneyEnv("retail", num_customers=80, horizon_days=25, seed=9)
    obs, info = env.reset()
    replay = env.profile.copy()
    cat, rng = env.catalogue, np.random.default_rng(3)
    incentive = np.array([a.offer not in (None, "content") for a in cat.actions])
    for _ in range(40):
        obs, _, _, _, info = env.step(_random_actions(info["action_mask"], rng, 0.3))
        sent = info["action_sent"]
        channel = cat.channel_index[sent]
        rows = np.flatnonzero(info["contacted"] > 0)
        features.record_contact(replay, rows, channel[rows], discounted=incentive[sent[rows]])
        rows = np.flatnonzero(info["opens"] > 0)
        features.record_open(replay, rows, channel[rows])
        rows = np.flatnonzero(info["clicks"] > 0)
        features.record_click(replay, rows, channel[rows])
        for k in (1, 2):  # up to two orders a day (one placed, one landing from an earlier click)
            rows = np.flatnonzero(info["conversions"] >= k)
            value = info["net_revenue"][rows] / info["conversions"][rows]
            features.record_purchase(
                replay, rows, value, discounted=info["discounted_conversions"][rows] >= k
            )
        rows = np.flatnonzero(info["unsubscribes"] > 0)
        features.record_unsubscribe(replay, rows, channel[rows])
        features.advance_days(replay, 1.0)
        new = np.flatnonzero(info["reset"])
        replay.put(new, env.profile.take(new))  # newcomers start from their drawn history
        np.testing.assert_allclose(features.observation(replay), obs, rtol=1e-5, atol=1e-5)


def test_unsubscribing_from_the_last_channel_ends_the_episode():
    env = CustomerJourneyEnv("retail", num_customers=200, horizon_days=200, seed=1)
    _, info = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        _, _, terminated, _, info = env.step(_random_actions(info["action_mask"], rng, 0.01))
        lost_all = (
            (info["unsubscribes"] > 0) & (env.profile.consent.max(axis=1) < 0.5) & ~info["reset"]
        )
        assert terminated[lost_all].all()


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.zeros(3, dtype=np.int64), "shape"),
        (np.full(64, 49), "lie in"),
        (np.full(64, 0.5), "whole"),
    ],
)
def test_bad_actions_are_rejected(small_env, actions, match):
    small_env.reset()
    with pytest.raises(ValueError, match=match):
        small_env.step(actions)


def test_tabular_scenario_builds_the_sibling_env():
    env = CustomerJourneyEnv("tabular", num_customers=4, seed=0)
    assert isinstance(env, TabularJourneyEnv)
    obs, info = env.reset()
    assert obs.shape == (4, 12) and info["action_mask"].shape == (4, 4)


def test_preference_drift_changes_behaviour_on_its_day():
    base = get_scenario("retail")
    drifted = get_scenario("retail", drift_day=2, drift={"open_prob": base.open_prob * 0.0})
    env = CustomerJourneyEnv(drifted, num_customers=400, seed=0)
    _, info = env.reset()
    email = env.catalogue.index_of("email", "content", "evening")
    actions = np.where(info["action_mask"][:, email], email, 0)
    _, _, _, _, info = env.step(actions)
    assert info["opens"].sum() > 0
    env.step(np.zeros(400, dtype=np.int64))
    for _ in range(3):
        _, _, _, _, info = env.step(np.where(info["action_mask"][:, email], email, 0))
        assert info["opens"].sum() == 0


@pytest.mark.parametrize("scenario", ["retail", "churn_rescue", "tabular"])
def test_single_customer_view_passes_the_gymnasium_env_checker(scenario):
    env = SingleCustomerEnv(scenario)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert info["action_mask"].shape == (env.action_space.n,)


def test_single_customer_view_asks_for_reset_after_the_end():
    env = SingleCustomerEnv("retail", horizon_days=2)
    env.reset(seed=0)
    env.step(0)
    _, _, terminated, truncated, _ = env.step(0)
    assert terminated or truncated
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


def test_env_docstring_has_the_gymnasium_sections():
    for section in ("Action Space", "Observation Space", "Rewards", "Episode End", "Arguments"):
        assert f"## {section}" in CustomerJourneyEnv.__doc__
        assert f"## {section}" in TabularJourneyEnv.__doc__


def test_consent_channels_follow_the_catalogue_order(small_env):
    small_env.reset()
    assert small_env.profile.consent.shape == (64, len(CHANNELS))


def test_the_send_window_is_each_customers_own_local_time():
    """The morning window reaches London and Honolulu customers in their own morning."""
    from agents.constraints import ContactRules

    scenario = get_scenario("retail", utc_offsets=(0.0, -9.0))
    env = CustomerJourneyEnv(scenario, num_customers=2000, seed=0,
                             contact_rules=ContactRules(consent_required=frozenset()))
    env.reset()
    morning = env.catalogue.index_of("email", "content", "morning")
    _, _, _, _, info = env.step(np.full(2000, morning))
    offsets = env.profile.utc_offset_hours
    sent = info["contacted"] > 0
    local_hour = np.mod(info["send_hours"][sent] + offsets[sent], 24.0)
    assert sent.sum() > 1900 and set(np.unique(offsets[sent])) == {0.0, -9.0}
    assert ((local_hour >= 8) & (local_hour < 11)).all()
    london, honolulu = (info["opens"][offsets == o].mean() for o in (0.0, -9.0))
    assert abs(london - honolulu) < 0.25 * london  # both opened in their morning


def test_a_custom_catalogue_runs_with_its_own_channels_offers_and_windows():
    from agents.catalogue import (
        DEFAULT_CHANNELS,
        DEFAULT_OFFERS,
        DEFAULT_SEND_WINDOWS,
        Channel,
        Offer,
        SendWindow,
        default_catalogue,
    )
    from agents.constraints import ContactRules

    catalogue = default_catalogue(
        (*DEFAULT_CHANNELS, Channel("whatsapp", "WhatsApp", 0.03)),
        (*DEFAULT_OFFERS, Offer("free_gift", "Free gift", "gift", redemption_cost=4.0)),
        (*DEFAULT_SEND_WINDOWS, SendWindow("lunch", "Lunch 12:30-13:30", 12.5, 13.5)),
    )
    rules = ContactRules(channel_caps={"whatsapp": (2, 7)}, min_gap_hours=24.0)
    env = CustomerJourneyEnv(num_customers=256, catalogue=catalogue, contact_rules=rules, seed=3,
                             horizon_days=30)
    obs, info = env.reset()
    assert obs.shape == (256, 5 * 5 + 12) and env.single_observation_space.contains(obs[0])
    gift_lunch = catalogue.index_of("whatsapp", "free_gift", "lunch")
    sent = opened = 0
    for _ in range(14):
        actions = np.where(info["action_mask"][:, gift_lunch], gift_lunch, 0)
        obs, reward, terminated, truncated, info = env.step(actions)
        sent += info["contacted"].sum()
        opened += info["opens"].sum()
        assert info["cap_violations"].sum() == 0
        hours = info["send_hours"][info["contacted"] > 0]
        assert np.all(np.isclose(np.mod(hours + env.profile.utc_offset_hours[info["contacted"] > 0],
                                        24.0), 12.5))
    # at most 2 a week on WhatsApp: 14 days hold at most 4 per customer
    assert 0 < sent <= 256 * 4 and opened > 0
    whatsapp = env.feature_layout.index("whatsapp_contacts")
    assert obs[:, whatsapp].max() > 0
