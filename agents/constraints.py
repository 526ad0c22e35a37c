"""Action masks: which actions the contact rules allow for each customer, and why not.

A compliance officer writes `ContactRules` (consent, frequency caps over rolling windows, minimum
gap, quiet hours, suppression); `contact_mask` turns them into a bool (n, A) mask plus a MaskReason
bit set per blocked action, so the console can say *why* an action was not allowed. "No contact"
is always allowed: a policy can never be forced to break a rule.

Time conventions (shared by the simulator and the console): every rule is counted at the time a
message goes out, not when it was decided (`send_hours`, the one definition). Send windows are in
the customer's own local time, as quiet hours are. A contact sends at its window's start on the
decision day, at once if the window is open, or at the next opening if it has closed. Caps are
rolling windows of w x 24 hours: no window of that length may hold more than the cap's contacts of
a channel (or of all channels), counted at their send times, scheduled ones included. The minimum
gap holds between any two send times, whichever was decided first.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import numpy as np

from agents.catalogue import (
    DEFAULT_SEND_WINDOWS,
    Catalogue,
    CatalogueAction,
    SendWindow,
)


class MaskReason(enum.IntFlag):
    """Why an action was blocked (bit flags; 0 = allowed)."""

    CONSENT = 1
    CHANNEL_CAP = 2
    OVERALL_CAP = 4
    MIN_GAP = 8
    QUIET_HOURS = 16
    SUPPRESSED = 32
    DISABLED = 64


@dataclass(frozen=True)
class ContactRules:
    """The contact policy a compliance officer signs off.

    Channels are named by their keys (any catalogue's); `contact_mask` refuses rules that name a
    channel its catalogue lacks.

    :param channel_caps: channel -> (max contacts, rolling window in days); channels not listed
        are uncapped; a cap of 0 closes the channel
    :param overall_cap: (max contacts on any channel, rolling window in days), or None
    :param min_gap_hours: minimum hours between two contacts on any channel
    :param quiet_hours: (start, end) local hours in which nothing may be sent; wraps midnight when
        start > end (21, 8 = 21:00-08:00); None for no quiet hours
    :param consent_required: channels on which a contact needs the customer's consent; None:
        every channel
    :param campaign_utc_offset_hours: the time zone the send windows are written in
    :param quiet_hours_exempt: channels quiet hours do not apply to (e.g. an in-app message,
        read when the customer opens the app)
    :param overall_cap_exempt: channels whose contacts neither count toward the overall cap nor
        are blocked by it (e.g. a service message channel)
    :param channel_min_gap_hours: channel -> minimum hours between two contacts on that channel
        (on top of `min_gap_hours`, which spans every channel)
    """

    channel_caps: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    overall_cap: tuple[int, int] | None = None
    min_gap_hours: float = 0.0
    quiet_hours: tuple[int, int] | None = None
    consent_required: frozenset[str] | None = None
    campaign_utc_offset_hours: float = 0.0
    quiet_hours_exempt: frozenset[str] = frozenset()
    overall_cap_exempt: frozenset[str] = frozenset()
    channel_min_gap_hours: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        caps = {}
        for channel, cap in dict(self.channel_caps).items():
            caps[channel] = _check_cap(cap, f"channel cap for {channel}")
        object.__setattr__(self, "channel_caps", MappingProxyType(caps))
        if self.overall_cap is not None:
            object.__setattr__(self, "overall_cap", _check_cap(self.overall_cap, "overall cap"))
        if not np.isfinite(self.min_gap_hours) or self.min_gap_hours < 0:
            raise ValueError(f"min_gap_hours must be finite and >= 0, got {self.min_gap_hours!r}")
        gaps = {str(channel): float(gap) for channel, gap in dict(self.channel_min_gap_hours).items()}
        for channel, gap in gaps.items():
            if not np.isfinite(gap) or gap < 0:
                raise ValueError(f"minimum gap for {channel} must be finite and >= 0, got {gap!r}")
        object.__setattr__(self, "channel_min_gap_hours", MappingProxyType(gaps))
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            for hour in (start, end):
                if isinstance(hour, bool) or int(hour) != hour or not 0 <= hour <= 23:
                    raise ValueError(
                        f"quiet hours must be whole hours in 0..23, got {self.quiet_hours!r}"
                    )
            if start == end:
                raise ValueError("quiet hours start == end is ambiguous (never or always?)")
            object.__setattr__(self, "quiet_hours", (int(start), int(end)))
        if self.consent_required is not None:
            object.__setattr__(self, "consent_required", frozenset(self.consent_required))
        for name in ("quiet_hours_exempt", "overall_cap_exempt"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        if (
            not np.isfinite(self.campaign_utc_offset_hours)
            or abs(self.campaign_utc_offset_hours) > 14
        ):
            raise ValueError("campaign_utc_offset_hours must lie in [-14, 14]")

    def needs_consent(self, channel: str) -> bool:
        return self.consent_required is None or channel in self.consent_required

    def min_gap_on(self, channel: str | None) -> float:
        """The minimum gap a contact on `channel` keeps: the overall one or the channel's own."""
        return max(float(self.min_gap_hours), self.channel_min_gap_hours.get(channel, 0.0)
                   if channel else 0.0)

    @property
    def longest_window_days(self) -> int:
        """Days of contact history needed to evaluate every cap."""
        windows = [w for _, w in self.channel_caps.values()]
        if self.overall_cap is not None:
            windows.append(self.overall_cap[1])
        return max([1, *windows])

    @property
    def lookback_hours(self) -> float:
        """How far before a send the rules look: the longest cap window or minimum gap."""
        return max(self.longest_window_days * 24.0, float(self.min_gap_hours),
                   *self.channel_min_gap_hours.values())


def _check_cap(cap: tuple[int, int], what: str) -> tuple[int, int]:
    try:
        limit, window = cap
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (max contacts, window days), got {cap!r}") from None
    for value in (limit, window):
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"{what} must be whole numbers, got {cap!r}")
    if limit < 0:
        raise ValueError(f"{what}: max contacts must be >= 0, got {limit}")
    if window < 1:
        raise ValueError(f"{what}: window must be >= 1 day, got {window}")
    return int(limit), int(window)


