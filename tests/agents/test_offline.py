"""Logged datasets, offline Q-learning and warm starts, on the toy campaign (delayed reward, masks)."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from agents import offline
from agents.common.masking import sample_from, uniform_over_mask
from tests.agents.common.toy_envs import (
    N_ACTIONS, N_FEATURES, ToyCampaignVecEnv, average_return, optimal_actions,
)


def _uniform_return(seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return average_return(lambda o, m: sample_from(uniform_over_mask(m), rng))


@pytest.fixture(scope="module")
def toy_logs() -> offline.LoggedDataset:
    """10k customer-days of a uniform random logging policy on the toy campaign."""
    return offline.collect(ToyCampaignVecEnv(num_envs=64, horizon=8, seed=0),
                           offline.uniform_policy, 10_000, seed=0)


@pytest.fixture(scope="module")
def toy_q(toy_logs) -> offline.OfflineQLearner:
    env = ToyCampaignVecEnv(num_envs=1)
    learner = offline.OfflineQLearner(env.single_observation_space, env.single_action_space,
                                      seed=0, gamma=0.9, gradient_steps=1500)
    learner.fit_offline(toy_logs)
    return learner


def _spaces():
    env = ToyCampaignVecEnv(num_envs=1)
    return env.single_observation_space, env.single_action_space


# ------------------------------------------------------------------ collecting logs
def test_collect_logs_exactly_the_requested_customer_days(toy_logs):
    assert len(toy_logs) == 10_000
    assert toy_logs.obs.shape == (10_000, N_FEATURES) and toy_logs.n_actions == N_ACTIONS


def test_collected_propensities_are_the_logging_policys_probabilities(toy_logs):
    rows = np.arange(len(toy_logs))
    assert np.allclose(toy_logs.propensities, toy_logs.logging_probs[rows, toy_logs.actions])
    assert np.allclose(toy_logs.propensities, 1.0 / toy_logs.masks.sum(axis=1))


def test_collected_actions_honour_the_masks(toy_logs):
    assert toy_logs.masks[np.arange(len(toy_logs)), toy_logs.actions].all()


def test_collect_drops_autoreset_rows_and_numbers_customers(toy_logs):
    # an 8-day journey: no customer has more than 8 logged days, and every row is a real day
    counts = np.bincount(toy_logs.customer_ids)
    assert counts.max() <= 8
    ended = toy_logs.customer_ids[toy_logs.dones]
    assert np.unique(ended).size == ended.size  # a journey ends once


def test_collect_is_reproducible_from_its_seed():
    first = offline.collect(ToyCampaignVecEnv(num_envs=8, seed=1), offline.uniform_policy, 300, seed=5)
    again = offline.collect(ToyCampaignVecEnv(num_envs=8, seed=1), offline.uniform_policy, 300, seed=5)
    assert np.array_equal(first.actions, again.actions) and np.array_equal(first.rewards, again.rewards)


def test_explore_mixes_the_policy_with_uniform_allowed_actions():
    mask = np.array([[True, True, False, True]])
    greedy = lambda obs, m: np.array([[0.0, 1.0, 0.0, 0.0]])  # noqa: E731
    probs = offline.explore(greedy, 0.3)(np.zeros((1, N_FEATURES)), mask)
    assert probs == pytest.approx(np.array([[0.1, 0.8, 0.0, 0.1]]))


def test_a_logging_policy_that_ignores_masks_is_refused():
    bad = lambda obs, m: np.full(m.shape, 1.0 / m.shape[1])  # noqa: E731
    with pytest.raises(ValueError, match="masked actions"):
        offline.collect(ToyCampaignVecEnv(num_envs=8, seed=0), bad, 100, seed=0)


def test_explore_rejects_a_bad_epsilon():
    with pytest.raises(ValueError, match="epsilon"):
        offline.explore(offline.uniform_policy, 1.5)


# ------------------------------------------------------------------ the dataset
def _rows(n: int = 4) -> dict:
    return {"obs": np.zeros((n, 2)), "actions": np.zeros(n, int), "propensities": np.full(n, 0.5),
            "rewards": np.ones(n), "next_obs": np.zeros((n, 2)), "dones": np.zeros(n, bool)}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"propensities": [0.5, 0.0, 0.5, 0.5]}, r"propensities must lie in \(0, 1\]"),
        ({"propensities": [0.5, np.nan, 0.5, 0.5]}, "missing"),
        ({"propensities": [0.5, 1.5, 0.5, 0.5]}, r"propensities must lie in \(0, 1\]"),
        ({"rewards": [1.0, np.inf, 1.0, 1.0]}, "rewards must be finite"),
        ({"next_obs": np.zeros((3, 2))}, "next_obs has shape"),
        ({"actions": [0, 1, 2]}, r"actions must have shape \(4,\)"),
        ({"terminated": [True, False, False, False]}, "terminated row must also be done"),
        ({"masks": np.array([[False, True]] * 4)}, "logged action is masked"),
        ({"logging_probs": np.full((4, 2), 0.25), "n_actions": 2}, r"logging_probs must be|disagree"),
        ({"actions": [0, 0, 0, 3], "n_actions": 2}, r"actions must lie in \[0, 2\)"),
    ],
)
def test_inconsistent_logs_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        offline.LoggedDataset(**(_rows() | change))


def test_dataset_round_trips_through_npz(toy_logs, tmp_path):
    loaded = offline.LoggedDataset.load(toy_logs.save(tmp_path / "logs.npz"))
    assert np.array_equal(loaded.obs, toy_logs.obs) and np.array_equal(loaded.masks, toy_logs.masks)
    assert loaded.n_actions == toy_logs.n_actions


def test_split_keeps_each_customer_on_one_side(toy_logs):
    first, rest = toy_logs.split(0.5, seed=0)
    assert len(first) + len(rest) == len(toy_logs)
    assert not set(first.customer_ids) & set(rest.customer_ids)


def test_concatenate_keeps_customers_of_different_logs_apart(toy_logs):
    both = offline.LoggedDataset.concatenate([toy_logs, toy_logs])
    assert len(both) == 2 * len(toy_logs)
    assert np.unique(both.customer_ids).size == 2 * np.unique(toy_logs.customer_ids).size


def test_discounted_running_returns_restart_for_each_customer():
    data = offline.LoggedDataset(**(_rows(5) | {
        "rewards": [1.0, 2.0, 3.0, 4.0, 5.0], "customer_ids": [7, 7, 3, 7, 3]}))
    returns = offline.discounted_running_returns(data, 0.5)
    assert returns == pytest.approx([1.0, 2.5, 3.0, 5.25, 6.5])


# ------------------------------------------------------------------ learning from the logs
def test_offline_q_learning_beats_the_logging_policy(toy_q):
    learned = average_return(lambda o, m: toy_q.act(o, m))
    assert learned > _uniform_return() + 2.0
    assert learned > 0.9 * average_return(optimal_actions)


def test_offline_q_never_picks_a_masked_action(toy_logs, toy_q):
    actions = toy_q.act(toy_logs.obs, toy_logs.masks)
    assert toy_logs.masks[np.arange(len(toy_logs)), actions].all()


def test_pretrained_actor_critic_beats_the_logging_policy(toy_logs, toy_q):
    agent = agents.make("actor_critic", *_spaces(), seed=0, gamma=0.9)
    before = average_return(lambda o, m: agent.act(o, m))
    report = offline.pretrain(agent, toy_logs, q_learner=toy_q, epochs=3)
    after = average_return(lambda o, m: agent.act(o, m))
    assert report.method == "awr_distillation" and report.agreement > 0.9
    assert after > before + 2.0 and after > _uniform_return() + 2.0


def test_pretrained_actor_critic_continues_online(toy_logs, toy_q):
    agent = agents.make("actor_critic", *_spaces(), seed=0, gamma=0.9, learning_rate=3e-4,
                        n_steps=8)
    offline.pretrain(agent, toy_logs, q_learner=toy_q, epochs=3)
    agent.fit(ToyCampaignVecEnv(num_envs=32, seed=3), total_steps=2_000)
    assert average_return(lambda o, m: agent.act(o, m)) > 0.9 * average_return(optimal_actions)


def test_pretrained_dqn_follows_the_offline_q(toy_logs, toy_q):
    agent = agents.make("dqn", *_spaces(), seed=0, gamma=0.9)
    report = offline.pretrain(agent, toy_logs, q_learner=toy_q, epochs=20)
    assert report.method == "q_regression"
    assert average_return(lambda o, m: agent.act(o, m)) > 0.9 * average_return(optimal_actions)


def test_pretrained_supervised_model_learns_the_immediate_reward(toy_logs):
    agent = agents.make("supervised", *_spaces(), seed=0)
    report = offline.pretrain(agent, toy_logs, epochs=3, importance_weighted=True)
    assert report.method == "response_model" and report.rows == len(toy_logs)
    # the toy's immediate reward of a wrong offer is -0.3: the model must prefer no contact to it
    obs = np.array([[1, 0, 0, 0, 0]], dtype=np.float32)
    scores = agent.scores(obs)[0]
    assert scores[0] > scores[2] + 0.1 and scores[0] > scores[3] + 0.1


def test_pretrain_refuses_logs_of_another_shape(toy_logs):
    import gymnasium as gym
    agent = agents.make("actor_critic", gym.spaces.Box(0, 1, (3,)), gym.spaces.Discrete(4))
    with pytest.raises(ValueError, match="features"):
        offline.pretrain(agent, toy_logs)


def test_pretrain_with_a_logging_prior_needs_the_logging_distribution(toy_logs):
    logs = toy_logs.subset(np.arange(100))
    logs.logging_probs = None
    with pytest.raises(ValueError, match="needs dataset.logging_probs"):
        offline.pretrain(agents.make("actor_critic", *_spaces()), logs, prior="logging")


def test_off_policy_value_of_the_logging_policy_matches_its_mean_reward(toy_logs):
    result = offline.off_policy_value(toy_logs, offline.uniform_policy, method="dr")
    assert result.lower <= toy_logs.rewards.mean() <= result.upper
    assert result.effective_sample_size == pytest.approx(len(toy_logs))


def test_pretrain_learns_its_own_q_with_the_given_options(toy_logs):
    agent = agents.make("actor_critic", *_spaces(), seed=0, gamma=0.9)
    report = offline.pretrain(agent, toy_logs.subset(np.arange(2000)), epochs=1,
                              q_gradient_steps=20, q_options={"hidden_sizes": (8,)})
    assert report.method == "awr_distillation" and 0.0 <= report.agreement <= 1.0


def test_pretrained_bandit_learns_from_the_logged_rows(toy_logs):
    agent = agents.make("linucb", *_spaces(), seed=0)
    report = offline.pretrain(agent, toy_logs, importance_weighted=True)
    assert report.method == "response_model"
    scores = agent.scores(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))[0]
    assert scores[0] > scores[2] and scores[0] > scores[3]  # a wrong offer costs 0.3 today


def test_pretrain_refuses_agents_it_cannot_warm_start(toy_logs):
    with pytest.raises(TypeError, match="does not know how to warm-start"):
        offline.pretrain(agents.make("random", *_spaces()), toy_logs)


def test_pretrain_reports_its_progress_while_it_learns_q(toy_logs):
    agent = agents.make("actor_critic", *_spaces(), seed=0, gamma=0.9)
    seen = []
    offline.pretrain(agent, toy_logs, epochs=1, q_gradient_steps=200, seed=0,
                     progress=seen.append)
    assert len(seen) > 50 and seen == sorted(seen)
    assert 0 < seen[len(seen) // 2] < 1 and seen[-1] == 1.0


def test_every_algorithm_declares_a_warm_start_pretrain_knows():
    """The declaration, not the attributes, decides: each registered algorithm's is known."""
    declared = {name: agents.make(name, *_spaces()).warm_start for name in agents.AGENT_NAMES
                if name != "rule_based"}
    assert set(declared.values()) - {None} == set(offline.WARM_STARTS)
    assert declared["actor_critic"] == "actor_critic" and declared["dqn"] == "q_network"
    assert declared["supervised"] == "response_model" and declared["linucb"] == "linear_bandit"
    assert declared["random"] is None and declared["q_learning"] is None
    from agents.algos.baselines import RuleBasedPolicy
    assert RuleBasedPolicy.warm_start is None  # the console's feature space only: not made here


