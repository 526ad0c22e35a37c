"""Baselines that learn nothing: a uniformly random policy and the rules a marketer writes today.

`rule_based` is the yardstick of the benchmark (the uplift of every learner is measured against it)
and the console's default control policy for the holdout group, so its rules read like a CRM
playbook and it can say which rule fired for each customer (`rule_fired`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from agents.algos.base import Agent, ProgressCallback, TrainingReport
from agents.catalogue import Catalogue, CatalogueAction, default_catalogue
from agents.common.config import build_config
from agents.common.masking import greedy_probabilities, sample_from, uniform_over_mask

# ----------------------------------------------------------------------------- random


@dataclass
class RandomPolicyConfig:
    """The random policy has no hyper-parameters."""


class RandomPolicy(Agent):
    """Uniformly random over each customer's allowed actions: the floor every learner must beat.

    `act` always samples (also with ``deterministic=True``): a "deterministic" random policy would
    silently become "always the first allowed action". `fit` learns nothing and steps no env.

    :param observation_space: single-customer feature space (1-D Box)
    :param action_space: the catalogue's actions (Discrete)
    :param seed: seeds the draws
    """

    name = "random"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        super().__init__(observation_space, action_space, seed=seed)
        self.config = build_config(RandomPolicyConfig, self.name, hyperparams)

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """No preference: zeros, (n, A)."""
        return np.zeros((self._check_obs(obs).shape[0], self.n_actions))

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return uniform_over_mask(mask)

    def act(self, obs: np.ndarray, action_mask: Any = None, deterministic: bool = True) -> np.ndarray:
        return sample_from(self.action_probabilities(obs, action_mask), self.rng)

    def _fit(self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
             report: TrainingReport, callback: ProgressCallback | None) -> None:
        """Nothing to learn."""


# ----------------------------------------------------------------------------- no contact


@dataclass
class NoContactConfig:
    """Never contacting has no hyper-parameters."""


class NoContactPolicy(Agent):
    """Leaves every customer alone (action 0, the catalogue's built-in no-contact row): the
    "no contact" control policy a campaign can hold its holdout group to.

    Action 0 is never masked (not contacting breaks no contact rule), so greedy and sampled
    choices are both action 0.
    """

    name = "no_contact"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 **hyperparams: Any):
        super().__init__(observation_space, action_space, seed=seed)
        self.config = build_config(NoContactConfig, self.name, hyperparams)

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """0 for no contact, -1 for every contact, (n, A)."""
        scores = np.full((self._check_obs(obs).shape[0], self.n_actions), -1.0)
        scores[:, 0] = 0.0
        return scores

    def _fit(self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
             report: TrainingReport, callback: ProgressCallback | None) -> None:
        """Nothing to learn."""


# ----------------------------------------------------------------------------- rule-based

RULES: tuple[str, ...] = ("win_back_discount", "engaged_sms", "weekly_email", "no_contact")
"""Rule names in priority order; `rule_fired` returns one per customer."""

RULE_LABELS: dict[str, str] = {
    "win_back_discount": "discount to an at-risk customer (long since last purchase or engagement)",
    "engaged_sms": "SMS to an engaged customer (recent clicks)",
    "weekly_email": "weekly email to everyone",
    "no_contact": "no contact (nothing due, or every due message blocked by the contact rules)",
}
"""What each rule means, in the marketer's words (for explanations)."""


@dataclass
class RuleBasedConfig:
    """Rules of `RuleBasedPolicy` (names are `agents.make` keyword arguments)."""

    catalogue: dict[str, Any] | list[list[Any]] | None = None
    """The catalogue as `Catalogue.to_dict()`, or (the demo's vocabulary) its actions as
    [channel, offer, send_window, cost, variant] rows (row 0 = no contact); None:
    agents.catalogue.default_catalogue()."""
    at_risk_days_since_purchase: float = 60.0
    """A customer is at risk when this many days have passed since their last purchase ..."""
    at_risk_days_since_engagement: float = 30.0
    """... or since their last open, click or purchase."""
    discount_channel: str = "email"
    """Channel of the win-back discount."""
    discount_offer: str = "discount_10"
    """Offer of the win-back discount."""
    discount_every_days: float = 7.0
    """Days since the last message on the discount's channel before the discount is due. With the
    default (email, 7 days) an at-risk customer's weekly email carries the discount instead of
    content; the cadence is measured on the channel because the features keep no per-offer
    recency (a longer value than the weekly cadence would never fire)."""
    engaged_click_rate: float = 0.15
    """A customer is engaged when their best recent click rate over channels reaches this ..."""
    engaged_within_days: float = 14.0
    """... and they engaged (open, click or purchase) within this many days."""
    engaged_channel: str = "sms"
    """Channel of the message to engaged customers."""
    engaged_offer: str = "content"
    """Offer of the message to engaged customers."""
    engaged_every_days: float = 7.0
    """At most one such message per this many days (measured on its channel)."""
    weekly_channel: str = "email"
    """Channel of the weekly message to everyone."""
    weekly_offer: str = "content"
    """Offer of the weekly message to everyone."""
    weekly_every_days: float = 7.0
    """The weekly message goes out when this many days have passed since the last one."""
    send_windows: tuple[str, ...] = ()
    """Send windows in order of preference; a window blocked (e.g. quiet hours) falls to the next.
    Empty: the catalogue's windows in its order."""
    epsilon: float = 0.0
    """Share of uniformly random allowed actions mixed in, so a logging policy has full support."""


class RuleBasedPolicy(Agent):
    """Today's CRM playbook, as a policy (no learning; the benchmark's yardstick).

    Rules, in priority order, each falling through to the next when every action it wants is
    masked (consent, caps, minimum gap, quiet hours):

    1. ``win_back_discount``: at-risk customers (no purchase for `at_risk_days_since_purchase`
       days, or no engagement for `at_risk_days_since_engagement` days) get `discount_offer` on
       `discount_channel` when `discount_every_days` days have passed since the last message on
       that channel (by default: their weekly email carries the discount);
    2. ``engaged_sms``: engaged customers (click rate >= `engaged_click_rate` and engaged within
       `engaged_within_days` days) get `engaged_offer` on `engaged_channel`, at most every
       `engaged_every_days` days;
    3. ``weekly_email``: everyone gets `weekly_offer` on `weekly_channel` every
       `weekly_every_days` days;
    4. ``no_contact`` otherwise.

    Each message goes in the first allowed window of `send_windows`; a rule whose message the
    catalogue lacks (a campaign without SMS) never fires. On the `tabular` scenario's
    spaces (one-hot engagement x fatigue states, 4 actions) the same playbook is read off the
    state instead (see `_tabular_playbook`), so the benchmark has its yardstick there too. Thresholds are in days and
    converted once to the feature scale of agents.features. `scores` encode the cascade (the
    higher the rule, the higher its actions score; no contact scores 0, everything else -1), so
    greedy on the masked scores is the rule decision. With `epsilon` > 0, `action_probabilities`
    mix in uniform-over-allowed (a logging policy with full support); `act(deterministic=True)`
    still follows the rules.

    :param observation_space: the console's feature space (agents.features.observation_space())
    :param action_space: Discrete(catalogue.n_actions)
    :param seed: seeds the epsilon draws
    :param catalogue: an agents.catalogue.Catalogue (or its rows); default the default catalogue
    :param epsilon: exploration share mixed into the probabilities
    (the remaining keyword arguments are the thresholds and messages of `RuleBasedConfig`)
    """

    name = "rule_based"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *, seed: int = 0,
                 catalogue: Catalogue | Sequence[Sequence[Any]] | None = None, **rules: Any):
        super().__init__(observation_space, action_space, seed=seed)
        from agents.features import FeatureLayout

        if isinstance(catalogue, Catalogue):
            saved: dict[str, Any] | list[list[Any]] | None = catalogue.to_dict()
        elif isinstance(catalogue, dict):
            saved = dict(catalogue)
        else:
            saved = None if catalogue is None else [list(r) for r in catalogue]
        if "send_windows" in rules:
            rules["send_windows"] = tuple(rules["send_windows"])
        self.config = build_config(RuleBasedConfig, self.name, rules)
        self.config.catalogue = saved  # set apart: build_config would turn its rows into tuples
        self.catalogue = _saved_catalogue(saved)
        self.layout = FeatureLayout.for_catalogue(self.catalogue)
        self.send_windows = self.config.send_windows or self.catalogue.window_keys
        self.tabular_playbook = self._tabular_playbook()
        if self.tabular_playbook is None:
            self._validate()
            self._thresholds = self._feature_thresholds()

    # -------------------------------------------------------------- set-up
    def _tabular_playbook(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The same playbook on the `tabular` scenario's one-hot (engagement x fatigue) states:
        (S,) action and (S,) rule index per state, or None for any other observation space.

        Every console rule has a cadence (days since the last message on its channel); here the
        fatigue level stands for it: only "fresh" customers are due. Fresh at-risk customers
        (lapsed, cooling) get the discount email, fresh engaged ones (active, fan) the SMS; tired
        and saturated ones are left alone (so the weekly email never fires: every fresh customer
        is either at risk or engaged).
        """
        from agents.envs.scenarios import ENGAGEMENT_LEVELS, FATIGUE_LEVELS, TABULAR_ACTIONS

        n_states = len(ENGAGEMENT_LEVELS) * len(FATIGUE_LEVELS)
        if (self.n_features != n_states or self.n_actions != len(TABULAR_ACTIONS)
                or self.config.catalogue is not None):
            return None
        email_discount = TABULAR_ACTIONS.index("email - 20 % off")
        sms = TABULAR_ACTIONS.index("SMS - 20 % off")
        actions = np.zeros(n_states, dtype=np.int64)
        rules = np.full(n_states, RULES.index("no_contact"))
        for state in range(n_states):  # 12 states: a table, not a loop over customers
            engagement, fatigue = divmod(state, len(FATIGUE_LEVELS))
            at_risk = ENGAGEMENT_LEVELS[engagement] in ("lapsed", "cooling")
            if FATIGUE_LEVELS[fatigue] == "fresh":
                actions[state] = email_discount if at_risk else sms
                rules[state] = RULES.index("win_back_discount" if at_risk else "engaged_sms")
        return actions, rules

    def _validate(self) -> None:
        c = self.config
        if self.n_features != self.layout.n_features:
            raise ValueError(
                f"rule_based reads the catalogue's {self.layout.n_features} features "
                f"(agents.features); the observation space has {self.n_features}"
            )
        if self.catalogue.n_actions != self.n_actions:
            raise ValueError(f"the catalogue has {self.catalogue.n_actions} actions; the action "
                             f"space has {self.n_actions}")
        for channel in (c.discount_channel, c.engaged_channel, c.weekly_channel):
            if not isinstance(channel, str) or not channel:
                raise ValueError(f"a rule's channel must be a channel key, got {channel!r}")
        for offer in (c.discount_offer, c.engaged_offer, c.weekly_offer):
            if not isinstance(offer, str) or not offer:
                raise ValueError(f"a rule's offer must be an offer key, got {offer!r}")
        windows = self.catalogue.window_keys
        if any(w not in windows for w in self.send_windows):
            raise ValueError(f"send_windows must be a list of the catalogue's {list(windows)}")
        if not 0.0 <= c.epsilon <= 1.0:
            raise ValueError("epsilon must lie in [0, 1]")
        for name in ("at_risk_days_since_purchase", "at_risk_days_since_engagement",
                     "discount_every_days", "engaged_within_days", "engaged_every_days",
                     "weekly_every_days"):
            if not (np.isfinite(getattr(c, name)) and getattr(c, name) >= 0):
                raise ValueError(f"{name} must be a finite number of days >= 0")
        if not 0.0 <= c.engaged_click_rate <= 1.0:
            raise ValueError("engaged_click_rate must lie in [0, 1]")

    def _days_feature(self, field_name: str, days: float) -> float:
        """The normalised feature value of `days` for a days-since counter (via agents.features,
        so the rules follow any change of normalisation)."""
        from agents.features import ProfileState, observation

        state = ProfileState.empty(1, n_channels=self.layout.n_channels)
        value = getattr(state, field_name)
        value[...] = days
        obs = observation(state)[0]
        name = {"days_since_purchase": "days_since_purchase",
                "days_since_engagement": "days_since_engagement",
                "days_since_contact": f"{self.layout.channels[0]}_days_since_contact"}[field_name]
        return float(obs[self.layout.index(name)])

    def _feature_thresholds(self) -> dict[str, float]:
        c = self.config
        return {
            "purchase": self._days_feature("days_since_purchase", c.at_risk_days_since_purchase),
            "engagement_at_risk": self._days_feature("days_since_engagement",
                                                     c.at_risk_days_since_engagement),
            "engagement_recent": self._days_feature("days_since_engagement",
                                                    c.engaged_within_days),
            "discount_gap": self._days_feature("days_since_contact", c.discount_every_days),
            "engaged_gap": self._days_feature("days_since_contact", c.engaged_every_days),
            "weekly_gap": self._days_feature("days_since_contact", c.weekly_every_days),
        }

    # -------------------------------------------------------------- the rules
    def _col(self, obs: np.ndarray, name: str) -> np.ndarray:
        return obs[:, self.layout.index(name)]

    def _days_since_contact(self, obs: np.ndarray, channel: str) -> np.ndarray:
        """The feature, or "never" (1) for a channel the catalogue lacks."""
        name = f"{channel}_days_since_contact"
        return self._col(obs, name) if name in self.layout.names else np.ones(obs.shape[0])

    def _rules_apply(self, obs: np.ndarray) -> list[np.ndarray]:
        """For each rule in RULES[:-1], which customers it applies to, (n,) bool each."""
        c, t, col = self.config, self._thresholds, self._col
        eps = 1e-6  # thresholds are feature values of exact day counts: compare with slack
        at_risk = ((col(obs, "days_since_purchase") >= t["purchase"] - eps)
                   | (col(obs, "days_since_engagement") >= t["engagement_at_risk"] - eps))
        since = self._days_since_contact
        discount_due = since(obs, c.discount_channel) >= t["discount_gap"] - eps
        click_rate = np.max(np.stack([col(obs, f"{ch}_click_rate") for ch in self.layout.channels]),
                            axis=0)
        engaged = ((click_rate >= c.engaged_click_rate)
                   & (col(obs, "days_since_engagement") <= t["engagement_recent"] + eps))
        engaged_due = since(obs, c.engaged_channel) >= t["engaged_gap"] - eps
        weekly_due = since(obs, c.weekly_channel) >= t["weekly_gap"] - eps
        return [at_risk & discount_due, engaged & engaged_due, weekly_due]

    def _rule_actions(self) -> list[list[int]]:
        """For each rule in RULES[:-1], its actions in window-preference order (those in the
        catalogue)."""
        c = self.config
        messages = [(c.discount_channel, c.discount_offer), (c.engaged_channel, c.engaged_offer),
                    (c.weekly_channel, c.weekly_offer)]
        out = []
        for channel, offer in messages:
            found = []
            for window in self.send_windows:
                for i, a in enumerate(self.catalogue.actions):
                    if (a.channel, a.offer, a.send_window) == (channel, offer, window):
                        found.append(i)
            out.append(found)
        return out

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """The rule cascade as preferences, (n, A): greedy on the masked scores is the decision.

        An action wanted by rule r (0 = highest priority) in its k-th preferred window scores
        ``10 * (R - r) - k / 100``; no contact scores 0; anything else -1.
        """
        obs = self._check_obs(obs)
        n = obs.shape[0]
        out = np.full((n, self.n_actions), -1.0)
        out[:, 0] = 0.0
        n_rules = len(RULES) - 1
        if self.tabular_playbook is not None:
            actions, rules = self.tabular_playbook
            state = obs.argmax(axis=1)
            wanted = rules[state] < n_rules
            out[np.flatnonzero(wanted), actions[state[wanted]]] = 10.0 * (n_rules - rules[state[wanted]])
            return out
        for r, (applies, actions) in enumerate(zip(self._rules_apply(obs), self._rule_actions(),
                                                   strict=True)):
            for k, action in enumerate(actions):
                value = 10.0 * (n_rules - r) - k / 100.0
                out[:, action] = np.where(applies, np.maximum(out[:, action], value), out[:, action])
        return out

    def _probabilities(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        greedy = greedy_probabilities(self.scores(obs), mask)
        eps = self.config.epsilon
        return greedy if eps == 0.0 else (1.0 - eps) * greedy + eps * uniform_over_mask(mask)

    def act(self, obs: np.ndarray, action_mask: Any = None, deterministic: bool = True) -> np.ndarray:
        probs = self.action_probabilities(obs, action_mask)
        if deterministic:  # the rules themselves, even when epsilon mixes in exploration
            return greedy_probabilities(self.scores(obs), probs > 0).argmax(axis=1)
        return sample_from(probs, self.rng)

    def rule_fired(self, obs: np.ndarray, action_mask: Any = None) -> list[str]:
        """Which rule decided each customer's (rule-following) action, by name (see RULES)."""
        obs = self._check_obs(obs)
        chosen = self.act(obs, action_mask, deterministic=True)
        best = self.scores(obs)[np.arange(obs.shape[0]), chosen]
        n_rules = len(RULES) - 1
        rule = np.where(best > 0, n_rules - np.ceil(best / 10.0).astype(np.int64), n_rules)
        return [RULES[r] for r in rule]

    def _fit(self, env: gym.Env | gym.vector.VectorEnv, total_steps: int,
             report: TrainingReport, callback: ProgressCallback | None) -> None:
        """Rules do not learn."""


def _saved_catalogue(saved: dict[str, Any] | list[list[Any]] | None) -> Catalogue:
    if saved is None:
        return default_catalogue()
    if isinstance(saved, dict):
        return Catalogue.from_dict(saved)
    rows = saved
    actions = []
    for row in rows:
        channel, offer, window, cost = row[0], row[1], row[2], float(row[3])
        variant = str(row[4]) if len(row) > 4 else "default"
        actions.append(CatalogueAction(channel, offer, window, cost, variant))
    return Catalogue(tuple(actions))
