"""SHAP back-ends: each turns an agent's scores into per-feature contributions of a chosen action.

`Explainer` (agents.explain.explainer) picks one by name (see the package docstring for the
measured choice); they share the `_Attributor` interface so the explainer never asks which.
The torch paths use the network the agent declares (`Agent.scores_network`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from agents.algos.base import Agent

ADDITIVE_METHODS = frozenset({"permutation", "linear", "shap_permutation", "exact", "deep"})
"""Methods whose contributions + base value equal the explained score (up to float round-off)."""

_MAX_EXACT_FEATURES = 16

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

    Built from the network the agent declares (`Agent.scores_network`): its observation
    normaliser as an affine layer and its +-clip as Linear/ReLU layers (layers DeepLIFT knows),
    then the network, then the scale. None when the agent declares no network.
    """
    from torch import nn

    declared = agent.scores_network()
    if declared is None:
        return None
    layers: list[nn.Module] = []
    normaliser = declared.normalizer
    if normaliser is not None and normaliser.enabled:
        std = np.sqrt(np.asarray(normaliser.stats.var, dtype=np.float64) + 1e-8)
        mean = np.asarray(normaliser.stats.mean, dtype=np.float64)
        layers.append(_diagonal(1.0 / std, -mean / std))
        clip = float(normaliser.clip)
        if np.isfinite(clip):
            # clamp(x, -c, c) = c - relu(2c - relu(x + c)): Linear/ReLU layers DeepLIFT knows
            ones = np.ones(len(std))
            layers += [_diagonal(ones, ones * clip), nn.ReLU(),
                       _diagonal(-ones, ones * 2 * clip), nn.ReLU(),
                       _diagonal(-ones, ones * clip)]
    layers.append(declared.network)
    scale = float(declared.scale)
    if scale != 1.0:
        width = agent.n_actions
        layers.append(_diagonal(np.full(width, scale), np.zeros(width)))
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

    declared = agent.scores_network()
    if declared is None:
        return None
    normaliser = declared.normalizer
    prepare = normaliser if normaliser is not None else (lambda obs: obs)
    layers = _flatten_layers(declared.network)
    weight = bias = None
    while layers and isinstance(layers[-1], nn.Linear):
        layer = layers.pop()
        w, b = layer.weight.detach().double(), layer.bias.detach().double()
        weight, bias = (w, b) if weight is None else (weight @ w, weight @ b + bias)
    if weight is None:
        return None
    scale = float(declared.scale)
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
                f"method={kind!r} needs the agent's torch network; {agent.name} declares none "
                "(override Agent.scores_network or use 'permutation')"
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
