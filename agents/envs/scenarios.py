"""Scenarios: the hidden customer population a simulator run draws from.

A `Scenario` holds every behavioural parameter of `CustomerJourneyEnv` as arrays indexed by hidden
segment (S), the channels it knows (C, `channel_keys`), its anchor offers (O, `offer_anchors`) and
the parts of the local day. `Scenario.for_catalogue` lays them out on any catalogue, from each
action's attributes: a channel the scenario does not know behaves like the average of those it
knows (and has no past campaigns), an offer is placed by its incentive kind and size between the
anchors (a 15 % discount between 10 % and 20 %, an amount off or a gift by its share of the
segment's order value), a send window by where its start falls in the customer's local day, and
each message variant has a small hidden effect of its own.
None of it is visible to an agent: it sees only the feature vector built from the customer's
events (agents.features). The numbers are plausible, not fitted to any data set; they are set so
that each lever has a real price:

- discounts lift response (most for deal-seekers) but cost margin; a customer who opened a discount
  holds a coupon for the offer's `validity_days` and uses it on every order, including the ones a loyal customer
  would have placed anyway (cannibalisation);
- a purchase satisfies demand for a while (`refractory_days`), so a pushed order partly pulls
  forward one that would have come anyway;
- every contact adds fatigue, which lowers response and raises unsubscribe and churn hazards;
- SMS gets the best response and the most unsubscribes; a call works but costs 4 currency units;
- churn hazard grows with days since the last open, click or order, so re-engaging an at-risk
  customer is worth more than the order itself (the future orders it keeps);
- hidden segments move: a full-price order can turn a newcomer or an at-risk customer into a loyal
  one, an order with a discount can turn them into a deal-seeker instead, and long inactivity lets
  customers slip towards at-risk and dormant.

What the numbers give (benchmarks/simulator_throughput.py measures speed; the tests in
tests/agents/envs/test_scenarios.py pin these trade-offs): discounts pay for deal-seekers and cost
loyal customers' margin; content keeps loyal customers and newcomers buying; SMS is opened most and
loses the most subscribers; contacting dormant customers mostly buys unsubscribes, so doing
nothing is right for them; and a simple policy that guesses the segment from the features (linear
discriminant on the observation) and picks the best simple plan per segment beats the marketer's
rules (agents.algos.baselines.RuleBasedPolicy) by about +15 % net revenue and +18 % mean return
per customer on `retail` (4000 customers, 90 days, paired 95 % CI about +/-2 points).

`TabularScenario` is a separate small MDP with an exact model (see `agents.evaluate`).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.catalogue import Catalogue
from agents.rewards import RewardWeights

SCENARIOS: tuple[str, ...] = ("retail", "churn_rescue", "tabular")
MOVE_TRIGGERS: tuple[str, ...] = ("order", "incentive_order", "inactive")
LOCAL_DAY_PARTS: dict[str, tuple[float, float]] = {
    "morning": (5.0, 11.5),
    "midday": (11.5, 16.0),
    "evening": (16.0, 23.0),
}
"""Parts of the customer's local day, [start, end) hours, that `window_affinity` refers to;
a send window whose local start hour falls outside them arrives at night."""


def local_day_part(start_hours: np.ndarray) -> np.ndarray:
    """Index into LOCAL_DAY_PARTS of local start hours in [0, 24); 3 means night."""
    part = np.full(np.shape(start_hours), len(LOCAL_DAY_PARTS), dtype=np.int64)
    for i, (lo, hi) in enumerate(LOCAL_DAY_PARTS.values()):
        part[(start_hours >= lo) & (start_hours < hi)] = i
    return part


def _a(rows: Any) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Scenario:
    """Parameters of the customer-journey simulator (per day; S segments).

    Probabilities are per contact unless said otherwise; "open" means read (email, push, SMS) or
    answered (call centre); "click" means followed the link / accepted the pitch. The response to
    an action (channel c, offer o, send window w) by a customer of segment s is a product of small
    tables, so every segment x channel x offer x window cell has its own probability without
    S*C*O*W free numbers to invent:

        P(open)         = open_prob[s, c] * affinity(s, local time of w) * exp(-k * fatigue)
        P(click | open) = channel_click[c] * offer_click[s, o]
        P(order | click) = purchase_given_click[s, o] * (1 - order_gating * (1 - demand))

    with demand = 1 - exp(-days since the last order / refractory_days), k = fatigue_response,
    and the affinity read at the send window's LOCAL time for the customer: `window_affinity` for
    a local start hour in the morning / midday / evening part of the day (LOCAL_DAY_PARTS),
    `night_affinity` outside them (only reachable when quiet hours allow night sends).
    """

    name: str
    """Scenario name (shown in the console)."""
    segment_names: tuple[str, ...]
    """Hidden segments, e.g. loyal, deal_seeker."""
    segment_weights: np.ndarray
    """(S,) share of each segment among new customers."""
    open_prob: np.ndarray
    """(S, C) probability a fresh (unfatigued) customer opens a message on the channel."""
    window_affinity: np.ndarray
    """(S, 3) multiplier on open_prob when the message arrives in the customer's local morning,
    midday or evening (see LOCAL_DAY_PARTS)."""
    channel_click: np.ndarray
    """(C,) multiplier on click probability per channel."""
    offer_click: np.ndarray
    """(S, O) probability of a click given an open, per offer."""
    purchase_given_click: np.ndarray
    """(S, O) probability that a click turns into an order."""
    organic_purchase: np.ndarray
    """(S,) daily probability of an order without any contact, when demand is fully back."""
    order_value: np.ndarray
    """(S,) mean gross order value (currency units); values are log-normal."""
    channel_keys: tuple[str, ...] = ("email", "sms", "push", "call_centre")
    """The channels the per-channel tables describe (their column order)."""
    offer_anchors: tuple[tuple[str, float], ...] = (
        ("none", 0.0), ("percent_off", 10.0), ("percent_off", 20.0), ("free_shipping", 0.0),
    )
    """(incentive kind, value) of each column of the per-offer tables."""
    variant_spread: float = 0.15
    """A message variant other than "default" multiplies the click probability by a hidden
    factor in [1 - spread, 1 + spread] (fixed per variant name)."""
    night_affinity: float = 0.5
    """Multiplier on open_prob for a message arriving at local night (read, if at all, later)."""
    order_value_sigma: float = 0.5
    """Log-normal sigma of order values."""
    refractory_days: float = 10.0
    """Demand after an order recovers as 1 - exp(-days since order / refractory_days)."""
    conversion_delay_p: float = 0.5
    """Geometric parameter of the days between a click and its order (0 days with prob. p)."""
    max_delay_days: int = 6
    """Orders later than this after the click are dropped (the attribution window)."""
    fatigue_per_contact: np.ndarray = field(default_factory=lambda: _a([0.5, 1.0, 0.3, 1.5]))
    """(C,) fatigue added by one contact per channel."""
    fatigue_half_life_days: float = 5.0
    """Fatigue halves in this many days without contact."""
    fatigue_response: float = 0.3
    """Open probability is multiplied by exp(-fatigue_response * fatigue)."""
    unsubscribe_prob: np.ndarray = field(default_factory=lambda: _a([[0.004, 0.03, 0.01, 0.02]]))
    """(S, C) probability a contact makes a fresh customer unsubscribe from that channel."""
    unsubscribe_fatigue: float = 0.5
    """Unsubscribe probability is multiplied by (1 + unsubscribe_fatigue * fatigue)."""
    churn_hazard: np.ndarray = field(default_factory=lambda: _a([0.001]))
    """(S,) daily churn probability of a fresh customer who bought today."""
    churn_inactivity: np.ndarray = field(default_factory=lambda: _a([1.0]))
    """(S,) churn hazard is multiplied by 1 + churn_inactivity * min(idle days, 180) / 30, idle days
    being the days since the last open, click or order."""
    churn_fatigue: float = 0.3
    """Churn hazard is multiplied by exp(churn_fatigue * fatigue)."""
    consent_prob: np.ndarray = field(default_factory=lambda: _a([[0.95, 0.6, 0.4, 0.5]]))
    """(S, C) probability a new customer has consented to the channel."""
    utc_offsets: tuple[float, ...] = (0.0, 1.0, -5.0)
    """Customers' time zones (utc offset hours), drawn uniformly."""
    history_contacts_per_week: np.ndarray = field(default_factory=lambda: _a([2.0, 0.3, 1.0, 0.0]))
    """(C,) weekly contacts of the campaigns before this one (for the starting profiles)."""
    history_discount_share: np.ndarray = field(default_factory=lambda: _a([0.2]))
    """(S,) share of past orders placed with a discount."""
    history_recency_days: np.ndarray = field(default_factory=lambda: _a([20.0]))
    """(S,) mean days since the last order at the start."""
    tenure_days: np.ndarray = field(default_factory=lambda: _a([[60.0, 1500.0]]))
    """(S, 2) uniform range of tenure (days since joining) at the start."""
    segment_moves: tuple[tuple[str, str, str, float], ...] = ()
    """Hidden segment changes: (from, to, trigger, probability). Triggers: "order" (a full-price
    order), "incentive_order" (an order placed with a discount or free shipping), "inactive"
    (each day once days since the last open / click / order exceed `inactive_after_days`)."""
    inactive_after_days: float = 45.0
    """Days without engagement after which "inactive" moves may fire."""
    order_gating: float = 0.6
    """Share of a clicked order's probability that depends on demand being back (see refractory)."""
    horizon_days: int = 90
    """Days each customer is followed (the episode length before truncation)."""
    drift_day: int | None = None
    """Day (of the simulation clock) on which preferences drift; None: never."""
    drift: dict[str, np.ndarray] = field(default_factory=dict)
    """Field name -> replacement array applied from drift_day on (e.g. offer_click)."""
    description: str = ""
    """One sentence for the console."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, f.name, np.array(value, dtype=np.float64))
        s, c, o = self.n_segments, len(self.channel_keys), len(self.offer_anchors)
        # per-segment rows given once apply to every segment
        for name in ("unsubscribe_prob", "consent_prob", "tenure_days"):
            value = getattr(self, name)
            if value.shape[0] == 1 and s > 1:
                object.__setattr__(self, name, np.repeat(value, s, axis=0))
        for name in (
            "churn_hazard",
            "churn_inactivity",
            "history_discount_share",
            "history_recency_days",
        ):
            value = getattr(self, name)
            if value.shape == (1,) and s > 1:
                object.__setattr__(self, name, np.repeat(value, s))
        expected = {
            "segment_weights": (s,),
            "open_prob": (s, c),
            "window_affinity": (s, len(LOCAL_DAY_PARTS)),
            "channel_click": (c,),
            "offer_click": (s, o),
            "purchase_given_click": (s, o),
            "organic_purchase": (s,),
            "order_value": (s,),
            "fatigue_per_contact": (c,),
            "unsubscribe_prob": (s, c),
            "churn_hazard": (s,),
            "churn_inactivity": (s,),
            "consent_prob": (s, c),
            "history_contacts_per_week": (c,),
            "history_discount_share": (s,),
            "history_recency_days": (s,),
            "tenure_days": (s, 2),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                got = getattr(self, name).shape
                raise ValueError(f"{self.name}: {name} must have shape {shape}, got {got}")
        probabilities = (
            "open_prob",
            "offer_click",
            "purchase_given_click",
            "organic_purchase",
            "unsubscribe_prob",
            "churn_hazard",
            "consent_prob",
            "history_discount_share",
        )
        for name in probabilities:
            value = getattr(self, name)
            if np.any(value < 0) or np.any(value > 1):
                raise ValueError(f"{self.name}: {name} must hold probabilities in [0, 1]")
        if np.any(self.segment_weights < 0) or not np.isclose(self.segment_weights.sum(), 1.0):
            raise ValueError(f"{self.name}: segment_weights must be >= 0 and sum to 1")
        if self.horizon_days < 1:
            raise ValueError("horizon_days must be >= 1")
        if not 0 < self.conversion_delay_p <= 1:
            raise ValueError("conversion_delay_p must lie in (0, 1]")
        for name, value in self.drift.items():
            current = getattr(self, name, None)
            if not isinstance(current, np.ndarray) or np.shape(value) != current.shape:
                raise ValueError(
                    f"{self.name}: drift of {name!r} must replace an array of the same shape"
                )
        if self.drift and self.drift_day is None:
            raise ValueError("drift given without drift_day")
        for move in self.segment_moves:
            source, target, trigger, prob = move
            if source not in self.segment_names or target not in self.segment_names:
                raise ValueError(f"{self.name}: unknown segment in move {move!r}")
            if trigger not in MOVE_TRIGGERS or not 0 <= prob <= 1:
                raise ValueError(
                    f"{self.name}: move {move!r} needs a trigger in {MOVE_TRIGGERS} "
                    "and a probability"
                )
        if not np.isfinite(self.night_affinity) or self.night_affinity < 0:
            raise ValueError("night_affinity must be a finite number >= 0")
        if not 0 <= self.order_gating <= 1:
            raise ValueError("order_gating must lie in [0, 1]")

    def move_matrix(self, trigger: str) -> np.ndarray:
        """(S, S) probability of each segment change when `trigger` fires (rows sum to 1)."""
        s = self.n_segments
        matrix = np.zeros((s, s))
        for source, target, kind, prob in self.segment_moves:
            if kind == trigger:
                matrix[self.segment_names.index(source), self.segment_names.index(target)] += prob
        stay = 1.0 - matrix.sum(axis=1)
        if np.any(stay < -1e-9):
            raise ValueError(f"{self.name}: {trigger} moves out of a segment sum to more than 1")
        matrix[np.arange(s), np.arange(s)] += np.maximum(stay, 0.0)
        return matrix

    @property
    def n_segments(self) -> int:
        return len(self.segment_names)

    def for_catalogue(self, catalogue: Catalogue) -> CatalogueResponse:
        """The per-channel and per-offer tables laid out on `catalogue`'s channels and offers."""
        known = [self.channel_keys.index(k) if k in self.channel_keys else -1
                 for k in catalogue.channel_keys]

        def per_channel(table: np.ndarray, unknown: np.ndarray | float) -> np.ndarray:
            columns = [table[..., c] if c >= 0 else np.broadcast_to(unknown, table.shape[:-1])
                       for c in known]
            return np.stack(columns, axis=-1).astype(np.float64)

        def average(table: np.ndarray) -> np.ndarray:
            return table.mean(axis=-1)

        click = np.stack([self._offer_column(self.offer_click, o) for o in catalogue.offers], 1)
        order = np.stack(
            [self._offer_column(self.purchase_given_click, o) for o in catalogue.offers], 1
        )
        return CatalogueResponse(
            open_prob=per_channel(self.open_prob, average(self.open_prob)),
            channel_click=per_channel(self.channel_click, average(self.channel_click)),
            fatigue_per_contact=per_channel(
                self.fatigue_per_contact, average(self.fatigue_per_contact)
            ),
            unsubscribe_prob=per_channel(self.unsubscribe_prob, average(self.unsubscribe_prob)),
            consent_prob=per_channel(self.consent_prob, average(self.consent_prob)),
            history_contacts_per_week=per_channel(self.history_contacts_per_week, 0.0),
            offer_click=np.clip(click, 0.0, 1.0),
            purchase_given_click=np.clip(order, 0.0, 1.0),
            variant_click=np.array([self.variant_effect(a.variant) for a in catalogue.actions]),
        )

    def _offer_column(self, table: np.ndarray, offer: Any) -> np.ndarray:
        """(S,) a per-offer table's column for `offer`: an anchor's own, or interpolated by how
        much of an order the offer is worth to each segment (linear beyond the largest anchor)."""
        anchor = (offer.kind, float(offer.value) if offer.kind == "percent_off" else 0.0)
        if offer.kind in ("none", "percent_off", "free_shipping") and anchor in self.offer_anchors:
            return table[:, self.offer_anchors.index(anchor)]
        scale = [(0.0 if kind == "none" else value / 100.0, i)
                 for i, (kind, value) in enumerate(self.offer_anchors)
                 if kind in ("none", "percent_off")]
        scale.sort()
        shares = np.array([g for g, _ in scale])
        columns = table[:, [i for _, i in scale]]  # (S, K) along the percent scale
        if offer.kind == "percent_off":
            worth = np.full(self.n_segments, offer.value / 100.0)
        elif offer.kind == "amount_off":
            worth = offer.value / self.order_value
        else:  # free shipping without an anchor, a gift, extra points: what they cost
            worth = offer.redemption_cost / self.order_value
        out = np.empty(self.n_segments)
        for s in range(self.n_segments):  # S rows of a handful of anchors
            out[s] = np.interp(worth[s], shares, columns[s])
            if worth[s] > shares[-1] and len(shares) > 1:
                slope = (columns[s, -1] - columns[s, -2]) / (shares[-1] - shares[-2])
                out[s] = columns[s, -1] + slope * (worth[s] - shares[-1])
        return out

    def variant_effect(self, variant: str) -> float:
        """The hidden click multiplier of a message variant (1 for "default")."""
        if variant == "default":
            return 1.0
        unit = zlib.crc32(variant.encode()) / 0xFFFFFFFF  # stable across runs and machines
        return 1.0 + self.variant_spread * (2.0 * unit - 1.0)

    def drifted(self) -> Scenario:
        """This scenario with the drift applied (what customers behave like from drift_day on)."""
        return dataclasses.replace(
            self,
            drift={},
            drift_day=None,
            **{k: np.asarray(v, float) for k, v in self.drift.items()},
        )


