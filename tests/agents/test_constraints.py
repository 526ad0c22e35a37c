import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.catalogue import default_catalogue
from agents.constraints import (
    ContactRules,
    ContactState,
    MaskReason,
    contact_mask,
    describe_reasons,
    nearest_contact_hours,
    send_hours,
    window_in_quiet_hours,
)
from agents.envs import CustomerJourneyEnv

_DEMO = default_catalogue()
CHANNELS, WINDOW_NAMES = _DEMO.channel_keys, _DEMO.window_keys
EMAIL, SMS = CHANNELS.index("email"), CHANNELS.index("sms")
MORNING, MIDDAY, EVENING = (WINDOW_NAMES.index(w) for w in ("morning", "midday", "evening"))
DAY = 24.0


def _state(n=1, *, now=0.0, sends=(), offset=0.0, **overrides):
    """n customers deciding at `now`; `sends` = [(send hour, channel index), ...] for each."""
    per_channel = [[h for h, c in sends if c == channel] for channel in range(len(CHANNELS))]
    hours = np.full((n, len(CHANNELS), max(1, *map(len, per_channel))), -np.inf)
    for channel, listed in enumerate(per_channel):
        hours[:, channel, : len(listed)] = sorted(listed, reverse=True)
    fields = dict(
        now_hours=np.full(n, now),
        contact_hours=hours,
        consent=np.ones((n, len(CHANNELS)), bool),
        utc_offset_hours=np.full(n, offset),
        suppressed=np.zeros(n, bool),
    )
    fields.update({k: np.asarray(v) for k, v in overrides.items()})
    return ContactState(**fields)


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
    assert all(rules.needs_consent(channel) for channel in CHANNELS)


# ----------------------------------------------------------------------------- send time
def test_a_window_still_to_open_today_sends_at_its_start():
    # decided at 07:00 UTC for a UTC customer: morning 08:00, midday 12:00, evening 18:00 today
    assert send_hours(np.array([7.0]), np.array([0.0])).tolist() == [[8.0, 12.0, 18.0]]


def test_an_open_window_sends_at_once_and_a_closed_one_at_its_next_opening():
    # 09:30: the morning window is open (send now); at 21:30 every window has closed today
    assert send_hours(np.array([9.5]), np.array([0.0])).tolist() == [[9.5, 12.0, 18.0]]
    assert send_hours(np.array([21.5]), np.array([0.0])).tolist() == [[32.0, 36.0, 42.0]]


def test_send_windows_are_in_the_customers_own_local_time():
    # 07:00 UTC is 02:00 in UTC-5 (morning 08:00 local = 13:00 UTC) and 16:00 in UTC+9
    # (morning and midday have closed there: tomorrow 08:00 / 12:00 local)
    send = send_hours(np.array([7.0, 7.0]), np.array([-5.0, 9.0]))
    assert send[0].tolist() == [13.0, 17.0, 23.0]
    assert send[1].tolist() == [23.0, 27.0, 9.0]
    local = np.mod(send + np.array([[-5.0], [9.0]]), DAY)
    windows = _DEMO.send_windows * 2
    assert [(w.start_hour <= h < w.end_hour) for h, w in zip(local.ravel(), windows)] == [True] * 6


def test_an_offset_per_window_is_used_at_that_windows_send_time():
    # a daylight-saving change before the evening send: that window uses the later offset
    send = send_hours(np.array([7.0]), np.array([[0.0, 0.0, 1.0]]))
    assert send.tolist() == [[8.0, 12.0, 17.0]]


# ----------------------------------------------------------------------------- the rules
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


