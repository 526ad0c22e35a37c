"""Baselines: the random policy and the marketer's rules."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents import features
from agents.algos.baselines import RULES, RuleBasedPolicy
from agents.catalogue import Catalogue, CatalogueAction, default_catalogue
from tests.agents.algos.on_simulator import uplift_vs_random

CATALOGUE = default_catalogue()
OBS_SPACE = features.observation_space()
ACTION_SPACE = gym.spaces.Discrete(CATALOGUE.n_actions)
CHANNELS = default_catalogue().channel_keys
EMAIL, SMS = CHANNELS.index("email"), CHANNELS.index("sms")


def _rules(**kwargs) -> RuleBasedPolicy:
    return agents.make("rule_based", OBS_SPACE, ACTION_SPACE, seed=0, **kwargs)


def _customer(days_since_purchase: float = 5.0, days_since_engagement: float = 2.0,
              days_since_email: float = 30.0, days_since_sms: float = 30.0,
              sms_clicks: float = 0.0, sms_contacts: float = 0.0) -> np.ndarray:
    """One customer's feature vector, built through agents.features like the console does."""
    state = features.ProfileState.empty(1)
    state.days_since_purchase[:] = days_since_purchase
    state.days_since_engagement[:] = days_since_engagement
    state.days_since_contact[:, EMAIL] = days_since_email
    state.days_since_contact[:, SMS] = days_since_sms
    state.clicks[:, SMS] = sms_clicks
    state.contacts[:, SMS] = sms_contacts
    return features.observation(state)


def _label(action: int) -> str:
    return CATALOGUE.label(action)


ALL_ALLOWED = np.ones((1, CATALOGUE.n_actions), dtype=bool)

# ----------------------------------------------------------------------------- random


def test_random_is_uniform_over_allowed_actions() -> None:
    agent = agents.make("random", OBS_SPACE, ACTION_SPACE, seed=0)
    mask = np.zeros((2, CATALOGUE.n_actions), dtype=bool)
    mask[0, [0, 5, 9]] = True
    mask[1] = True
    probs = agent.action_probabilities(np.zeros((2, features.N_FEATURES)), mask)
    np.testing.assert_allclose(probs[0, [0, 5, 9]], 1 / 3)
    np.testing.assert_allclose(probs[1], 1 / CATALOGUE.n_actions)


def test_random_samples_even_when_asked_to_be_deterministic() -> None:
    agent = agents.make("random", OBS_SPACE, ACTION_SPACE, seed=0)
    actions = agent.act(np.zeros((500, features.N_FEATURES)), deterministic=True)
    assert len(np.unique(actions)) > 40


# ----------------------------------------------------------------------------- rule-based


def test_rules_beat_random_on_the_retail_simulator() -> None:
    gain = uplift_vs_random("rule_based", steps=1)
    assert gain.ci_low > 0.0, str(gain)


def test_at_risk_customer_gets_the_win_back_discount_in_the_first_window() -> None:
    obs = _customer(days_since_purchase=90)
    agent = _rules()
    assert _label(agent.act(obs, ALL_ALLOWED)[0]) == "Email - 10 % off - morning"
    assert agent.rule_fired(obs, ALL_ALLOWED) == ["win_back_discount"]


def test_at_risk_customer_gets_the_discount_in_place_of_the_weekly_email() -> None:
    agent = _rules()
    due = _customer(days_since_purchase=90, days_since_email=8)
    not_due = _customer(days_since_purchase=90, days_since_email=3)
    assert _label(agent.act(due, ALL_ALLOWED)[0]) == "Email - 10 % off - morning"
    assert agent.act(not_due, ALL_ALLOWED)[0] == 0


def test_customer_without_engagement_is_at_risk_too() -> None:
    obs = _customer(days_since_purchase=10, days_since_engagement=45)
    assert _rules().rule_fired(obs, ALL_ALLOWED) == ["win_back_discount"]


def test_blocked_morning_falls_back_to_the_next_window() -> None:
    obs = _customer(days_since_purchase=90)
    mask = ALL_ALLOWED.copy()
    mask[0, CATALOGUE.index_of("email", "discount_10", "morning")] = False
    assert _label(_rules().act(obs, mask)[0]) == "Email - 10 % off - midday"


def test_blocked_discount_falls_back_to_the_next_rule() -> None:
    obs = _customer(days_since_purchase=90)
    mask = ALL_ALLOWED.copy()
    for window in ("morning", "midday", "evening"):
        mask[0, CATALOGUE.index_of("email", "discount_10", window)] = False
    agent = _rules()
    assert _label(agent.act(obs, mask)[0]) == "Email - content - morning"
    assert agent.rule_fired(obs, mask) == ["weekly_email"]


def test_engaged_clicker_gets_an_sms() -> None:
    obs = _customer(days_since_email=2, sms_clicks=2.0, sms_contacts=3.0)
    agent = _rules()
    assert _label(agent.act(obs, ALL_ALLOWED)[0]) == "SMS - content - morning"
    assert agent.rule_fired(obs, ALL_ALLOWED) == ["engaged_sms"]