def default_contact_rules() -> ContactRules:
    """2 emails / 7 days, 1 SMS / 7 days, 3 push / 7 days, 1 call / 30 days, 4 contacts / 7 days,
    48 h between contacts, quiet hours 21:00-08:00 local, consent required on every channel
    (the demo catalogue's channels)."""
    return ContactRules(
        channel_caps={"email": (2, 7), "sms": (1, 7), "push": (3, 7), "call_centre": (1, 30)},
        overall_cap=(4, 7),
        min_gap_hours=48.0,
        quiet_hours=(21, 8),
    )


@dataclass
class ContactState:
    """What the rules need to know about n customers' contacts, on one clock in hours.

    Every time here is on the caller's clock, in hours: unix time / 3600 in the console, the
    simulation's hours in the simulator. Contacts are counted at the time their message goes out
    (`send_hours`), past or still scheduled: a message decided yesterday for this evening counts
    this evening, so caps and the minimum gap hold when the message arrives.

    :param now_hours: (n,) when the decision is made
    :param contact_hours: (n, C, R) send times of each channel's contacts (the catalogue's
        channel order; sent
        or scheduled, released ones left out), newest first, -inf ("never") padding the end.
        The rules are exact when each channel lists all its contacts since
        `ContactRules.lookback_hours` before now, or, where none is scheduled after now, at least
        its R most recent with R >= every cap's max contacts (what the simulator keeps)
    :param consent: (n, C) bool
    :param utc_offset_hours: (n,) the customer's time zone, or (n, W) its offset at each send
        window's send time (where a daylight-saving change falls before the send)
    :param suppressed: (n,) bool, customers on the suppression list (do not contact at all)
    :param send_windows: the catalogue's send windows (when a message decided now goes out)
    """

    now_hours: np.ndarray
    contact_hours: np.ndarray
    consent: np.ndarray
    utc_offset_hours: np.ndarray
    suppressed: np.ndarray
    send_windows: tuple[SendWindow, ...] = DEFAULT_SEND_WINDOWS
    check: bool = field(default=True, repr=False)
    """False only for arrays a caller keeps valid itself every step (the simulator's own)."""

    def __post_init__(self) -> None:
        if not self.check:
            return
        self.now_hours = np.asarray(self.now_hours, dtype=np.float64).reshape(-1)
        self.contact_hours = np.asarray(self.contact_hours, dtype=np.float64)
        n, n_c = self.now_hours.shape[0], self.contact_hours.shape[1]
        if not np.all(np.isfinite(self.now_hours)):
            raise ValueError("now_hours must be finite")
        if self.contact_hours.ndim != 3 or self.contact_hours.shape[:2] != (n, n_c):
            raise ValueError(
                f"contact_hours must be (n, {n_c}, R) with n = {n}, got {self.contact_hours.shape}"
            )
        if np.isnan(self.contact_hours).any() or (self.contact_hours == np.inf).any():
            raise ValueError("contact send times must be finite hours, or -inf for an unused slot")
        if (self.contact_hours[..., 1:] > self.contact_hours[..., :-1]).any():
            raise ValueError("each channel's contact_hours must be newest first, -inf padding last")
        self.utc_offset_hours = np.asarray(self.utc_offset_hours).astype(np.float64)
        n_w = len(self.send_windows)
        if self.utc_offset_hours.shape not in ((n,), (n, n_w)):
            raise ValueError(
                f"utc_offset_hours must have shape ({n},) or ({n}, {n_w}), "
                f"got {self.utc_offset_hours.shape}"
            )
        if np.any(~np.isfinite(self.utc_offset_hours)) or np.any(
            np.abs(self.utc_offset_hours) > 14
        ):
            raise ValueError("utc_offset_hours must lie in [-14, 14]")
        self.suppressed = _vector(self.suppressed, n, "suppressed", bool)
        self.consent = np.asarray(self.consent).astype(bool)
        if self.consent.shape != (n, n_c):
            raise ValueError(f"consent must be ({n}, {n_c}), got {self.consent.shape}")

    @classmethod
    def fresh(
        cls,
        n: int,
        utc_offset_hours: float | np.ndarray = 0.0,
        consent: bool = True,
        now_hours: float | np.ndarray = 0.0,
        catalogue: Catalogue | None = None,
    ) -> ContactState:
        """n customers never contacted, with (or without) consent on every channel of
        `catalogue` (default: the demo catalogue's)."""
        catalogue = catalogue or Catalogue.from_actions(())
        n_c = len(catalogue.channels)
        return cls(
            np.broadcast_to(np.asarray(now_hours, dtype=np.float64), (n,)),
            np.full((n, n_c, 1), -np.inf),
            np.full((n, n_c), consent),
            np.broadcast_to(utc_offset_hours, (n,)),
            np.zeros(n, dtype=bool),
            catalogue.send_windows,
        )

    def __len__(self) -> int:
        return int(self.now_hours.shape[0])

    @cached_property
    def send_hours(self) -> np.ndarray:
        """(n, W) when a message decided now for each send window goes out (`send_hours`)."""
        return send_hours(self.now_hours, self.utc_offset_hours, self.send_windows)