def test_the_minimum_gap_is_measured_between_send_times_not_decision_times(catalogue):
    # the case: decided 07:00 day 1 for the 18:00 window, then 07:00 on day 3. The
    # decisions are 48 h apart but a morning send would follow the last message by only 38 h.
    rules = ContactRules(min_gap_hours=48, consent_required=frozenset())
    _, reasons = contact_mask(catalogue, rules, _state(now=2 * DAY + 7, sends=[(18.0, EMAIL)]))
    assert _reason(catalogue, reasons, "email", window="morning") == MaskReason.MIN_GAP
    assert _reason(catalogue, reasons, "email", window="midday") == MaskReason.MIN_GAP  # 42 h
    assert _reason(catalogue, reasons, "email", window="evening") == 0  # 48 h


def test_a_channels_own_minimum_gap_spaces_only_its_own_contacts(catalogue):
    # an SMS sent 30 h ago: SMS keeps 72 h apart, other channels only the policy's 24 h
    rules = ContactRules(min_gap_hours=24, channel_min_gap_hours={"sms": 72},
                         consent_required=frozenset())
    _, reasons = contact_mask(catalogue, rules, _state(now=30.0 + 7, sends=[(7.0, SMS)]))
    assert _reason(catalogue, reasons, "sms", window="evening") == MaskReason.MIN_GAP
    assert _reason(catalogue, reasons, "email", window="evening") == 0
    assert rules.lookback_hours >= 72
    words = describe_reasons(MaskReason.MIN_GAP, catalogue.actions[
        catalogue.index_of("sms", "content", "evening")], rules)
    assert "minimum gap of 72 h" in " ".join(words)


def test_the_minimum_gap_holds_before_a_contact_still_scheduled(catalogue):
    # decided yesterday 22:00 for this morning's 08:00 send, now 07:00: an email at midday would
    # land 4 h after it, one in the evening 10 h after
    rules = ContactRules(min_gap_hours=8, consent_required=frozenset())
    _, reasons = contact_mask(catalogue, rules, _state(now=7.0, sends=[(8.0, SMS)]))
    assert _reason(catalogue, reasons, "email", window="morning") == MaskReason.MIN_GAP
    assert _reason(catalogue, reasons, "email", window="midday") == MaskReason.MIN_GAP
    assert _reason(catalogue, reasons, "email", window="evening") == 0


def test_nearest_contact_hours_are_signed_from_each_send(catalogue):
    # last message 18:00 on day 0, decided 07:00 on day 2: morning, midday and evening sends
    past = _state(now=2 * DAY + 7, sends=[(18.0, EMAIL)])
    assert nearest_contact_hours(past).tolist() == [[38.0, 42.0, 48.0]]
    # and one more scheduled for 20:00 today: nearer to each of today's sends, after them
    scheduled = _state(now=2 * DAY + 7, sends=[(18.0, EMAIL), (2 * DAY + 20, SMS)])
    assert nearest_contact_hours(scheduled).tolist() == [[-12.0, -8.0, -2.0]]
    assert np.isnan(nearest_contact_hours(_state())).all()


def test_the_minimum_gap_words_say_how_close_the_other_contact_is(catalogue, rules):
    email = catalogue.actions[catalogue.index_of("email", "content", "morning")]
    assert describe_reasons(MaskReason.MIN_GAP, email, rules, contact_gap_hours=38.0) == [
        "last contact 38 h before this send (minimum gap of 48 h)"]
    assert describe_reasons(MaskReason.MIN_GAP, email, rules, contact_gap_hours=-4.0) == [
        "next scheduled contact 4 h after this send (minimum gap of 48 h)"]


def test_channel_cap_blocks_once_the_rolling_window_is_full(catalogue, rules):
    # email cap 2 per 7 days: one email sent 3 days ago leaves room, two do not
    one = _state(now=10 * DAY, sends=[(7 * DAY + 8, EMAIL)])
    two = _state(now=10 * DAY, sends=[(5 * DAY + 8, EMAIL), (7 * DAY + 8, EMAIL)])
    _, reasons = contact_mask(catalogue, rules, one)
    assert _reason(catalogue, reasons, "email") == 0
    _, reasons = contact_mask(catalogue, rules, two)
    assert _reason(catalogue, reasons, "email") == MaskReason.CHANNEL_CAP
    assert _reason(catalogue, reasons, "push") == 0


