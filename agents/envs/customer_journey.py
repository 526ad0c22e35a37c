"""The vectorised customer-journey simulator (one step = one day for N customers)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from agents import features
from agents.catalogue import Catalogue, default_catalogue
from agents.constraints import (
    ContactRules,
    ContactState,
    contact_mask,
    default_contact_rules,
)
from agents.envs.scenarios import (
    MOVE_TRIGGERS,
    CatalogueResponse,
    Scenario,
    TabularScenario,
    get_scenario,
    local_day_part,
)
from agents.features import FeatureLayout, ProfileState
from agents.rewards import Outcomes, RewardWeights, reward

DECISION_HOUR = 7.0
"""Each day's decisions are made at 07:00 campaign time, as a CRM's morning batch is; each contact
then goes out at its send window in the customer's local time (agents.constraints.send_hours)."""
_N_UNIFORMS = 8  # open, click, order, delay, unsubscribe, organic order, churn, segment move
_N_NORMALS = 2  # value of a clicked order, value of an organic order

OUTCOME_KEYS: tuple[str, ...] = (
    "opens",
    "clicks",
    "conversions",
    "net_revenue",
    "unsubscribes",
    "churned",
    "contact_cost",
    "cap_violations",
)
"""Per-customer arrays every step's info carries (besides "action_mask" and "mask_reasons")."""


def outcome_info(
    outcomes: Outcomes, cap_violations: np.ndarray, action_sent: np.ndarray
) -> dict[str, np.ndarray]:
    """The OUTCOME_KEYS arrays of one step's info and the action sent, as every journey env
    reports them (`agents.evaluate` and the trainers read them by these names)."""
    return {
        "opens": outcomes.opens,
        "clicks": outcomes.clicks,
        "conversions": outcomes.conversions,
        "net_revenue": outcomes.net_revenue,
        "unsubscribes": outcomes.unsubscribes,
        "churned": outcomes.churns,
        "contact_cost": outcomes.contact_cost,
        "cap_violations": cap_violations.astype(np.float64),
        "action_sent": action_sent,
    }


def resolve_scenario(scenario: str | Scenario | TabularScenario) -> Scenario | TabularScenario:
    return get_scenario(scenario) if isinstance(scenario, str) else scenario


