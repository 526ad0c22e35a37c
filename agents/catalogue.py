"""The action catalogue: what a marketer can send, where, and when - plus "no contact".

Shared by the simulator, the contact rules and the console. A catalogue owns its vocabulary - the
campaign's channels, offers and send windows, each a record with a key and a label - and its
actions: a channel x offer x send window (x message variant) with a contact cost. Index 0 is
always "no contact", because leaving a customer alone is a decision the policy must be able to
take (and the one action no rule blocks). Nothing here fixes which channels or offers exist: the
`DEFAULT_*` records are the demo workspace's, a campaign brings its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

INCENTIVE_KINDS: tuple[str, ...] = (
    "none",
    "percent_off",
    "amount_off",
    "free_shipping",
    "gift",
    "points_multiplier",
)
"""What an offer gives the customer; "none" is content (a newsletter, a recommendation)."""

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


def _check_key(key: object, what: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"{what} key must be 1-50 lowercase letters, digits, '_' or '-', got {key!r}"
        )


def _check_amount(value: float, what: str) -> None:
    if isinstance(value, bool) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Channel:
    """Where a message goes.

    :param key: stable identifier (slug), what logs, features and API payloads carry
    :param label: what the marketer reads ("WhatsApp")
    :param cost: what one contact costs, in currency units: the one price every part uses
    """

    key: str
    label: str
    cost: float = 0.0

    def __post_init__(self) -> None:
        _check_key(self.key, "channel")
        if not str(self.label).strip():
            raise ValueError(f"channel {self.key!r} needs a label")
        _check_amount(self.cost, f"channel {self.key!r} cost")


@dataclass(frozen=True)
class Offer:
    """What a message offers.

    A percent or amount off gives away margin by its value; `redemption_cost` is what one redeemed
    offer costs on top (the shipping of free shipping, the gift, the extra loyalty points).

    :param kind: one of INCENTIVE_KINDS
    :param value: percent for percent_off (0-100], currency for amount_off, the multiplier for
        points_multiplier (> 1); ignored (0) for the other kinds
    :param validity_days: days a customer can use the offer after reading it
    """

    key: str
    label: str
    kind: str = "none"
    value: float = 0.0
    redemption_cost: float = 0.0
    validity_days: int = 7
    description: str = ""

    def __post_init__(self) -> None:
        _check_key(self.key, "offer")
        if not str(self.label).strip():
            raise ValueError(f"offer {self.key!r} needs a label")
        if self.kind not in INCENTIVE_KINDS:
            raise ValueError(f"offer {self.key!r}: kind must be one of {INCENTIVE_KINDS}")
        _check_amount(self.value, f"offer {self.key!r} value")
        if self.kind == "percent_off" and not 0 < self.value <= 100:
            raise ValueError(f"offer {self.key!r}: a percent off must lie in (0, 100]")
        if self.kind == "amount_off" and self.value <= 0:
            raise ValueError(f"offer {self.key!r}: an amount off must be > 0")
        if self.kind == "points_multiplier" and self.value <= 1:
            raise ValueError(f"offer {self.key!r}: a points multiplier must be > 1")
        _check_amount(self.redemption_cost, f"offer {self.key!r} redemption cost")
        if isinstance(self.validity_days, bool) or int(self.validity_days) != self.validity_days \
                or self.validity_days < 1:
            raise ValueError(f"offer {self.key!r}: validity_days must be a whole number >= 1")

    @property
    def is_incentive(self) -> bool:
        return self.kind != "none"

    @property
    def margin_share(self) -> float:
        """Share of the order value given away (percent off)."""
        return self.value / 100.0 if self.kind == "percent_off" else 0.0

    @property
    def amount_off(self) -> float:
        return self.value if self.kind == "amount_off" else 0.0


@dataclass(frozen=True)
class SendWindow:
    """When in the CUSTOMER's own local day a message goes out: "morning" is each customer's
    morning. A message goes out at the window's start on one of its days (see
    agents.constraints.send_hours).

    :param start_hour: local start in hours, minutes as a fraction (12.5 = 12:30)
    :param end_hour: local end, after the start, at most 24
    :param days: weekdays it opens on, 0 = Monday ... 6 = Sunday
    """

    key: str
    label: str
    start_hour: float
    end_hour: float
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)

    def __post_init__(self) -> None:
        _check_key(self.key, "send window")
        if not str(self.label).strip():
            raise ValueError(f"send window {self.key!r} needs a label")
        for hour in (self.start_hour, self.end_hour):
            if isinstance(hour, bool) or not np.isfinite(hour) or not 0 <= hour <= 24:
                raise ValueError(f"send window {self.key!r}: hours must lie in [0, 24]")
        if self.end_hour <= self.start_hour:
            raise ValueError(f"send window {self.key!r}: the end must be after the start")
        days = tuple(sorted(set(self.days)))
        if not days or any(isinstance(d, bool) or d not in range(7) for d in days):
            raise ValueError(f"send window {self.key!r}: days must be weekdays 0 (Monday)..6")
        object.__setattr__(self, "days", days)


DEFAULT_CHANNELS: tuple[Channel, ...] = (
    Channel("email", "Email", 0.05),
    Channel("sms", "SMS", 0.40),
    Channel("push", "Push", 0.02),
    Channel("call_centre", "Call centre", 4.00),
)
"""The demo workspace's channels (and every new workspace's starting records)."""

DEFAULT_OFFERS: tuple[Offer, ...] = (
    Offer("content", "content"),
    Offer("discount_10", "10 % off", "percent_off", 10.0),
    Offer("discount_20", "20 % off", "percent_off", 20.0),
    Offer("free_shipping", "free shipping", "free_shipping", redemption_cost=6.0),
)
"""The demo workspace's offers; free shipping costs 6.00 an order."""