def test_everyone_gets_the_weekly_email() -> None:
    obs = _customer(days_since_email=8)
    assert _label(_rules().act(obs, ALL_ALLOWED)[0]) == "Email - content - morning"


def test_nothing_due_means_no_contact() -> None:
    obs = _customer(days_since_email=3)
    agent = _rules()
    assert agent.act(obs, ALL_ALLOWED)[0] == 0
    assert agent.rule_fired(obs, ALL_ALLOWED) == ["no_contact"]


def test_every_message_blocked_means_no_contact() -> None:
    obs = _customer(days_since_purchase=90, sms_clicks=2.0, sms_contacts=3.0)
    only_no_contact = np.zeros_like(ALL_ALLOWED)
    only_no_contact[0, 0] = True
    assert _rules().act(obs, only_no_contact)[0] == 0
    assert _rules().rule_fired(obs, only_no_contact) == ["no_contact"]


def test_rules_are_vectorised_over_customers() -> None:
    obs = np.concatenate([_customer(days_since_purchase=90), _customer(days_since_email=8),
                          _customer(days_since_email=3)])
    fired = _rules().rule_fired(obs, np.ones((3, CATALOGUE.n_actions), bool))
    assert fired == ["win_back_discount", "weekly_email", "no_contact"]
    assert set(fired) <= set(RULES)


def test_thresholds_are_hyperparameters() -> None:
    obs = _customer(days_since_purchase=40)
    assert _rules().rule_fired(obs, ALL_ALLOWED) == ["weekly_email"]
    assert _rules(at_risk_days_since_purchase=30).rule_fired(obs, ALL_ALLOWED) == ["win_back_discount"]


def test_epsilon_gives_a_logging_policy_full_support() -> None:
    obs = _customer(days_since_purchase=90)
    mask = ALL_ALLOWED.copy()
    mask[0, 10:20] = False
    agent = _rules(epsilon=0.1)
    probs = agent.action_probabilities(obs, mask)[0]
    chosen = CATALOGUE.index_of("email", "discount_10", "morning")
    allowed = mask.sum()
    assert probs[chosen] == pytest.approx(0.9 + 0.1 / allowed)
    assert np.all(probs[mask[0]] > 0)
    assert np.all(probs[~mask[0]] == 0)
    assert agent.act(obs, mask, deterministic=True)[0] == chosen


def test_custom_catalogue_is_used_and_survives_save_and_load(tmp_path) -> None:
    catalogue = Catalogue.from_actions([
        CatalogueAction("email", "content", "evening", 0.05),
        CatalogueAction("email", "discount_20", "midday", 0.05),
    ])
    agent = agents.make("rule_based", OBS_SPACE, gym.spaces.Discrete(3), catalogue=catalogue,
                        discount_offer="discount_20")
    obs = _customer(days_since_purchase=90)
    assert agent.act(obs)[0] == 2
    loaded = agents.load(agent.save(tmp_path / "rules.pt"))
    assert loaded.catalogue == catalogue
    assert loaded.config.discount_offer == "discount_20"
    assert loaded.act(obs)[0] == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(discount_channel=""), "channel key"),
    (dict(weekly_offer=None), "offer key"),
    (dict(send_windows=["midnight"]), "send_windows"),
    (dict(epsilon=2.0), "epsilon"),
    (dict(weekly_every_days=-1.0), "weekly_every_days"),
])
def test_bad_rules_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _rules(**kwargs)


def test_catalogue_must_match_the_action_space() -> None:
    with pytest.raises(ValueError, match="the catalogue has 49 actions"):
        agents.make("rule_based", OBS_SPACE, gym.spaces.Discrete(5))


def test_a_rule_whose_message_the_catalogue_lacks_never_fires() -> None:
    agent = _rules(engaged_channel="whatsapp")
    obs = np.zeros((1, OBS_SPACE.shape[0]), dtype=np.float32)
    assert agent._rule_actions()[RULES.index("engaged_sms")] == []
    assert agent.scores(obs).shape == (1, ACTION_SPACE.n)


def test_rules_need_the_catalogues_feature_vector() -> None:
    with pytest.raises(ValueError, match="catalogue's"):
        agents.make("rule_based", gym.spaces.Box(0, 1, (3,)), ACTION_SPACE)


def test_the_playbook_reads_the_tabular_scenarios_states() -> None:
    from agents.envs import CustomerJourneyEnv
    from agents.envs.scenarios import TABULAR_ACTIONS, get_scenario

    scenario = get_scenario("tabular")
    env = CustomerJourneyEnv("tabular", num_customers=2, seed=0)
    agent = agents.make("rule_based", env.single_observation_space, env.single_action_space)
    states = np.eye(scenario.n_states, dtype=np.float32)
    labels = [TABULAR_ACTIONS[a] for a in agent.act(states, scenario.allowed)]
    by_state = dict(zip((scenario.state_label(s) for s in range(scenario.n_states)), labels,
                        strict=True))
    assert by_state["lapsed / fresh"] == "email - 20 % off"
    assert by_state["fan / fresh"] == "SMS - 20 % off"
    assert by_state["active / tired"] == "no contact"
    assert by_state["fan / saturated"] == "no contact"
    assert agent.rule_fired(states[:1]) == ["win_back_discount"]