def test_a_cap_window_is_counted_at_send_time_to_the_hour(catalogue):
    # 1 SMS per 7 days, the last one sent at 18:00 on day 0: on day 7 at 07:00 the morning send
    # (08:00, 166 h later) still falls in its window, the evening one (18:00, 168 h) does not
    rules = ContactRules(channel_caps={"sms": (1, 7)}, consent_required=frozenset())
    _, reasons = contact_mask(catalogue, rules, _state(now=7 * DAY + 7, sends=[(18.0, SMS)]))
    assert _reason(catalogue, reasons, "sms", window="morning") == MaskReason.CHANNEL_CAP
    assert _reason(catalogue, reasons, "sms", window="evening") == 0


def test_a_cap_counts_a_contact_scheduled_after_this_send(catalogue):
    # 2 emails per 7 days: one sent 6 days ago and one scheduled for this evening; a morning
    # email would put three in the 7 days that end this evening
    rules = ContactRules(channel_caps={"email": (2, 7)}, consent_required=frozenset())
    state = _state(now=7.0, sends=[(-6 * DAY + 9, EMAIL), (18.0, EMAIL)])
    _, reasons = contact_mask(catalogue, rules, state)
    assert _reason(catalogue, reasons, "email", window="morning") == MaskReason.CHANNEL_CAP


def test_overall_cap_blocks_every_channel(catalogue, rules):
    sends = [(-k * DAY - 12, c) for k, c in enumerate([0, 1, 2, 2])]  # 4 contacts in 4 days
    _, reasons = contact_mask(catalogue, rules, _state(sends=sends))
    assert all(MaskReason.OVERALL_CAP in MaskReason(int(r)) for r in reasons[0, 1:])


def test_a_window_inside_local_quiet_hours_is_blocked_for_every_time_zone(catalogue):
    rules = ContactRules(quiet_hours=(20, 8), consent_required=frozenset())
    blocked = window_in_quiet_hours(rules, 2)
    assert blocked[:, EVENING].all() and not blocked[:, MORNING].any()
    _, reasons = contact_mask(catalogue, rules, _state(2, offset=-9.0))
    assert _reason(catalogue, reasons, "sms", window="evening", row=1) == MaskReason.QUIET_HOURS
    assert _reason(catalogue, reasons, "sms", window="morning", row=1) == 0


def test_quiet_hours_that_do_not_wrap():
    rules = ContactRules(quiet_hours=(12, 14))
    blocked = window_in_quiet_hours(rules)
    assert blocked[0, MIDDAY] and not blocked[0, MORNING] and not blocked[0, EVENING]


def test_a_window_touching_quiet_hours_at_its_end_is_allowed(rules):
    # the evening window is 18:00-21:00: it ends when quiet hours (21:00-08:00) begin
    assert not window_in_quiet_hours(rules)[0, EVENING]


