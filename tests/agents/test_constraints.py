import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.catalogue import CHANNELS, SEND_WINDOWS, WINDOW_NAMES
from agents.constraints import (
    ContactRules,
    ContactState,
    MaskReason,
    contact_mask,
    describe_reasons,
    window_in_quiet_hours,
)
from agents.envs import CustomerJourneyEnv

SMS = CHANNELS.index("sms")


def _state(n=1, **overrides):
    state = ContactState.fresh(n)
    for key, value in overrides.items():
        setattr(state, key, np.asarray(value))
    return ContactState(
        state.contacts_in_window,
        state.overall_in_window,
        state.hours_since_last_contact,
        state.consent,
        state.utc_offset_hours,
        state.suppressed,
    )


def _reason(catalogue, reasons, channel, offer="content", window="midday", row=0):
    return MaskReason(int(reasons[row, catalogue.index_of(channel, offer, window)]))


def test_default_rules_match_the_compliance_brief(rules):
    assert rules.channel_caps == {
        "email": (2, 7),
        "sms": (1, 7),
        "push": (3, 7),
        "call_centre": (1, 30),
    }
    assert (
        rules.overall_cap == (4, 7) and rules.min_gap_hours == 48 and rules.quiet_hours == (21, 8)
    )
    assert rules.consent_required == frozenset(CHANNELS)


def test_no_contact_is_allowed_even_when_everything_else_is_blocked(catalogue, rules):
    state = _state(suppressed=[True], consent=np.zeros((1, 4), bool))
    allowed, reasons = contact_mask(
        catalogue, rules, state, enabled=np.zeros(catalogue.n_actions, bool)
    )
    assert allowed[0, 0] and reasons[0, 0] == 0 and not allowed[0, 1:].any()


def test_missing_consent_blocks_only_that_channel(catalogue, rules):
    consent = np.ones((1, 4), bool)
    consent[0, SMS] = False
    allowed, reasons = contact_mask(catalogue, rules, _state(consent=consent))
    assert _reason(catalogue, reasons, "sms") == MaskReason.CONSENT
    assert _reason(catalogue, reasons, "email") == 0


def test_consent_is_ignored_on_channels_that_do_not_require_it(catalogue):
    rules = ContactRules(consent_required=frozenset({"email"}))
    allowed, _ = contact_mask(catalogue, rules, _state(consent=np.zeros((1, 4), bool)))
    assert allowed[0, catalogue.index_of("sms", "content", "midday")]
    assert not allowed[0, catalogue.index_of("email", "content", "midday")]


def test_channel_cap_blocks_once_the_window_is_full(catalogue, rules):
    below = np.zeros((2, 4))
    below[0, 0] = 1  # one email in the last 7 days: a second one is allowed
    below[1, 0] = 2  # two: the cap of 2 per 7 days is reached
    _, reasons = contact_mask(
        catalogue,
        rules,
        _state(
            2,
            contacts_in_window=below,
            overall_in_window=[0, 0],
            hours_since_last_contact=[np.inf] * 2,
            consent=np.ones((2, 4), bool),
            utc_offset_hours=[0, 0],
            suppressed=[False, False],
        ),
    )
    assert _reason(catalogue, reasons, "email", row=0) == 0
    assert _reason(catalogue, reasons, "email", row=1) == MaskReason.CHANNEL_CAP
    assert _reason(catalogue, reasons, "push", row=1) == 0


def test_overall_cap_blocks_every_channel(catalogue, rules):
    _, reasons = contact_mask(catalogue, rules, _state(overall_in_window=[4]))
    assert all(MaskReason.OVERALL_CAP in MaskReason(int(r)) for r in reasons[0, 1:])


def test_min_gap_depends_on_the_send_window_start(catalogue, rules):
    # last contact 40 h before today's midnight: morning (08:00 -> 48 h) is fine, but a
    # stricter gap of 50 h lets only the midday (12:00 -> 52 h) and evening windows through
    strict = ContactRules(min_gap_hours=50, consent_required=frozenset())
    _, reasons = contact_mask(catalogue, strict, _state(hours_since_last_contact=[40.0]))
    assert _reason(catalogue, reasons, "email", window="morning") == MaskReason.MIN_GAP
    assert _reason(catalogue, reasons, "email", window="midday") == 0
    _, reasons = contact_mask(catalogue, rules, _state(hours_since_last_contact=[40.0]))
    assert _reason(catalogue, reasons, "email", window="morning") == 0


