"""Action masks: which actions the contact rules allow for each customer, and why not.

A compliance officer writes `ContactRules` (consent, frequency caps over rolling windows, minimum
gap, quiet hours, suppression); `contact_mask` turns them into a bool (n, A) mask plus a MaskReason
bit set per blocked action, so the console can say *why* an action was not allowed. "No contact"
is always allowed: a policy can never be forced to break a rule.

Time conventions (shared by the simulator and the console):
- a decision is made for one campaign day; `ContactState.hours_since_last_contact` is measured up to
  midnight (campaign time) that starts that day, and an action sends at its window's start hour, so
  the gap it would leave is `hours_since_last_contact + window start`;
- `contacts_in_window[:, c]` counts channel c's contacts already made in the cap window that ends
  with the decision day (that day and the w - 1 days before it); sending one more makes it + 1,
  which must stay within the cap (the simulator sends at most one a day, so for it the count
  covers the w - 1 days before);
- send windows are in campaign time; a customer's local time is campaign time + (customer utc offset
  - campaign utc offset); a window is blocked if any part of it falls inside local quiet hours.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from agents.catalogue import (
    CHANNEL_LABELS,
    CHANNELS,
    SEND_WINDOWS,
    WINDOW_NAMES,
    Catalogue,
    CatalogueAction,
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

    :param channel_caps: channel -> (max contacts, rolling window in days); channels not listed
        are uncapped; a cap of 0 closes the channel
    :param overall_cap: (max contacts on any channel, rolling window in days), or None
    :param min_gap_hours: minimum hours between two contacts on any channel
    :param quiet_hours: (start, end) local hours in which nothing may be sent; wraps midnight when
        start > end (21, 8 = 21:00-08:00); None for no quiet hours
    :param consent_required: channels on which a contact needs the customer's consent
    :param campaign_utc_offset_hours: the time zone the send windows are written in
    """

    channel_caps: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    overall_cap: tuple[int, int] | None = None
    min_gap_hours: float = 0.0
    quiet_hours: tuple[int, int] | None = None
    consent_required: frozenset[str] = frozenset(CHANNELS)
    campaign_utc_offset_hours: float = 0.0

    def __post_init__(self) -> None:
        caps = {}
        for channel, cap in dict(self.channel_caps).items():
            if channel not in CHANNELS:
                raise ValueError(
                    f"unknown channel {channel!r} in channel_caps; choose from {CHANNELS}"
                )
            caps[channel] = _check_cap(cap, f"channel cap for {channel}")
        object.__setattr__(self, "channel_caps", MappingProxyType(caps))
        if self.overall_cap is not None:
            object.__setattr__(self, "overall_cap", _check_cap(self.overall_cap, "overall cap"))
        if not np.isfinite(self.min_gap_hours) or self.min_gap_hours < 0:
            raise ValueError(f"min_gap_hours must be finite and >= 0, got {self.min_gap_hours!r}")
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
        consent = frozenset(self.consent_required)
        unknown = consent - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s) {sorted(unknown)} in consent_required")
        object.__setattr__(self, "consent_required", consent)
        if (
            not np.isfinite(self.campaign_utc_offset_hours)
            or abs(self.campaign_utc_offset_hours) > 14
        ):
            raise ValueError("campaign_utc_offset_hours must lie in [-14, 14]")

    @property
    def cap_windows(self) -> np.ndarray:
        """(C,) rolling window in days per channel (0 where uncapped)."""
        return np.array([self.channel_caps.get(c, (0, 0))[1] for c in CHANNELS], dtype=np.int64)

    @property
    def cap_limits(self) -> np.ndarray:
        """(C,) max contacts per channel window (inf where uncapped)."""
        return np.array(
            [self.channel_caps.get(c, (np.inf, 0))[0] for c in CHANNELS], dtype=np.float64
        )

    @property
    def longest_window_days(self) -> int:
        """Days of contact history needed to evaluate every cap."""
        windows = [w for _, w in self.channel_caps.values()]
        if self.overall_cap is not None:
            windows.append(self.overall_cap[1])
        return max([1, *windows])


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
    48 h between contacts, quiet hours 21:00-08:00 local, consent required on every channel."""
    return ContactRules(
        channel_caps={"email": (2, 7), "sms": (1, 7), "push": (3, 7), "call_centre": (1, 30)},
        overall_cap=(4, 7),
        min_gap_hours=48.0,
        quiet_hours=(21, 8),
        consent_required=frozenset(CHANNELS),
    )


@dataclass
class ContactState:
    """What the rules need to know about n customers' recent contacts (see module docstring).

    :param contacts_in_window: (n, C) contacts per channel within that channel's cap window
    :param overall_in_window: (n,) contacts on any channel within the overall cap window
    :param hours_since_last_contact: (n,) up to the start of the decision day; inf if never
    :param consent: (n, C) bool
    :param utc_offset_hours: (n,) the customer's time zone
    :param suppressed: (n,) bool, customers on the suppression list (do not contact at all)
    """

    contacts_in_window: np.ndarray
    overall_in_window: np.ndarray
    hours_since_last_contact: np.ndarray
    consent: np.ndarray
    utc_offset_hours: np.ndarray
    suppressed: np.ndarray

    def __post_init__(self) -> None:
        self.contacts_in_window = np.asarray(self.contacts_in_window, dtype=np.float64)
        if self.contacts_in_window.ndim != 2 or self.contacts_in_window.shape[1] != len(CHANNELS):
            raise ValueError(
                f"contacts_in_window must be (n, {len(CHANNELS)}), "
                f"got {self.contacts_in_window.shape}"
            )
        n = self.contacts_in_window.shape[0]
        self.overall_in_window = _vector(self.overall_in_window, n, "overall_in_window", np.float64)
        self.hours_since_last_contact = _vector(
            self.hours_since_last_contact, n, "hours_since_last_contact", np.float64
        )
        self.utc_offset_hours = _vector(self.utc_offset_hours, n, "utc_offset_hours", np.float64)
        self.suppressed = _vector(self.suppressed, n, "suppressed", bool)
        self.consent = np.asarray(self.consent).astype(bool)
        if self.consent.shape != (n, len(CHANNELS)):
            raise ValueError(f"consent must be ({n}, {len(CHANNELS)}), got {self.consent.shape}")
        if np.any(self.contacts_in_window < 0) or np.any(self.overall_in_window < 0):
            raise ValueError("contact counts must be >= 0")
        if np.any(np.isnan(self.hours_since_last_contact)) or np.any(
            self.hours_since_last_contact < 0
        ):
            raise ValueError("hours_since_last_contact must be >= 0 (inf if never contacted)")
        if np.any(~np.isfinite(self.utc_offset_hours)) or np.any(
            np.abs(self.utc_offset_hours) > 14
        ):
            raise ValueError("utc_offset_hours must lie in [-14, 14]")

    @classmethod
    def fresh(
        cls, n: int, utc_offset_hours: float | np.ndarray = 0.0, consent: bool = True
    ) -> ContactState:
        """n customers never contacted, with (or without) consent on every channel."""
        return cls(
            np.zeros((n, len(CHANNELS))),
            np.zeros(n),
            np.full(n, np.inf),
            np.full((n, len(CHANNELS)), consent),
            np.broadcast_to(utc_offset_hours, (n,)),
            np.zeros(n, dtype=bool),
        )

    def __len__(self) -> int:
        return int(self.contacts_in_window.shape[0])


def _vector(value: object, n: int, name: str, dtype: type) -> np.ndarray:
    array = np.asarray(value).astype(dtype)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
    return array


def window_in_quiet_hours(rules: ContactRules, utc_offset_hours: np.ndarray) -> np.ndarray:
    """(n, W) bool: send window w (WINDOW_NAMES order) overlaps the customer's local quiet hours."""
    offsets = np.asarray(utc_offset_hours, dtype=np.float64).reshape(-1)
    if rules.quiet_hours is None:
        return np.zeros((offsets.shape[0], len(WINDOW_NAMES)), dtype=bool)
    q_start, q_end = rules.quiet_hours
    quiet = [(q_start, q_end)] if q_start < q_end else [(q_start, 24.0), (0.0, q_end)]
    shift = offsets - rules.campaign_utc_offset_hours
    blocked = np.zeros((offsets.shape[0], len(WINDOW_NAMES)), dtype=bool)
    for w, name in enumerate(WINDOW_NAMES):
        start, end = SEND_WINDOWS[name]
        local_start = np.mod(start + shift, 24.0)
        local_end = local_start + (end - start)
        # the local window may run past midnight: [local_start, 24) + [0, local_end - 24)
        pieces = [
            (local_start, np.minimum(local_end, 24.0)),
            (np.zeros_like(local_start), np.maximum(local_end - 24.0, 0.0)),
        ]
        for a, b in pieces:
            for qa, qb in quiet:
                blocked[:, w] |= (a < qb) & (qa < b) & (b > a)
    return blocked


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
    n_c, n_w = len(CHANNELS), len(WINDOW_NAMES)
    u8 = np.uint8
    # every rule depends on the customer and the action's channel or send window only, so the
    # flags are built on a small (n, C, W) table and gathered into (n, A) once (fast for big n)

    # per channel: consent (where the rules require it) and the channel's rolling cap
    needs_consent = np.array([c in rules.consent_required for c in CHANNELS])
    channel_flags = np.where(needs_consent[None, :] & ~state.consent, u8(MaskReason.CONSENT), u8(0))
    # sending today would make the window's count + 1
    channel_flags |= np.where(
        state.contacts_in_window + 1 > rules.cap_limits[None, :], u8(MaskReason.CHANNEL_CAP), u8(0)
    )

    # per customer: overall cap and suppression
    row_flags = np.where(state.suppressed, u8(MaskReason.SUPPRESSED), u8(0))
    if rules.overall_cap is not None:
        row_flags |= np.where(
            state.overall_in_window + 1 > rules.overall_cap[0], u8(MaskReason.OVERALL_CAP), u8(0)
        )

    # per send window: the gap it would leave (it sends at its start hour) and quiet hours
    starts = np.array([SEND_WINDOWS[w][0] for w in WINDOW_NAMES], dtype=np.float64)
    gap = state.hours_since_last_contact[:, None] + starts[None, :]
    window_flags = np.where(gap < rules.min_gap_hours, u8(MaskReason.MIN_GAP), u8(0))
    window_flags |= np.where(
        window_in_quiet_hours(rules, state.utc_offset_hours), u8(MaskReason.QUIET_HOURS), u8(0)
    )

    table = channel_flags[:, :, None] | window_flags[:, None, :] | row_flags[:, None, None]
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
) -> list[str]:
    """Human words for one action's MaskReason flags (specific given `action` and `rules`)."""
    flags = MaskReason(int(flags))
    channel = action.channel if action is not None and not action.is_no_contact else None
    label = CHANNEL_LABELS.get(channel, "this channel") if channel else "this channel"
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
        gap = f" of {rules.min_gap_hours:g} h" if rules is not None else ""
        words.append(f"minimum gap{gap} since the last contact not reached")
    if MaskReason.QUIET_HOURS in flags:
        has_window = action is not None and action.send_window
        window = f"{action.send_window} window" if has_window else "send window"
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
