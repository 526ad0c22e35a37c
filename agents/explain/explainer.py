"""The Explainer: one agent's decisions explained, built once per policy version and reused.

It owns the recipe (feature names, catalogue, background summarised with shap.kmeans, the
attribution method), asks the agent what it declares about itself (`Agent.exploration_bonus`,
`score_uncertainty`, `rule_fired`), and assembles `Explanation`s from the attribution
(agents.explain.attribution) and the words (agents.explain.wording). `explain()` is the
one-call form with a small per-process cache of Explainers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.algos.base import Agent
from agents.common.masking import validate_mask
from agents.explain.attribution import (
    _Attributor,
    _Linear,
    _linear_fit,
    _ShapExact,
    _ShapPermutation,
    _ShapTorch,
    _VectorisedPermutation,
    torch_chosen_scores,
)
from agents.explain.result import Contribution, Explanation
from agents.explain.wording import (
    SCORE_KINDS,
    _channel_words,
    _masked_groups,
    _rule_labels,
    _sentence,
    feature_phrase,
)
from agents.features import raw_feature_values, unscaled_values

METHODS: tuple[str, ...] = (
    "auto", "permutation", "linear", "shap_permutation", "exact", "deep", "gradient",
)
"""Explainer options; "auto" = "linear" when the agent's scores are linear, else "permutation"."""
"""Explainer options; "auto" = "linear" when the agent's scores are linear, else "permutation"."""

_KMEANS_ROWS = 2000
"""Rows k-means sees at most when summarising a background (a sample beyond that)."""