@dataclass(frozen=True)
class CatalogueResponse:
    """A scenario's response tables on one catalogue's channels (C) and offers (O)."""

    open_prob: np.ndarray  # (S, C)
    channel_click: np.ndarray  # (C,)
    fatigue_per_contact: np.ndarray  # (C,)
    unsubscribe_prob: np.ndarray  # (S, C)
    consent_prob: np.ndarray  # (S, C)
    history_contacts_per_week: np.ndarray  # (C,)
    offer_click: np.ndarray  # (S, O)
    purchase_given_click: np.ndarray  # (S, O)
    variant_click: np.ndarray  # (A,) click multiplier of each action's message variant


# ---------------------------------------------------------------------------------------------
# retail: the default demo population
_RETAIL_SEGMENTS = ("loyal", "deal_seeker", "at_risk", "dormant", "new", "browser")


# fmt: off
def retail() -> Scenario:
    """Six hidden segments of an online retailer; the default demo.

    Rows of every per-segment table follow `_RETAIL_SEGMENTS`:
    loyal, deal_seeker, at_risk, dormant, new, browser.
    """
    return Scenario(
        name="retail",
        description="Online retailer: loyal buyers, deal-seekers, at-risk and dormant customers, "
                    "newcomers and browsers who open everything and rarely buy.",
        segment_names=_RETAIL_SEGMENTS,
        segment_weights=_a([0.20, 0.22, 0.18, 0.15, 0.10, 0.15]),
        #               email  sms   push  call
        open_prob=_a([[0.45, 0.70, 0.20, 0.50],     # loyal
                      [0.30, 0.60, 0.15, 0.40],     # deal_seeker
                      [0.22, 0.50, 0.08, 0.45],     # at_risk
                      [0.05, 0.20, 0.02, 0.30],     # dormant
                      [0.40, 0.55, 0.18, 0.40],     # new
                      [0.60, 0.65, 0.35, 0.35]]),   # browser
        #                    morning midday evening
        window_affinity=_a([[1.25, 0.85, 0.90],     # loyal read the morning mail
                            [0.70, 0.90, 1.40],     # deal-seekers shop in the evening
                            [1.00, 0.80, 1.20],
                            [0.90, 0.90, 1.10],
                            [0.80, 1.30, 1.00],
                            [0.70, 1.35, 1.00]]),   # browsers scroll at lunch
        channel_click=_a([1.0, 0.8, 0.7, 1.2]),
        #                 content d10   d20  free_ship
        offer_click=_a([[0.14, 0.17, 0.19, 0.16],   # loyal barely care about the discount
                        [0.04, 0.30, 0.50, 0.28],   # deal-seekers live for it
                        [0.12, 0.25, 0.35, 0.25],
                        [0.04, 0.10, 0.18, 0.08],
                        [0.16, 0.24, 0.28, 0.30],
                        [0.30, 0.35, 0.38, 0.35]]),
        purchase_given_click=_a([[0.40, 0.42, 0.45, 0.42],
                                 [0.08, 0.40, 0.55, 0.30],
                                 [0.25, 0.35, 0.45, 0.35],
                                 [0.10, 0.22, 0.32, 0.18],
                                 [0.22, 0.32, 0.40, 0.42],
                                 [0.03, 0.05, 0.08, 0.05]]),   # browsers click, rarely buy
        organic_purchase=_a([0.050, 0.006, 0.012, 0.002, 0.018, 0.004]),
        order_value=_a([70.0, 45.0, 55.0, 50.0, 50.0, 40.0]),
        #                       email  sms    push   call
        unsubscribe_prob=_a([[0.002, 0.015, 0.005, 0.010],
                             [0.004, 0.030, 0.010, 0.020],
                             [0.008, 0.050, 0.015, 0.030],
                             [0.010, 0.060, 0.020, 0.040],
                             [0.004, 0.030, 0.010, 0.020],
                             [0.002, 0.020, 0.008, 0.030]]),
        churn_hazard=_a([0.0004, 0.0012, 0.0030, 0.0010, 0.0020, 0.0008]),
        churn_inactivity=_a([0.5, 0.5, 1.2, 0.3, 0.8, 0.3]),
        #                   email  sms   push  call
        consent_prob=_a([[0.97, 0.70, 0.50, 0.60],
                         [0.95, 0.65, 0.45, 0.45],
                         [0.93, 0.55, 0.35, 0.55],
                         [0.90, 0.40, 0.20, 0.45],
                         [0.98, 0.60, 0.55, 0.40],
                         [0.97, 0.50, 0.60, 0.40]]),
        utc_offsets=(0.0, 0.0, 1.0, 1.0, 2.0, -5.0),
        history_discount_share=_a([0.15, 0.70, 0.30, 0.30, 0.25, 0.40]),
        history_recency_days=_a([12.0, 45.0, 50.0, 200.0, 10.0, 90.0]),
        tenure_days=_a([[365, 2500], [90, 1500], [180, 2000], [365, 2500], [1, 30], [60, 1500]]),
        segment_moves=(
            # a full-price order makes a newcomer a regular; a discounted one, a bargain hunter
            ("new", "loyal", "order", 0.30),
            ("new", "loyal", "incentive_order", 0.12),
            ("new", "deal_seeker", "incentive_order", 0.20),
            ("new", "at_risk", "inactive", 0.03),
            ("loyal", "deal_seeker", "incentive_order", 0.04),
            ("loyal", "at_risk", "inactive", 0.02),
            # an at-risk customer won back at full price is won back for good
            ("at_risk", "loyal", "order", 0.20),
            ("at_risk", "loyal", "incentive_order", 0.05),
            ("at_risk", "deal_seeker", "incentive_order", 0.15),
            ("at_risk", "dormant", "inactive", 0.01),
            ("dormant", "at_risk", "order", 0.50),
            ("dormant", "at_risk", "incentive_order", 0.40),
            ("deal_seeker", "loyal", "order", 0.06),
            ("deal_seeker", "dormant", "inactive", 0.005),
            ("browser", "loyal", "order", 0.10),
            ("browser", "deal_seeker", "incentive_order", 0.05),
        ),
        horizon_days=90,
    )
