"""The workspace's vocabulary: its channels, offers and send windows as the agents library's
records, read once per change in each process.

Models' labels read it (an action's channel in words), so it names the models through the app
registry rather than importing them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from django.apps import apps

from agents import catalogue as agent_catalogue
from agents.features import FeatureLayout
from crm_console.change_markers import ChangeMarker

if TYPE_CHECKING:
    from crm_console.campaigns.models import Channel, Offer, SendWindow

VOCABULARY_CHANGED = ChangeMarker("campaigns:vocabulary:changed")
"""Replaced whenever a channel, offer or send window is saved (campaigns.services), so every process
reads the workspace's vocabulary again."""


@dataclass(frozen=True)
class Vocabulary:
    """The workspace's channels, offers and send windows as agents records, every one
    (switched-off ones too: old actions keep using them), in the order the console lists them.

    The channels' order (by id, append-only) lays out every per-channel array: `channel_index`.
    """

    channels: tuple[agent_catalogue.Channel, ...]
    offers: tuple[agent_catalogue.Offer, ...]
    send_windows: tuple[agent_catalogue.SendWindow, ...]
    consent_keys: tuple[str, ...] = ()
    """Each channel's consent key, in the channels' order."""
    quiet_hours_exempt: frozenset[str] = frozenset()
    overall_cap_exempt: frozenset[str] = frozenset()

    @property
    def channel_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.channels)

    @cached_property
    def channel_index(self) -> dict[str, int]:
        """Position of each channel in the per-channel arrays (profiles, consent, features)."""
        return {c.key: i for i, c in enumerate(self.channels)}

    def channels_needing(self, consent_key: str) -> list[int]:
        """Positions of the channels a consent given under `consent_key` opens."""
        return [i for i, key in enumerate(self.consent_keys) if key == consent_key]

    def channel_label(self, key: str) -> str:
        return next((c.label for c in self.channels if c.key == key), key)

    @cached_property
    def feature_layout(self) -> FeatureLayout:
        """The state vector of today's channels: what serving observes and decisions log."""
        return FeatureLayout.for_channels(self.channel_keys, tuple(c.label for c in self.channels))

    def layout_of(self, n_features: int) -> FeatureLayout:
        """The layout of a vector (or policy) with `n_features` features: the channels there
        were when it was logged (trained). Channels are only appended, so it is always a first
        part of today's; ValueError for a width no first part has."""
        return self.feature_layout.first_channels(n_features)

    def features_in_layout(self, rows: Sequence[Sequence[float]],
                           target: FeatureLayout | None = None) -> np.ndarray:
        """Logged feature vectors of any age re-laid in `target` (default: today's layout), by
        name: the one way every reader of logged features sees them."""
        target = target or self.feature_layout
        out = np.empty((len(rows), target.n_features), dtype=np.float32)
        by_width: dict[int, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            by_width[len(row)].append(i)
        for width, idx in by_width.items():
            out[idx] = self.layout_of(width).relaid(np.asarray([rows[i] for i in idx]), target)
        return out

    def consent_label(self, consent_key: str) -> str:
        """A consent key in words: the channels it opens ("SMS / WhatsApp"), or the key."""
        labels = [self.channels[i].label for i in self.channels_needing(consent_key)]
        return " / ".join(labels) if labels else consent_key

    def offer_label(self, key: str) -> str:
        return next((o.label for o in self.offers if o.key == key), key)

    def window_label(self, key: str) -> str:
        return next((w.label for w in self.send_windows if w.key == key), key)

    def send_window(self, key: str) -> agent_catalogue.SendWindow:
        return next(w for w in self.send_windows if w.key == key)


_vocabulary: tuple[str, Vocabulary] | None = None


def vocabulary() -> Vocabulary:
    """The workspace's vocabulary, read once per change (VOCABULARY_CHANGED) in each process."""
    global _vocabulary
    marker = VOCABULARY_CHANGED.current()
    if _vocabulary is not None and _vocabulary[0] == marker:
        return _vocabulary[1]
    # the models by name: their label properties read the vocabulary, so this module imports none
    channel, offer, window = (apps.get_model("campaigns", name)
                              for name in ("Channel", "Offer", "SendWindow"))
    channels = list(channel.objects.order_by("id"))
    loaded = Vocabulary(
        channels=tuple(channel_record(c) for c in channels),
        consent_keys=tuple(c.consent for c in channels),
        quiet_hours_exempt=frozenset(c.key for c in channels if not c.quiet_hours_apply),
        overall_cap_exempt=frozenset(c.key for c in channels if not c.counts_toward_overall_cap),
        offers=tuple(offer_record(o) for o in offer.objects.order_by("id")),
        send_windows=tuple(window_record(w) for w in window.objects.order_by("start", "id")),
    )
    _vocabulary = (marker, loaded)
    return loaded


def channel_record(channel: Channel) -> agent_catalogue.Channel:
    return agent_catalogue.Channel(key=channel.key, label=channel.label, cost=float(channel.cost))


def offer_record(offer: Offer) -> agent_catalogue.Offer:
    """An offer row as the agents library's record (the one conversion)."""
    return agent_catalogue.Offer(
        key=offer.key, label=offer.label, kind=offer.kind, value=float(offer.value),
        redemption_cost=float(offer.redemption_cost), validity_days=int(offer.validity_days),
        description=offer.description,
    )


def window_record(window: SendWindow) -> agent_catalogue.SendWindow:
    return agent_catalogue.SendWindow(
        key=window.key, label=window.label, start_hour=window.start_hour,
        end_hour=window.end_hour, days=tuple(window.days),
    )
