"""Why did the policy choose this action for this customer? SHAP explanations of each decision.

For every decision we attribute the chosen action's *score* (the agent's `scores(obs)`: a logit
for `actor_critic`, a Q-value for `dqn`, a predicted immediate reward for `supervised` and the
bandits) to the named features of `agents.features`, with SHAP values (Lundberg & Lee, NeurIPS
2017) against a small k-means background of customers (`shap.kmeans`):

    score(x)[a] = base_value[a] + sum_i shap_i        (exactly, for the additive methods)

and turn the largest contributions into one sentence a marketer can read, with the customer's
real numbers: "SMS - 10 % off - evening chosen: opened 3 of the last 5 SMS messages (+0.25), ...".
An explanation also names the runner-up action and by how much it lost, and which actions the
contact rules masked and why (from `agents.constraints`).

Explainers (chosen by measurement, see `benchmarks/explain_speed.py` and the figures below):

- ``permutation``       antithetic permutation SHAP (the estimator of `shap.PermutationExplainer`:
                         each feature order is walked forward and backward) vectorised over the
                         whole batch of customers: one model call on all masked inputs instead of a
                         Python loop per customer. Exactly additive (the marginal contributions along
                         a permutation telescope). The default for non-linear agents.
- ``linear``            the closed form for a model that is linear in the features (the bandits,
                         a linear response model): ``shap_i = w_ai (x_i - E[x_i])``; exact Shapley
                         values. Chosen automatically when the scores are linear.
- ``shap_permutation``  `shap.PermutationExplainer` itself, row by row (the reference the
                         vectorised one is tested against).
- ``exact``             `shap.ExactExplainer` (all 2^d coalitions): small feature sets only.
- ``deep``              `shap.DeepExplainer` (DeepLIFT) on the agent's torch network.
- ``gradient``          `shap.GradientExplainer` (expected gradients) on the agent's torch network;
                         sampled, so only approximately additive.

Measured choice (`benchmarks/explain_speed.py --batch 2000 --singles 200`, 2-core VM shared by six
sessions at load average 10-12, torch 1 thread, 32 features, 49 actions, k = 10 background
centres, agents trained 50k customer-days on `retail`; CPU figures are this process's CPU time,
wall figures suffer from the load):

    agent         method          p50 ms  p95 ms  cpu p95  batch/s  /cpu-s  rel.err  top-3 (ceiling)
    actor_critic  permutation P=2   1.8    28.5     2.1      171    1382   0.10    0.74 (0.95)
    actor_critic  permutation P=4   2.2    14.8     2.5      113     855   0.07    0.85
    actor_critic  shap Permutation  2.0    10.3     2.4      410     984   0.14    0.69  (P=1)
    actor_critic  Deep              7.1    15.1     3.5      264     714   0.15    0.73
    actor_critic  Gradient          7.8    13.6     3.8      171     436   0.27    0.44  additivity 0.5
    dqn           permutation P=2   2.2    14.2     2.4      272     850   0.28    0.56 (0.85)
    dqn           permutation P=4  10.7    18.5     3.1      182     423   0.19    0.67
    dqn           Deep              3.1     7.4     2.3      451     774   0.37    0.44
    supervised    permutation P=2   0.9     5.3     1.1      719    1504   0.07    0.85 (0.94)
    linucb        linear (exact)    0.5     8.6     0.8     1791    4841   0       1.00
    rule_based    permutation P=2   1.6    13.9     1.9      925    3307   0.00    0.99

(rel.err: L1 distance to permutation SHAP with 64 orders over the same background, relative;
top-3: share of decisions naming the same 3 features; ceiling: two 64-order runs compared.)
Hence the defaults: "linear" for linear scores (exact, fastest); otherwise "permutation" with
2 orders: exactly additive, the closest to Shapley values per CPU-millisecond, ~2 ms CPU per
decision and 850-1500 decisions per CPU-second (targets: p95 <= 20 ms, >= 500/s on 2 cores;
met in CPU time; on the overloaded shared machine wall-clock p95 reached 14-28 ms and batch
throughput 170-720/s). DeepExplainer is as fast but attributes DeepLIFT multipliers, further from
Shapley values, and needs the torch network; GradientExplainer is slower and not additive;
shap.PermutationExplainer is the same estimator with a Python loop per customer (kept as the
reference the tests compare against). Exact (2^32 coalitions) is out of reach for 32 features.
Use more orders (`n_permutations=8`, ~5 ms CPU) for a single decision a reviewer is reading.

The bandits and the rule-based policy also explain themselves in their own terms: the UCB bonus
(`LinUCB.ucb_bonus`) and the rule that fired (`RuleBasedPolicy.rule_fired`) appear in `own_terms`
and in the sentence.

The console builds one `Explainer` per policy version and reuses it (the background and the
permutations are computed once); `explain()` is the one-call form and caches an `Explainer` per
agent.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.algos.base import Agent
from agents.common.json_values import json_safe
from agents.common.masking import validate_mask

METHODS: tuple[str, ...] = (
    "auto", "permutation", "linear", "shap_permutation", "exact", "deep", "gradient",
)
"""Explainer options; "auto" = "linear" when the agent's scores are linear, else "permutation"."""