DEFAULT_SEND_WINDOWS: tuple[SendWindow, ...] = (
    SendWindow("morning", "morning", 8.0, 11.0),
    SendWindow("midday", "midday", 12.0, 14.0),
    SendWindow("evening", "evening", 18.0, 21.0),
)
"""The demo workspace's send windows, every day of the week."""


@dataclass(frozen=True)
class CatalogueAction:
    """One thing the policy can do for one customer today.

    :param channel: a channel key of the catalogue, or None for "no contact"
    :param offer: an offer key, or None for "no contact"
    :param send_window: a send window key, or None for "no contact"
    :param cost: contact cost in currency units (offer costs are NOT part of it)
    :param variant: message variant (copy, template, subject line): two variants of one channel x
        offer x window are two actions
    """

    channel: str | None
    offer: str | None
    send_window: str | None
    cost: float = 0.0
    variant: str = "default"

    def __post_init__(self) -> None:
        parts = (self.channel, self.offer, self.send_window)
        if any(p is None for p in parts) and not all(p is None for p in parts):
            raise ValueError("channel, offer and send_window are all set or all None (no contact)")
        if not isinstance(self.variant, str) or not self.variant.strip():
            raise ValueError("variant must be a non-empty text")
        _check_amount(self.cost, "cost")

    @property
    def is_no_contact(self) -> bool:
        return self.channel is None


NO_CONTACT = CatalogueAction(None, None, None, 0.0)


def _records_by_key(records: tuple[Any, ...], what: str) -> dict[str, Any]:
    by_key = {r.key: r for r in records}
    if len(by_key) != len(records):
        raise ValueError(f"a catalogue must not list the same {what} key twice")
    return by_key


