"""agents.explain: SHAP explanations of decisions and the marketer's sentence."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
from agents import features as F
from agents.algos.base import Agent, ScoresNetwork
from agents.catalogue import default_catalogue
from agents.common.masking import masked_softmax
from agents.constraints import ContactState, MaskReason, contact_mask, default_contact_rules
from agents.explain import Explainer, Explanation, explain, feature_phrase
from agents.explain.attribution import _VectorisedPermutation

CHANNELS = default_catalogue().channel_keys

D, A = F.N_FEATURES, 49
CATALOGUE = default_catalogue()
SMS_EVENING = CATALOGUE.index_of("sms", "content", "evening")


# ----------------------------------------------------------------------------- toy agents
class MLPAgent(Agent):
    """A small torch MLP with softmax (stochastic) or greedy policy: stands in for any net."""

    name = "actor_critic"

    def __init__(self, observation_space, action_space, *, seed=0, stochastic=True):
        super().__init__(observation_space, action_space, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        self.network = torch.nn.Sequential(
            torch.nn.Linear(self.n_features, 32), torch.nn.ReLU(),
            torch.nn.Linear(32, self.n_actions),
        )
        with torch.no_grad():
            for p in self.network.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        self.stochastic = stochastic

    def _fit(self, env, total_steps, report, callback):  # pragma: no cover - never trained here
        raise NotImplementedError

    def scores(self, obs):
        with torch.no_grad():
            return self.network(torch.as_tensor(self._check_obs(obs))).numpy().astype(np.float64)

    def scores_network(self):
        return ScoresNetwork(self.network)

    def _probabilities(self, obs, mask):
        if self.stochastic:
            return masked_softmax(self.scores(obs), mask)
        return super()._probabilities(obs, mask)


class LinearAgent(Agent):
    """Scores linear in the features: exact SHAP is known in closed form."""

    name = "supervised"

    def __init__(self, observation_space, action_space, *, seed=0, coef=None, intercept=None):
        super().__init__(observation_space, action_space, seed=seed)
        self.coef = np.zeros((self.n_actions, self.n_features)) if coef is None else coef
        self.intercept = np.zeros(self.n_actions) if intercept is None else intercept

    def _fit(self, env, total_steps, report, callback):  # pragma: no cover
        raise NotImplementedError

    def scores(self, obs):
        return self._check_obs(obs).astype(np.float64) @ self.coef.T + self.intercept


def spaces(d=D, n_actions=A):
    return gym.spaces.Box(-1, 1, (d,), np.float32), gym.spaces.Discrete(n_actions)


@pytest.fixture(scope="module")
def background():
    return np.random.default_rng(1).random((64, D)).astype(np.float32)


@pytest.fixture(scope="module")
def customers():
    return np.random.default_rng(2).random((6, D)).astype(np.float32)


@pytest.fixture(scope="module")
def mlp():
    return MLPAgent(*spaces(), seed=0)


@pytest.fixture(scope="module")
def mlp_explainer(mlp, background):
    return Explainer(mlp, background=background, seed=0)


# ----------------------------------------------------------------------------- SHAP maths
def test_permutation_contributions_add_up_to_the_chosen_score(mlp, mlp_explainer, customers):
    explanations = mlp_explainer.explain(customers)
    scores = mlp.scores(customers)
    assert mlp_explainer.method == "permutation"
    for row, e in enumerate(explanations):
        assert e.additive
        assert e.score == pytest.approx(scores[row, e.action])
        assert abs(e.base_value + sum(e.shap_values.values()) - e.score) <= 1e-4
        assert any(abs(v) > 1e-3 for v in e.shap_values.values())  # not trivially zero


def test_explains_the_agents_greedy_choice_under_the_mask_by_default(mlp, mlp_explainer, customers):
    mask = np.ones((len(customers), A), dtype=bool)
    mask[:, mlp.scores(customers).argmax(axis=1)] = False
    explanations = mlp_explainer.explain(customers, mask)
    assert [e.action for e in explanations] == mlp.act(customers, mask).tolist()


def test_explains_the_action_actually_taken_when_given(mlp_explainer, customers):
    taken = np.arange(len(customers)) + 3
    explanations = mlp_explainer.explain(customers, actions=taken)
    assert [e.action for e in explanations] == taken.tolist()
    assert all(abs(e.additivity_error) <= 1e-4 for e in explanations)


def test_vectorised_permutation_equals_shaps_permutation_explainer_for_the_same_order(mlp, background):
    import shap

    x = np.random.default_rng(3).random((1, D)).astype(np.float32)
    action = np.array([7])
    bg = background[:8]
    np.random.seed(11)
    order = np.arange(D)
    np.random.shuffle(order)  # the order shap.PermutationExplainer(seed=11) walks for one row
    ours, base = _VectorisedPermutation(mlp.scores, bg, np.full(8, 1 / 8), order[None]).attribute(
        x, action)
    reference = shap.PermutationExplainer(mlp.scores, shap.maskers.Independent(bg), seed=11)(
        x, max_evals=2 * D + 1, silent=True)
    np.testing.assert_allclose(ours[0], reference.values[0, :, 7], atol=1e-5)
    assert base[0] == pytest.approx(reference.base_values[0, 7], abs=1e-6)


def test_permutation_converges_to_exact_shapley_values():
    names = [f"f{i}" for i in range(6)]
    agent = MLPAgent(*spaces(6, 5), seed=4)
    rng = np.random.default_rng(5)
    bg, x = rng.random((10, 6)), rng.random((3, 6))
    actions = np.array([0, 2, 4])
    exact = Explainer(agent, background=bg, method="exact", feature_names=names, n_background=None)
    sampled = Explainer(agent, background=bg, method="permutation", feature_names=names,
                        n_background=None, n_permutations=300)
    exact_values, exact_base = exact.shap_values(x, actions)
    values, base = sampled.shap_values(x, actions)
    np.testing.assert_allclose(base, exact_base, atol=1e-5)
    assert np.abs(values - exact_values).max() < 0.05 * np.abs(exact_values).max()


def test_linear_scores_get_the_exact_closed_form(background, customers):
    rng = np.random.default_rng(6)
    agent = LinearAgent(*spaces(), coef=rng.normal(size=(A, D)), intercept=rng.normal(size=A))
    linear = Explainer(agent, background=background)
    permutation = Explainer(agent, background=background, method="permutation")
    assert linear.method == "linear"
    actions = agent.act(customers)
    values, base = linear.shap_values(customers, actions)
    mean = linear.weights @ linear.background.astype(np.float64)
    np.testing.assert_allclose(values, agent.coef[actions] * (customers - mean), atol=1e-9)
    # for an additive model every permutation gives the exact Shapley values too
    np.testing.assert_allclose(permutation.shap_values(customers, actions)[0], values, atol=1e-4)
    for e in linear.explain(customers):
        assert e.additivity_error <= 1e-6


def test_linear_method_refuses_a_non_linear_agent(mlp, background):
    with pytest.raises(ValueError, match="not linear"):
        Explainer(mlp, background=background, method="linear")


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_the_same_explanation(mlp, background, customers):
    first = Explainer(mlp, background=background, seed=7).explain(customers)
    second = Explainer(mlp, background=background, seed=7).explain(customers)
    assert [e.to_dict() for e in first] == [e.to_dict() for e in second]


def test_a_customers_explanation_does_not_depend_on_the_rest_of_the_batch(mlp_explainer, customers):
    batch = mlp_explainer.explain(customers)
    alone = mlp_explainer.explain(customers[3])
    assert alone[0].action == batch[3].action
    for name, value in batch[3].shap_values.items():
        assert alone[0].shap_values[name] == pytest.approx(value, abs=1e-6)


def test_another_seed_walks_other_feature_orders(mlp, background, customers):
    a = Explainer(mlp, background=background, seed=1, n_permutations=1)
    b = Explainer(mlp, background=background, seed=2, n_permutations=1)
    actions = mlp.act(customers)
    assert not np.allclose(a.shap_values(customers, actions)[0], b.shap_values(customers, actions)[0])


# ----------------------------------------------------------------------------- the sentence
def _profile() -> F.ProfileState:
    """One customer: bought 12 days ago, then 5 SMS today of which 3 were opened."""
    state = F.ProfileState.empty(1)
    F.record_purchase(state, [0], 80.0)
    F.advance_days(state, 12.0)
    for _ in range(5):
        F.record_contact(state, [0], 1)
    for _ in range(3):
        F.record_open(state, [0], 1)
    return state


def _sms_loving_agent() -> LinearAgent:
    coef = np.zeros((A, D))
    coef[SMS_EVENING, F.feature_index("sms_open_rate")] = 4.0
    coef[SMS_EVENING, F.feature_index("days_since_purchase")] = -2.0
    coef[SMS_EVENING, F.feature_index("contacts_7d")] = -1.0
    intercept = np.zeros(A)
    intercept[SMS_EVENING] = 5.0
    return LinearAgent(F.observation_space(), gym.spaces.Discrete(A), coef=coef, intercept=intercept)


def test_sentence_quotes_the_customers_real_counts(background):
    state = _profile()
    agent = _sms_loving_agent()
    [e] = Explainer(agent, background=background).explain(F.observation(state), profiles=state)
    assert e.action == SMS_EVENING
    assert e.sentence.startswith("SMS - content - evening chosen: ")
    assert "opened 3 of the last 5 SMS messages (+" in e.sentence
    assert "last purchase 12 days ago (" in e.sentence
    assert "5 contacts in the last 7 days (-" in e.sentence
    assert e.feature_values["sms_contacts"] == pytest.approx(5.0)
    assert {c.feature for c in e.top_contributions} == {
        "sms_open_rate", "days_since_purchase", "contacts_7d"}
    magnitudes = [abs(c.shap_value) for c in e.top_contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_sentence_reads_values_back_from_the_stored_vector_without_a_profile(background):
    state = _profile()
    [e] = Explainer(_sms_loving_agent(), background=background).explain(F.observation(state))
    assert "SMS open rate 50 %" in e.sentence  # 3 opens / (5 contacts + 1)
    assert "last purchase 12 days ago" in e.sentence
    assert "5 contacts in the last 7 days" in e.sentence


def test_contribution_signs_in_the_sentence_match_the_shap_values(background):
    state = _profile()
    [e] = Explainer(_sms_loving_agent(), background=background).explain(
        F.observation(state), profiles=state)
    for c in e.top_contributions:
        assert f"{c.phrase} ({'+' if c.shap_value > 0 else '-'}" in e.sentence


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("email_days_since_contact", np.inf, "never contacted by email"),
    ("days_since_purchase", 0.2, "last purchase today"),
    ("sms_consent", 0.0, "no SMS consent"),
    ("contacts_7d", 0.0, "no contact in the last 7 days"),
    ("utc_offset", -5.0, "time zone UTC-5"),
    ("discount_purchase_share", 0.25, "25 % of purchases made with a discount"),
])
def test_feature_phrases_use_marketer_words(name, value, expected):
    assert feature_phrase(name, value) == expected


# ----------------------------------------------------------------------------- masks, runner-up
def _sent(n, sends, rows=None):
    """(n, C, 1) contact send times: one contact per named channel for `rows` (default all)."""
    hours = np.full((n, len(CHANNELS), 1), -np.inf)
    for channel, hour in sends.items():
        hours[rows if rows is not None else slice(None), CHANNELS.index(channel), 0] = hour
    return hours


def test_masked_actions_are_listed_with_the_rule_that_blocked_them(mlp_explainer):
    rules = default_contact_rules()
    state = ContactState(  # one SMS sent 100 h ago: the SMS cap of 1 per 7 days is taken
        now_hours=np.array([0.0]), contact_hours=_sent(1, {"sms": -100.0}),
        consent=np.array([[True, True, True, False]]), utc_offset_hours=np.array([0.0]),
        suppressed=np.array([False]),
    )
    allowed, flags = contact_mask(CATALOGUE, rules, state)
    explainer = Explainer(mlp_explainer.agent, background=mlp_explainer.background,
                          n_background=None, contact_rules=rules)
    [e] = explainer.explain(np.full((1, D), 0.5, np.float32), allowed, reason_flags=flags)
    texts = {g.text for g in e.masked}
    assert "SMS: cap 1 per 7 days reached (12 actions)" in texts
    assert "Call centre: no consent (12 actions)" in texts
    sms = next(g for g in e.masked if g.channel == "sms")
    assert sms.actions == [a for a in range(A) if CATALOGUE.actions[a].channel == "sms"]
    assert "SMS - 10 % off - evening" in sms.action_labels
    assert e.action not in {a for g in e.masked for a in g.actions}
    assert not flags[0, e.action]


def test_masked_groups_stay_the_same_when_the_explainer_explains_again(mlp_explainer):
    rules = default_contact_rules()
    state = ContactState(
        now_hours=np.array([0.0, 0.0]), contact_hours=_sent(2, {"sms": -100.0}, rows=[0]),
        consent=np.array([[True, True, True, False], [False, True, True, True]]),
        utc_offset_hours=np.array([0.0, 0.0]), suppressed=np.array([False, False]),
    )
    allowed, flags = contact_mask(CATALOGUE, rules, state)
    explainer = Explainer(mlp_explainer.agent, background=mlp_explainer.background,
                          n_background=None, contact_rules=rules)
    obs = np.full((2, D), 0.5, np.float32)
    first = [[(g.channel, g.text, g.actions) for g in e.masked]
             for e in explainer.explain(obs, allowed, reason_flags=flags)]
    again = [[(g.channel, g.text, g.actions) for g in e.masked]
             for e in explainer.explain(obs[::-1].copy(), allowed[::-1].copy(),
                                        reason_flags=flags[::-1].copy())]
    assert again == first[::-1]
    assert first[0] != first[1]  # different customers, different rules


def test_mask_is_derived_from_reason_flags_when_only_flags_are_given(mlp_explainer):
    flags = np.zeros(A, dtype=np.uint8)
    flags[1:13] = MaskReason.CONSENT
    [e] = mlp_explainer.explain(np.full(D, 0.5, np.float32), reason_flags=flags)
    assert sorted(a for g in e.masked for a in g.actions) == list(range(1, 13))
    assert not 1 <= e.action <= 12


def test_runner_up_is_the_best_allowed_other_action(mlp, mlp_explainer, customers):
    scores = mlp.scores(customers)
    mask = np.ones_like(scores, dtype=bool)
    mask[np.arange(len(customers)), scores.argmax(axis=1)] = False  # block each favourite
    for row, e in enumerate(mlp_explainer.explain(customers, mask)):
        ranked = [a for a in np.argsort(-scores[row]) if mask[row, a]]
        assert (e.action, e.runner_up) == (ranked[0], ranked[1])
        assert e.score_gap == pytest.approx(scores[row, ranked[0]] - scores[row, ranked[1]])
        assert e.runner_up_label == CATALOGUE.label(ranked[1])
        assert f"runner-up {e.runner_up_label} scored" in e.sentence


def test_probability_gap_only_for_a_stochastic_policy(background, customers):
    stochastic = MLPAgent(*spaces(), seed=0, stochastic=True)
    greedy = MLPAgent(*spaces(), seed=0, stochastic=False)
    [s] = Explainer(stochastic, background=background).explain(customers[0])
    [g] = Explainer(greedy, background=background).explain(customers[0])
    probs = stochastic.action_probabilities(customers[:1])[0]
    assert s.probability_gap == pytest.approx(probs[s.action] - probs[s.runner_up])
    assert g.probability == 1.0 and g.probability_gap is None


def test_no_runner_up_when_only_no_contact_is_allowed(mlp_explainer):
    mask = np.zeros(A, dtype=bool)
    mask[0] = True
    [e] = mlp_explainer.explain(np.full(D, 0.5, np.float32), mask)
    assert e.action == 0 and e.runner_up is None and e.score_gap is None
    assert e.sentence.startswith("No contact chosen: ")


def test_to_dict_is_json_ready_and_round_trips(mlp_explainer, customers):
    [e] = mlp_explainer.explain(customers[0])
    stored = json.loads(json.dumps(e.to_dict()))
    assert stored["sentence"] == e.sentence
    assert list(stored["shap_values"]) == list(F.FEATURE_NAMES)
    assert stored["top_contributions"][0]["shap_value"] == e.top_contributions[0].shap_value
    assert Explanation.from_dict(stored).to_dict() == e.to_dict()


def test_a_step_function_mistaken_for_linear_falls_back_to_permutation(background):
    class StepAgent(LinearAgent):
        def scores(self, obs):  # flat near the background mean, jumps only for extreme values
            obs = self._check_obs(obs)
            out = np.zeros((len(obs), self.n_actions))
            out[:, 3] = 10.0 * (obs[:, 0] > 1.5)
            return out

    agent = StepAgent(*spaces())
    explainer = Explainer(agent, background=background)
    x = np.full((1, D), 0.5, np.float32)
    x[0, 0] = 2.0
    [e] = explainer.explain(x, actions=[3])
    assert e.method == "permutation" and e.additivity_error <= 1e-6
    assert e.top_contributions[0].feature == F.FEATURE_NAMES[0]


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(("obs", "match"), [
    (np.zeros((2, D + 1)), "obs has shape"),
    (np.zeros((2, 3, D)), "obs has shape"),
    (np.zeros((0, D)), "obs has shape"),
    (np.full((1, D), np.nan), "NaN"),
])
def test_bad_observations_raise(mlp_explainer, obs, match):
    with pytest.raises(ValueError, match=match):
        mlp_explainer.explain(obs)


def test_mask_of_the_wrong_shape_raises(mlp_explainer, customers):
    with pytest.raises(ValueError, match="action_mask has shape"):
        mlp_explainer.explain(customers, np.ones((len(customers), A - 1), dtype=bool))


def test_reason_flags_of_the_wrong_shape_raise(mlp_explainer, customers):
    with pytest.raises(ValueError, match="reason_flags has shape"):
        mlp_explainer.explain(customers, reason_flags=np.zeros((2, A), dtype=np.uint8))


def test_a_masked_action_cannot_be_explained_as_chosen(mlp_explainer, customers):
    mask = np.ones(A, dtype=bool)
    mask[5] = False
    with pytest.raises(ValueError, match="action 5 in row 0 is masked"):
        mlp_explainer.explain(customers[:1], mask, actions=[5])


def test_actions_of_the_wrong_length_raise(mlp_explainer, customers):
    with pytest.raises(ValueError, match="integer action indices"):
        mlp_explainer.explain(customers, actions=[1, 2])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "magic"}, "unknown method"),
    ({"background": np.zeros((5, D - 1))}, "background has shape"),
    ({"feature_names": ["a", "b"]}, "2 feature names"),
    ({"n_permutations": 0}, "n_permutations"),
])
def test_bad_explainer_settings_raise(mlp, background, kwargs, match):
    kwargs = {"background": background, **kwargs}
    with pytest.raises(ValueError, match=match):
        Explainer(mlp, **kwargs)


def test_exact_refuses_too_many_features(mlp, background):
    with pytest.raises(ValueError, match="too many"):
        Explainer(mlp, background=background, method="exact")


# ----------------------------------------------------------------------------- the library's agents
_LIBRARY: dict[str, Agent] = {}


def library_agent(name: str) -> Agent:
    """One untrained agent per kind for the whole module (building dqn takes seconds)."""
    if name not in _LIBRARY:
        _LIBRARY[name] = agents.make(name, F.observation_space(), gym.spaces.Discrete(A), seed=0)
    return _LIBRARY[name]


@pytest.mark.parametrize("name", ["actor_critic", "dqn", "supervised"])
def test_library_agents_are_explained_additively(name, background, customers):
    agent = library_agent(name)
    explanations = Explainer(agent, background=background).explain(customers)
    assert all(e.additivity_error <= 1e-4 for e in explanations)
    assert {e.agent for e in explanations} == {name}


@pytest.mark.parametrize("name", ["actor_critic", "dqn", "supervised"])
def test_deep_explainer_runs_on_the_library_networks(name, background, customers):
    agent = library_agent(name)
    explanations = Explainer(agent, background=background, method="deep").explain(customers)
    assert all(e.additivity_error <= 1e-4 for e in explanations)


def test_deep_module_reproduces_a_normalising_agents_scores_even_where_features_clip(
        background, customers):
    from agents.explain import torch_scores_module

    agent = agents.make("actor_critic", F.observation_space(), gym.spaces.Discrete(A), seed=3)
    agent.obs_normalizer.stats.mean[:] = 0.5
    agent.obs_normalizer.stats.var[:] = 0.01  # (x - 0.5) / 0.1 clips at +-5 for x < 0 or > 1
    x = np.vstack([customers, np.full((1, D), 0.999, np.float32), np.zeros((1, D), np.float32)])
    x[-1, F.feature_index("utc_offset")] = -1.0  # clipped at -5
    with torch.no_grad():
        module_scores = torch_scores_module(agent)(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(module_scores, agent.scores(x), atol=1e-5)
    explanations = Explainer(agent, background=background, method="deep").explain(x)
    assert all(e.additivity_error <= 1e-4 for e in explanations)


@pytest.mark.parametrize("name, hyperparams", [
    ("actor_critic", {}), ("dqn", {}), ("supervised", {}),
    ("actor_critic", {"action_attributes": default_catalogue().attributes}),
])
def test_fast_torch_path_matches_the_generic_one(name, hyperparams, background, customers):
    from agents.explain import torch_chosen_scores

    agent = agents.make(name, F.observation_space(), gym.spaces.Discrete(A), seed=5, **hyperparams)
    if "action_attributes" in hyperparams:  # give the shared part something to fold
        with torch.no_grad():
            for part, values in agent.policy.named_parameters():
                if part.endswith(".shared"):
                    values.normal_(std=0.1)
    if hasattr(agent, "obs_normalizer"):
        agent.obs_normalizer.stats.mean[:] = 0.4
        agent.obs_normalizer.stats.var[:] = 0.02  # some features clip
    if hasattr(agent, "reward_scale"):
        agent.reward_scale = 3.0
    assert torch_chosen_scores(agent, background) is not None
    fast = Explainer(agent, background=background, method="permutation")
    generic = Explainer(agent, background=background, method="permutation")
    generic._attributor.chosen_fn = None
    generic._attributor.mixed_background = generic._attributor.background
    actions = agent.act(customers)
    np.testing.assert_allclose(fast.shap_values(customers, actions)[0],
                               generic.shap_values(customers, actions)[0], atol=1e-5)


def test_linucb_explains_itself_with_its_exploration_bonus(background, customers):
    agent = agents.make("linucb", F.observation_space(), gym.spaces.Discrete(A), seed=0, alpha=1.0)
    rng = np.random.default_rng(8)
    agent.update(background, rng.integers(0, A, len(background)), rng.normal(size=len(background)))
    [e] = Explainer(agent, background=background).explain(customers[0])
    bonus = agent.ucb_bonus(customers[:1])[0]
    ucb = agent.upper_confidence_bound(customers[:1])[0]
    assert e.method == "linear" and e.additivity_error <= 1e-6
    assert e.own_terms["ucb_bonus"] == pytest.approx(bonus[e.action])
    assert e.runner_up == int(np.argsort(-ucb)[1])  # ranked by what LinUCB maximises
    assert "exploration bonus" in e.sentence


def test_rule_based_names_the_rule_that_fired(background):
    from agents.algos.baselines import RULE_LABELS

    agent = agents.make("rule_based", F.observation_space(), gym.spaces.Discrete(A), seed=0)
    state = F.ProfileState.empty(1)
    F.record_purchase(state, [0], 50.0)
    F.advance_days(state, 200.0)  # long since the last purchase: at risk
    obs = F.observation(state)
    [e] = Explainer(agent, background=background).explain(obs, profiles=state)
    fired = agent.rule_fired(obs)[0]
    assert e.own_terms["rule_fired"] == fired
    assert RULE_LABELS[fired] in e.sentence


def test_agents_declare_what_explanations_ask_of_them(customers):
    """Abilities are declared on the agent classes, not guessed from attribute names."""
    plain = LinearAgent(*spaces())
    assert plain.scores_network() is None and plain.rule_fired(customers) is None
    assert plain.exploration_bonus(customers) is None and plain.score_uncertainty(customers) is None
    for name in ("actor_critic", "dqn", "supervised"):
        assert agents.make(name, F.observation_space(), gym.spaces.Discrete(A)).scores_network()
    linucb = agents.make("linucb", F.observation_space(), gym.spaces.Discrete(A), alpha=2.0)
    np.testing.assert_array_equal(linucb.exploration_bonus(customers), linucb.ucb_bonus(customers))
    thompson = agents.make("thompson", F.observation_space(), gym.spaces.Discrete(A))
    assert thompson.exploration_bonus(customers) is None
    np.testing.assert_array_equal(thompson.score_uncertainty(customers),
                                  thompson.reward_std(customers))
    [e] = Explainer(thompson, background=customers).explain(customers[0])
    assert e.own_terms["reward_uncertainty"] == pytest.approx(
        thompson.reward_std(customers[:1])[0, e.action])


def test_probabilities_given_by_the_caller_explain_the_same_as_computed_ones(mlp, mlp_explainer,
                                                                           customers):
    mask = np.ones((len(customers), A), dtype=bool)
    mask[:, ::3] = False
    actions = mlp.act(customers, mask, deterministic=True)
    computed = mlp_explainer.explain(customers, mask, actions=actions)
    given = mlp_explainer.explain(customers, mask, actions=actions,
                                  probabilities=mlp.action_probabilities(customers, mask))
    assert [e.to_dict() for e in given] == [e.to_dict() for e in computed]


def test_probabilities_of_the_wrong_shape_are_refused(mlp_explainer, customers):
    with pytest.raises(ValueError, match="probabilities has shape"):
        mlp_explainer.explain(customers, probabilities=np.ones((1, A)))


def test_rule_based_no_contact_gives_the_rule_and_the_blocks_as_reasons(background):
    agent = agents.make("rule_based", F.observation_space(), gym.spaces.Discrete(A), seed=0)
    state = F.ProfileState.empty(1)
    flags = np.full((1, A), int(MaskReason.CONSENT), dtype=np.uint8)
    flags[0, 0] = 0  # only "no contact" is left: no feature can change the decision
    [e] = Explainer(agent, background=background).explain(
        F.observation(state), reason_flags=flags, profiles=state)
    assert e.action == 0 and e.top_contributions == []
    reasons = e.reasons()
    assert reasons[0].startswith("decided by the rule: no contact")
    assert reasons[1:] and all("consent" in r.lower() for r in reasons[1:])


def test_reasons_are_the_top_contributions_when_features_moved_the_score(mlp_explainer,
                                                                         customers):
    [e] = mlp_explainer.explain(customers[:1])
    assert e.top_contributions and e.reasons() == [c.text() for c in e.top_contributions][:3]


def test_rule_based_exploration_is_not_blamed_on_a_rule(background, customers):
    agent = agents.make("rule_based", F.observation_space(), gym.spaces.Discrete(A), seed=0,
                        epsilon=0.5)
    rule_action = int(agent.act(customers[:1])[0])
    other = 0 if rule_action != 0 else 1
    [e] = Explainer(agent, background=background).explain(customers[0], actions=[other])
    assert e.own_terms["rule_fired"] == "exploration"


# ----------------------------------------------------------------------------- one-call form
def test_explain_function_reuses_its_explainer(monkeypatch, mlp, background, customers):
    built = []
    original = Explainer.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "__init__", counting)
    first = explain(mlp, customers, background=background)
    second = explain(mlp, customers, background=background)
    assert len(built) == 1
    assert isinstance(first[0], Explanation)
    assert [e.sentence for e in first] == [e.sentence for e in second]


def test_without_a_background_the_simulator_provides_one(customers):
    agent = library_agent("supervised")
    explainer = Explainer(agent)  # the console before any logged feature snapshots exist
    assert explainer.background.shape == (10, D)
    assert explainer.weights.sum() == pytest.approx(1.0)
    [e] = explainer.explain(customers[0])
    assert e.additivity_error <= 1e-4


def test_a_stored_state_vector_reads_back_in_marketer_words():
    from agents.explain import feature_phrases_of_vector
    from agents.features import DEMO_LAYOUT, ProfileState, observation

    state = ProfileState.empty(1)
    state.days_since_purchase[...] = 12.0
    state.tenure_days[...] = 100.0
    vector = observation(state)[0]
    words = feature_phrases_of_vector(vector, DEMO_LAYOUT)
    assert list(words) == list(DEMO_LAYOUT.names)
    assert "12" in words["days_since_purchase"] and "purchase" in words["days_since_purchase"]
    assert words["tenure_days"] == "customer for 100 days"
    never = feature_phrases_of_vector([1.0] * DEMO_LAYOUT.n_features, DEMO_LAYOUT)
    assert never["days_since_purchase"] == "never purchased"