def test_quiet_hours_wrap_midnight(catalogue, rules):
    # quiet 21:00-08:00 local; campaign windows in UTC
    offsets = np.array([0.0, 5.0, -9.0, 5.5])
    blocked = window_in_quiet_hours(rules, offsets)
    evening, morning, midday = (WINDOW_NAMES.index(w) for w in ("evening", "morning", "midday"))
    assert not blocked[0].any()  # UTC: 08-11, 12-14, 18-21 are all outside
    assert blocked[1, evening]  # +5: evening is 23:00-02:00 local
    assert not blocked[1, morning]  # +5: morning is 13:00-16:00 local
    assert blocked[2, morning] and blocked[2, midday]  # -9: 23:00-02:00 and 03:00-05:00 local
    assert blocked[3, evening]  # +5.5: 23:30-02:30
    _, reasons = contact_mask(catalogue, rules, _state(utc_offset_hours=[5.0]))
    assert _reason(catalogue, reasons, "sms", window="evening") == MaskReason.QUIET_HOURS


def test_quiet_hours_that_do_not_wrap():
    rules = ContactRules(quiet_hours=(12, 14))
    midday, morning = WINDOW_NAMES.index("midday"), WINDOW_NAMES.index("morning")
    blocked = window_in_quiet_hours(rules, np.array([0.0, -1.0, -2.0]))
    assert blocked[0, midday] and not blocked[0, morning]
    assert blocked[1, midday]  # 11:00-13:00 local overlaps 12-14
    assert not blocked[2, midday]  # 10:00-12:00 local only touches it


def test_a_window_touching_quiet_hours_at_its_end_is_allowed(rules):
    # UTC evening is 18:00-21:00: it ends when quiet hours begin
    assert not window_in_quiet_hours(rules, np.array([0.0]))[0, WINDOW_NAMES.index("evening")]


def test_suppressed_and_disabled_actions_are_blocked_with_their_reason(catalogue, rules):
    enabled = np.ones(catalogue.n_actions, bool)
    enabled[catalogue.index_of("push", "content", "midday")] = False
    _, reasons = contact_mask(
        catalogue,
        rules,
        _state(
            2,
            contacts_in_window=np.zeros((2, 4)),
            overall_in_window=[0, 0],
            hours_since_last_contact=[np.inf] * 2,
            consent=np.ones((2, 4), bool),
            utc_offset_hours=[0, 0],
            suppressed=[True, False],
        ),
        enabled,
    )
    assert MaskReason.SUPPRESSED in _reason(catalogue, reasons, "email", row=0)
    assert _reason(catalogue, reasons, "push", row=1) == MaskReason.DISABLED


def test_describe_reasons_speaks_the_marketers_language(catalogue, rules):
    sms = catalogue.actions[catalogue.index_of("sms", "discount_10", "evening")]
    words = describe_reasons(MaskReason.CONSENT | MaskReason.CHANNEL_CAP, sms, rules)
    assert words == ["no SMS consent", "SMS cap 1 per 7 days reached"]
    assert describe_reasons(0) == []
    assert "quiet hours" in describe_reasons(MaskReason.QUIET_HOURS, sms, rules)[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channel_caps": {"email": (-1, 7)}}, "max contacts must be >= 0"),
        ({"channel_caps": {"email": (1, 0)}}, "window must be >= 1 day"),
        ({"channel_caps": {"fax": (1, 7)}}, "unknown channel"),
        ({"channel_caps": {"email": 3}}, "must be \\(max contacts, window days\\)"),
        ({"overall_cap": (2.5, 7)}, "whole numbers"),
        ({"min_gap_hours": -1}, "min_gap_hours"),
        ({"quiet_hours": (21, 21)}, "start == end"),
        ({"quiet_hours": (24, 8)}, "0..23"),
        ({"consent_required": frozenset({"fax"})}, "unknown channel"),
        ({"campaign_utc_offset_hours": 20}, "campaign_utc_offset_hours"),
    ],
)
def test_bad_rules_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContactRules(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"contacts_in_window": np.zeros((1, 3))}, "contacts_in_window must be"),
        ({"overall_in_window": [-1.0]}, ">= 0"),
        ({"hours_since_last_contact": [np.nan]}, "hours_since_last_contact"),
        ({"utc_offset_hours": [15.0]}, "utc_offset_hours"),
        ({"suppressed": [True, False]}, "suppressed must have shape"),
    ],
)
def test_bad_contact_state_is_rejected(overrides, match):
    with pytest.raises(ValueError, match=match):
        _state(**overrides)