def test_suppressed_and_disabled_actions_are_blocked_with_their_reason(catalogue, rules):
    enabled = np.ones(catalogue.n_actions, bool)
    enabled[catalogue.index_of("push", "content", "midday")] = False
    _, reasons = contact_mask(catalogue, rules, _state(2, suppressed=[True, False]), enabled)
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
        ({"channel_caps": {"email": 3}}, "must be \\(max contacts, window days\\)"),
        ({"overall_cap": (2.5, 7)}, "whole numbers"),
        ({"min_gap_hours": -1}, "min_gap_hours"),
        ({"channel_min_gap_hours": {"sms": float("nan")}}, "minimum gap for sms"),
        ({"quiet_hours": (21, 21)}, "start == end"),
        ({"quiet_hours": (24, 8)}, "0..23"),
        ({"campaign_utc_offset_hours": 20}, "campaign_utc_offset_hours"),
    ],
)
def test_bad_rules_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContactRules(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"now_hours": [np.nan]}, "now_hours must be finite"),
        ({"contact_hours": np.zeros((1, 2))}, "contact_hours must be"),
        ({"contact_hours": np.zeros((1, len(CHANNELS) + 1, 1))}, "consent must be"),
        ({"contact_hours": np.full((1, len(CHANNELS), 1), np.inf)}, "must be finite hours"),
        ({"contact_hours": np.full((1, len(CHANNELS), 1), np.nan)}, "must be finite hours"),
        ({"contact_hours": np.array([[[1.0, 2.0]] * len(CHANNELS)])}, "newest first"),
        ({"contact_hours": np.array([[[-np.inf, 2.0]] * len(CHANNELS)])}, "-inf padding last"),
        ({"utc_offset_hours": [15.0]}, "utc_offset_hours"),
        ({"utc_offset_hours": np.zeros((1, 2))}, "utc_offset_hours must have shape"),
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
# properties: whatever the decision times, windows, time zones and histories, a policy that
# honours the mask never breaks a rule *when the messages go out*
_cap = st.tuples(st.integers(0, 3), st.integers(1, 10))
_rules = st.builds(
    ContactRules,
    channel_caps=st.dictionaries(st.sampled_from(CHANNELS), _cap, max_size=4),
    overall_cap=st.none() | _cap,
    min_gap_hours=st.sampled_from([0.0, 20.0, 36.0, 48.0, 72.0]),
    quiet_hours=st.none()
    | st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda q: q[0] != q[1]),
    consent_required=st.frozensets(st.sampled_from(CHANNELS)),
)


def _assert_sends_keep_the_rules(rules, sends, offset):
    """sends: [(send hour, channel index)] of one customer, as they went out."""
    sends = sorted(sends)
    hours = np.array([h for h, _ in sends])
    for i, (hour, channel) in enumerate(sends):
        if i:
            assert hour - hours[i - 1] >= rules.min_gap_hours - 1e-9, (sends, i)
        name = CHANNELS[channel]
        if name in rules.channel_caps:  # trailing windows at every send cover every window
            limit, days = rules.channel_caps[name]
            same = [h for h, c in sends if c == channel and hour - days * DAY < h <= hour]
            assert len(same) <= limit, (name, sends)
        if rules.overall_cap is not None:
            limit, days = rules.overall_cap
            assert np.sum((hours > hour - days * DAY) & (hours <= hour)) <= limit, sends
        if rules.quiet_hours is not None:
            start, end = rules.quiet_hours
            local = np.mod(hour + offset, DAY)
            quiet = start <= local < end if start < end else (local >= start or local < end)
            assert not quiet, (hour, offset, rules.quiet_hours)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=_rules,
    offset=st.sampled_from([-9.5, -8.0, -5.0, 0.0, 1.0, 5.5, 9.0, 13.0]),
    decision_gaps=st.lists(st.floats(0.5, 60.0), min_size=5, max_size=25),
    history=st.lists(st.tuples(st.floats(-400.0, -1.0), st.integers(0, 3)), max_size=4),
    withdrawals=st.lists(st.tuples(st.integers(0, 24), st.integers(0, 3)), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_decisions_at_any_time_never_break_a_rule_at_send_time(
    rules, offset, decision_gaps, history, withdrawals, seed
):
    catalogue = default_catalogue()
    rng = np.random.default_rng(seed)
    # the history before this campaign must itself keep the rules for the property to hold:
    # keep only what a compliant sender could have sent
    past = []
    for hour, channel in sorted(history):
        try:
            _assert_sends_keep_the_rules(rules, [*past, (hour, channel)], offset)
        except AssertionError:
            continue
        past.append((hour, channel))
    sends = list(past)
    consent = np.ones(len(CHANNELS), bool)
    withdrawn_at, decided = {}, []
    now = 0.0
    for step, gap in enumerate(decision_gaps):
        now += gap
        for at_step, channel in withdrawals:
            if at_step == step:
                consent[channel] = False
                withdrawn_at.setdefault(channel, now)
        state = _state(now=now, sends=sends, offset=offset, consent=consent[None, :])
        allowed, _ = contact_mask(catalogue, rules, state)
        choices = np.flatnonzero(allowed[0, 1:]) + 1
        if not choices.size or rng.random() < 0.2:
            continue  # no contact
        a = int(rng.choice(choices))
        window = int(catalogue.window_index[a])
        send = float(send_hours(state.now_hours, state.utc_offset_hours)[0, window])
        assert send >= now
        channel = int(catalogue.channel_index[a])
        assert CHANNELS[channel] not in rules.consent_required or consent[channel]
        sends.append((send, channel))
        decided.append((now, channel))
    _assert_sends_keep_the_rules(rules, sends, offset)
    # a message scheduled before a withdrawal is cancelled by the console (released), not here
    for channel, at in withdrawn_at.items():
        if CHANNELS[channel] in rules.consent_required:
            assert not [t for t, c in decided if c == channel and t >= at]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=_rules, seed=st.integers(0, 2**16))