@dataclass(frozen=True)
class Catalogue:
    """An ordered set of actions over the catalogue's own channels, offers and send windows;
    index 0 is always "no contact".

    The index arrays let the simulator and the masks work on whole batches without looking at
    the action objects; per-channel arrays everywhere (consent, caps, feature counters) follow
    `channels`' order, per-window arrays `send_windows`' order.
    """

    actions: tuple[CatalogueAction, ...]
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    offers: tuple[Offer, ...] = DEFAULT_OFFERS
    send_windows: tuple[SendWindow, ...] = DEFAULT_SEND_WINDOWS

    def __post_init__(self) -> None:
        for name in ("actions", "channels", "offers", "send_windows"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.actions or not self.actions[0].is_no_contact:
            raise ValueError("a catalogue's action 0 must be 'no contact'")
        if any(a.is_no_contact for a in self.actions[1:]):
            raise ValueError("'no contact' may appear only once, at index 0")
        if not self.channels or not self.send_windows or not self.offers:
            raise ValueError("a catalogue needs at least one channel, offer and send window")
        channels = _records_by_key(self.channels, "channel")
        offers = _records_by_key(self.offers, "offer")
        windows = _records_by_key(self.send_windows, "send window")
        if len({_identity(a) for a in self.actions}) != len(self.actions):
            raise ValueError("a catalogue must not list the same action twice")
        for a in self.actions[1:]:
            if a.channel not in channels:
                raise ValueError(f"unknown channel {a.channel!r}; choose one of {list(channels)}")
            if a.offer not in offers:
                raise ValueError(f"unknown offer {a.offer!r}; choose one of {list(offers)}")
            if a.send_window not in windows:
                raise ValueError(
                    f"unknown send window {a.send_window!r}; choose one of {list(windows)}"
                )

    @classmethod
    def from_actions(
        cls,
        actions: Iterable[CatalogueAction],
        channels: Iterable[Channel] = DEFAULT_CHANNELS,
        offers: Iterable[Offer] = DEFAULT_OFFERS,
        send_windows: Iterable[SendWindow] = DEFAULT_SEND_WINDOWS,
    ) -> Catalogue:
        """Build a catalogue from contact actions; "no contact" is put first if missing."""
        actions = tuple(actions)
        rest = tuple(a for a in actions if not a.is_no_contact)
        no_contact = next((a for a in actions if a.is_no_contact), NO_CONTACT)
        return cls((no_contact, *rest), tuple(channels), tuple(offers), tuple(send_windows))

    # ------------------------------------------------------------------ the vocabulary
    @property
    def n_actions(self) -> int:
        return len(self.actions)

    @cached_property
    def channel_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.channels)

    @cached_property
    def offer_keys(self) -> tuple[str, ...]:
        return tuple(o.key for o in self.offers)

    @cached_property
    def window_keys(self) -> tuple[str, ...]:
        return tuple(w.key for w in self.send_windows)

    def channel(self, key: str) -> Channel:
        return self.channels[self.channel_keys.index(key)]

    def offer(self, key: str) -> Offer:
        return self.offers[self.offer_keys.index(key)]

    def send_window(self, key: str) -> SendWindow:
        return self.send_windows[self.window_keys.index(key)]

    @cached_property
    def window_hours(self) -> np.ndarray:
        """(W, 2) [start, end) local hours of each send window."""
        return np.array([(w.start_hour, w.end_hour) for w in self.send_windows], dtype=np.float64)

    @cached_property
    def window_days(self) -> np.ndarray:
        """(W, 7) bool: the weekdays (Monday first) each send window opens on."""
        days = np.zeros((len(self.send_windows), 7), dtype=bool)
        for w, window in enumerate(self.send_windows):
            days[w, list(window.days)] = True
        return days

    # ------------------------------------------------------------------ per action
    @cached_property
    def channel_index(self) -> np.ndarray:
        """(A,) index into `channels`; -1 for "no contact"."""
        keys = self.channel_keys
        return np.array([-1 if a.is_no_contact else keys.index(a.channel) for a in self.actions])

    @cached_property
    def offer_index(self) -> np.ndarray:
        """(A,) index into `offers`; -1 for "no contact"."""
        keys = self.offer_keys
        return np.array([-1 if a.is_no_contact else keys.index(a.offer) for a in self.actions])

    @cached_property
    def window_index(self) -> np.ndarray:
        """(A,) index into `send_windows`; -1 for "no contact"."""
        keys = self.window_keys
        return np.array(
            [-1 if a.is_no_contact else keys.index(a.send_window) for a in self.actions]
        )

    @cached_property
    def cost(self) -> np.ndarray:
        """(A,) contact cost in currency units."""
        return np.array([a.cost for a in self.actions], dtype=np.float64)

    def label(self, i: int) -> str:
        """What the marketer reads, e.g. "SMS - 10 % off - evening"."""
        a = self.actions[i]
        if a.is_no_contact:
            return "No contact"
        text = (f"{self.channel(a.channel).label} - {self.offer(a.offer).label} - "
                f"{self.send_window(a.send_window).label}")
        return text if a.variant == "default" else f"{text} ({a.variant})"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label(i) for i in range(self.n_actions))

    @cached_property
    def variants(self) -> tuple[str, ...]:
        """The message variants the actions use, "default" first."""
        seen = dict.fromkeys(["default", *(a.variant for a in self.actions)])
        return tuple(seen)

    @cached_property
    def attribute_names(self) -> tuple[str, ...]:
        return (
            *(f"channel={key}" for key in self.channel_keys),
            *(f"incentive={kind}" for kind in INCENTIVE_KINDS),
            "incentive_value",
            "window_start",
            "window_end",
            *(f"variant={name}" for name in self.variants),
            "no_contact",
        )

    @cached_property
    def attributes(self) -> np.ndarray:
        """(A, D) float32 description of each action (names: `attribute_names`): one-hot
        channel, incentive kind and variant, the incentive's size as a share of an order (percent
        / 100; other kinds 0) and the window's local hours / 24. What lets a model share what it
        learns between actions (a new "15 % off" sits between 10 % and 20 %)."""
        n_c, n_k = len(self.channels), len(INCENTIVE_KINDS)
        out = np.zeros((self.n_actions, len(self.attribute_names)), dtype=np.float32)
        variant_at = n_c + n_k + 3
        for i, a in enumerate(self.actions):
            if a.is_no_contact:
                out[i, -1] = 1.0
                continue
            offer, window = self.offer(a.offer), self.send_window(a.send_window)
            out[i, self.channel_keys.index(a.channel)] = 1.0
            out[i, n_c + INCENTIVE_KINDS.index(offer.kind)] = 1.0
            out[i, n_c + n_k] = offer.margin_share
            out[i, n_c + n_k + 1] = window.start_hour / 24.0
            out[i, n_c + n_k + 2] = window.end_hour / 24.0
            out[i, variant_at + self.variants.index(a.variant)] = 1.0
        return out

    def index_of(
        self,
        channel: str | None,
        offer: str | None = None,
        send_window: str | None = None,
        variant: str = "default",
    ) -> int:
        """Position of the action with these fields (ValueError if the catalogue lacks it)."""
        for i, a in enumerate(self.actions):
            if _identity(a) == (channel, offer, send_window, variant):
                return i
        raise ValueError(f"no action {channel}/{offer}/{send_window}/{variant} in the catalogue")

    # ------------------------------------------------------------------ as JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (saved with agents that keep their catalogue)."""
        return {
            "channels": [asdict(c) for c in self.channels],
            "offers": [asdict(o) for o in self.offers],
            "send_windows": [{**asdict(w), "days": list(w.days)} for w in self.send_windows],
            "actions": [asdict(a) for a in self.actions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalogue:
        return cls(
            tuple(CatalogueAction(**a) for a in data["actions"]),
            tuple(Channel(**c) for c in data["channels"]),
            tuple(Offer(**o) for o in data["offers"]),
            tuple(SendWindow(**{**w, "days": tuple(w["days"])}) for w in data["send_windows"]),
        )


def _identity(action: CatalogueAction) -> tuple[str | None, str | None, str | None, str]:
    """What tells two actions apart (the cost does not: one action has one price)."""
    return action.channel, action.offer, action.send_window, action.variant


def default_catalogue(
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS,
    offers: tuple[Offer, ...] = DEFAULT_OFFERS,
    send_windows: tuple[SendWindow, ...] = DEFAULT_SEND_WINDOWS,
) -> Catalogue:
    """Every channel x offer x send window at the channel's cost, + no contact (the demo: 4 x 4 x
    3 + 1 = 49 actions)."""
    return Catalogue.from_actions(
        (
            CatalogueAction(channel.key, offer.key, window.key, channel.cost)
            for channel in channels
            for offer in offers
            for window in send_windows
        ),
        channels,
        offers,
        send_windows,
    )

