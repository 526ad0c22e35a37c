import json

import numpy as np
import pytest

from agents import features as F
from agents.catalogue import default_catalogue
from agents.features import (
    FEATURE_LABELS,
    FEATURE_NAMES,
    N_FEATURES,
    ProfileState,
    advance_days,
    feature_index,
    observation,
    observation_space,
    record_click,
    record_contact,
    record_open,
    record_past_contact,
    record_purchase,
    record_unsubscribe,
    set_consent,
    withdraw_contact,
)

CHANNELS = default_catalogue().channel_keys

EXPECTED_NAMES = (
    "email_open_rate",
    "email_click_rate",
    "email_contacts",
    "email_days_since_contact",
    "email_consent",
    "sms_open_rate",
    "sms_click_rate",
    "sms_contacts",
    "sms_days_since_contact",
    "sms_consent",
    "push_open_rate",
    "push_click_rate",
    "push_contacts",
    "push_days_since_contact",
    "push_consent",
    "call_centre_open_rate",
    "call_centre_click_rate",
    "call_centre_contacts",
    "call_centre_days_since_contact",
    "call_centre_consent",
    "days_since_purchase",
    "purchase_frequency",
    "monetary_value",
    "average_order_value",
    "discount_purchase_share",
    "discount_contact_share",
    "days_since_engagement",
    "contacts_7d",
    "contacts_30d",
    "contact_pressure",
    "tenure_days",
    "utc_offset",
)


def test_feature_names_and_order_are_stable():
    # logged decisions and saved models depend on this order: change it only with a migration
    assert FEATURE_NAMES == EXPECTED_NAMES
    assert N_FEATURES == len(EXPECTED_NAMES) == observation_space().shape[0]


def test_every_feature_has_a_marketer_label_and_an_index():
    assert set(FEATURE_LABELS) == set(FEATURE_NAMES)
    assert FEATURE_LABELS["sms_open_rate"].startswith("SMS open rate")
    assert all(FEATURE_NAMES[feature_index(name)] == name for name in FEATURE_NAMES)
    with pytest.raises(KeyError, match="unknown feature"):
        feature_index("segment")


def test_the_segment_is_not_a_feature():
    assert not any("segment" in name for name in FEATURE_NAMES)


def _busy_state(n=5, seed=0):
    rng = np.random.default_rng(seed)
    state = ProfileState.empty(n, utc_offset_hours=rng.choice([-5.0, 0.0, 5.5], n))
    for _ in range(40):
        rows = rng.integers(0, n, 3)
        channel = rng.integers(0, len(CHANNELS), 3)
        record_contact(state, rows, channel, discounted=rng.random(3) < 0.5)
        record_open(state, rows[:2], channel[:2])
        record_click(state, rows[:1], channel[:1])
        record_purchase(state, rows[:1], rng.uniform(5, 400), discounted=True)
        advance_days(state, rng.uniform(0, 3))
    return state


def test_observation_lies_in_the_observation_space():
    obs = observation(_busy_state())
    assert obs.dtype == np.float32 and obs.shape == (5, N_FEATURES)
    assert all(observation_space().contains(row) for row in obs)
    assert all(observation_space().contains(row) for row in observation(ProfileState.empty(3)))


def test_engagement_counters_halve_after_one_half_life():
    state = ProfileState.empty(1)
    record_contact(state, [0], 0)
    advance_days(state, F.ENGAGEMENT_HALF_LIFE_DAYS)
    assert state.contacts[0, 0] == pytest.approx(0.5)
    assert state.days_since_contact[0, 0] == pytest.approx(F.ENGAGEMENT_HALF_LIFE_DAYS)


def test_contacts_7d_counts_exactly_the_last_seven_days():
    state = ProfileState.empty(1)
    record_contact(state, [0], 0)
    advance_days(state, 6)
    assert observation(state)[0, feature_index("contacts_7d")] == pytest.approx(1 / 7)
    advance_days(state, 1)
    assert observation(state)[0, feature_index("contacts_7d")] == 0.0
    assert observation(state)[0, feature_index("contacts_30d")] == pytest.approx(1 / 30)


def test_fractional_days_shift_the_daily_bins_at_midnight():
    state = ProfileState.empty(2)
    record_contact(state, [0, 1], 0)
    advance_days(state, np.array([0.6, 0.3]))
    advance_days(state, np.array([0.6, 0.3]))
    assert state.recent_contacts[0, 1] == 1 and state.recent_contacts[1, 0] == 1


def test_one_advance_equals_many_small_ones():
    a, b = _busy_state(seed=1), _busy_state(seed=1)
    advance_days(a, 3.0)
    for _ in range(4):
        advance_days(b, 0.75)
    np.testing.assert_allclose(observation(a), observation(b), rtol=1e-5, atol=1e-6)


def _assert_same_state(a: ProfileState, b: ProfileState) -> None:
    for name, values in a.to_dict().items():
        np.testing.assert_allclose(np.array(values, dtype=float), np.array(b.to_dict()[name], dtype=float),
                                   atol=1e-9, err_msg=name)


@pytest.mark.parametrize("days_ago", [0.0, 0.4, 2.3, 9.0, 45.0])
def test_a_withdrawn_contact_leaves_the_profile_as_if_never_made(days_ago):
    made, never = _busy_state(seed=3), _busy_state(seed=3)
    channel = 1
    before = never.days_since_contact[:3, channel].copy()
    record_contact(made, [0, 1, 2], channel, discounted=True)
    advance_days(made, days_ago)
    advance_days(never, days_ago)
    withdraw_contact(made, [0, 1, 2], channel, days_ago, discounted=True,
                     previous_days_since=before + days_ago)
    _assert_same_state(made, never)