def test_the_simulator_never_sends_against_a_rule(rules, seed):
    env = CustomerJourneyEnv(
        "retail", num_customers=12, contact_rules=rules, horizon_days=40, seed=seed
    )
    rng = np.random.default_rng(seed)
    obs, info = env.reset()
    log = [[] for _ in range(env.num_envs)]  # (send hour, channel) of the current customer
    for _ in range(30):
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
                channel = int(env.catalogue.channel_index[int(info["action_sent"][row])])
                log[row].append((float(info["send_hours"][row]), channel))
    for row, sends in enumerate(log):
        _assert_sends_keep_the_rules(rules, sends, env.profile.utc_offset_hours[row])


# ----------------------------------------------------------------------------- any catalogue
def _whatsapp_catalogue(**window_days):
    from agents.catalogue import DEFAULT_OFFERS, Channel, SendWindow

    channels = (Channel("email", "Email", 0.05), Channel("whatsapp", "WhatsApp", 0.03))
    windows = (SendWindow("lunch", "Lunch 12:30-13:30", 12.5, 13.5, **window_days),)
    return default_catalogue(channels, DEFAULT_OFFERS[:1], windows)


def _two_channel_state(catalogue, now=0.0, sends=((), ())):
    hours = np.full((1, 2, 2), -np.inf)
    for c, listed in enumerate(sends):
        hours[0, c, : len(listed)] = sorted(listed, reverse=True)
    return ContactState(np.array([now]), hours, np.ones((1, 2), bool), np.zeros(1),
                        np.zeros(1, bool), catalogue.send_windows)


def test_a_window_sends_at_its_minutes():
    from agents.catalogue import SendWindow

    lunch = (SendWindow("lunch", "Lunch", 12.5, 13.5),)
    assert send_hours(np.array([7.0]), np.array([0.0]), lunch).tolist() == [[12.5]]
    assert send_hours(np.array([14.0]), np.array([0.0]), lunch).tolist() == [[36.5]]


def test_a_weekday_window_waits_for_its_next_day():
    from agents.catalogue import SendWindow

    # the clock's day 0 is a Thursday (1970-01-01, as unix time's)
    weekend = (SendWindow("weekend", "Weekend mornings", 9.0, 11.0, days=(5, 6)),)
    thursday_7am = np.array([7.0])
    assert send_hours(thursday_7am, np.array([0.0]), weekend).tolist() == [[2 * DAY + 9.0]]
    saturday_10am = np.array([2 * DAY + 10.0])
    assert send_hours(saturday_10am, np.array([0.0]), weekend).tolist() == [[2 * DAY + 10.0]]
    sunday_noon = np.array([3 * DAY + 12.0])  # closed for today: next Saturday
    assert send_hours(sunday_noon, np.array([0.0]), weekend).tolist() == [[9 * DAY + 9.0]]


