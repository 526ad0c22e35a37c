"""The state vector: a customer's feature names, order and normalisation.

Defined once and shared by the simulator and the console. Both keep a `ProfileState` of raw
counters per customer and update it with the same `record_*` functions from the same kinds of
event (contact sent, message opened, link clicked, order completed, unsubscribed, consent changed)
and `advance_days` as time passes; `observation` turns the counters into the normalised vector the
agents see. The customer's segment is never a feature: an agent must infer it from behaviour.

Counters decay exponentially (a half-life per kind) so that "engagement" means recent engagement
without storing the event history; contacts in the last 7 / 30 days are exact (30 daily bins).
Per-channel counters follow the campaign's own channels (`FeatureLayout.for_catalogue`): a campaign
with WhatsApp has WhatsApp open rates.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from agents.catalogue import DEFAULT_CHANNELS, Catalogue

ENGAGEMENT_HALF_LIFE_DAYS = 30.0
"""Half-life of per-channel contact / open / click counters (engagement rates)."""
PURCHASE_HALF_LIFE_DAYS = 90.0
"""Half-life of purchase and revenue counters (frequency and monetary value)."""
PRESSURE_HALF_LIFE_DAYS = 7.0
"""Half-life of the contact-pressure counter (the fatigue proxy a marketer can see)."""
HISTORY_DAYS = 30
"""Daily bins of contacts kept for the exact 7- and 30-day counts."""

_DAYS_SCALE = np.log1p(365.0)  # recency: log1p(days) / log1p(365), "never" and > 1 year -> 1
_REVENUE_SCALE = np.log1p(2000.0)  # decayed 90-day revenue
_ORDER_SCALE = np.log1p(500.0)  # average order value
_COUNT_SCALE = np.log1p(30.0)  # decayed counts
_UTC_SCALE = 14.0  # utc offsets lie in [-12, +14]

# ---------------------------------------------------------------------------------------------
# names, order, labels
_PER_CHANNEL = (
    ("open_rate", "{} open rate (last ~30 days)"),
    ("click_rate", "{} click rate (last ~30 days)"),
    ("contacts", "{} contacts (last ~30 days)"),
    ("days_since_contact", "days since last {} contact"),
    ("consent", "{} consent given"),
)
_GLOBAL = (
    ("days_since_purchase", "days since last purchase"),
    ("purchase_frequency", "purchases (last ~90 days)"),
    ("monetary_value", "revenue (last ~90 days)"),
    ("average_order_value", "average order value"),
    ("discount_purchase_share", "share of purchases made with a discount"),
    ("discount_contact_share", "share of recent contacts that carried a discount"),
    ("days_since_engagement", "days since last open, click or purchase"),
    ("contacts_7d", "contacts in the last 7 days"),
    ("contacts_30d", "contacts in the last 30 days"),
    ("contact_pressure", "contact pressure (fatigue proxy)"),
    ("tenure_days", "days since the customer joined"),
    ("utc_offset", "customer's time zone (utc offset)"),
)
_CHANNEL_WORDS = {"email": "email", "sms": "SMS", "push": "push", "call_centre": "call-centre"}
"""How a label names the demo channels mid-sentence; other channels by their own label."""


@dataclass(frozen=True)
class FeatureLayout:
    """The state vector of one set of channels: per-channel counters for each of them (in the
    catalogue's channel order), then the customer-level features.

    :param channels: channel keys, in the catalogue's order
    :param channel_words: how a label names each channel ("WhatsApp open rate")
    """

    channels: tuple[str, ...]
    channel_words: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.channels or len(self.channels) != len(self.channel_words):
            raise ValueError("a feature layout needs one word per channel, and a channel")

    @classmethod
    def for_catalogue(cls, catalogue: Catalogue) -> FeatureLayout:
        return cls.for_channels(catalogue.channel_keys, tuple(c.label for c in catalogue.channels))

    @classmethod
    def for_channels(cls, keys: tuple[str, ...], labels: tuple[str, ...]) -> FeatureLayout:
        return cls(tuple(keys), tuple(_CHANNEL_WORDS.get(k, label) for k, label in zip(keys, labels)))

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Feature names in vector order (stable: models and logged decisions depend on it)."""
        return tuple(
            f"{channel}_{name}" for channel in self.channels for name, _ in _PER_CHANNEL
        ) + tuple(name for name, _ in _GLOBAL)

    @property
    def n_features(self) -> int:
        return len(self.names)

    @cached_property
    def labels(self) -> dict[str, str]:
        """Short marketer phrase per feature name (used in explanations)."""
        return {
            **{
                f"{channel}_{name}": label.format(word)
                for channel, word in zip(self.channels, self.channel_words)
                for name, label in _PER_CHANNEL
            },
            **dict(_GLOBAL),
        }

    @cached_property
    def _index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def index(self, name: str) -> int:
        """Position of feature `name` in the vector."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown feature {name!r}") from None

    def first_channels(self, n_features: int) -> FeatureLayout:
        """The layout of this one's first channels that has `n_features` features.

        Where channels are only ever appended (the console's), a vector logged or a policy
        trained before a channel was added has the layout of the channels there were then.
        """
        per_channel, customer_level = len(_PER_CHANNEL), len(_GLOBAL)
        n_channels, rest = divmod(int(n_features) - customer_level, per_channel)
        if rest or not 0 < n_channels <= self.n_channels:
            raise ValueError(f"{n_features} features is no layout of the first channels of "
                             f"{', '.join(self.channels)}")
        return FeatureLayout(self.channels[:n_channels], self.channel_words[:n_channels])

    def relaid(self, rows: np.ndarray, target: FeatureLayout) -> np.ndarray:
        """Feature vectors of this layout re-laid by name in `target`'s: a channel they lack reads
        as a customer with no history and no consent there."""
        rows = np.asarray(rows, dtype=np.float32)
        if target.names == self.names:
            return rows
        blank = observation(ProfileState.empty(1, consent=False, n_channels=target.n_channels))[0]
        out = np.broadcast_to(blank, (rows.shape[0], target.n_features)).copy()
        kept = [(i, target._index[name]) for i, name in enumerate(self.names)
                if name in target._index]
        source, destination = (np.array(x, dtype=np.int64) for x in zip(*kept))
        out[:, destination] = rows[:, source]
        return out

    def observation_space(self) -> gym.spaces.Box:
        """The single-customer observation space (utc offset is the one feature below 0)."""
        low = np.zeros(self.n_features, dtype=np.float32)
        low[self.index("utc_offset")] = -1.0
        high = np.ones(self.n_features, dtype=np.float32)
        return gym.spaces.Box(low=low, high=high, dtype=np.float32)


DEMO_LAYOUT = FeatureLayout.for_channels(
    tuple(c.key for c in DEFAULT_CHANNELS), tuple(c.label for c in DEFAULT_CHANNELS)
)
"""The demo catalogue's layout (the console's, until a campaign brings its own channels)."""

N_CHANNELS = DEMO_LAYOUT.n_channels
FEATURE_NAMES: tuple[str, ...] = DEMO_LAYOUT.names
N_FEATURES = DEMO_LAYOUT.n_features
FEATURE_LABELS: dict[str, str] = DEMO_LAYOUT.labels


def feature_index(name: str) -> int:
    """Position of feature `name` in the demo layout's vector."""
    return DEMO_LAYOUT.index(name)


# ---------------------------------------------------------------------------------------------
# the raw counters
@dataclass
class ProfileState:
    """Raw per-customer counters, float arrays with a leading customer axis of length n.

    Everything here is derivable from a customer's events and the passing of time, so the console
    can keep it per customer (`to_dict` / `from_dict`) and the simulator for N customers at once.
    Days-since counters are `inf` until the first such event.
    """

    contacts: np.ndarray  # (n, C) decayed contacts per channel (engagement half-life)
    opens: np.ndarray  # (n, C) decayed opens per channel
    clicks: np.ndarray  # (n, C) decayed clicks per channel
    days_since_contact: np.ndarray  # (n, C)
    consent: np.ndarray  # (n, C) 1.0 where the customer consented to the channel
    purchases: np.ndarray  # (n,) decayed orders (purchase half-life)
    discounted_purchases: np.ndarray  # (n,) decayed orders placed with a discount
    revenue: np.ndarray  # (n,) decayed net revenue
    lifetime_purchases: np.ndarray  # (n,)
    lifetime_revenue: np.ndarray  # (n,)
    days_since_purchase: np.ndarray  # (n,)
    days_since_engagement: np.ndarray  # (n,) since last open, click or purchase
    discount_contacts: np.ndarray  # (n,) decayed contacts that carried a discount
    contact_pressure: np.ndarray  # (n,) decayed contacts, short half-life
    recent_contacts: np.ndarray  # (n, HISTORY_DAYS) contacts per day; bin 0 = the current day
    day_clock: np.ndarray  # (n,) fraction of the current day already elapsed, [0, 1)
    tenure_days: np.ndarray  # (n,)
    utc_offset_hours: np.ndarray  # (n,)

    @classmethod
    def empty(
        cls, n: int, consent: bool = True, utc_offset_hours: float | np.ndarray = 0.0,
        n_channels: int = N_CHANNELS,
    ) -> ProfileState:
        """n brand-new customers: no history, consent on every channel unless told otherwise."""
        inf = np.full((n,), np.inf)
        c = int(n_channels)
        return cls(
            contacts=np.zeros((n, c)),
            opens=np.zeros((n, c)),
            clicks=np.zeros((n, c)),
            days_since_contact=np.full((n, c), np.inf),
            consent=np.full((n, c), float(consent)),
            purchases=np.zeros(n),
            discounted_purchases=np.zeros(n),
            revenue=np.zeros(n),
            lifetime_purchases=np.zeros(n),
            lifetime_revenue=np.zeros(n),
            days_since_purchase=inf.copy(),
            days_since_engagement=inf.copy(),
            discount_contacts=np.zeros(n),
            contact_pressure=np.zeros(n),
            recent_contacts=np.zeros((n, HISTORY_DAYS)),
            day_clock=np.zeros(n),
            tenure_days=np.zeros(n),
            utc_offset_hours=np.broadcast_to(np.asarray(utc_offset_hours, float), (n,)).copy(),
        )

    def __len__(self) -> int:
        return int(self.purchases.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.contacts.shape[1])

    def take(self, idx: Any) -> ProfileState:
        """A copy holding only the customers at `idx` (index array or boolean mask)."""
        return ProfileState(**{f.name: getattr(self, f.name)[idx].copy() for f in fields(self)})

    def put(self, idx: Any, other: ProfileState) -> None:
        """Overwrite the customers at `idx` with `other`'s (the simulator's newcomers)."""
        for f in fields(self):
            getattr(self, f.name)[idx] = getattr(other, f.name)

    def copy(self) -> ProfileState:
        return ProfileState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def to_dict(self) -> dict[str, list]:
        """JSON-able form (inf is written as None)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name).astype(object)
            value[~np.isfinite(getattr(self, f.name))] = None
            out[f.name] = value.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> ProfileState:
        missing = {f.name for f in fields(cls)} - set(data)
        if missing:
            raise ValueError(f"profile state lacks {sorted(missing)}")
        arrays = {}
        for f in fields(cls):
            value = np.array(data[f.name], dtype=object)
            value[value == None] = np.inf  # noqa: E711 (element-wise comparison)
            arrays[f.name] = value.astype(np.float64)
        return cls(**arrays)


# ---------------------------------------------------------------------------------------------
# updates from events (vectorised; the console calls them with n = 1)
def _decay(days: float | np.ndarray, half_life: float) -> float | np.ndarray:
    return np.power(0.5, np.asarray(days, dtype=np.float64) / half_life)


def advance_days(state: ProfileState, days: float | np.ndarray) -> None:
    """Let `days` pass (scalar or (n,)): counters decay, recency grows, daily bins shift."""
    days = np.asarray(days, dtype=np.float64)
    if np.any(days < 0) or not np.all(np.isfinite(days)):
        raise ValueError("days must be finite and >= 0")
    col = days[..., None] if days.ndim else days
    engagement = _decay(col, ENGAGEMENT_HALF_LIFE_DAYS)
    state.contacts *= engagement
    state.opens *= engagement
    state.clicks *= engagement
    state.days_since_contact += col
    purchase = _decay(days, PURCHASE_HALF_LIFE_DAYS)
    state.purchases *= purchase
    state.discounted_purchases *= purchase
    state.revenue *= purchase
    state.discount_contacts *= _decay(days, ENGAGEMENT_HALF_LIFE_DAYS)
    state.contact_pressure *= _decay(days, PRESSURE_HALF_LIFE_DAYS)
    state.days_since_purchase += days
    state.days_since_engagement += days
    state.tenure_days += days
    # shift the daily contact bins by the number of midnights crossed
    clock = state.day_clock + days
    shift = np.floor(clock)
    state.day_clock[:] = clock - shift
    shift = shift.astype(np.int64)
    if shift.size and shift.min() == shift.max():  # the simulator's case: everyone moves together
        s = int(min(shift.flat[0], HISTORY_DAYS))
        if s:
            state.recent_contacts[:, s:] = state.recent_contacts[:, : HISTORY_DAYS - s].copy()
            state.recent_contacts[:, :s] = 0.0
    elif shift.size:
        src = np.arange(HISTORY_DAYS)[None, :] - shift[:, None]
        moved = np.take_along_axis(state.recent_contacts, np.clip(src, 0, HISTORY_DAYS - 1), axis=1)
        state.recent_contacts[:] = np.where(src >= 0, moved, 0.0)


def record_contact(
    state: ProfileState, rows: Any, channel_idx: Any, discounted: Any = False
) -> None:
    """A message went out on channel `channel_idx` (index into the catalogue's channels) to
    customers `rows`.

    `rows` is an index array (repeats add up) or a boolean mask over the n customers; `channel_idx`
    and `discounted` are scalars or one value per selected row. `discounted`: the message carried a
    discount (feeds "share of recent contacts that carried a discount").
    """
    rows, channel_idx = _rows_channels(state, rows, channel_idx)
    _add(state.contacts, (rows, channel_idx), 1.0)
    state.days_since_contact[rows, channel_idx] = 0.0
    _add(state.contact_pressure, rows, 1.0)
    _add(state.recent_contacts[:, 0], rows, 1.0)
    _add(state.discount_contacts, rows, np.broadcast_to(np.asarray(discounted, float), rows.shape))


def withdraw_contact(
    state: ProfileState, rows: Any, channel_idx: Any, days_ago: Any, discounted: Any = False,
    previous_days_since: Any = np.inf,
) -> None:
    """A contact recorded `days_ago` never went out (it was released): take it back out.

    The inverse of `record_contact` followed by `advance_days(days_ago)`: its decayed share
    leaves the counters and its day's bin, and where it was the channel's latest contact the
    recency becomes `previous_days_since` (the channel's contact before it; inf if none). Small
    negatives left by float round-off are cleared.
    """
    rows, channel_idx, days_ago = _contact_shift(state, rows, channel_idx, days_ago, discounted,
                                                 -1.0)
    previous = np.broadcast_to(np.asarray(previous_days_since, dtype=np.float64), rows.shape)
    latest = np.isclose(state.days_since_contact[rows, channel_idx], days_ago, rtol=0.0, atol=1e-4)
    state.days_since_contact[rows[latest], channel_idx[latest]] = previous[latest]


def record_past_contact(
    state: ProfileState, rows: Any, channel_idx: Any, days_ago: Any, discounted: Any = False
) -> None:
    """A contact made `days_ago` is counted after all (a delivery receipt for a released one):
    the same as `record_contact` then `advance_days(days_ago)`, without moving the clock."""
    rows, channel_idx, days_ago = _contact_shift(state, rows, channel_idx, days_ago, discounted,
                                                 1.0)
    np.minimum.at(state.days_since_contact, (rows, channel_idx), days_ago)


def _contact_shift(state: ProfileState, rows: Any, channel_idx: Any, days_ago: Any,
                   discounted: Any, sign: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add (sign 1) or remove (-1) one contact of `days_ago` in every decayed counter and bin;
    returns the checked rows, channels and ages."""
    rows, channel_idx = _rows_channels(state, rows, channel_idx)
    days_ago = np.broadcast_to(np.asarray(days_ago, dtype=np.float64), rows.shape)
    if np.any(days_ago < 0) or not np.all(np.isfinite(days_ago)):
        raise ValueError("days_ago must be finite and >= 0")
    engagement = _decay(days_ago, ENGAGEMENT_HALF_LIFE_DAYS)
    discounted = np.broadcast_to(np.asarray(discounted, dtype=np.float64), rows.shape)
    _add(state.contacts, (rows, channel_idx), sign * engagement)
    _add(state.contact_pressure, rows, sign * _decay(days_ago, PRESSURE_HALF_LIFE_DAYS))
    _add(state.discount_contacts, rows, sign * engagement * discounted)
    # the bin it went into has since moved one place per midnight crossed
    day_bin = np.maximum(np.ceil(days_ago - state.day_clock[rows] - 1e-9), 0).astype(np.int64)
    kept = day_bin < HISTORY_DAYS
    _add(state.recent_contacts, (rows[kept], day_bin[kept]), sign)
    if sign < 0:
        for counter in (state.contacts, state.contact_pressure, state.discount_contacts,
                        state.recent_contacts):
            np.maximum(counter, 0.0, out=counter)
    return rows, channel_idx, days_ago


def record_open(state: ProfileState, rows: Any, channel_idx: Any) -> None:
    """The customers at `rows` opened (or, for a call, answered) a message on `channel_idx`."""
    rows, channel_idx = _rows_channels(state, rows, channel_idx)
    _add(state.opens, (rows, channel_idx), 1.0)
    state.days_since_engagement[rows] = 0.0


def record_click(state: ProfileState, rows: Any, channel_idx: Any) -> None:
    """The customers at `rows` clicked through a message on `channel_idx`."""
    rows, channel_idx = _rows_channels(state, rows, channel_idx)
    _add(state.clicks, (rows, channel_idx), 1.0)
    state.days_since_engagement[rows] = 0.0


def record_purchase(
    state: ProfileState, rows: Any, net_revenue: Any, discounted: Any = False
) -> None:
    """The customers at `rows` completed an order worth `net_revenue` (after any discount)."""
    rows = _rows(state, rows)
    net = np.broadcast_to(np.asarray(net_revenue, dtype=np.float64), rows.shape)
    if np.any(~np.isfinite(net)) or np.any(net < 0):
        raise ValueError("net_revenue must be finite and >= 0")
    _add(state.purchases, rows, 1.0)
    _add(state.lifetime_purchases, rows, 1.0)
    _add(state.revenue, rows, net)
    _add(state.lifetime_revenue, rows, net)
    _add(
        state.discounted_purchases, rows, np.broadcast_to(np.asarray(discounted, float), rows.shape)
    )
    state.days_since_purchase[rows] = 0.0
    state.days_since_engagement[rows] = 0.0


def record_unsubscribe(state: ProfileState, rows: Any, channel_idx: Any) -> None:
    """The customers at `rows` unsubscribed from `channel_idx`: consent is withdrawn."""
    set_consent(state, rows, channel_idx, False)


def set_consent(state: ProfileState, rows: Any, channel_idx: Any, granted: Any) -> None:
    """Consent on `channel_idx` became `granted` for the customers at `rows`."""
    rows, channel_idx = _rows_channels(state, rows, channel_idx)
    state.consent[rows, channel_idx] = np.asarray(granted, dtype=np.float64)


class _UniqueRows(np.ndarray):
    """Row indices known to be distinct (from a boolean mask): plain fancy `+=` is then exact."""


def _add(target: np.ndarray, index: Any, value: Any) -> None:
    rows = index[0] if isinstance(index, tuple) else index
    if isinstance(rows, _UniqueRows):
        target[index] += value
    else:
        np.add.at(target, index, value)


def _rows(state: ProfileState, rows: Any) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (len(state),):
            raise ValueError(
                f"a boolean rows mask must have shape ({len(state)},), got {rows.shape}"
            )
        return np.flatnonzero(rows).view(_UniqueRows)
    rows = np.atleast_1d(rows).astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= len(state)):
        raise IndexError(f"rows out of range for {len(state)} customers")
    return rows


def _rows_channels(
    state: ProfileState, rows: Any, channel_idx: Any
) -> tuple[np.ndarray, np.ndarray]:
    rows = _rows(state, rows)
    channel_idx = np.broadcast_to(np.asarray(channel_idx, dtype=np.int64), rows.shape)
    if channel_idx.size and (channel_idx.min() < 0 or channel_idx.max() >= state.n_channels):
        raise ValueError(f"channel_idx must index the profile's {state.n_channels} channels")
    return rows, channel_idx


# ---------------------------------------------------------------------------------------------
# the vector
def _row_sum(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij->i", x)


def _log_scale(x: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.log1p(np.maximum(x, 0.0)) / scale, 0.0, 1.0)


def observation(state: ProfileState) -> np.ndarray:
    """(n, F) float32 in [0, 1] (utc offset in [-1, 1]), in the order of the `FeatureLayout` of
    the profile's channels."""
    n, n_c = len(state), state.n_channels
    g = n_c * len(_PER_CHANNEL)
    out = np.empty((n, g + len(_GLOBAL)), dtype=np.float32)
    per_channel = out[:, :g].reshape(n, n_c, len(_PER_CHANNEL))
    # rates shrink towards 0 when there were few contacts: +1 in the denominator
    denominator = state.contacts + 1.0
    per_channel[:, :, 0] = np.minimum(state.opens / denominator, 1.0)
    per_channel[:, :, 1] = np.minimum(state.clicks / denominator, 1.0)
    per_channel[:, :, 2] = _log_scale(state.contacts, _COUNT_SCALE)
    per_channel[:, :, 3] = _log_scale(np.minimum(state.days_since_contact, 1e6), _DAYS_SCALE)
    per_channel[:, :, 4] = state.consent
    # row sums through einsum: ndarray.sum over a short last axis is slow, and a BLAS product
    # can stall on a busy machine (its threads spin)
    total_contacts = _row_sum(state.contacts)
    contacts_7d = _row_sum(state.recent_contacts[:, :7])
    contacts_30d = _row_sum(state.recent_contacts)
    out[:, g + 0] = _log_scale(np.minimum(state.days_since_purchase, 1e6), _DAYS_SCALE)
    out[:, g + 1] = _log_scale(state.purchases, _COUNT_SCALE)
    out[:, g + 2] = _log_scale(state.revenue, _REVENUE_SCALE)
    out[:, g + 3] = _log_scale(
        state.lifetime_revenue / np.maximum(state.lifetime_purchases, 1.0), _ORDER_SCALE
    )
    out[:, g + 4] = np.minimum(state.discounted_purchases / (state.purchases + 1.0), 1.0)
    out[:, g + 5] = np.minimum(state.discount_contacts / (total_contacts + 1.0), 1.0)
    out[:, g + 6] = _log_scale(np.minimum(state.days_since_engagement, 1e6), _DAYS_SCALE)
    out[:, g + 7] = np.minimum(contacts_7d / 7.0, 1.0)
    out[:, g + 8] = np.minimum(contacts_30d / 30.0, 1.0)
    out[:, g + 9] = _log_scale(state.contact_pressure, _COUNT_SCALE)
    out[:, g + 10] = np.minimum(state.tenure_days / 365.0, 1.0)
    out[:, g + 11] = np.clip(state.utc_offset_hours / _UTC_SCALE, -1.0, 1.0)
    return out


def unscaled_values(obs: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Best inverse of `observation` when only the vector is stored: feature name -> (n,) value
    in the marketer's units (days, counts, revenue), inf for "never".

    Log-scaled features come back approximately (clipped ones as "at least"); rates and shares
    are exact. Unknown features keep their input value.
    """
    days, count = float(_DAYS_SCALE), float(_COUNT_SCALE)
    revenue, order, utc = float(_REVENUE_SCALE), float(_ORDER_SCALE), float(_UTC_SCALE)
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        v = obs[:, i].astype(np.float64)
        if name.endswith("days_since_contact") or name in ("days_since_purchase",
                                                          "days_since_engagement"):
            out[name] = np.where(v >= 1.0, np.inf, np.expm1(v * days))
        elif name.endswith("_contacts") or name in ("purchase_frequency", "contact_pressure"):
            out[name] = np.expm1(v * count)
        elif name == "monetary_value":
            out[name] = np.expm1(v * revenue)
        elif name == "average_order_value":
            out[name] = np.expm1(v * order)
        elif name == "contacts_7d":
            out[name] = v * 7.0
        elif name == "contacts_30d":
            out[name] = v * 30.0
        elif name == "tenure_days":
            out[name] = v * 365.0
        elif name == "utc_offset":
            out[name] = v * utc
        else:
            out[name] = v
    return out


def raw_feature_values(
    profiles: ProfileState, channel_keys: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The unnormalised value behind each feature, from `ProfileState` counters (what
    `observation` scales; kept next to it so the two change together).

    Returns (values, extras): `values[name]` is (n,) float (inf = never happened), the number the
    marketer reads; `extras` holds the counts a phrase needs ("opened 3 of the last 5").
    `channel_keys`: the profile's channels in order (default: the demo catalogue's).
    """
    p = profiles
    values: dict[str, np.ndarray] = {}
    extras: dict[str, np.ndarray] = {}
    for c, channel in enumerate(channel_keys or DEMO_LAYOUT.channels):
        contacts, opens, clicks = p.contacts[:, c], p.opens[:, c], p.clicks[:, c]
        values[f"{channel}_open_rate"] = opens / (contacts + 1.0)
        values[f"{channel}_click_rate"] = clicks / (contacts + 1.0)
        values[f"{channel}_contacts"] = contacts
        values[f"{channel}_days_since_contact"] = p.days_since_contact[:, c]
        values[f"{channel}_consent"] = p.consent[:, c]
        extras[f"{channel}_opens"], extras[f"{channel}_clicks"] = opens, clicks
        extras[f"{channel}_sent"] = contacts
    values["days_since_purchase"] = p.days_since_purchase
    values["purchase_frequency"] = p.purchases
    values["monetary_value"] = p.revenue
    values["average_order_value"] = p.lifetime_revenue / np.maximum(p.lifetime_purchases, 1.0)
    values["discount_purchase_share"] = np.minimum(p.discounted_purchases / (p.purchases + 1.0), 1.0)
    values["discount_contact_share"] = np.minimum(
        p.discount_contacts / (p.contacts.sum(axis=1) + 1.0), 1.0)
    values["days_since_engagement"] = p.days_since_engagement
    values["contacts_7d"] = p.recent_contacts[:, :7].sum(axis=1)
    values["contacts_30d"] = p.recent_contacts.sum(axis=1)
    values["contact_pressure"] = p.contact_pressure
    values["tenure_days"] = p.tenure_days
    values["utc_offset"] = p.utc_offset_hours
    return values, extras


def observation_space(layout: FeatureLayout = DEMO_LAYOUT) -> gym.spaces.Box:
    """The single-customer observation space of `layout` (default: the demo's)."""
    return layout.observation_space()