def test_pretrain_refuses_an_agent_that_declares_no_warm_start_even_with_the_hooks(toy_logs):
    agent = agents.make("actor_critic", *_spaces())
    agent.warm_start = None  # the networks are there, but the agent does not declare the ability
    with pytest.raises(TypeError, match="does not know how to warm-start ActorCritic"):
        offline.pretrain(agent, toy_logs)


# ------------------------------------------------------------------ distilling a policy
def _always_the_last_allowed(masks: np.ndarray) -> np.ndarray:
    target = np.zeros(masks.shape)
    last = masks.shape[1] - 1 - np.argmax(masks[:, ::-1], axis=1)
    target[np.arange(len(masks)), last] = 1.0
    return target


def test_distil_policy_makes_the_agent_choose_as_the_targets_say(toy_logs):
    agent = agents.make("actor_critic", *_spaces(), seed=0)
    masks = toy_logs.allowed()
    target = _always_the_last_allowed(masks)

    loss = offline.distil_policy(agent, toy_logs.obs, masks, target, epochs=3)

    assert (agent.act(toy_logs.obs, masks) == target.argmax(axis=1)).mean() > 0.95
    assert np.isfinite(loss)


def test_distil_policy_leaves_the_value_network_alone(toy_logs):
    agent = agents.make("actor_critic", *_spaces(), seed=0)
    before = [p.detach().clone() for p in agent.value.parameters()]
    masks = toy_logs.allowed()

    offline.distil_policy(agent, toy_logs.obs, masks, _always_the_last_allowed(masks), epochs=1)

    assert all((b == p).all() for b, p in zip(before, agent.value.parameters()))


def test_distil_policy_refuses_targets_of_another_length(toy_logs):
    agent = agents.make("actor_critic", *_spaces(), seed=0)
    masks = toy_logs.allowed()
    with pytest.raises(ValueError, match="same number"):
        offline.distil_policy(agent, toy_logs.obs, masks, _always_the_last_allowed(masks)[:-1])


def test_distil_policy_refuses_an_agent_without_a_policy_network(toy_logs):
    agent = agents.make("dqn", *_spaces(), seed=0)
    masks = toy_logs.allowed()
    with pytest.raises(TypeError, match="actor_critic"):
        offline.distil_policy(agent, toy_logs.obs, masks, _always_the_last_allowed(masks))
