"""The action catalogue: what a marketer can send, where, and when - plus "no contact".

Shared by the simulator, the contact rules and the console. An action is a channel x offer x send
window (x message variant) with a contact cost; index 0 is always "no contact", because leaving a
customer alone is a decision the policy must be able to take (and the one action no rule blocks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "call_centre")
"""Every channel the library knows; per-channel arrays (consent, caps, counters) use this order."""

OFFERS: tuple[str, ...] = ("content", "discount_10", "discount_20", "free_shipping")
"""Every offer; `content` is a message with no incentive (newsletter, recommendation)."""

SEND_WINDOWS: dict[str, tuple[int, int]] = {
    "morning": (8, 11),
    "midday": (12, 14),
    "evening": (18, 21),
}
"""[start, end) hours in the CUSTOMER's own local time: "morning" is each customer's morning. A
message goes out at its window's start (see agents.constraints.send_hours)."""

WINDOW_NAMES: tuple[str, ...] = tuple(SEND_WINDOWS)

CHANNEL_COSTS: dict[str, float] = {"email": 0.05, "sms": 0.40, "push": 0.02, "call_centre": 4.00}
"""Default cost of one contact per channel, in currency units (what the send itself costs)."""

CHANNEL_LABELS: dict[str, str] = {
    "email": "Email",
    "sms": "SMS",
    "push": "Push",
    "call_centre": "Call centre",
}
OFFER_LABELS: dict[str, str] = {
    "content": "content",
    "discount_10": "10 % off",
    "discount_20": "20 % off",
    "free_shipping": "free shipping",
}


@dataclass(frozen=True)
class CatalogueAction:
    """One thing the policy can do for one customer today.

    :param channel: one of CHANNELS, or None for "no contact"
    :param offer: one of OFFERS, or None for "no contact"
    :param send_window: one of SEND_WINDOWS, or None for "no contact"
    :param cost: contact cost in currency units (discount margin is NOT part of it)
    :param variant: message variant (creative), for A/B copies of the same offer
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
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}; choose one of {CHANNELS}")
        if self.offer is not None and self.offer not in OFFERS:
            raise ValueError(f"unknown offer {self.offer!r}; choose one of {OFFERS}")
        if self.send_window is not None and self.send_window not in SEND_WINDOWS:
            raise ValueError(
                f"unknown send window {self.send_window!r}; choose one of {WINDOW_NAMES}"
            )
        if not np.isfinite(self.cost) or self.cost < 0:
            raise ValueError(f"cost must be a finite number >= 0, got {self.cost!r}")

    @property
    def is_no_contact(self) -> bool:
        return self.channel is None

    @property
    def label(self) -> str:
        """What the marketer reads, e.g. "SMS - 10 % off - evening"."""
        if self.is_no_contact:
            return "No contact"
        text = f"{CHANNEL_LABELS[self.channel]} - {OFFER_LABELS[self.offer]} - {self.send_window}"
        return text if self.variant == "default" else f"{text} ({self.variant})"


NO_CONTACT = CatalogueAction(None, None, None, 0.0)


@dataclass(frozen=True)
class Catalogue:
    """An ordered set of actions; index 0 is always "no contact".

    The index arrays let the simulator and the masks work on whole batches without looking at
    the action objects.
    """

    actions: tuple[CatalogueAction, ...]
    channels: tuple[str, ...] = field(default=CHANNELS)

    def __post_init__(self) -> None:
        if not self.actions or not self.actions[0].is_no_contact:
            raise ValueError("a catalogue's action 0 must be 'no contact'")
        if any(a.is_no_contact for a in self.actions[1:]):
            raise ValueError("'no contact' may appear only once, at index 0")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError("a catalogue must not list the same action twice")
        if self.channels != CHANNELS:
            raise ValueError(f"channels must be {CHANNELS} (per-channel arrays use that order)")

    @classmethod
    def from_actions(cls, actions: Iterable[CatalogueAction]) -> Catalogue:
        """Build a catalogue from contact actions; "no contact" is put first if missing."""
        actions = tuple(actions)
        rest = tuple(a for a in actions if not a.is_no_contact)
        no_contact = next((a for a in actions if a.is_no_contact), NO_CONTACT)
        return cls((no_contact, *rest))

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    @cached_property
    def channel_index(self) -> np.ndarray:
        """(A,) index into CHANNELS; -1 for "no contact"."""
        return np.array(
            [-1 if a.is_no_contact else CHANNELS.index(a.channel) for a in self.actions]
        )

    @cached_property
    def offer_index(self) -> np.ndarray:
        """(A,) index into OFFERS; -1 for "no contact"."""
        return np.array([-1 if a.is_no_contact else OFFERS.index(a.offer) for a in self.actions])

    @cached_property
    def window_index(self) -> np.ndarray:
        """(A,) index into WINDOW_NAMES; -1 for "no contact"."""
        return np.array(
            [-1 if a.is_no_contact else WINDOW_NAMES.index(a.send_window) for a in self.actions]
        )

    @cached_property
    def cost(self) -> np.ndarray:
        """(A,) contact cost in currency units."""
        return np.array([a.cost for a in self.actions], dtype=np.float64)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(a.label for a in self.actions)

    def index_of(
        self,
        channel: str | None,
        offer: str | None = None,
        send_window: str | None = None,
        variant: str = "default",
    ) -> int:
        """Position of the action with these fields (ValueError if the catalogue lacks it)."""
        for i, a in enumerate(self.actions):
            if (a.channel, a.offer, a.send_window, a.variant) == (
                channel,
                offer,
                send_window,
                variant,
            ):
                return i
        raise ValueError(f"no action {channel}/{offer}/{send_window}/{variant} in the catalogue")


def default_catalogue() -> Catalogue:
    """The demo catalogue: 4 channels x 4 offers x 3 send windows + no contact = 49 actions."""
    return Catalogue.from_actions(
        CatalogueAction(channel, offer, window, CHANNEL_COSTS[channel])
        for channel in CHANNELS
        for offer in OFFERS
        for window in SEND_WINDOWS
    )