# fmt: on


def churn_rescue() -> Scenario:
    """A base leaning at-risk and dormant, where keeping customers matters more than selling.

    Compared with `retail`: more at-risk and dormant customers, churn hazards that climb faster
    with every idle day (so an opened message or an order buys time), and at-risk customers who
    answer the call centre more often - the expensive personal channel is the rescue lever.
    """
    base = retail()
    open_prob = base.open_prob.copy()
    open_prob[_RETAIL_SEGMENTS.index("at_risk"), base.channel_keys.index("call_centre")] = 0.60
    return dataclasses.replace(
        base,
        name="churn_rescue",
        description="Subscription-like base after a bad quarter: many at-risk and dormant "
        "customers whose churn hazard climbs fast without a reason to come back.",
        segment_weights=_a([0.10, 0.15, 0.35, 0.25, 0.05, 0.10]),
        open_prob=open_prob,
        churn_hazard=base.churn_hazard * 1.3,
        churn_inactivity=_a([0.8, 1.0, 3.0, 0.8, 1.5, 0.5]),
        history_recency_days=_a([20.0, 60.0, 70.0, 240.0, 12.0, 110.0]),
        horizon_days=60,
    )


# ---------------------------------------------------------------------------------------------
# tabular: a small MDP with an exact model
TABULAR_ACTIONS: tuple[str, ...] = (
    "no contact",
    "email - content",
    "email - 20 % off",
    "SMS - 20 % off",
)
ENGAGEMENT_LEVELS: tuple[str, ...] = ("lapsed", "cooling", "active", "fan")
FATIGUE_LEVELS: tuple[str, ...] = ("fresh", "tired", "saturated")