class RuledJourneyEnv(gym.vector.VectorEnv):
    """What every customer-journey vector env shares, whoever decides how customers respond (the
    scenario's hidden segments, or a response model fitted from a workspace's logs): the
    catalogue's spaces and action tables, the contact rules' mask and send times from each
    channel's recent sends, the rule check of the chosen actions, and the contact events recorded
    in the customers' profiles. One place, so the rules hold the same wherever a policy trains.

    A subclass calls `_setup` in its constructor, keeps `profile` (ProfileState), `_day` and calls
    `_reset_contact_history` for new customers; `_recent` and `_suppressed` are created here.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def _setup(
        self,
        num_customers: int,
        reward_weights: RewardWeights | None,
        contact_rules: ContactRules | None,
        catalogue: Catalogue | None,
        horizon_days: int,
        seed: int | None,
        enabled_actions: np.ndarray | None,
    ) -> None:
        if int(num_customers) < 1:
            raise ValueError("num_customers must be >= 1")
        self.num_envs = int(num_customers)
        self.reward_weights = reward_weights or RewardWeights()
        self.contact_rules = contact_rules or default_contact_rules()
        self.catalogue = catalogue or default_catalogue()
        self.horizon_days = int(horizon_days)
        if self.horizon_days < 1:
            raise ValueError("horizon_days must be >= 1")
        if enabled_actions is not None:
            enabled_actions = np.asarray(enabled_actions, dtype=bool)
            if enabled_actions.shape != (self.catalogue.n_actions,):
                raise ValueError(f"enabled_actions must have shape ({self.catalogue.n_actions},)")
        self.enabled_actions = enabled_actions
        self.feature_layout = FeatureLayout.for_catalogue(self.catalogue)
        self.single_observation_space = self.feature_layout.observation_space()
        self.single_action_space = gym.spaces.Discrete(self.catalogue.n_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._init_seed = seed
        self._seeded = False
        # action attributes as lookup tables (index by action)
        cat = self.catalogue
        self._a_channel = np.where(cat.channel_index >= 0, cat.channel_index, 0)
        self._a_offer = np.where(cat.offer_index >= 0, cat.offer_index, 0)
        self._a_window = np.where(cat.window_index >= 0, cat.window_index, 0)
        self._a_contact = cat.channel_index >= 0
        self._a_cost = cat.cost
        offers = [cat.offers[o] for o in self._a_offer]
        contact = self._a_contact
        self._discount_a = np.where(contact, [o.margin_share for o in offers], 0.0)
        self._amount_a = np.where(contact, [o.amount_off for o in offers], 0.0)
        self._redemption_a = np.where(contact, [o.redemption_cost for o in offers], 0.0)
        self._incentive_a = contact & np.array([o.is_incentive for o in offers])
        self._validity_a = np.array([o.validity_days for o in offers], dtype=np.int64)
        # each channel's most recent send times, as many as any cap counts (agents.constraints
        # is exact with those when nothing is scheduled after the decision, as here)
        rules = self.contact_rules
        limits = [limit for limit, _ in rules.channel_caps.values()]
        if rules.overall_cap is not None:
            limits.append(rules.overall_cap[0])
        self._recent_per_channel = max([1, *limits])

    def _seed_streams(self, seed: int | None) -> None:
        """Seed the day's random streams at reset: the daily draws (shape fixed, so
        policy-independent) and the newcomers; without a seed the first reset uses the
        constructor's and later ones continue the stream. The clock restarts at day 0."""
        if seed is None and not self._seeded:
            seed = self._init_seed
        gym.vector.VectorEnv.reset(self, seed=seed)
        self._seeded = True
        root = int(self.np_random.integers(2**62))
        self._daily_rng = np.random.default_rng([root, 1])
        self._newcomer_rng = np.random.default_rng([root, 2])
        self._day = 0

    def _start_contact_history(self) -> None:
        """Empty send history and suppression for all N slots (at reset, before new customers)."""
        n, n_c = self.num_envs, len(self.catalogue.channels)
        self._recent = np.full((n, n_c, self._recent_per_channel), -np.inf)
        self._suppressed = np.zeros(n, dtype=bool)

    def _checked_actions(self, actions: Any) -> np.ndarray:
        """(N,) int64 action indices, or a ValueError saying what is wrong."""
        n = self.num_envs
        actions = np.asarray(actions)
        if actions.shape != (n,):
            actions = actions.reshape(-1)
            if actions.shape != (n,):
                raise ValueError(f"actions must have shape ({n},), got {np.shape(actions)}")
        if not np.issubdtype(actions.dtype, np.integer):
            if not np.all(np.mod(actions, 1) == 0):
                raise ValueError("actions must be whole action indices")
        actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= self.catalogue.n_actions:
            raise ValueError(f"actions must lie in [0, {self.catalogue.n_actions})")
        return actions

    def _enforce_rules(
        self, actions: np.ndarray, live: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The actions sent (a masked one is replaced by "no contact"), which were masked, and
        which rows were contacted."""
        a = np.where(live, actions, 0)
        violation = ~self._mask[np.arange(self.num_envs), a]
        a = np.where(violation, 0, a)
        return a, violation, self._a_contact[a]

    def _send_hours_of(self, a: np.ndarray) -> np.ndarray:
        """(N,) when each row's action goes out today (simulation clock)."""
        return self._send[np.arange(self.num_envs), self._a_window[a]]

    def _record_contact_events(
        self, a: np.ndarray, contacted: np.ndarray, opened: np.ndarray, clicked: np.ndarray,
        unsubscribed: np.ndarray, send: np.ndarray,
    ) -> None:
        """Today's contacts, opens, clicks and unsubscribes in the profiles, as the console
        records real ones, and each contact in the rules' own history at its send time."""
        ch = self._a_channel[a]
        prof = self.profile
        features.record_contact(
            prof, contacted, ch[contacted], discounted=self._incentive_a[a[contacted]]
        )
        features.record_open(prof, opened, ch[opened])
        features.record_click(prof, clicked, ch[clicked])
        features.record_unsubscribe(prof, unsubscribed, ch[unsubscribed])
        if contacted.any():
            r = np.flatnonzero(contacted)
            self._remember_sends(r, send[r], ch[r])

    def _lost_all_consent(self, unsubscribed: np.ndarray) -> np.ndarray:
        """Rows whose unsubscribe today left them no channel to be reached on."""
        lost = unsubscribed.copy()
        if unsubscribed.any():
            lost[unsubscribed] = self.profile.consent[unsubscribed].max(axis=1) < 0.5
        return lost

    def _outcome_info(
        self, outcomes: Outcomes, violation: np.ndarray, live: np.ndarray, a: np.ndarray,
        contacted: np.ndarray, send: np.ndarray, today: int,
    ) -> dict[str, Any]:
        """The step's info: next mask and its reasons, the outcome arrays (OUTCOME_KEYS), what
        was sent when, and the day the decision was made (`today`, as a CRM log dates it)."""
        return {
            "action_mask": self._mask,
            "mask_reasons": self._reasons,
            **outcome_info(outcomes, violation & live, a),
            "contacted": contacted.astype(np.float64),
            # when each contact went out (simulation clock); -inf, not NaN, where nothing was sent
            # (NaN != NaN would make two identical steps differ)
            "send_hours": np.where(contacted, send, -np.inf),
            "reset": ~live,
            "day": np.full(self.num_envs, float(today)),
        }

    def _now_hours(self) -> float:
        """Today's decision time on the simulation clock, whose zero is a UTC midnight (so a
        customer's local time is the clock + their utc offset, see send_hours): DECISION_HOUR
        campaign time on day `day`."""
        return self._day * 24.0 + DECISION_HOUR - self.contact_rules.campaign_utc_offset_hours

    def _remember_sends(self, rows: np.ndarray, hours: np.ndarray, channels: np.ndarray) -> None:
        """Put each row's new send first in its channel's list (newest first; rows unique)."""
        older = self._recent[rows, channels, :-1]
        self._recent[rows, channels, 1:] = older
        self._recent[rows, channels, 0] = hours

    def _reset_contact_history(self, rows: np.ndarray, every_channel: bool = False) -> None:
        """New customers at `rows`: their send history is the previous campaigns' last contact
        per the profile's days since contact (the latest one overall, or with `every_channel`
        each channel's latest, for customers whose last contacts may still count towards the
        caps), and they are not suppressed."""
        self._recent[rows] = -np.inf
        days = self.profile.days_since_contact[rows]
        if every_channel:
            for channel in range(days.shape[1]):
                known = np.isfinite(days[:, channel])
                self._remember_sends(rows[known], self._now_hours() - days[known, channel] * 24.0,
                                     np.full(int(known.sum()), channel))
        else:
            last = np.min(days, axis=1)
            known = np.isfinite(last)
            self._remember_sends(
                rows[known], self._now_hours() - last[known] * 24.0, np.argmin(days[known], axis=1)
            )
        self._suppressed[rows] = False

    def _contact_state(self) -> ContactState:
        return ContactState(
            now_hours=np.full(self.num_envs, self._now_hours()),
            contact_hours=self._recent,
            consent=self.profile.consent > 0.5,
            utc_offset_hours=self.profile.utc_offset_hours,
            suppressed=self._suppressed,
            send_windows=self.catalogue.send_windows,
            check=False,  # the simulator's own arrays, newest first by construction
        )

    def _compute_mask(self) -> tuple[np.ndarray, np.ndarray]:
        state = self._contact_state()
        self._send = state.send_hours  # (n, W) today
        return contact_mask(self.catalogue, self.contact_rules, state, self.enabled_actions)

    @property
    def day(self) -> int:
        """Days since the last reset (the simulation clock)."""
        return self._day

    @property
    def action_mask(self) -> np.ndarray:
        return self._mask


class CustomerJourneyEnv(RuledJourneyEnv):
    """N customers living through a marketing campaign, one day per step.

    Each customer belongs to a hidden segment of the scenario (loyal, deal-seeker, at-risk, ...)
    that sets how they respond to each channel, offer and send window of the catalogue, whatever
    the catalogue holds (`Scenario.for_catalogue` places custom channels and offers). The policy sees only the
    feature vector the console would build from the same customer's events (`agents.features`):
    to act well it must infer the segment from behaviour.

    Every day, for every customer: the chosen action is checked against the contact rules (a
    masked action is not sent and is counted in ``info["cap_violations"]``); a contact may be
    opened (how likely depends on the segment, the channel, fatigue and where the send window
    falls in the customer's local day), clicked and turn into an order that lands 0-6 days later
    (likelier once demand has come back after the last order); an opened discount is a coupon
    the customer uses on every order for ``coupon_days``, also the orders they would have placed
    anyway (cannibalisation); what an offer costs is the catalogue's (margin given away, the
    offer's redemption cost);
    the contact adds fatigue, which decays, lowers response and raises the unsubscribe and churn
    hazards; customers also order on their own, less soon after an order; churn hazard rises with
    days since the last open, click or order. The segment itself can move: a full-price order can
    win a newcomer or an at-risk customer over, an order placed with a discount can teach them to
    wait for discounts, long inactivity lets customers slip (``Scenario.segment_moves``); and
    preferences can drift on a given day (``Scenario.drift``). All of it is vectorised with
    per-day uniform draws of a fixed shape, so the same seed gives the same customers and the same
    draws whatever the policy does (common random numbers).

    ## Action Space
    ``Discrete(catalogue.n_actions)`` per customer (49 with the default catalogue): index 0 is
    "no contact", the others channel x offer x send window (``catalogue.actions[i].label``).
    ``info["action_mask"]`` (N, A) says which are allowed today (consent, caps, minimum gap, quiet
    hours, suppression; see `agents.constraints`). Each day's decision is made at DECISION_HOUR
    (07:00 campaign time) and a contact goes out at ``agents.constraints.send_hours`` (its window's
    start in the customer's local time, or at once if the window is open); ``info["send_hours"]``
    says when.

    ## Observation Space
    ``Box(F,)`` float32 per customer: `agents.features.FeatureLayout` of the catalogue's channels
    (engagement rates
    per channel, recency / frequency / monetary value, discount response, contacts in the last
    7 / 30 days, contact pressure, tenure, consent, time zone), in [0, 1] except the utc offset
    in [-1, 1]. The hidden segment is not in it.

    ## Rewards
    ``agents.rewards.reward(outcomes, reward_weights)``: by default net revenue of the orders that
    landed today (after discounts and free-shipping cost) minus the contact cost, -20 per
    unsubscribe, -50 per churn. The outcome arrays are in ``info``.

    ## Starting State
    A new customer is drawn from the scenario's segment mixture with a starting profile built from
    a plausible history (past orders, past campaigns' contacts, opens and clicks, consent).

    ## Episode End
    Terminated when the customer churns or withdraws consent on the last channel; truncated after
    ``horizon_days``. Next-step autoreset (Gymnasium 1.x default): the step after an episode ends,
    that customer's action is ignored and a new customer takes the slot (reward 0). Orders still
    pending when an episode ends are dropped.

    ## Arguments
    :param scenario: "retail" (default), "churn_rescue", or a `Scenario`; "tabular" (or a
        `TabularScenario`) builds the sibling `TabularJourneyEnv` instead
    :param num_customers: N, customers simulated side by side
    :param reward_weights: `RewardWeights` (default: net revenue - costs - penalties)
    :param contact_rules: `ContactRules` (default `default_contact_rules()`)
    :param catalogue: `Catalogue` (default `default_catalogue()`, 49 actions)
    :param horizon_days: days per customer before truncation (default: the scenario's)
    :param seed: seed of the first `reset` (later resets without a seed continue the stream)
    :param enabled_actions: (A,) bool, actions the marketer switched on (None: all)
    """

    def __new__(
        cls, scenario: str | Scenario | TabularScenario = "retail", *args: Any, **kwargs: Any
    ):
        if cls is CustomerJourneyEnv and isinstance(resolve_scenario(scenario), TabularScenario):
            from agents.envs.tabular import TabularJourneyEnv

            return TabularJourneyEnv(scenario, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        scenario: str | Scenario = "retail",
        num_customers: int = 1024,
        reward_weights: RewardWeights | None = None,
        contact_rules: ContactRules | None = None,
        catalogue: Catalogue | None = None,
        horizon_days: int | None = None,
        seed: int | None = None,
        enabled_actions: np.ndarray | None = None,
    ):
        scenario = resolve_scenario(scenario)
        if not isinstance(scenario, Scenario):
            raise TypeError(f"scenario must be a Scenario or a scenario name, got {scenario!r}")
        self.scenario = scenario
        self._setup(num_customers, reward_weights, contact_rules, catalogue,
                    horizon_days or scenario.horizon_days, seed, enabled_actions)
        self._pending_days = scenario.max_delay_days + 1
        self._set_params(scenario)

    # ------------------------------------------------------------------ parameters
    def _set_params(self, s: Scenario) -> None:
        """Cache the per-day lookup tables of scenario `s` (called again when preferences drift)."""
        self._p = s
        self._response = r = s.for_catalogue(self.catalogue)
        # (S, A) tables: everything that depends only on segment x action
        ch, of = self._a_channel, self._a_offer
        contact = self._a_contact[None, :]
        self._open_sa = np.where(contact, r.open_prob[:, ch], 0.0)
        # affinity per segment x local part of the day (morning, midday, evening, night)
        self._affinity = np.concatenate(
            [s.window_affinity, np.full((s.n_segments, 1), s.night_affinity)], axis=1
        )
        self._click_sa = np.clip(
            r.channel_click[None, ch] * r.offer_click[:, of] * r.variant_click[None, :], 0.0, 1.0
        )
        self._order_sa = r.purchase_given_click[:, of]
        self._unsub_sa = np.where(contact, r.unsubscribe_prob[:, ch], 0.0)
        self._fatigue_a = np.where(self._a_contact, r.fatigue_per_contact[ch], 0.0)
        self._fatigue_decay = 0.5 ** (1.0 / s.fatigue_half_life_days)
        self._log_no_delay = (
            math.log1p(-s.conversion_delay_p) if s.conversion_delay_p < 1 else -np.inf
        )
        self._moves = {t: np.cumsum(s.move_matrix(t), axis=1) for t in MOVE_TRIGGERS}
        self._has_moves = bool(s.segment_moves)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._seed_streams(seed)
        n = self.num_envs
        if self._p is not self.scenario:
            self._set_params(self.scenario)
        self._segment = np.zeros(n, dtype=np.int64)
        self.profile = ProfileState.empty(n, n_channels=len(self.catalogue.channels))
        self._fatigue = np.zeros(n)
        self._coupon_days = np.zeros(n, dtype=np.int64)
        self._coupon_rate = np.zeros(n)
        self._coupon_amount = np.zeros(n)
        self._coupon_cost = np.zeros(n)
        self._pending_value = np.zeros((self._pending_days, n))
        self._pending_count = np.zeros((self._pending_days, n), dtype=np.int64)
        self._pending_incentive = np.zeros((self._pending_days, n), dtype=bool)
        self._start_contact_history()
        self._age = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._new_customers(np.arange(n))
        obs = features.observation(self.profile)
        self._mask, self._reasons = self._compute_mask()
        return obs, {"action_mask": self._mask, "mask_reasons": self._reasons}

    def step(self, actions: Any):
        n = self.num_envs
        actions = self._checked_actions(actions)
        if self.scenario.drift_day is not None and self._day == self.scenario.drift_day:
            self._set_params(self.scenario.drifted())  # preferences drift from today on
        p = self._p
        live = ~self._needs_reset

        # 1. enforce the contact rules: a masked action is not sent (and is reported)
        a, violation, contacted = self._enforce_rules(actions, live)

        # 2. the day's random draws: same shape every day whatever the policy (CRN)
        u = self._daily_rng.random((_N_UNIFORMS, n), dtype=np.float32)
        z = self._daily_rng.standard_normal((_N_NORMALS, n), dtype=np.float32)
        seg = self._segment

        # 3. response to today's contact: open -> click -> order (maybe days later)
        fatigue_drag = np.exp(-p.fatigue_response * self._fatigue)
        # the window's effect depends on when the message lands in the customer's local day
        send = self._send_hours_of(a)
        local_hour = np.mod(send + self.profile.utc_offset_hours, 24.0)
        affinity = self._affinity[seg, local_day_part(local_hour)]
        opened = u[0] < self._open_sa[seg, a] * affinity * fatigue_drag  # 0 for "no contact"
        clicked = opened & (u[1] < self._click_sa[seg, a])
        # a clicked order is likelier when the customer's demand is back (see refractory_days)
        need = -np.expm1(-self.profile.days_since_purchase / p.refractory_days)
        ordered = clicked & (u[2] < self._order_sa[seg, a] * (1.0 - p.order_gating * (1.0 - need)))
        # an opened incentive becomes a coupon used on every order for coupon_days
        coupon = opened & self._incentive_a[a]
        if coupon.any():
            kept = a[coupon]
            self._coupon_days[coupon] = self._validity_a[kept]
            self._coupon_rate[coupon] = self._discount_a[kept]
            self._coupon_amount[coupon] = self._amount_a[kept]
            self._coupon_cost[coupon] = self._redemption_a[kept]
        # the clicked order lands after a geometric delay, at the clicked offer's price
        if self._log_no_delay == -np.inf:
            delay = np.zeros(n, dtype=np.int64)
        else:
            delay = np.floor(np.log(np.maximum(u[3], 1e-12)) / self._log_no_delay).astype(np.int64)
        ordered &= delay <= p.max_delay_days
        if ordered.any():
            r = np.flatnonzero(ordered)
            aa = a[r]
            gross = p.order_value[seg[r]] * self._value_noise(z[0, r])
            net = np.maximum(
                gross * (1.0 - self._discount_a[aa]) - self._amount_a[aa] - self._redemption_a[aa],
                0.0,
            )
            slot = (self._day + delay[r]) % self._pending_days
            self._pending_value[slot, r] += net
            self._pending_count[slot, r] += 1
            self._pending_incentive[slot, r] |= self._incentive_a[aa]
        # unsubscribe from the channel, more likely when tired
        unsubscribed = u[4] < self._unsub_sa[seg, a] * (1.0 + p.unsubscribe_fatigue * self._fatigue)
        self._fatigue += self._fatigue_a[a]

        # 4. orders placed without a contact today; demand recovers after the last order
        organic = live & (u[5] < p.organic_purchase[seg] * need)
        holds_coupon = self._coupon_days > 0
        organic_gross = p.order_value[seg] * self._value_noise(z[1])
        with_coupon = (
            organic_gross * (1.0 - self._coupon_rate) - self._coupon_amount - self._coupon_cost
        )
        organic_net = np.where(holds_coupon, np.maximum(with_coupon, 0.0), organic_gross)
        organic_net = np.where(organic, organic_net, 0.0)
        # orders from earlier clicks that land today
        slot = self._day % self._pending_days
        landed = live & (self._pending_count[slot] > 0)
        landed_net = np.where(landed, self._pending_value[slot], 0.0)
        landed_incentive = self._pending_incentive[slot].copy()
        self._pending_value[slot] = 0.0
        self._pending_count[slot] = 0
        self._pending_incentive[slot] = False

        # 5. churn: hazard rises with days since the last open / click / order and with fatigue
        engaged = organic | landed | opened
        idle_days = np.where(engaged, 0.0, np.minimum(self.profile.days_since_engagement, 180.0))
        hazard = (
            p.churn_hazard[seg]
            * (1.0 + p.churn_inactivity[seg] * idle_days / 30.0)
            * np.exp(p.churn_fatigue * self._fatigue)
        )
        churned = live & (u[6] < hazard)

        # 6. the hidden segment can change: an order can win a customer over (or, with a
        # discount, teach them to wait for one); long inactivity lets them slip
        if self._has_moves:
            incentive_order = (organic & holds_coupon) | (landed & landed_incentive)
            full_price_order = (organic | landed) & ~incentive_order
            inactive = (
                live & ~engaged & (self.profile.days_since_engagement >= p.inactive_after_days)
            )
            for trigger, fired in (
                ("incentive_order", incentive_order),
                ("order", full_price_order),
                ("inactive", inactive & ~incentive_order & ~full_price_order),
            ):
                if fired.any():
                    r = np.flatnonzero(fired)
                    cum = self._moves[trigger][seg[r]]
                    self._segment[r] = np.minimum(
                        (u[7, r, None] > cum).sum(axis=1), p.n_segments - 1
                    )

        # 7. the events, recorded exactly as the console records real ones
        prof = self.profile
        features.record_purchase(
            prof, organic, organic_net[organic], discounted=holds_coupon[organic]
        )
        features.record_purchase(
            prof, landed, landed_net[landed], discounted=landed_incentive[landed]
        )
        self._record_contact_events(a, contacted, opened, clicked, unsubscribed, send)

        # 8. reward and outcomes
        outcomes = Outcomes(
            opens=opened.astype(np.float64),
            clicks=clicked.astype(np.float64),
            # orders landing the same day merge into one recorded order (needs two clicks: rare)
            conversions=organic.astype(np.float64) + landed,
            net_revenue=organic_net + landed_net,
            unsubscribes=unsubscribed.astype(np.float64),
            churns=churned.astype(np.float64),
            contact_cost=self._a_cost[a],
        )
        rewards = reward(outcomes, self.reward_weights)
        terminated = churned | self._lost_all_consent(unsubscribed)

        # 9. a day passes
        self._advance_day()
        self._age += 1
        truncated = live & ~terminated & (self._age >= self.horizon_days)

        # 10. next-step autoreset: last step's finished customers are replaced now
        if (~live).any():
            self._new_customers(np.flatnonzero(~live))
        self._needs_reset = terminated | truncated
        obs = features.observation(self.profile)
        self._mask, self._reasons = self._compute_mask()
        info = self._outcome_info(outcomes, violation, live, a, contacted, send, self._day - 1)
        info["discounted_conversions"] = (
            np.where(organic, holds_coupon, False).astype(np.float64)
            + np.where(landed, landed_incentive, False)
        )
        return obs, rewards, terminated, truncated, info

    # ------------------------------------------------------------------ internals
    def _value_noise(self, z: np.ndarray) -> np.ndarray:
        """Log-normal multiplier with mean 1 for order values."""
        sigma = self._p.order_value_sigma
        return np.exp(sigma * z - 0.5 * sigma**2)

    def _advance_day(self) -> None:
        """Decay fatigue and counters, age coupons; the clock moves one day on."""
        self._fatigue *= self._fatigue_decay
        np.subtract(self._coupon_days, 1, out=self._coupon_days, where=self._coupon_days > 0)
        features.advance_days(self.profile, 1.0)
        self._day += 1

    def _new_customers(self, rows: np.ndarray) -> None:
        """Draw customers for `rows` from the segment mixture, with a plausible past."""
        p, rng, k = self._p, self._newcomer_rng, rows.shape[0]
        if k == 0:
            return
        seg = rng.choice(p.n_segments, size=k, p=p.segment_weights)
        self._segment[rows] = seg
        self.profile.put(rows, draw_profiles(p, seg, rng, self._response))
        self._fatigue[rows] = 0.0
        self._coupon_days[rows] = 0
        self._coupon_rate[rows] = 0.0
        self._coupon_amount[rows] = 0.0
        self._coupon_cost[rows] = 0.0
        self._pending_value[:, rows] = 0.0
        self._pending_count[:, rows] = 0
        self._pending_incentive[:, rows] = False
        # previous campaigns' last contact, consistent with the profile's days since contact
        self._reset_contact_history(rows)
        self._age[rows] = 0

    # ------------------------------------------------------------------ read-only views
    @property
    def segments(self) -> np.ndarray:
        """(N,) hidden segment index per slot - ground truth for analysis, never an agent input."""
        return self._segment.copy()


def draw_profiles(
    p: Scenario, seg: np.ndarray, rng: np.random.Generator, response: CatalogueResponse
) -> ProfileState:
    """Starting profiles for customers of segments `seg`: what their past events would have built.

    Past campaigns contacted them at `history_contacts_per_week` on the channels they consented
    to (`response`: the scenario on this catalogue's channels); they opened, clicked and ordered at
    their segment's rates. The last campaign ended 7-21 days ago, so no past contact counts
    towards this campaign's 7-day caps.
    """
    k = seg.shape[0]
    r = response
    n_c = r.open_prob.shape[1]
    lo, hi = p.tenure_days[seg, 0], p.tenure_days[seg, 1]
    tenure = lo + (hi - lo) * rng.random(k)
    utc = rng.choice(np.asarray(p.utc_offsets, dtype=np.float64), size=k)
    state = ProfileState.empty(k, utc_offset_hours=utc, n_channels=n_c)
    state.tenure_days[:] = tenure
    consent = rng.random((k, n_c)) < r.consent_prob[seg]
    state.consent[:] = consent
    # past campaigns: effective window of the engagement counters (half-life / ln 2 days)
    window = features.ENGAGEMENT_HALF_LIFE_DAYS / math.log(2)
    gap = rng.uniform(7.0, 21.0, size=k)
    exposure = np.minimum(tenure, window)[:, None]
    contacts = rng.poisson(r.history_contacts_per_week[None, :] / 7.0 * exposure * consent)
    open_p = np.clip(r.open_prob[seg] * p.window_affinity[seg].mean(axis=1, keepdims=True), 0, 1)
    opens = rng.binomial(contacts, open_p)
    click_p = np.clip(  # past campaigns' offers: the scenario's own anchors
        r.channel_click[None, :] * p.offer_click[seg].mean(axis=1, keepdims=True), 0, 1
    )
    clicks = rng.binomial(opens, click_p)
    fade = 0.5 ** (gap / features.ENGAGEMENT_HALF_LIFE_DAYS)
    state.contacts[:] = contacts * fade[:, None]
    state.opens[:] = opens * fade[:, None]
    state.clicks[:] = clicks * fade[:, None]
    state.days_since_contact[:] = np.where(
        contacts > 0, gap[:, None] + rng.uniform(0, 7, (k, n_c)), np.inf
    )
    total = contacts.sum(axis=1)
    state.discount_contacts[:] = rng.binomial(total, 0.3) * fade
    state.contact_pressure[:] = (
        total
        * (features.PRESSURE_HALF_LIFE_DAYS / window)
        * 0.5 ** (gap / features.PRESSURE_HALF_LIFE_DAYS)
    )
    # contacts of the last 30 days (the rolling bins): those after day -30
    recent = rng.poisson(
        r.history_contacts_per_week.sum() / 7.0 * np.maximum(30.0 - gap, 0.0) * consent.mean(axis=1)
    )
    bins = np.minimum(gap.astype(np.int64), features.HISTORY_DAYS - 1)
    state.recent_contacts[np.arange(k), bins] = recent
    # past orders: organic demand plus what past campaigns' responses brought
    responses = (r.history_contacts_per_week[None, :] / 7.0 * consent * open_p * click_p).sum(
        axis=1
    ) * p.purchase_given_click[seg].mean(axis=1)
    rate = p.organic_purchase[seg] + responses
    purchase_window = features.PURCHASE_HALF_LIFE_DAYS / math.log(2)
    recent_orders = rng.poisson(rate * np.minimum(tenure, purchase_window))
    older_orders = rng.poisson(rate * np.maximum(tenure - purchase_window, 0.0))
    order_value = p.order_value[seg] * rng.lognormal(-0.5 * 0.3**2, 0.3, size=k)
    state.purchases[:] = recent_orders
    state.discounted_purchases[:] = rng.binomial(recent_orders, p.history_discount_share[seg])
    state.revenue[:] = recent_orders * order_value
    state.lifetime_purchases[:] = recent_orders + older_orders
    state.lifetime_revenue[:] = state.lifetime_purchases * order_value
    recency = np.minimum(rng.exponential(p.history_recency_days[seg]), tenure)
    state.days_since_purchase[:] = np.where(state.lifetime_purchases > 0, recency, np.inf)
    engaged = np.where(opens.sum(axis=1) > 0, gap + rng.uniform(0, 7, k), np.inf)
    state.days_since_engagement[:] = np.minimum(engaged, state.days_since_purchase)
    return state