ADDITIVE_METHODS = frozenset({"permutation", "linear", "shap_permutation", "exact", "deep"})
"""Methods whose contributions + base value equal the explained score (up to float round-off)."""

SCORE_KINDS: dict[str, str] = {
    "actor_critic": "logit",
    "dqn": "Q-value (expected long-term reward)",
    "q_learning": "Q-value (expected long-term reward)",
    "supervised": "predicted immediate reward",
    "linucb": "predicted immediate reward",
    "thompson": "predicted immediate reward",
    "epsilon_greedy": "predicted immediate reward",
    "softmax": "predicted immediate reward",
    "rule_based": "rule score",
    "random": "score",
}
"""What each agent's `scores` mean, for the reader of an explanation."""

_MAX_EXACT_FEATURES = 16
_NETWORK_ATTRIBUTES = ("policy", "q_net", "q_network", "net", "network", "model")
"""Where the library's agents keep the torch network behind `scores` (actor_critic: policy,
dqn: q_net, supervised: net)."""
_KMEANS_ROWS = 2000


# ============================================================================ the result
@dataclass
class Contribution:
    """One feature's signed push on the chosen action's score."""

    feature: str
    """Feature name (agents.features.FEATURE_NAMES)."""
    label: str
    """The feature in marketer words (agents.features.FEATURE_LABELS)."""
    phrase: str
    """The customer's real value in marketer words, e.g. "opened 3 of the last 5 SMS messages"."""
    value: float | None
    """The raw (unnormalised) value where known, else the model's input value."""
    shap_value: float
    """Contribution to the score, in score units (positive pushed towards the chosen action)."""

    def text(self) -> str:
        return f"{self.phrase} ({_signed(self.shap_value)})"


@dataclass
class MaskedGroup:
    """Actions one contact rule blocked, grouped by channel and reason."""

    channel: str | None
    reason: str
    """The rule in human words, e.g. "SMS cap 1 per 7 days reached"."""
    text: str
    """What the console shows, e.g. "SMS: cap 1 per 7 days reached (12 actions)"."""
    actions: list[int]
    action_labels: list[str]