@dataclass(frozen=True, eq=False)
class TabularScenario:
    """A customer as a small discrete MDP: engagement level x fatigue level (+ churned).

    State s = engagement * len(FATIGUE_LEVELS) + fatigue. The model is exact and public:
    `transitions[s, a, s']` over the live states (the missing mass is the churn probability, which
    ends the episode), `purchase_prob[s, a]` (an order worth `order_value[a]` net of discount),
    `contact_cost[a]`, `allowed[s, a]` (the contact cap: nothing but "no contact" when saturated),
    `initial` (everyone starts fresh). `expected_rewards(weights)` is the mean one-day reward the
    simulator pays; `agents.evaluate` solves the MDP with discount `gamma`.
    """

    name: str
    transitions: np.ndarray
    """(S, A, S) probability of the next live state; rows sum to 1 - churn probability."""
    purchase_prob: np.ndarray
    """(S, A) probability of an order today."""
    order_value: np.ndarray
    """(A,) net value of an order placed after each action (discounts already taken off)."""
    contact_cost: np.ndarray
    """(A,) contact cost of each action."""
    allowed: np.ndarray
    """(S, A) bool action mask (the cap rule)."""
    initial: np.ndarray
    """(S,) distribution of a new customer's state."""
    gamma: float = 0.95
    """Discount of the exact values (agents trained on this scenario should use it)."""
    horizon_days: int = 200
    """Truncation of the simulated episodes (gamma ** 200 < 1e-4: negligible for the values)."""
    action_labels: tuple[str, ...] = TABULAR_ACTIONS
    description: str = ""

    def __post_init__(self) -> None:
        s, a = self.purchase_prob.shape
        if self.transitions.shape != (s, a, s) or self.allowed.shape != (s, a):
            raise ValueError("tabular model arrays disagree on the number of states / actions")
        if np.any(self.transitions < 0) or np.any(self.transitions.sum(axis=2) > 1 + 1e-9):
            raise ValueError("transitions must be >= 0 and sum to at most 1 per (state, action)")
        if not np.isclose(self.initial.sum(), 1.0):
            raise ValueError("initial must sum to 1")
        if not self.allowed[:, 0].all():
            raise ValueError("'no contact' (action 0) must be allowed in every state")
        if not 0 <= self.gamma < 1:
            raise ValueError("gamma must lie in [0, 1)")

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.transitions.shape[1])

    @property
    def churn_prob(self) -> np.ndarray:
        """(S, A) probability the day ends in churn."""
        return np.clip(1.0 - self.transitions.sum(axis=2), 0.0, 1.0)

    def expected_rewards(self, weights: RewardWeights | None = None) -> np.ndarray:
        """(S, A) mean reward of one day: the same `agents.rewards.reward` the simulator pays."""
        w = weights or RewardWeights()
        return (
            (w.revenue * self.order_value[None, :] + w.conversion) * self.purchase_prob
            + w.contact_cost * self.contact_cost[None, :]
            + w.churn * self.churn_prob
        )

    def state_label(self, s: int) -> str:
        f = len(FATIGUE_LEVELS)
        return f"{ENGAGEMENT_LEVELS[s // f]} / {FATIGUE_LEVELS[s % f]}"