class Explainer:
    """Explains one agent's decisions; build once per policy version and reuse.

    :param agent: any `agents.Agent`
    :param background: customers' observations (m, d) the SHAP values are measured against
        ("compared with a typical customer"); summarised to `n_background` weighted k-means
        centres with `shap.kmeans`. None: a background is simulated with agents.envs.
    :param method: one of METHODS ("auto": exact linear SHAP when the scores are linear,
        otherwise vectorised permutation SHAP)
    :param catalogue: agents.catalogue.Catalogue for action labels and channels (default: the demo
        catalogue when it has the agent's number of actions, else "action i")
    :param feature_names: feature names in vector order (default agents.features.FEATURE_NAMES)
    :param feature_labels: marketer words per feature (default agents.features.FEATURE_LABELS)
    :param contact_rules: agents.constraints.ContactRules, to word the masking reasons precisely
    :param n_background: k-means centres kept (None: use `background` as given, equal weights)
    :param n_permutations: feature orders walked by the permutation methods (each forward and
        backward); more = closer to exact Shapley values, linearly slower
    :param seed: fixes the permutations (and shap's sampling): same seed, same explanation
    :param background_weights: weight per background row (with n_background=None); default equal,
        or the k-means cluster sizes. The shap-library methods always weigh rows equally.
    """

    def __init__(self, agent: Agent, *, background: np.ndarray | None = None, method: str = "auto",
                 catalogue: Any = None, feature_names: Sequence[str] | None = None,
                 feature_labels: dict[str, str] | None = None, contact_rules: Any = None,
                 n_background: int | None = 10, n_permutations: int = 2, seed: int = 0,
                 background_weights: np.ndarray | None = None):
        if not isinstance(agent, Agent):
            raise TypeError(f"agent must be an agents.Agent, got {type(agent).__name__}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if int(n_permutations) < 1:
            raise ValueError("n_permutations must be >= 1")
        self.agent = agent
        self.seed = int(seed)
        self.n_permutations = int(n_permutations)
        self.contact_rules = contact_rules
        self._masked_memo: dict[tuple, list[tuple[str | None, str]]] = {}
        self.catalogue = _catalogue_for(agent, catalogue)
        self._channel_words = _channel_words(self.catalogue)
        self.feature_names, self.feature_labels = _feature_names(
            agent, feature_names, feature_labels, self.catalogue)
        if self.catalogue is not None:
            self.action_labels = list(self.catalogue.labels)
            self.action_meta = list(self.catalogue.actions)
        else:
            self.action_labels = [f"action {a}" for a in range(agent.n_actions)]
            self.action_meta = [None] * agent.n_actions
        self.background, self.weights = _summarise_background(
            agent, background, n_background, self.seed)
        if background_weights is not None:
            if n_background is not None and len(self.background) != len(background_weights):
                raise ValueError("background_weights needs n_background=None (weights of the "
                                 "rows as given)")
            weights = np.asarray(background_weights, dtype=np.float64)
            if weights.shape != (len(self.background),) or (weights < 0).any() or \
                    not weights.sum() > 0:
                raise ValueError(f"background_weights must be ({len(self.background)},) and >= 0")
            self.weights = weights / weights.sum()
        self.score_kind = SCORE_KINDS.get(getattr(agent, "name", ""), "score")
        self.method, self._attributor = self._build(method)
        self._background_source: Any = None

    # -------------------------------------------------------------- set-up
    def _build(self, method: str) -> tuple[str, _Attributor]:
        score_fn = self.agent.scores
        if method in ("auto", "linear"):
            fit = _linear_fit(score_fn, self.background)
            if fit is not None:
                return "linear", _Linear(fit[0], fit[1], self.background, self.weights)
            if method == "linear":
                raise ValueError(f"method='linear' but {self.agent.name}'s scores are not linear "
                                 "in the features; use 'permutation'")
            method = "permutation"
        if method == "permutation":
            rng = np.random.default_rng(self.seed)
            d = self.background.shape[1]
            orders = np.stack([rng.permutation(d) for _ in range(self.n_permutations)])
            chosen_fn = torch_chosen_scores(self.agent, self.background)
            return method, _VectorisedPermutation(score_fn, self.background, self.weights, orders,
                                                  chosen_fn=chosen_fn)
        if method in ("shap_permutation", "exact", "deep", "gradient"):
            # shap's maskers and DeepExplainer average the background rows with equal weights
            self.weights = np.full(len(self.background), 1.0 / len(self.background))
        if method == "shap_permutation":
            return method, _ShapPermutation(score_fn, self.background, self.n_permutations,
                                            self.seed)
        if method == "exact":
            return method, _ShapExact(score_fn, self.background)
        return method, _ShapTorch(self.agent, self.background, method, self.seed)

    # -------------------------------------------------------------- the work
    def shap_values(self, obs: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shap (n, d), base (n,)) of the given actions' scores: the numbers without the words."""
        obs = self._check_obs(obs)
        actions = self._check_actions(actions, obs.shape[0], None)
        return self._attributor.attribute(obs, actions)

    def explain(self, obs: np.ndarray, action_mask: Any = None, *, actions: Any = None,
                reason_flags: Any = None, profiles: Any = None, probabilities: Any = None,
                contact_gap_hours: Any = None, top_k: int = 3) -> list[Explanation]:
        """Explain a batch of decisions.

        :param obs: (n, d) or (d,) feature vectors, as the agent saw them
        :param action_mask: (n, A) or (A,) bool, True = allowed; None = derived from
            `reason_flags` (allowed where no flag is set) or all allowed
        :param actions: the actions actually taken (n,) (e.g. sampled and logged); default: the
            agent's greedy choice under the mask
        :param reason_flags: (n, A) or (A,) agents.constraints.MaskReason flags per action
        :param profiles: agents.features.ProfileState of these n customers, so sentences quote
            exact counts ("opened 3 of the last 5"); otherwise values are read back from `obs`
        :param probabilities: (n, A) the agent's action probabilities under `action_mask`, when
            the caller has them (a live decision has just computed them); else computed here
        :param contact_gap_hours: (n, W) hours from each send window's send time to the
            customer's nearest other contact (agents.constraints.nearest_contact_hours), so the
            minimum gap's words say how close it is ("last contact 38 h before this send")
        :param top_k: contributions named in the sentence
        """
        obs = self._check_obs(obs)
        n, n_actions = obs.shape[0], self.agent.n_actions
        if not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0, got {top_k!r}")
        flags = None
        if reason_flags is not None:
            flags = np.asarray(reason_flags)
            if flags.ndim == 1 and flags.shape[0] == n_actions:
                flags = np.broadcast_to(flags, (n, n_actions))
            if flags.shape != (n, n_actions):
                raise ValueError(f"reason_flags has shape {flags.shape}; expected ({n}, {n_actions})")
            if not np.issubdtype(flags.dtype, np.integer):
                raise ValueError("reason_flags must be integer MaskReason flags")
            if action_mask is None:
                action_mask = flags == 0
        mask = validate_mask(action_mask, n, n_actions)
        if actions is None:
            actions = self.agent.act(obs, mask, deterministic=True)
        actions = self._check_actions(actions, n, mask)

        scores = np.asarray(self.agent.scores(obs), dtype=np.float64)
        if probabilities is None:
            probs = self.agent.action_probabilities(obs, mask)
        else:
            probs = np.asarray(probabilities, dtype=np.float64)
            if probs.shape != (n, n_actions):
                raise ValueError(f"probabilities has shape {probs.shape}; expected ({n}, {n_actions})")
        gaps = None
        if contact_gap_hours is not None:
            gaps = np.asarray(contact_gap_hours, dtype=np.float64)
            if gaps.ndim != 2 or gaps.shape[0] != n:
                raise ValueError(f"contact_gap_hours has shape {gaps.shape}; expected ({n}, W)")
        own_terms, ranking = self._own_terms(obs, mask, actions)
        phi, base = self._attributor.attribute(obs, actions, scores)
        rows = np.arange(n)
        chosen_score = scores[rows, actions]
        if self.method == "linear":
            # the linearity probe can be fooled by a flat region of a step function: never
            # return a non-additive "exact" answer, switch to permutation SHAP instead
            error = np.abs(base + phi.sum(axis=1) - chosen_score)
            if (error > 1e-6 * np.maximum(1.0, np.abs(chosen_score))).any():
                self.method, self._attributor = self._build("permutation")
                phi, base = self._attributor.attribute(obs, actions)

        # runner-up: the best-ranked allowed action other than the chosen one
        rank_values = scores if ranking is None else ranking
        others = np.where(mask, rank_values, -np.inf)
        others[rows, actions] = -np.inf
        has_runner = np.isfinite(others).any(axis=1)
        runner = others.argmax(axis=1)
        stochastic = (probs.max(axis=1) < 1.0 - 1e-9)

        if profiles is not None:
            if len(profiles) != n:
                raise ValueError(f"profiles holds {len(profiles)} customers; obs has {n}")
            raw, extras = raw_feature_values(
                profiles, self.catalogue.channel_keys if self.catalogue is not None else None)
            display = {name: raw.get(name, obs[:, i].astype(np.float64))
                       for i, name in enumerate(self.feature_names)}
        else:
            display, extras = unscaled_values(obs, self.feature_names), {}

        order = np.argsort(-np.abs(phi), axis=1, kind="stable")[:, :top_k]
        explanations = []
        for i in range(n):
            a = int(actions[i])
            row_extras = {k: float(v[i]) for k, v in extras.items()}
            contributions = []
            for j in order[i]:
                if abs(phi[i, j]) <= 1e-9 * max(1.0, abs(chosen_score[i])):
                    continue  # a feature that changed nothing is no reason
                name = self.feature_names[j]
                value = float(display[name][i])
                contributions.append(Contribution(
                    feature=name, label=self.feature_labels.get(name, name),
                    phrase=feature_phrase(name, value, row_extras, self.feature_labels,
                                          self._channel_words),
                    value=value if math.isfinite(value) else None, shap_value=float(phi[i, j]),
                ))
            r = int(runner[i]) if has_runner[i] else None
            p_gap = None
            if r is not None and stochastic[i]:
                p_gap = float(probs[i, a] - probs[i, r])
            if r is not None:
                gap = float(rank_values[i, a] - rank_values[i, r])
            else:
                gap = None
            explanation = Explanation(
                action=a, action_label=self.action_labels[a], score=float(chosen_score[i]),
                score_kind=self.score_kind, base_value=float(base[i]),
                shap_values={name: float(phi[i, j]) for j, name in enumerate(self.feature_names)},
                feature_values={name: (float(display[name][i]) if math.isfinite(display[name][i])
                                       else None) for name in self.feature_names},
                top_contributions=contributions,
                runner_up=r, runner_up_label=self.action_labels[r] if r is not None else None,
                score_gap=gap, probability=float(probs[i, a]),
                runner_up_probability=float(probs[i, r]) if r is not None else None,
                probability_gap=p_gap,
                masked=_masked_groups(mask[i], None if flags is None else flags[i],
                                      self.action_labels, self.action_meta, self.contact_rules,
                                      self._masked_memo,
                                      None if gaps is None else gaps[i], self.catalogue),
                sentence="", method=self.method, additive=self._attributor.additive,
                agent=getattr(self.agent, "name", type(self.agent).__name__),
                own_terms={k: v[i] for k, v in own_terms.items()},
            )
            explanation.sentence = _sentence(explanation)
            explanations.append(explanation)
        return explanations

    # -------------------------------------------------------------- agent-specific terms
    def _own_terms(self, obs: np.ndarray, mask: np.ndarray,
                   actions: np.ndarray) -> tuple[dict[str, list], np.ndarray | None]:
        """Bandit bonus / rule fired, per row; and what the agent really ranked actions by."""
        n = obs.shape[0]
        rows = np.arange(n)
        terms: dict[str, list] = {}
        ranking = None
        agent = self.agent
        bonus = agent.exploration_bonus(obs)
        if bonus is not None:
            bonus = np.asarray(bonus, dtype=np.float64)
            ranking = np.asarray(agent.scores(obs), dtype=np.float64) + bonus
            terms["ucb_bonus"] = [float(b) for b in bonus[rows, actions]]
            terms["upper_confidence_bound"] = [float(u) for u in ranking[rows, actions]]
        else:
            std = agent.score_uncertainty(obs)
            if std is not None:
                std = np.asarray(std, dtype=np.float64)
                terms["reward_uncertainty"] = [float(s) for s in std[rows, actions]]
        fired = agent.rule_fired(obs, mask)
        if fired is not None:
            fired = [str(f) for f in np.asarray(fired, dtype=object).reshape(n)]
            # an epsilon draw is not the rule's decision: say so rather than blame the rule
            followed = agent.act(obs, mask, deterministic=True) == actions
            labels = _rule_labels()
            terms["rule_fired"] = [f if ok else "exploration" for f, ok in zip(fired, followed)]
            terms["rule"] = [labels.get(f, f.replace("_", " ")) if ok else
                             "random exploration (epsilon), not a rule"
                             for f, ok in zip(fired, followed)]
        return terms, ranking

    # -------------------------------------------------------------- input checks
    def _check_obs(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        d = len(self.feature_names)
        if obs.ndim == 1:
            obs = obs[None, :]
        if obs.ndim != 2 or obs.shape[1] != d or obs.shape[0] == 0:
            raise ValueError(f"obs has shape {obs.shape}; expected (n, {d}) with n >= 1 "
                             f"(one row of {d} features per customer)")
        if not np.isfinite(obs).all():
            raise ValueError("obs contains NaN or inf; features must be finite")
        return obs

    def _check_actions(self, actions: Any, n: int, mask: np.ndarray | None) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.ndim == 0:
            actions = actions.reshape(1)
        if actions.shape != (n,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be {n} integer action indices, got shape "
                             f"{actions.shape} dtype {actions.dtype}")
        if actions.min() < 0 or actions.max() >= self.agent.n_actions:
            raise ValueError(f"actions must lie in [0, {self.agent.n_actions})")
        if mask is not None:
            bad = np.flatnonzero(~mask[np.arange(n), actions])
            if bad.size:
                raise ValueError(f"action {int(actions[bad[0]])} in row {int(bad[0])} is masked: "
                                 "a masked action cannot have been chosen")
        return actions.astype(np.int64)


# ============================================================================ defaults
def _feature_names(agent: Agent, names: Sequence[str] | None, labels: dict[str, str] | None,
                   catalogue: Any = None) -> tuple[list[str], dict[str, str]]:
    if names is None:  # the layout of the catalogue's channels (default: the demo's)
        from agents.features import DEMO_LAYOUT, FeatureLayout
        layout = FeatureLayout.for_catalogue(catalogue) if catalogue is not None else DEMO_LAYOUT
        if layout.n_features > agent.n_features:  # trained before the last channels were added
            layout = layout.first_channels(agent.n_features)
        names = layout.names
        labels = {**layout.labels, **(labels or {})}
    names = [str(n) for n in names]
    if len(names) != agent.n_features:
        raise ValueError(f"{len(names)} feature names for an agent with {agent.n_features} features")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    labels = dict(labels or {})
    return names, {n: labels.get(n, n.replace("_", " ")) for n in names}


def _catalogue_for(agent: Agent, catalogue: Any) -> Any:
    if catalogue is not None:
        if catalogue.n_actions != agent.n_actions:
            raise ValueError(f"catalogue has {catalogue.n_actions} actions; the agent "
                             f"{agent.n_actions}")
        return catalogue
    from agents.catalogue import default_catalogue
    default = default_catalogue()
    return default if default.n_actions == agent.n_actions else None


def _summarise_background(agent: Agent, background: np.ndarray | None, n_background: int | None,
                          seed: int) -> tuple[np.ndarray, np.ndarray]:
    if background is None:
        background = simulated_background(agent, seed=seed)
    background = np.asarray(background, dtype=np.float32)
    if background.ndim != 2 or background.shape[1] != agent.n_features or len(background) == 0:
        raise ValueError(f"background has shape {background.shape}; expected (m, "
                         f"{agent.n_features}) with m >= 1")
    if not np.isfinite(background).all():
        raise ValueError("background contains NaN or inf")
    if n_background is None or len(background) <= n_background:
        return background, np.full(len(background), 1.0 / len(background))
    import shap

    if len(background) > _KMEANS_ROWS:  # k-means on a sample: seconds -> a fraction of one
        rows = np.random.default_rng(seed).choice(len(background), _KMEANS_ROWS, replace=False)
        background = background[np.sort(rows)]
    summary = shap.kmeans(background.astype(np.float64), int(n_background))
    weights = np.asarray(summary.weights, dtype=np.float64)
    return np.asarray(summary.data, dtype=np.float32), weights / weights.sum()


def simulated_background(agent: Agent, *, customers: int = 512, days: int = 30,
                         seed: int = 0) -> np.ndarray:
    """Observations of simulated `retail` customers under a uniform allowed policy.

    The fallback background when the console has no logged feature snapshots yet.
    """
    try:
        from agents.envs import CustomerJourneyEnv
    except ImportError as exc:
        raise ValueError("no background given and agents.envs is unavailable: pass "
                         "background= (observations of typical customers)") from exc
    env = CustomerJourneyEnv(num_customers=customers, seed=seed)
    if env.single_action_space.n != agent.n_actions:
        raise ValueError("no background given and the simulator's catalogue does not match the "
                         "agent's actions: pass background=")
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    seen = [obs]
    for _ in range(days):
        mask = info.get("action_mask", np.ones((customers, agent.n_actions), dtype=bool))
        weights = mask / mask.sum(axis=1, keepdims=True)
        actions = (rng.random((customers, 1)) > weights.cumsum(axis=1)).sum(axis=1)
        actions = np.minimum(actions, agent.n_actions - 1)
        actions = np.where(mask[np.arange(customers), actions], actions, 0)
        obs, _, _, _, info = env.step(actions)
        seen.append(obs)
    env.close()
    return np.concatenate(seen).astype(np.float32)


_CACHE: OrderedDict[int, tuple[Agent, dict[tuple, Explainer]]] = OrderedDict()
_CACHE_AGENTS = 8


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def explain(agent: Agent, obs: np.ndarray, action_mask: Any = None, *, actions: Any = None,
            reason_flags: Any = None, catalogue: Any = None,
            feature_names: Sequence[str] | None = None, background: np.ndarray | None = None,
            profiles: Any = None, contact_rules: Any = None, top_k: int = 3,
            method: str = "auto", seed: int = 0) -> list[Explanation]:
    """Explain a batch of `agent`'s decisions (see `Explainer.explain` for the arguments).

    The `Explainer` is cached per agent object (and per background array, catalogue, rules, names,
    method, seed), so repeated calls pay for the background and permutations once. An agent
    trained further in place keeps its old base values: build a fresh `Explainer` after training.
    """
    key = (id(background), _hashable(catalogue), repr(contact_rules),
           tuple(feature_names) if feature_names is not None else None, method, seed)
    entry = _CACHE.get(id(agent))
    if entry is None or entry[0] is not agent:
        entry = _CACHE[id(agent)] = (agent, {})
        while len(_CACHE) > _CACHE_AGENTS:  # keep a few policy versions, not every agent ever seen
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(id(agent))
    per_agent = entry[1]
    explainer = per_agent.get(key)
    if explainer is None or (background is not None and explainer._background_source
                             is not background):
        explainer = Explainer(agent, background=background, method=method, catalogue=catalogue,
                              feature_names=feature_names, contact_rules=contact_rules, seed=seed)
        explainer._background_source = background
        per_agent[key] = explainer
    return explainer.explain(obs, action_mask, actions=actions, reason_flags=reason_flags,
                             profiles=profiles, top_k=top_k)