@dataclass
class Explanation:
    """Why the policy chose `action` for one customer; `to_dict()` is what the console stores."""

    action: int
    action_label: str
    score: float
    """The explained output: the chosen action's score."""
    score_kind: str
    """What the score means ("logit", "Q-value ...", "predicted immediate reward")."""
    base_value: float
    """The chosen action's expected score over the background customers."""
    shap_values: dict[str, float]
    """SHAP value per feature, in FEATURE_NAMES order."""
    feature_values: dict[str, float | None]
    """The customer's raw feature values where known (None where never happened), else inputs."""
    top_contributions: list[Contribution]
    runner_up: int | None
    runner_up_label: str | None
    score_gap: float | None
    """Chosen score minus runner-up score (how much the runner-up lost by)."""
    probability: float | None
    """The chosen action's probability under the policy (its propensity)."""
    runner_up_probability: float | None
    probability_gap: float | None
    """Chosen minus runner-up probability; None for a deterministic (greedy) policy."""
    masked: list[MaskedGroup]
    sentence: str
    method: str
    additive: bool
    """True when contributions + base_value == score (up to float round-off)."""
    agent: str
    own_terms: dict[str, Any] = field(default_factory=dict)
    """How bandits / rules explain themselves (UCB bonus, rule fired)."""

    def reasons(self, k: int = 3) -> list[str]:
        """The top `k` reasons in marketer words: the features that pushed hardest.

        Where no feature moved the score (a rule's "no contact" scores the same for everyone), the
        rule that decided and the contact rules that blocked actions are the reasons instead: an
        answer with no reason at all tells a compliance reviewer nothing.
        """
        texts = [c.text() for c in self.top_contributions]
        if not texts:
            rule = self.own_terms.get("rule")
            if rule:
                texts.append(f"decided by the rule: {rule}")
            texts.extend(group.text for group in self.masked)
        return texts[:k]

    @property
    def additivity_error(self) -> float:
        return abs(self.base_value + sum(self.shap_values.values()) - self.score)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (floats, ints, strings, lists, dicts, None)."""
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        """Rebuild a stored explanation (the inverse of `to_dict`)."""
        data = dict(data)
        data["top_contributions"] = [Contribution(**c) for c in data["top_contributions"]]
        data["masked"] = [MaskedGroup(**g) for g in data["masked"]]
        return cls(**data)


# ============================================================================ SHAP back-ends
ScoreFn = Callable[[np.ndarray], np.ndarray]


class _Attributor:
    """Computes (shap (n, d), base (n,)) for the chosen actions of a batch; `scores` are the
    agent's (n, A) scores of `obs` when the caller has them (an attributor may reuse them)."""

    additive = True

    def attribute(self, obs: np.ndarray, actions: np.ndarray,
                  scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class _VectorisedPermutation(_Attributor):
    """Antithetic permutation SHAP over a weighted background, vectorised over customers.

    Same estimator as `shap.PermutationExplainer` with an Independent masker: for each feature
    order p, switch features on one by one (forward) and then off in the same order (backward),
    crediting each feature with the change of the background-averaged score. Forward and backward
    differences telescope, so the values add up exactly to score(x) - E_background[score]. The
    orders are drawn once from `seed`, so a customer's explanation does not depend on the seed of
    the call nor on which other customers share the batch.
    """

    def __init__(self, score_fn: ScoreFn, background: np.ndarray, weights: np.ndarray,
                 permutations: np.ndarray, max_rows: int = 65_536,
                 chosen_fn: _TorchChosen | None = None):
        self.score_fn = score_fn
        self.chosen_fn = chosen_fn
        self.background = background.astype(np.float32)
        self.weights = weights
        d = background.shape[1]
        self.permutations = np.atleast_2d(np.asarray(permutations, dtype=np.int64))
        if self.permutations.shape[1] != d or not all(
                np.array_equal(np.sort(p), np.arange(d)) for p in self.permutations):
            raise ValueError(f"permutations must be orders of the {d} features")
        # interior coalitions only (the empty and the full set are shared): per permutation the
        # forward prefixes of sizes 1..d-1, then the backward suffixes of sizes d-1..1
        masks = []
        for perm in self.permutations:
            for j in range(1, d):
                m = np.zeros(d, dtype=bool)
                m[perm[:j]] = True
                masks.append(m)
            for j in range(1, d):
                m = np.zeros(d, dtype=bool)
                m[perm[j:]] = True
                masks.append(m)
        self.masks = np.array(masks, dtype=bool).reshape(-1, d)
        # the empty coalition: every action's expected score over the background
        self.base_all = weights @ np.asarray(score_fn(self.background), dtype=np.float64)
        # the fast path mixes inputs already normalised (normalisation is per feature)
        self.mixed_background = self.background if chosen_fn is None else \
            chosen_fn.prepare(self.background)
        rows_per_customer = max(1, self.masks.shape[0] * background.shape[0])
        self.chunk = max(1, max_rows // rows_per_customer)

    def attribute(self, obs: np.ndarray, actions: np.ndarray,
                  scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        n, d = obs.shape
        if scores is None:
            scores = self.score_fn(obs)
        full = np.asarray(scores, dtype=np.float64)[np.arange(n), actions]
        base = self.base_all[actions]
        phi = np.zeros((n, d))
        if d == 1:  # one feature takes all the credit
            phi[:, 0] = full - base
            return phi, base
        m, k = self.masks.shape[0], self.background.shape[0]
        values = np.empty((n, m))
        mixed = obs if self.chosen_fn is None else self.chosen_fn.prepare(obs)
        for start in range(0, n, self.chunk):
            x = mixed[start:start + self.chunk]
            c = x.shape[0]
            # (c, m, k, d): the customer's values where the coalition is on, background elsewhere
            z = np.where(self.masks[None, :, None, :], x[:, None, None, :],
                         self.mixed_background[None, None, :, :])
            if self.chosen_fn is not None:  # only the chosen action's output: a third cheaper
                chosen = self.chosen_fn.per_customer(z.reshape(c, m * k, d), actions[start:start + c])
            else:
                out = np.asarray(self.score_fn(z.reshape(-1, d)), dtype=np.float64)
                chosen = np.take_along_axis(out.reshape(c, m * k, -1),
                                            actions[start:start + c, None, None], axis=2)
            values[start:start + c] = chosen.reshape(c, m, k) @ self.weights
        per_perm = 2 * (d - 1)
        for p, perm in enumerate(self.permutations):
            block = values[:, p * per_perm:(p + 1) * per_perm]
            # forward walk: v(empty), v(prefix 1..d-1), v(full)
            forward = np.column_stack([base, block[:, : d - 1], full])
            phi[:, perm] += np.diff(forward, axis=1)
            # backward walk: v(full), v(suffix from 1..d-1), v(empty); removing perm[j] costs
            backward = np.column_stack([full, block[:, d - 1:], base])
            phi[:, perm] -= np.diff(backward, axis=1)
        phi /= 2 * len(self.permutations)
        return phi, base


class _Linear(_Attributor):
    """Exact SHAP for scores linear in the features: shap_i = w_ai (x_i - E[x_i])."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, background: np.ndarray,
                 weights: np.ndarray):
        self.coef = coef  # (A, d)
        self.mean = weights @ background.astype(np.float64)  # (d,)
        self.base_all = coef @ self.mean + intercept  # (A,)

    def attribute(self, obs: np.ndarray, actions: np.ndarray,
                  scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        phi = self.coef[actions] * (obs.astype(np.float64) - self.mean)
        return phi, self.base_all[actions]


def _linear_fit(score_fn: ScoreFn, background: np.ndarray,
                tolerance: float = 1e-6) -> tuple[np.ndarray, np.ndarray] | None:
    """(coef (A, d), intercept (A,)) when the scores are linear in the features, else None.

    Probes the model at the background mean and one unit step per feature, then checks the fit on
    the background and on random points around it: no agent has to expose its weights.
    """
    bg = background.astype(np.float64)
    d = bg.shape[1]
    centre = bg.mean(axis=0)
    probes = np.vstack([centre, centre + np.eye(d)]).astype(np.float32)
    out = np.asarray(score_fn(probes), dtype=np.float64)
    coef = (out[1:] - out[:1]).T  # (A, d)
    intercept = out[0] - coef @ probes[0].astype(np.float64)
    rng = np.random.default_rng(0)
    check = np.vstack([bg, centre + rng.normal(0.0, 1.0, (8, d))]).astype(np.float32)
    predicted = check.astype(np.float64) @ coef.T + intercept
    actual = np.asarray(score_fn(check), dtype=np.float64)
    scale = max(1.0, float(np.abs(actual).max()))
    if np.abs(predicted - actual).max() > tolerance * scale * max(1.0, d):
        return None
    return coef, intercept


class _ShapPermutation(_Attributor):
    """`shap.PermutationExplainer`, one customer at a time (the library's own loop)."""

    def __init__(self, score_fn: ScoreFn, background: np.ndarray, n_permutations: int, seed: int):
        import shap

        self.d = background.shape[1]
        self.seed = seed
        self.n_permutations = n_permutations
        masker = shap.maskers.Independent(background, max_samples=background.shape[0])
        self.explainer = shap.PermutationExplainer(score_fn, masker, seed=seed)

    def attribute(self, obs: np.ndarray, actions: np.ndarray,
                  scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        # shap draws its orders from numpy's global generator: seed it for this call only
        state = np.random.get_state()
        try:
            np.random.seed(self.seed)
            result = self.explainer(obs, max_evals=self.n_permutations * (2 * self.d + 1),
                                    silent=True)
        finally:
            np.random.set_state(state)
        rows = np.arange(obs.shape[0])
        values = np.asarray(result.values, dtype=np.float64)  # (n, d, A)
        base = np.asarray(result.base_values, dtype=np.float64)  # (n, A)
        return values[rows, :, actions], base[rows, actions]


class _ShapExact(_Attributor):
    """`shap.ExactExplainer`: every coalition (2^d model calls per background row)."""

    def __init__(self, score_fn: ScoreFn, background: np.ndarray):
        import shap

        if background.shape[1] > _MAX_EXACT_FEATURES:
            raise ValueError(
                f"method='exact' evaluates 2^d coalitions; {background.shape[1]} features is too "
                f"many (at most {_MAX_EXACT_FEATURES}): use 'permutation'"
            )
        masker = shap.maskers.Independent(background, max_samples=background.shape[0])
        self.explainer = shap.ExactExplainer(score_fn, masker)

    def attribute(self, obs: np.ndarray, actions: np.ndarray,
                  scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        result = self.explainer(obs, silent=True)
        rows = np.arange(obs.shape[0])
        values = np.asarray(result.values, dtype=np.float64)
        base = np.asarray(result.base_values, dtype=np.float64)
        return values[rows, :, actions], base[rows, actions]


def torch_scores_module(agent: Agent) -> Any:
    """The agent's scores as one torch module, float tensor (n, d) -> (n, A), or None.

    An agent may expose it as `scores_module()`. Otherwise: actor_critic's `policy` and dqn's
    `q_net` behind their observation normaliser (as an affine layer; its +-clip is left out, so
    the module equals `scores` wherever no feature is clipped), supervised's `net` times its reward
    scale, or a bare `network` / `model` attribute.
    """
    from torch import nn

    method = getattr(agent, "scores_module", None)
    if callable(method):
        return method()
    net = next((getattr(agent, n) for n in _NETWORK_ATTRIBUTES
                if isinstance(getattr(agent, n, None), nn.Module)), None)
    if net is None:
        return None
    layers: list[nn.Module] = []
    normaliser = getattr(agent, "obs_normalizer", None)
    if normaliser is not None and getattr(normaliser, "enabled", False):
        std = np.sqrt(np.asarray(normaliser.stats.var, dtype=np.float64) + 1e-8)
        mean = np.asarray(normaliser.stats.mean, dtype=np.float64)
        layers.append(_diagonal(1.0 / std, -mean / std))
        clip = float(getattr(normaliser, "clip", np.inf))
        if np.isfinite(clip):
            # clamp(x, -c, c) = c - relu(2c - relu(x + c)): Linear/ReLU layers DeepLIFT knows
            ones = np.ones(len(std))
            layers += [_diagonal(ones, ones * clip), nn.ReLU(),
                       _diagonal(-ones, ones * 2 * clip), nn.ReLU(),
                       _diagonal(-ones, ones * clip)]
    layers.append(net)
    scale = getattr(agent, "reward_scale", None)
    if scale is not None and float(scale) != 1.0:
        width = agent.n_actions
        layers.append(_diagonal(np.full(width, float(scale)), np.zeros(width)))
    module = nn.Sequential(*layers).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class _TorchChosen:
    """Scores one action per row on the agent's torch network (the fast path of `permutation`).

    `prepare` is the agent's per-feature input normalisation: it acts feature by feature, so it
    can be applied to the customer and the background once, before the coalitions are mixed,
    instead of to every masked row. The trailing linear layers are folded into one (A, H) map of
    which only the chosen action's row is computed.
    """

    def __init__(self, prepare: Callable[[np.ndarray], np.ndarray], body: Any, weight: Any,
                 bias: Any):
        self.prepare_fn, self.body, self.weight, self.bias = prepare, body, weight, bias

    def prepare(self, obs: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.prepare_fn(obs), dtype=np.float32)

    def __call__(self, inputs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            hidden = self.body(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
            index = torch.from_numpy(np.asarray(actions, dtype=np.int64))
            out = torch.einsum("nh,nh->n", hidden, self.weight[index]) + self.bias[index]
        return out.double().numpy()

    def per_customer(self, inputs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(c, r) scores of each customer's one action on its r rows of `inputs` (c, r, d).

        The same numbers as `__call__` with the actions repeated per row, without gathering an
        (A, H) weight row for every one of the c * r rows (most of the cost on a 64-wide net).
        """
        import torch

        c, r, d = inputs.shape
        with torch.inference_mode():
            flat = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32).reshape(c * r, d))
            hidden = self.body(flat).reshape(c, r, -1)
            index = torch.from_numpy(np.asarray(actions, dtype=np.int64))
            # multiply-and-sum per row, not a matrix product: a row's score must not depend on
            # how many customers share the batch (BLAS kernels block differently per size)
            out = (hidden * self.weight[index].unsqueeze(1)).sum(dim=2) + self.bias[index].unsqueeze(1)
        return out.double().numpy()


def torch_chosen_scores(agent: Agent, check: np.ndarray) -> _TorchChosen | None:
    """The fast scorer of one action per row for the library's torch agents, or None.

    Checked against `agent.scores` on `check` for every action; None when it does not match (an
    agent whose scores are not "normalise, then network, then scale" keeps the generic path).
    """
    from torch import nn

    net = next((getattr(agent, n) for n in _NETWORK_ATTRIBUTES
                if isinstance(getattr(agent, n, None), nn.Module)), None)
    if net is None:
        return None
    normaliser = getattr(agent, "obs_normalizer", None)
    prepare = normaliser if callable(normaliser) else (lambda obs: obs)
    layers = _flatten_layers(net)
    weight = bias = None
    while layers and isinstance(layers[-1], nn.Linear):
        layer = layers.pop()
        w, b = layer.weight.detach().double(), layer.bias.detach().double()
        weight, bias = (w, b) if weight is None else (weight @ w, weight @ b + bias)
    if weight is None:
        return None
    scale = float(getattr(agent, "reward_scale", 1.0) or 1.0)
    chosen = _TorchChosen(prepare, nn.Sequential(*layers).eval(),
                          (weight * scale).float().contiguous(), (bias * scale).float().contiguous())
    check = np.asarray(check, dtype=np.float32)
    try:
        rows = np.repeat(chosen.prepare(check), agent.n_actions, axis=0)
        got = chosen(rows, np.tile(np.arange(agent.n_actions), len(check)))
    except (RuntimeError, ValueError, TypeError):  # an unusual network: use the generic path
        return None
    expected = np.asarray(agent.scores(check), dtype=np.float64).reshape(-1)
    return chosen if np.allclose(got, expected, rtol=1e-4, atol=1e-5) else None


def _flatten_layers(module: Any) -> list[Any]:
    from torch import nn

    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _flatten_layers(child)]
    return [module]


def _diagonal(weight: np.ndarray, bias: np.ndarray) -> Any:
    """x * weight + bias as an nn.Linear (a layer shap's DeepExplainer knows)."""
    import torch

    layer = torch.nn.Linear(len(weight), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.diag(torch.as_tensor(weight, dtype=torch.float32)))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return layer


class _ChosenOutput:
    """Wraps a torch scorer so it outputs one action's score (set `action` before each call)."""

    def __new__(cls, module: Any) -> Any:
        import torch

        class ChosenOutput(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module):
                super().__init__()
                self.inner = inner
                self.action = 0

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.inner(x)[:, self.action:self.action + 1]

        return ChosenOutput(module)


class _ShapTorch(_Attributor):
    """`shap.DeepExplainer` or `shap.GradientExplainer` on the agent's torch network.

    Not thread-safe: the wrapped network's output index is switched per chosen action (use one
    Explainer per thread with these methods; the default methods are stateless).
    """

    def __init__(self, agent: Agent, background: np.ndarray, kind: str, seed: int,
                 n_samples: int = 50):
        import shap
        import torch

        module = torch_scores_module(agent)
        if module is None:
            raise ValueError(
                f"method={kind!r} needs the agent's torch network; {agent.name} exposes none "
                "(add a scores_module() method or use 'permutation')"
            )
        self.kind, self.seed, self.n_samples = kind, seed, n_samples
        self.additive = kind == "deep"
        self.wrapper = _ChosenOutput(module).eval()
        self.bg = torch.as_tensor(background, dtype=torch.float32)
        with torch.no_grad():
            self.base_all = module(self.bg).double().mean(0).numpy()  # shap uses the plain mean
        if kind == "deep":
            self.explainer = shap.DeepExplainer(self.wrapper, self.bg)
        else:
            self.explainer = shap.GradientExplainer(self.wrapper, self.bg)

    def attribute(self, obs: np.ndarray, actions: np.ndarray,
                  scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        n, d = obs.shape
        phi = np.zeros((n, d))
        x = torch.as_tensor(obs, dtype=torch.float32)
        # shap loops over customers inside anyway; group them by chosen action
        for action in np.unique(actions):
            rows = np.flatnonzero(actions == action)
            self.wrapper.action = int(action)
            if self.kind == "deep":
                values = self.explainer.shap_values(x[rows], check_additivity=False)
            else:
                torch.manual_seed(self.seed)
                state = np.random.get_state()
                try:
                    np.random.seed(self.seed)
                    values = self.explainer.shap_values(x[rows], nsamples=self.n_samples)
                finally:
                    np.random.set_state(state)
            phi[rows] = np.asarray(values, dtype=np.float64).reshape(len(rows), d)
        return phi, self.base_all[actions]


# ============================================================================ marketer words
def _fmt(value: float) -> str:
    """Counts as integers, others with at most 2 decimals: what a marketer expects to read."""
    if not math.isfinite(value):
        return "n/a"
    if abs(value - round(value)) < 0.05 and abs(value) >= 1 or value == 0:
        return str(int(round(value)))
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _whole(value: float) -> bool:
    return abs(value - round(value)) < 0.05


def _signed(value: float) -> str:
    """+0.25 / -1.30; tiny values keep two significant digits instead of showing +0.00."""
    return f"{value:+.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:+.2g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _days_ago(days: float, what: str, never: str) -> str:
    if days is None or not math.isfinite(days) or days >= 1e6:
        return never
    if days < 1:
        return f"{what} today"
    return f"{what} {_fmt(days)} {'day' if _fmt(days) == '1' else 'days'} ago"


def _channel_words(catalogue: Any = None) -> dict[str, str]:
    """Channel key -> how a phrase names it (the catalogue's channels; default the demo's)."""
    from agents.features import DEMO_LAYOUT, FeatureLayout
    layout = FeatureLayout.for_catalogue(catalogue) if catalogue is not None else DEMO_LAYOUT
    return dict(zip(layout.channels, layout.channel_words))


def raw_feature_values(
    profiles: Any, channel_keys: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The unnormalised value behind each feature, from `agents.features.ProfileState` counters.

    Returns (values, extras): `values[name]` is (n,) float (inf = never happened), the number the
    marketer reads; `extras` holds the counts a phrase needs ("opened 3 of the last 5").
    `channel_keys`: the profile's channels in order (default: the demo catalogue's).
    """
    from agents.features import DEMO_LAYOUT

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


def _unnormalise(obs: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Best inverse of `agents.features.observation` when only the vector is stored.

    Log-scaled features come back approximately (clipped ones as "at least"); rates and shares
    are exact. Unknown features keep their input value.
    """
    try:
        from agents import features as F
        days, count = float(F._DAYS_SCALE), float(F._COUNT_SCALE)
        revenue, order, utc = float(F._REVENUE_SCALE), float(F._ORDER_SCALE), float(F._UTC_SCALE)
    except (ImportError, AttributeError):
        return {name: obs[:, i].astype(np.float64) for i, name in enumerate(names)}
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


def feature_phrases_of_vector(vector: Sequence[float], layout: Any) -> dict[str, str]:
    """Feature name -> the customer's value in marketer words, from a stored state vector alone
    (a logged decision's snapshot): `_unnormalise` then `feature_phrase`, named by `layout`
    (an `agents.features.FeatureLayout`)."""
    obs = np.asarray(vector, dtype=np.float64)[None, :]
    names = list(layout.names)[:obs.shape[1]]
    values = _unnormalise(obs, names)
    words = dict(zip(layout.channels, layout.channel_words))
    return {name: feature_phrase(name, float(values[name][0]), None, layout.labels, words)
            for name in names}


def feature_phrase(name: str, value: float, extras: dict[str, float] | None = None,
                   labels: dict[str, str] | None = None,
                   channel_words: dict[str, str] | None = None) -> str:
    """The customer's value of feature `name` in marketer words (`channel_words`: how each
    channel key is named, default the demo catalogue's)."""
    extras = extras or {}
    words = channel_words if channel_words is not None else _channel_words()
    for channel, word in words.items():
        prefix = f"{channel}_"
        if not name.startswith(prefix):
            continue
        kind = name[len(prefix):]
        sent = extras.get(f"{channel}_sent")
        if kind in ("open_rate", "click_rate"):
            verb, noun = ("opened", "opens") if kind == "open_rate" else ("clicked", "clicks")
            what = "open" if kind == "open_rate" else "click"
            if sent is not None:
                done = extras[f"{channel}_{noun}"]
                if sent < 0.05:
                    return f"no recent {word} messages to {what}"
                if _whole(done) and _whole(sent) and sent >= 1:
                    return f"{verb} {_fmt(done)} of the last {_fmt(sent)} {word} messages"
                # decayed counts are not whole numbers: quote the rate, counts as context
                return (f"{word} {what} rate {_pct(value)} ({_fmt(done)} {noun} per "
                        f"{_fmt(sent)} recent messages)")
            return f"{word} {what} rate {_pct(value)}"
        if kind == "contacts":
            if value < 0.05:
                return f"no {word} contacts in the last ~30 days"
            return f"{_fmt(value)} {word} contacts in the last ~30 days"
        if kind == "days_since_contact":
            return _days_ago(value, f"last {word} contact", f"never contacted by {word}")
        if kind == "consent":
            return f"{word} consent given" if value >= 0.5 else f"no {word} consent"
    if name == "days_since_purchase":
        return _days_ago(value, "last purchase", "never purchased")
    if name == "purchase_frequency":
        return f"{_fmt(value)} purchases in the last ~90 days"
    if name == "monetary_value":
        return f"revenue {_fmt(value)} in the last ~90 days"
    if name == "average_order_value":
        return f"average order value {_fmt(value)}"
    if name == "discount_purchase_share":
        return f"{_pct(value)} of purchases made with a discount"
    if name == "discount_contact_share":
        return f"{_pct(value)} of recent contacts carried a discount"
    if name == "days_since_engagement":
        return _days_ago(value, "last open, click or purchase", "never opened, clicked or bought")
    if name == "contacts_7d":
        return "no contact in the last 7 days" if value < 0.5 else \
            f"{_fmt(value)} contacts in the last 7 days"
    if name == "contacts_30d":
        return "no contact in the last 30 days" if value < 0.5 else \
            f"{_fmt(value)} contacts in the last 30 days"
    if name == "contact_pressure":
        return f"contact pressure {_fmt(value)} (fatigue)"
    if name == "tenure_days":
        return f"customer for {_fmt(value)} days"
    if name == "utc_offset":
        return f"time zone UTC{value:+.0f}"
    label = (labels or {}).get(name, name.replace("_", " "))
    return f"{label} {_fmt(value)}"


# ============================================================================ masked actions
def _reason_texts(flags: int, action: Any, contact_rules: Any,
                  contact_gap_hours: float | None = None, catalogue: Any = None) -> list[str]:
    """Human words for one action's MaskReason flags (agents.constraints.describe_reasons)."""
    from agents.constraints import describe_reasons

    if action is not None and not hasattr(action, "channel"):
        action = None
    return [str(t) for t in describe_reasons(int(flags), action, contact_rules, contact_gap_hours,
                                             catalogue)]


def _masked_groups(mask_row: np.ndarray, flags_row: np.ndarray | None, labels: Sequence[str],
                   actions_meta: Sequence[Any], contact_rules: Any,
                   memo: dict[tuple, list[tuple[str | None, str]]] | None = None,
                   gap_row: np.ndarray | None = None, catalogue: Any = None) -> list[MaskedGroup]:
    """Masked actions grouped by rule: per channel where the rule names it, else across channels.

    `gap_row` (W,): hours from each send window's send time to the nearest other contact, for
    the minimum gap's words. `memo` keeps each (action, flags, gap) triple's groups: the words
    depend only on them, the actions and the rules, which an Explainer holds fixed (a live
    decision masks dozens of actions).
    """
    from agents.catalogue import Catalogue
    from agents.constraints import MaskReason

    catalogue = catalogue if catalogue is not None else Catalogue.from_actions(())
    window_keys = catalogue.window_keys
    channel_labels = {c.key: c.label for c in catalogue.channels}

    groups: dict[tuple[str | None, str], list[int]] = {}
    for a in np.flatnonzero(~mask_row):
        flag = int(flags_row[a]) if flags_row is not None else 0
        meta = actions_meta[a]
        gap = None
        if gap_row is not None and flag & MaskReason.MIN_GAP \
                and getattr(meta, "send_window", None) in window_keys:
            gap = round(float(gap_row[window_keys.index(meta.send_window)]))
        keys = memo.get((int(a), flag, gap)) if memo is not None else None
        if keys is None:
            texts = _reason_texts(flag, meta, contact_rules, gap, catalogue) if flag else \
                ["not allowed by the campaign's mask"]
            channel = getattr(meta, "channel", None)
            channel_label = channel_labels.get(channel, "") if channel else ""
            # a rule about this channel (consent, its cap) groups per channel; others across all
            keys = [(channel if bool(channel_label) and channel_label.lower() in text.lower()
                     else None, text) for text in texts]
            if memo is not None:
                memo[(int(a), flag, gap)] = keys
        for key in keys:
            groups.setdefault(key, []).append(int(a))
    out = []
    for (channel, reason), members in groups.items():
        if channel is not None:
            name = channel_labels[channel]
            rest = " ".join(reason.replace(name, " ").split())  # "no SMS consent" -> "no consent"
            shown = f"{name}: {rest}"
        else:
            shown = reason[:1].upper() + reason[1:]
        plural = "action" if len(members) == 1 else "actions"
        out.append(MaskedGroup(channel, reason, f"{shown} ({len(members)} {plural})", members,
                               [labels[a] for a in members]))
    return out


# ============================================================================ the explainer
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
            display, extras = _unnormalise(obs, self.feature_names), {}

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
        if hasattr(agent, "ucb_bonus"):
            bonus = np.asarray(agent.ucb_bonus(obs), dtype=np.float64)
            ranking = np.asarray(agent.scores(obs), dtype=np.float64) + bonus
            terms["ucb_bonus"] = [float(b) for b in bonus[rows, actions]]
            terms["upper_confidence_bound"] = [float(u) for u in ranking[rows, actions]]
        elif hasattr(agent, "reward_std"):
            std = np.asarray(agent.reward_std(obs), dtype=np.float64)
            terms["reward_uncertainty"] = [float(s) for s in std[rows, actions]]
        rule_fired = getattr(agent, "rule_fired", None)
        if callable(rule_fired):
            fired = rule_fired(obs, mask) if _accepts_mask(rule_fired) else rule_fired(obs)
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


def _rule_labels() -> dict[str, str]:
    try:
        from agents.algos.baselines import RULE_LABELS
        return dict(RULE_LABELS)
    except ImportError:  # pragma: no cover
        return {}


def _accepts_mask(fn: Callable) -> bool:
    import inspect
    try:
        return len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):
        return False


def _sentence(e: Explanation) -> str:
    """One sentence: the chosen action, its top reasons with signs, and the runner-up's gap."""
    parts = [c.text() for c in e.top_contributions]
    head = f"{e.action_label} chosen"
    rule = e.own_terms.get("rule")
    if rule:
        head += f" by the rule \"{rule}\""
    reasons = ", ".join(parts) if parts else "no feature stood out"
    text = f"{head}: {reasons}"
    if "ucb_bonus" in e.own_terms:
        text += (f"; predicted reward {e.score:.2f} plus exploration bonus "
                 f"{e.own_terms['ucb_bonus']:.2f}")
    if e.runner_up_label is not None and e.score_gap is not None:
        gap = _signed(abs(e.score_gap))[1:]
        if e.score_gap >= 0:
            text += f"; runner-up {e.runner_up_label} scored {gap} lower"
        else:
            text += f"; {e.runner_up_label} scored {gap} higher but was not drawn"
    return text + "."


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