def tabular() -> TabularScenario:
    """4 engagement x 3 fatigue levels, 4 actions; an exact model for value iteration.

    Each day a contact may bring an order (a discount more likely, at a margin cost), adds fatigue
    (SMS: two levels) and, when it lands, lifts engagement; rest lets fatigue recover while
    engagement slowly cools. Churn hazard falls with engagement and rises with fatigue. The exact
    optimum (gamma 0.95) contacts only fresh customers, with the action their engagement calls
    for (SMS discount when lapsed, email discount when cooling, plain email when active or a fan);
    the best rule blind to engagement reaches 75 % of it, the best blind to fatigue 58 %, the
    myopic policy 58 %, uniform random 27 %, never contacting 23 %.
    """
    n_e, n_f, n_a = len(ENGAGEMENT_LEVELS), len(FATIGUE_LEVELS), len(TABULAR_ACTIONS)
    n_s = n_e * n_f
    full_price = 50.0
    order_value = np.array([full_price, full_price, 0.8 * full_price, 0.8 * full_price])
    contact_cost = np.array([0.0, 0.05, 0.05, 0.40])
    organic = np.array([0.005, 0.02, 0.05, 0.10])  # order probability with no contact
    # fmt: off
    # extra order probability of each action (columns) per engagement level (rows): a lapsed
    # customer answers only a strong incentive on a strong channel, an active one a plain email
    lift = np.array([[0.0, 0.01, 0.04, 0.16],   # lapsed
                     [0.0, 0.03, 0.10, 0.08],   # cooling
                     [0.0, 0.09, 0.08, 0.08],   # active
                     [0.0, 0.06, 0.04, 0.04]])  # fan
    # fmt: on
    fatigue_drag = np.array([1.0, 0.6, 0.25])  # response multiplier per fatigue level
    churn_base = np.array([0.030, 0.012, 0.004, 0.002])  # per engagement level
    churn_fatigue = np.array([1.0, 1.8, 3.5])  # multiplier per fatigue level
    sms_churn = 1.3  # an SMS annoys more: churn multiplier on the day it is sent
    engage_up = np.array([0.3, 0.5, 0.3, 0.35])  # P(engagement up | an order), per action
    cool_down = np.array([0.06, 0.04, 0.10, 0.15])  # P(engagement down | no order), per action
    transitions = np.zeros((n_s, n_a, n_s))
    purchase = np.zeros((n_s, n_a))
    allowed = np.ones((n_s, n_a), dtype=bool)
    for e in range(n_e):
        for f in range(n_f):
            s = e * n_f + f
            allowed[s, 1:] = f < n_f - 1  # the cap: no contact when saturated
            for a in range(n_a):
                p_buy = min(1.0, organic[e] + lift[e, a] * fatigue_drag[f])
                purchase[s, a] = p_buy
                annoyance = sms_churn if a == 3 else 1.0
                p_churn = min(1.0, churn_base[e] * churn_fatigue[f] * annoyance)
                f_next = max(f - 1, 0) if a == 0 else min(f + (2 if a == 3 else 1), n_f - 1)
                p_up = p_buy * engage_up[a]
                p_down = (1.0 - p_buy) * cool_down[a]
                moves = {min(e + 1, n_e - 1): p_up}
                moves[max(e - 1, 0)] = moves.get(max(e - 1, 0), 0.0) + p_down
                moves[e] = moves.get(e, 0.0) + 1.0 - p_up - p_down
                for e2, pe in moves.items():
                    transitions[s, a, e2 * n_f + f_next] += (1.0 - p_churn) * pe
    initial = np.zeros(n_s)
    initial[np.arange(n_e) * n_f] = [0.25, 0.35, 0.30, 0.10]  # everyone starts fresh
    return TabularScenario(
        name="tabular",
        transitions=transitions,
        purchase_prob=purchase,
        order_value=order_value,
        contact_cost=contact_cost,
        allowed=allowed,
        initial=initial,
        description="A customer as 12 states (engagement x fatigue) and 4 actions, "
        "solvable exactly.",
    )


_FACTORIES = {"retail": retail, "churn_rescue": churn_rescue, "tabular": tabular}


def get_scenario(name: str, **overrides: Any) -> Scenario | TabularScenario:
    """The named scenario, with any field replaced by `overrides` (e.g. horizon_days=30)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    scenario = _FACTORIES[name]()
    return dataclasses.replace(scenario, **overrides) if overrides else scenario