def test_withdrawing_an_older_contact_keeps_the_recency_of_a_later_one():
    state = ProfileState.empty(1)
    record_contact(state, [0], 0)
    advance_days(state, 3.0)
    record_contact(state, [0], 0)
    advance_days(state, 1.0)
    withdraw_contact(state, [0], 0, 4.0)
    assert state.days_since_contact[0, 0] == pytest.approx(1.0)
    assert state.contacts[0, 0] == pytest.approx(0.5 ** (1.0 / F.ENGAGEMENT_HALF_LIFE_DAYS))
    assert state.recent_contacts[0].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("days_ago", [0.0, 0.7, 5.5, 40.0])
def test_a_past_contact_counts_as_if_recorded_then(days_ago):
    late, then = _busy_state(seed=4), _busy_state(seed=4)
    record_contact(then, [1], 2)
    advance_days(then, days_ago)
    advance_days(late, days_ago)
    record_past_contact(late, [1], 2, days_ago)
    _assert_same_state(late, then)


def test_a_contact_in_the_future_cannot_be_withdrawn():
    with pytest.raises(ValueError, match="days_ago"):
        withdraw_contact(ProfileState.empty(1), [0], 0, -1.0)


def test_repeated_rows_add_up_and_match_a_boolean_mask():
    by_index, by_mask = ProfileState.empty(3), ProfileState.empty(3)
    record_contact(by_index, [1, 1], [2, 2])
    record_contact(by_mask, np.array([False, True, False]), 2)
    record_contact(by_mask, np.array([False, True, False]), 2)
    np.testing.assert_array_equal(by_index.contacts, by_mask.contacts)
    assert by_index.contacts[1, 2] == 2


def test_purchase_updates_frequency_value_and_discount_share():
    state = ProfileState.empty(1)
    record_purchase(state, [0], 80.0, discounted=True)
    record_purchase(state, [0], 20.0)
    assert state.lifetime_revenue[0] == 100 and state.lifetime_purchases[0] == 2
    assert state.discounted_purchases[0] == 1 and state.days_since_purchase[0] == 0


def test_unsubscribe_withdraws_consent_on_that_channel_only():
    state = ProfileState.empty(1)
    record_unsubscribe(state, [0], CHANNELS.index("sms"))
    assert state.consent[0].tolist() == [1.0, 0.0, 1.0, 1.0]
    set_consent(state, [0], CHANNELS.index("sms"), True)
    assert state.consent[0].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_profile_round_trips_through_json():
    state = _busy_state()
    state.days_since_purchase[0] = np.inf
    restored = ProfileState.from_dict(json.loads(json.dumps(state.to_dict())))
    np.testing.assert_array_equal(observation(restored), observation(state))
    assert restored.days_since_purchase[0] == np.inf


def test_take_selects_customers():
    state = _busy_state()
    np.testing.assert_array_equal(observation(state.take([3, 1])), observation(state)[[3, 1]])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: advance_days(s, -1.0), ValueError, "days must be finite"),
        (lambda s: advance_days(s, np.inf), ValueError, "days must be finite"),
        (lambda s: record_contact(s, [0], 9), ValueError, "channel_idx"),
        (lambda s: record_open(s, [5], 0), IndexError, "out of range"),
        (lambda s: record_purchase(s, [0], -3.0), ValueError, "net_revenue"),
        (lambda s: record_click(s, np.array([True]), 0), ValueError, "boolean rows mask"),
        (lambda s: ProfileState.from_dict({"contacts": []}), ValueError, "lacks"),
    ],
)
def test_bad_inputs_are_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call(ProfileState.empty(2))


def test_a_custom_channel_has_its_own_counters_and_words():
    from agents.catalogue import DEFAULT_CHANNELS, Channel, default_catalogue
    from agents.features import FeatureLayout

    catalogue = default_catalogue((*DEFAULT_CHANNELS[:1], Channel("whatsapp", "WhatsApp", 0.03)))
    layout = FeatureLayout.for_catalogue(catalogue)
    assert layout.names[:10] == tuple(
        f"{c}_{name}" for c in ("email", "whatsapp")
        for name in ("open_rate", "click_rate", "contacts", "days_since_contact", "consent")
    )
    assert layout.labels["whatsapp_open_rate"] == "WhatsApp open rate (last ~30 days)"
    state = ProfileState.empty(2, n_channels=2)
    record_contact(state, [1], 1)
    obs = observation(state)
    assert obs.shape == (2, layout.n_features) and layout.observation_space().contains(obs[0])
    assert obs[1, layout.index("whatsapp_contacts")] > 0 == obs[1, layout.index("email_contacts")]


def test_unscaled_values_read_the_vector_back_in_the_marketers_units():
    """The inverse of the scaling (what explanations quote when only the vector was stored)."""
    state = ProfileState.empty(2, utc_offset_hours=np.array([2.0, -5.0]))
    record_contact(state, [0, 0, 1], [1, 1, 0])
    record_open(state, [0], [1])
    record_purchase(state, [0], 120.0, discounted=True)
    advance_days(state, 3.0)
    vector = observation(state)
    raw, _ = F.raw_feature_values(state)
    back = F.unscaled_values(vector, FEATURE_NAMES)
    assert set(back) == set(FEATURE_NAMES)
    for name in FEATURE_NAMES:  # "never" (inf) comes back as inf
        np.testing.assert_allclose(back[name], raw[name], rtol=1e-5, atol=1e-5, err_msg=name)