def _vector(value: object, n: int, name: str, dtype: type) -> np.ndarray:
    array = np.asarray(value).astype(dtype)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
    return array


_EPOCH_WEEKDAY = 3
"""Weekday (Monday = 0) of the clock's day 0: 1970-01-01, a Thursday, is unix time's; the
simulator's clock starts on a Thursday too."""


def _window_table(send_windows: tuple[SendWindow, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """((W, 2) local [start, end) hours, (W, 7) days from a weekday to the window's next opening
    day after it, or None when every window opens every day)."""
    hours = np.array([(w.start_hour, w.end_hour) for w in send_windows], dtype=np.float64)
    if all(len(w.days) == 7 for w in send_windows):
        return hours, None
    ahead = np.zeros((len(send_windows), 7), dtype=np.float64)
    for w, window in enumerate(send_windows):
        for weekday in range(7):
            ahead[w, weekday] = next(k for k in range(1, 8) if (weekday + k) % 7 in window.days)
    return hours, ahead


def send_hours(
    now_hours: np.ndarray,
    utc_offset_hours: np.ndarray,
    send_windows: tuple[SendWindow, ...] = DEFAULT_SEND_WINDOWS,
) -> np.ndarray:
    """(n, W) when a message decided at `now_hours` for each send window goes out.

    The one definition of send time, shared by the console and the simulator. Send windows are in
    the customer's own local time: a window still to open today sends at its start, an open window
    sends at once, a window that has closed today (or does not open today: a window may open on
    some weekdays only) sends at its next opening. All on the caller's clock in hours, with local
    time = clock + utc offset (so the clock's zero must be a UTC midnight, as unix time's is).

    :param now_hours: (n,) decision times
    :param utc_offset_hours: (n,) offsets, or (n, W) the offset at each window's send time
    :param send_windows: the catalogue's send windows (W)
    """
    now = np.asarray(now_hours, dtype=np.float64).reshape(-1, 1)
    offsets = np.asarray(utc_offset_hours, dtype=np.float64)
    offsets = offsets.reshape(-1, 1) if offsets.ndim == 1 else offsets
    hours, days_ahead = _window_table(tuple(send_windows))
    local = now + offsets
    day = np.floor(local / 24.0)
    midnight = day * 24.0  # local midnight starting the decision's day
    hour = local - midnight
    start, end = hours[None, :, 0], hours[None, :, 1]
    if days_ahead is None:
        opens_at = (midnight - offsets) + np.where(hour < start, start, start + 24.0)
        return np.where((hour >= start) & (hour < end), now, opens_at)  # open: exactly now
    weekday = ((day.astype(np.int64) + _EPOCH_WEEKDAY) % 7) * np.ones_like(start, dtype=np.int64)
    window = np.arange(hours.shape[0])[None, :]
    today = days_ahead[window, (weekday - 1) % 7] == 1.0  # the day after yesterday is an opening
    later = np.where(today & (hour < start), 0.0, days_ahead[window, weekday])
    opens_at = (midnight - offsets) + 24.0 * later + start
    return np.where(today & (hour >= start) & (hour < end), now, opens_at)


def window_in_quiet_hours(
    rules: ContactRules,
    n: int = 1,
    send_windows: tuple[SendWindow, ...] = DEFAULT_SEND_WINDOWS,
) -> np.ndarray:
    """(n, W) bool: send window w overlaps local quiet hours.

    Windows and quiet hours are both in the customer's local time, so a window either always or
    never overlaps them; blocking the whole window means no send time inside it is quiet.
    """
    blocked = np.zeros(len(send_windows), dtype=bool)
    if rules.quiet_hours is not None:
        q_start, q_end = rules.quiet_hours
        quiet = [(q_start, q_end)] if q_start < q_end else [(q_start, 24.0), (0.0, q_end)]
        for w, window in enumerate(send_windows):
            blocked[w] = any(window.start_hour < qb and qa < window.end_hour for qa, qb in quiet)
    return np.broadcast_to(blocked, (n, len(send_windows))).copy()


def nearest_contact_hours(state: ContactState) -> np.ndarray:
    """(n, W) hours from each send window's send time back to the customer's nearest other
    contact (negative: that contact goes out after this send); NaN where there is none.

    What the minimum gap is measured on, and what the explanations quote ("last contact 38 h
    before this send").
    """
    send = state.send_hours
    sends = state.contact_hours.reshape(len(state), -1)
    apart = send[:, :, None] - sends[:, None, :]  # (n, W, K)
    nearest = np.argmin(np.abs(apart), axis=2)
    gap = np.take_along_axis(apart, nearest[:, :, None], axis=2)[:, :, 0]
    return np.where(np.isinf(gap), np.nan, gap)  # inf: the nearest slot was unused


def _rules_at_send_time(
    rules: ContactRules, state: ContactState, send: np.ndarray, channels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel cap full (n, C, W), overall cap full (n, W), minimum gap too close (n, W)) for
    one more contact at each window's send time.

    Where no contact is scheduled after now (the simulator, most decisions), every send before
    the candidate counts in a trailing window, so a cap of L is full exactly when the channel's
    L-th most recent send falls inside it, and the gap only needs the latest send: (n, W) work.
    Otherwise every window that holds the candidate is counted (`_most_in_any_window`).
    Channels exempt from the overall cap are not counted toward it.
    """
    if (state.contact_hours[:, :, 0] > state.now_hours[:, None]).any():  # newest first
        return _rules_around_scheduled_sends(rules, state, send, channels)
    return _rules_after_past_sends(rules, state.contact_hours, send, channels)


def _rules_after_past_sends(
    rules: ContactRules, newest: np.ndarray, send: np.ndarray, channels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_rules_at_send_time` when every listed send is before the candidates (`newest` (n, C, R)
    newest first): a cap of L is full while its L-th most recent send is in the trailing window."""
    n, n_c, n_w = newest.shape[0], newest.shape[1], send.shape[1]
    too_many = np.zeros((n, n_c, n_w), dtype=bool)
    capped = [(c, *rules.channel_caps[ch]) for c, ch in enumerate(channels)
              if ch in rules.channel_caps]
    if capped:
        capped_at, limits, days = (np.array(column) for column in zip(*capped))
        closed = limits == 0
        listed = (limits >= 1) & (limits <= newest.shape[2])  # else fewer than the cap
        kth = np.full((n, len(capped)), -np.inf)
        kth[:, listed] = newest[:, capped_at[listed], limits[listed] - 1]
        leaves = kth + 24.0 * days  # when that send leaves the cap's window
        for j, c in enumerate(capped_at):  # full while a send at `send` is before that
            too_many[:, c, :] = (leaves[:, j, None] > send) | closed[j]
    overall_full = np.zeros((n, n_w), dtype=bool)
    if rules.overall_cap is not None:
        limit, days = rules.overall_cap
        counted = [c for c, ch in enumerate(channels) if ch not in rules.overall_cap_exempt]
        flat = (newest if len(counted) == n_c else newest[:, counted, :]).reshape(n, -1)
        if limit == 0:
            overall_full[:] = True
        elif limit <= flat.shape[1]:
            kth = np.partition(flat, flat.shape[1] - limit, axis=1)[:, flat.shape[1] - limit]
            overall_full = kth[:, None] > send - 24.0 * days
    latest = newest[:, 0, 0].copy()  # -inf: never contacted
    for c in range(1, n_c):  # (column maxima beat a reduction over 4 strided values)
        np.maximum(latest, newest[:, c, 0], out=latest)
    too_close = send - latest[:, None] < rules.min_gap_hours
    return too_many, overall_full, too_close


def _rules_around_scheduled_sends(
    rules: ContactRules, state: ContactState, send: np.ndarray, channel_keys: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_rules_at_send_time` when some send is scheduled after now: every window that holds a
    candidate is counted, and the gap is measured to the nearest send on either side."""
    hours = state.contact_hours
    n, n_c, n_w = hours.shape[0], hours.shape[1], send.shape[1]
    channels = np.broadcast_to(np.arange(n_c)[None, :, None], hours.shape).reshape(n, -1)
    sends = hours.reshape(n, -1)
    too_many = np.zeros((n, n_c, n_w), dtype=bool)
    for c, channel in enumerate(channel_keys):
        if channel in rules.channel_caps:
            limit, days = rules.channel_caps[channel]
            most = _most_in_any_window(sends, channels == c, send, days * 24.0)
            too_many[:, c, :] = most + 1 > limit
    overall_full = np.zeros((n, n_w), dtype=bool)
    if rules.overall_cap is not None:
        limit, days = rules.overall_cap
        exempt = np.array([ch in rules.overall_cap_exempt for ch in channel_keys])
        counted = np.isfinite(sends) & ~exempt[channels]
        overall_full = _most_in_any_window(sends, counted, send, days * 24.0) + 1 > limit
    with np.errstate(invalid="ignore"):
        too_close = np.abs(nearest_contact_hours(state)) < rules.min_gap_hours
    return too_many, overall_full, too_close


def _most_in_any_window(
    sends: np.ndarray, counted: np.ndarray, candidate: np.ndarray, window_hours: float
) -> np.ndarray:
    """(n, W) the most counted contacts in any rolling window of `window_hours` that holds the
    candidate send time (the candidate itself not counted).

    :param sends: (n, K) send times (-inf pads); :param counted: (n, K) bool, which of them count;
    :param candidate: (n, W) candidate send times.

    The fullest such window ends at the candidate or at a counted send after it (slide a window
    right until its end meets a send: nothing leaves on the right), so those ends are enough.
    """
    s = np.where(counted, sends, np.nan)[:, None, :]  # (n, 1, K)
    t = candidate[:, :, None]  # (n, W, 1)
    with np.errstate(invalid="ignore"):
        most = ((s > t - window_hours) & (s <= t)).sum(axis=2)
        later = (s > t) & (s < t + window_hours)  # (n, W, K): sends after the candidate
        if later.any():
            ends = np.where(later, s, np.nan)[..., None]  # (n, W, K, 1) window ends
            inside = (s[:, :, None, :] > ends - window_hours) & (s[:, :, None, :] <= ends)
            most = np.maximum(most, inside.sum(axis=3).max(axis=2))
    return most


def contact_mask(
    catalogue: Catalogue,
    rules: ContactRules,
    state: ContactState,
    enabled: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(allowed (n, A) bool, reasons (n, A) uint8 MaskReason flags) for n customers.

    :param enabled: (A,) or (n, A) bool - actions the marketer switched on (None: all)
    """
    n, n_actions = len(state), catalogue.n_actions
    channels = catalogue.channel_keys
    n_c, n_w = len(channels), len(catalogue.send_windows)
    if state.consent.shape[1] != n_c or state.contact_hours.shape[1] != n_c:
        raise ValueError(f"the contact state has {state.consent.shape[1]} channels; the "
                         f"catalogue {n_c} ({', '.join(channels)})")
    if state.send_windows is not catalogue.send_windows \
            and state.send_windows != catalogue.send_windows:
        raise ValueError("the contact state's send windows are not the catalogue's")
    u8 = np.uint8
    # every rule depends on the customer and the action's channel and send window only, so the
    # flags are built on a small (n, C, W) table and gathered into (n, A) once (fast for big n)
    send = state.send_hours  # (n, W)

    # per channel: consent (where the rules require it)
    needs_consent = np.array([rules.needs_consent(c) for c in channels])
    channel_flags = np.where(needs_consent[None, :] & ~state.consent, u8(MaskReason.CONSENT), u8(0))
    table = np.broadcast_to(channel_flags[:, :, None], (n, n_c, n_w)).copy()
    # caps (per channel and overall) and the minimum gap, all counted at send time
    too_many, overall_full, too_close = _rules_at_send_time(rules, state, send, channels)
    table |= np.where(too_many, u8(MaskReason.CHANNEL_CAP), u8(0))
    for c, channel in enumerate(channels):  # a channel's own minimum gap, to its own contacts
        gap = rules.channel_min_gap_hours.get(channel, 0.0)
        if gap > 0:
            apart = np.abs(send[:, :, None] - state.contact_hours[:, c, None, :])  # (n, W, K)
            table[:, c, :] |= np.where((apart < gap).any(axis=2), u8(MaskReason.MIN_GAP), u8(0))

    # per customer: suppression; per send window: the minimum gap, and (on the channels they
    # apply to) the overall cap and quiet hours
    row_flags = np.where(state.suppressed, u8(MaskReason.SUPPRESSED), u8(0))
    window_flags = np.where(too_close, u8(MaskReason.MIN_GAP), u8(0))
    exempt_flags = np.where(overall_full, u8(MaskReason.OVERALL_CAP), u8(0))
    quiet = window_in_quiet_hours(rules, n, catalogue.send_windows)
    quiet_flags = np.where(quiet, u8(MaskReason.QUIET_HOURS), u8(0))
    if rules.overall_cap_exempt or rules.quiet_hours_exempt:
        for c, channel in enumerate(channels):
            if channel not in rules.overall_cap_exempt:
                table[:, c, :] |= exempt_flags
            if channel not in rules.quiet_hours_exempt:
                table[:, c, :] |= quiet_flags
    else:
        window_flags |= exempt_flags | quiet_flags

    table |= window_flags[:, None, :] | row_flags[:, None, None]
    contact = catalogue.channel_index >= 0
    column = np.where(contact, catalogue.channel_index * n_w + catalogue.window_index, 0)
    reasons = np.take(table.reshape(n, n_c * n_w), column, axis=1)

    if enabled is not None:
        enabled = np.asarray(enabled)
        if enabled.shape not in ((n_actions,), (n, n_actions)):
            raise ValueError(
                f"enabled must be ({n_actions},) or ({n}, {n_actions}), got {enabled.shape}"
            )
        reasons |= np.where(enabled.astype(bool), u8(0), u8(MaskReason.DISABLED))

    for column in np.flatnonzero(~contact):
        reasons[:, column] = 0  # "no contact" is always allowed
    return reasons == 0, reasons


def describe_reasons(
    flags: int | MaskReason,
    action: CatalogueAction | None = None,
    rules: ContactRules | None = None,
    contact_gap_hours: float | None = None,
    catalogue: Catalogue | None = None,
) -> list[str]:
    """Human words for one action's MaskReason flags (specific given `action` and `rules`).

    :param contact_gap_hours: hours from this action's send time back to the nearest other
        contact (`nearest_contact_hours`), to say how close it is
    :param catalogue: where the action's channel and window labels come from (default: the keys)
    """
    flags = MaskReason(int(flags))
    channel = action.channel if action is not None and not action.is_no_contact else None
    label = _channel_label(channel, catalogue) if channel else "this channel"
    words = []
    if MaskReason.CONSENT in flags:
        words.append(f"no {label} consent" if channel else "no consent on this channel")
    if MaskReason.CHANNEL_CAP in flags:
        if channel and rules is not None and channel in rules.channel_caps:
            limit, window = rules.channel_caps[channel]
            words.append(f"{label} cap {limit} per {window} days reached")
        else:
            words.append(f"{label} cap reached")
    if MaskReason.OVERALL_CAP in flags:
        if rules is not None and rules.overall_cap is not None:
            limit, window = rules.overall_cap
            words.append(f"overall cap {limit} contacts per {window} days reached")
        else:
            words.append("overall contact cap reached")
    if MaskReason.MIN_GAP in flags:
        gap = f" of {rules.min_gap_on(channel):g} h" if rules is not None else ""
        if contact_gap_hours is not None and np.isfinite(contact_gap_hours):
            hours = abs(float(contact_gap_hours))
            where = "before" if contact_gap_hours >= 0 else "after"
            other = "last contact" if contact_gap_hours >= 0 else "next scheduled contact"
            words.append(f"{other} {hours:.0f} h {where} this send (minimum gap{gap})")
        else:
            words.append(f"minimum gap{gap} since the last contact not reached")
    if MaskReason.QUIET_HOURS in flags:
        has_window = action is not None and action.send_window
        window = f"{_window_label(action.send_window, catalogue)} window" if has_window \
            else "send window"
        if rules is not None and rules.quiet_hours is not None:
            start, end = rules.quiet_hours
            words.append(
                f"{window} falls in the customer's quiet hours ({start:02d}:00-{end:02d}:00)"
            )
        else:
            words.append(f"{window} falls in the customer's quiet hours")
    if MaskReason.SUPPRESSED in flags:
        words.append("customer is on the suppression list")
    if MaskReason.DISABLED in flags:
        words.append("action switched off in the campaign")
    return words


def _channel_label(key: str, catalogue: Catalogue | None) -> str:
    catalogue = catalogue or Catalogue.from_actions(())  # the demo's labels
    if key in catalogue.channel_keys:
        return catalogue.channel(key).label
    return key


def _window_label(key: str, catalogue: Catalogue | None) -> str:
    catalogue = catalogue or Catalogue.from_actions(())
    if key in catalogue.window_keys:
        return catalogue.send_window(key).label
    return key