def test_enabled_of_the_wrong_shape_is_rejected(catalogue, rules):
    with pytest.raises(ValueError, match="enabled must be"):
        contact_mask(catalogue, rules, _state(), enabled=np.ones(3, bool))


# ---------------------------------------------------------------------------------------------
# property: a policy that honours the mask never breaks a cap, the gap or quiet hours
_cap = st.tuples(st.integers(0, 3), st.integers(1, 10))
_rules = st.builds(
    ContactRules,
    channel_caps=st.dictionaries(st.sampled_from(CHANNELS), _cap, max_size=4),
    overall_cap=st.none() | _cap,
    min_gap_hours=st.sampled_from([0.0, 20.0, 48.0, 72.0]),
    quiet_hours=st.none()
    | st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda q: q[0] != q[1]),
    consent_required=st.frozensets(st.sampled_from(CHANNELS)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=_rules, seed=st.integers(0, 2**16))
def test_honouring_the_mask_never_breaks_a_rule(rules, seed):
    env = CustomerJourneyEnv(
        "retail", num_customers=12, contact_rules=rules, horizon_days=40, seed=seed
    )
    rng = np.random.default_rng(seed)
    obs, info = env.reset()
    windows = np.array([SEND_WINDOWS[w][0] for w in WINDOW_NAMES])
    log = [[] for _ in range(env.num_envs)]  # (day, channel, send hour) of the current customer
    for day in range(30):
        mask = info["action_mask"]
        # favour contacts so that the caps are actually tested
        weights = np.where(mask, 1.0, 0.0)
        weights[:, 0] *= 0.1
        probs = weights / weights.sum(axis=1, keepdims=True)
        actions = (
            (rng.random((len(probs), 1)) > probs.cumsum(axis=1))
            .sum(axis=1)
            .clip(0, probs.shape[1] - 1)
        )
        obs, _, _, _, info = env.step(actions)
        assert info["cap_violations"].sum() == 0
        for row in range(env.num_envs):
            if info["reset"][row]:
                log[row] = []
            elif info["contacted"][row]:
                a = int(info["action_sent"][row])
                log[row].append(
                    (
                        day,
                        int(env.catalogue.channel_index[a]),
                        day * 24 + windows[env.catalogue.window_index[a]],
                        int(env.catalogue.window_index[a]),
                    )
                )
    for row, sends in enumerate(log):
        offset = env.profile.utc_offset_hours[row]
        for i, (day, channel, hour, window) in enumerate(sends):
            name = CHANNELS[channel]
            if name in rules.channel_caps:
                limit, w = rules.channel_caps[name]
                assert (
                    sum(1 for d, c, _, _ in sends if c == channel and day - w < d <= day) <= limit
                )
            if rules.overall_cap is not None:
                limit, w = rules.overall_cap
                assert sum(1 for d, _, _, _ in sends if day - w < d <= day) <= limit
            if i:
                assert hour - sends[i - 1][2] >= rules.min_gap_hours
            if rules.quiet_hours is not None:
                assert not window_in_quiet_hours(rules, np.array([offset]))[0, window]
            if name in rules.consent_required:
                pass  # consent at send time is checked by the mask; unsubscribes may follow
