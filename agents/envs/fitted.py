"""A customer journey whose customers respond as a workspace's fitted response model says."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from agents import features
from agents.constraints import ContactRules
from agents.envs.customer_journey import RuledJourneyEnv
from agents.features import ProfileState
from agents.response_model import ResponseModel
from agents.rewards import Outcomes, RewardWeights, reward

_N_UNIFORMS = 5  # open, click, orders, unsubscribe, churn

PLANNING_DISCOUNT = 0.8
"""The highest daily discount a policy trained in a `FittedJourneyEnv` should plan with (about
five days of look-ahead; the console caps the campaign's discount at it there).

The model's one-day responses are fitted and checked against what happened; its months are those
one-day guesses compounded through features that stand in for what it cannot see (a customer's
hidden disposition shows in their opens and orders, so the model reads the opens a policy provokes
as loyalty). A policy that plans over months learns those errors. Measured on retail logs of 90
days x 20,000 customers (seeds 201 and 202, which no benchmark reports; actor_critic, 1M steps in
the fitted model, three training seeds each), reward per customer in the true world vs the rules:
discount 0.99 mean -0.1 % (worst -4.3 %), 0.9 +5.9 % (worst +0.4 %), 0.8 +7.4 % (worst +0.4 %),
0.5 +2.1 % (two seeds each). BENCHMARKS.md, "Learning from the workspace's own logs"."""


class FittedJourneyEnv(RuledJourneyEnv):
    """N of the workspace's own customers living through a campaign, one day per step.

    The same VectorEnv contract as `CustomerJourneyEnv` (spaces of the model's catalogue,
    ``info["action_mask"]`` and ``"mask_reasons"``, the OUTCOME_KEYS arrays, next-step autoreset,
    rewards from `agents.rewards.reward`), but nothing in it is invented: customers are drawn
    (with replacement, seeded) from `start_profiles` - the workspace's real customers as their
    events built them - and each day's response to the action sent is drawn from the
    `ResponseModel` fitted on the workspace's logs: an open and a click (only where a message went
    out), orders (Poisson, at the model's revenue per order), an unsubscribe from the action's
    channel, churn. The profiles then move on by the library's own event updates
    (`agents.features.record_*`; an order is a discounted one when the action carried an
    incentive), so the next decision sees what the console would see.

    Contact rules are enforced by the same machinery as the simulator's (`RuledJourneyEnv`): a
    masked action is not sent and is counted in ``info["cap_violations"]``; a newcomer's last
    contact on every channel counts towards the caps.

    The training reward is the reward of the drawn outcomes minus `uncertainty_penalty` x the
    ensemble's disagreement about that decision's expected reward (``info["uncertainty"]``), so
    a policy is not paid for steering customers where the logs say little (the model's errors).
    The outcome arrays in ``info`` are the unpenalised ones.

    :param model: the fitted `ResponseModel` (its catalogue is the env's)
    :param start_profiles: the customers to draw from (`ProfileState` over the catalogue's channels)
    :param num_customers: N, customers simulated side by side
    :param reward_weights: `RewardWeights` (default: net revenue - costs - penalties)
    :param contact_rules: `ContactRules` (default `default_contact_rules()`)
    :param horizon_days: days per customer before truncation
    :param seed: seed of the first `reset`
    :param enabled_actions: (A,) bool, actions the marketer switched on (None: all)
    :param uncertainty_penalty: reward taken off per unit of the ensemble's spread
    """

    def __init__(
        self,
        model: ResponseModel,
        start_profiles: ProfileState,
        num_customers: int = 256,
        reward_weights: RewardWeights | None = None,
        contact_rules: ContactRules | None = None,
        horizon_days: int = 90,
        seed: int | None = None,
        enabled_actions: np.ndarray | None = None,
        uncertainty_penalty: float = 1.0,
    ):
        if len(start_profiles) < 1:
            raise ValueError("start_profiles must hold at least one customer")
        if uncertainty_penalty < 0 or not np.isfinite(uncertainty_penalty):
            raise ValueError("uncertainty_penalty must be a finite number >= 0")
        self._setup(num_customers, reward_weights, contact_rules, model.catalogue, horizon_days,
                    seed, enabled_actions)
        if start_profiles.n_channels != len(self.catalogue.channels):
            raise ValueError(f"start_profiles have {start_profiles.n_channels} channels; the "
                             f"model's catalogue has {len(self.catalogue.channels)}")
        if model.fitted_features != self.feature_layout.n_features:
            raise ValueError(f"the model was fitted on {model.fitted_features} features; the "
                             f"catalogue's layout has {self.feature_layout.n_features}")
        self.model = model
        self.start_profiles = start_profiles.copy()
        self.uncertainty_penalty = float(uncertainty_penalty)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._seed_streams(seed)
        n = self.num_envs
        self.profile = self.start_profiles.take(np.zeros(n, dtype=np.int64))
        self._start_contact_history()
        self._age = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._new_customers(np.arange(n))
        self._obs = features.observation(self.profile)
        self._mask, self._reasons = self._compute_mask()
        return self._obs, {"action_mask": self._mask, "mask_reasons": self._reasons}

    def step(self, actions: Any):
        n = self.num_envs
        actions = self._checked_actions(actions)
        live = ~self._needs_reset
        today = self._day

        # 1. enforce the contact rules: a masked action is not sent (and is reported)
        a, violation, contacted = self._enforce_rules(actions, live)
        send = self._send_hours_of(a)

        # 2. the model's prediction for today's decision, and the day's draws (fixed shape)
        members = self.model.member_predictions(self._obs, a)
        member_rewards = self.model.member_rewards(members, a, self.reward_weights)
        uncertainty = np.where(live, member_rewards.std(axis=0), 0.0)
        p = {k: v.mean(axis=0) for k, v in members.items()}
        u = self._daily_rng.random((_N_UNIFORMS, n))

        # 3. responses: opens, clicks and unsubscribes only where a message went out
        reached = contacted  # a is "no contact" on rows that were only reset
        opened = reached & (u[0] < p["open"])
        click_given_open = np.minimum(p["click"] / np.maximum(p["open"], 1e-12), 1.0)
        clicked = opened & (u[1] < click_given_open)
        orders = np.where(live, stats.poisson.ppf(u[2], p["conversions"]), 0.0)
        per_order = p["revenue"] / np.maximum(p["conversions"], 1e-12)
        revenue = np.maximum(orders * per_order, 0.0)
        unsubscribed = reached & (u[3] < p["unsubscribe"])
        churned = live & (u[4] < p["churn"])

        # 4. the events, recorded as the console records real ones
        self._record_contact_events(a, contacted, opened, clicked, unsubscribed, send)
        ordered = np.flatnonzero(orders > 0)
        if ordered.size:
            count = orders[ordered].astype(np.int64)
            rows = np.repeat(ordered, count)
            features.record_purchase(self.profile, rows, np.repeat(per_order[ordered], count),
                                     discounted=self._incentive_a[a[rows]])

        # 5. reward (penalised for the model's doubt) and outcomes (as drawn)
        outcomes = Outcomes(
            opens=opened.astype(np.float64), clicks=clicked.astype(np.float64),
            conversions=orders, net_revenue=revenue,
            unsubscribes=unsubscribed.astype(np.float64), churns=churned.astype(np.float64),
            contact_cost=np.where(live, self._a_cost[a], 0.0),
        )
        rewards = reward(outcomes, self.reward_weights) - self.uncertainty_penalty * uncertainty
        terminated = churned | self._lost_all_consent(unsubscribed)

        # 6. a day passes; next-step autoreset of last step's finished customers
        features.advance_days(self.profile, 1.0)
        self._day += 1
        self._age += 1
        truncated = live & ~terminated & (self._age >= self.horizon_days)
        if (~live).any():
            self._new_customers(np.flatnonzero(~live))
        self._needs_reset = terminated | truncated
        self._obs = features.observation(self.profile)
        self._mask, self._reasons = self._compute_mask()
        info = self._outcome_info(outcomes, violation, live, a, contacted, send, today)
        info["uncertainty"] = uncertainty
        return self._obs, rewards, terminated, truncated, info

    def _new_customers(self, rows: np.ndarray) -> None:
        """Draw the workspace's customers for `rows` (with replacement)."""
        drawn = self._newcomer_rng.integers(len(self.start_profiles), size=rows.shape[0])
        self.profile.put(rows, self.start_profiles.take(drawn))
        self._reset_contact_history(rows, every_channel=True)
        self._age[rows] = 0