def test_a_weekday_window_uses_the_customers_local_day():
    from agents.catalogue import SendWindow

    friday = (SendWindow("friday", "Friday", 9.0, 11.0, days=(4,)),)
    # Thursday 23:00 UTC is already Friday 09:00 in UTC+10: the window is open there
    now = np.array([23.0, 23.0])
    sent = send_hours(now, np.array([0.0, 10.0]), friday)
    assert sent[0, 0] == pytest.approx(DAY + 9.0)  # UTC: Friday 09:00
    assert sent[1, 0] == pytest.approx(23.0)  # UTC+10: open now


def test_a_custom_channels_cap_and_consent_hold():
    catalogue = _whatsapp_catalogue()
    rules = ContactRules(channel_caps={"whatsapp": (1, 7)}, consent_required=frozenset({"whatsapp"}))
    state = _two_channel_state(catalogue, now=7 * DAY, sends=((), (6 * DAY,)))
    allowed, reasons = contact_mask(catalogue, rules, state)
    whatsapp = catalogue.index_of("whatsapp", "content", "lunch")
    email = catalogue.index_of("email", "content", "lunch")
    assert MaskReason.CHANNEL_CAP in MaskReason(int(reasons[0, whatsapp]))
    assert allowed[0, email]  # email needs no consent in these rules, and is uncapped
    state.consent[:] = False
    assert MaskReason.CONSENT in MaskReason(int(contact_mask(catalogue, rules, state)[1][0, whatsapp]))
    assert contact_mask(catalogue, rules, state)[0][0, email]


def test_quiet_hours_skip_an_exempt_channel():
    catalogue = _whatsapp_catalogue()
    rules = ContactRules(quiet_hours=(12, 14), quiet_hours_exempt=frozenset({"whatsapp"}))
    allowed, reasons = contact_mask(catalogue, rules, _two_channel_state(catalogue))
    assert allowed[0, catalogue.index_of("whatsapp", "content", "lunch")]
    assert reasons[0, catalogue.index_of("email", "content", "lunch")] == MaskReason.QUIET_HOURS


@pytest.mark.parametrize("scheduled", [False, True])
def test_a_channel_exempt_from_the_overall_cap_neither_counts_nor_is_blocked(scheduled):
    catalogue = _whatsapp_catalogue()
    rules = ContactRules(overall_cap=(1, 7), overall_cap_exempt=frozenset({"whatsapp"}))
    later = 8 * DAY if scheduled else 6 * DAY  # a send scheduled after now takes the other path
    state = _two_channel_state(catalogue, now=7 * DAY, sends=((later,), ()))
    allowed, reasons = contact_mask(catalogue, rules, state)
    assert allowed[0, catalogue.index_of("whatsapp", "content", "lunch")]
    email = catalogue.index_of("email", "content", "lunch")
    assert MaskReason.OVERALL_CAP in MaskReason(int(reasons[0, email]))
    # and a WhatsApp message does not fill the overall cap for email
    state = _two_channel_state(catalogue, now=7 * DAY, sends=((), (later,)))
    assert contact_mask(catalogue, rules, state)[0][0, email]


def test_a_state_of_another_catalogue_is_refused():
    catalogue = _whatsapp_catalogue()
    with pytest.raises(ValueError, match="channels"):
        contact_mask(catalogue, ContactRules(), ContactState.fresh(1))


def test_reasons_name_a_custom_channel_by_its_label():
    catalogue = _whatsapp_catalogue()
    action = catalogue.actions[catalogue.index_of("whatsapp", "content", "lunch")]
    rules = ContactRules(channel_caps={"whatsapp": (2, 7)}, quiet_hours=(12, 14))
    words = describe_reasons(MaskReason.CHANNEL_CAP | MaskReason.QUIET_HOURS, action, rules,
                             catalogue=catalogue)
    assert words == ["WhatsApp cap 2 per 7 days reached",
                     "Lunch 12:30-13:30 window falls in the customer's quiet hours (12:00-14:00)"]
