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

The package, one owner per concern:

- `agents.explain.attribution`  the SHAP back-ends above (numbers only)
- `agents.explain.wording`      the marketer's words: phrases, masking reasons, the sentence
- `agents.explain.formatting`   how a number reads to a marketer (counts, signs, days ago)
- `agents.explain.result`       `Explanation` and its parts (what the console stores)
- `agents.explain.explainer`    `Explainer`, the background recipe and the per-process cache

What an agent can say about itself (its torch network, an exploration bonus, a rule that fired)
it declares on `agents.Agent` (`scores_network`, `exploration_bonus`, `score_uncertainty`,
`rule_fired`); the raw and unscaled feature values come from `agents.features`.
"""

from __future__ import annotations

from agents.explain.attribution import (
    ADDITIVE_METHODS,
    ScoreFn,
    torch_chosen_scores,
    torch_scores_module,
)
from agents.explain.explainer import METHODS, Explainer, explain, simulated_background
from agents.explain.result import Contribution, Explanation, MaskedGroup
from agents.explain.wording import SCORE_KINDS, feature_phrase, feature_phrases_of_vector
from agents.features import raw_feature_values

__all__ = [
    "ADDITIVE_METHODS",
    "METHODS",
    "SCORE_KINDS",
    "Contribution",
    "Explainer",
    "Explanation",
    "MaskedGroup",
    "ScoreFn",
    "explain",
    "feature_phrase",
    "feature_phrases_of_vector",
    "raw_feature_values",
    "simulated_background",
    "torch_chosen_scores",
    "torch_scores_module",
]
