"""How accurate is off-policy evaluation on the simulator? Relative error per estimator over seeds.

For each logging policy (uniform random over the allowed actions; the rule-based playbook with
epsilon exploration) and each seed, we log `--steps` customer-days on the `retail` scenario and
estimate the value of several target policies with DM, IPS, SNIPS, DR and SNDR
(`agents.ope.estimate`, ridge reward model with 2-fold cross-fitting).

The estimand (what OPE can estimate without bias from logged decisions) is the target's expected
*per-decision immediate reward on the logged customer-days*:
    V(pi) = mean_i sum_a pi(a | x_i) E[r | x_i, a].
Its ground truth comes from the simulator: before every logged day we replay each of the A
actions on a copy of the simulator that shares the day's random draws (the env draws a fixed set
of uniforms per day whatever the policy: common random numbers), giving every logged row's reward
under every action, R[i, a]; the truth is mean_i sum_a pi(a | x_i) R[i, a]. Because the copies share
the day's random draws with the logged reward, this truth is the target's value on the same
customers *with the same luck*: the error we report is the estimator's off-policy error, not the
reward noise that an on-policy test of the same size would also carry (shown as "truth s.e.").
The "deployed" column is something else: the per-day reward when the target policy is actually run
(it changes fatigue, churn and the states customers reach), shown for context only - logged-data
OPE of immediate rewards does not estimate it.

    .venv/bin/python benchmarks/ope_accuracy.py            # 20 seeds x 100k customer-days per logger
    .venv/bin/python benchmarks/ope_accuracy.py --quick    # 3 seeds x 20k
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents import ope  # noqa: E402
from agents.common.masking import sample_from  # noqa: E402
from agents.envs import CustomerJourneyEnv  # noqa: E402
from agents.rewards import Outcomes, RewardWeights, reward  # noqa: E402
from agents.offline import explore, policy_probabilities, uniform_policy  # noqa: E402

ESTIMATORS = ("dm", "ips", "snips", "dr", "sndr")
REWARDS = {
    # the simulator's default: net revenue of every order landing today (organic ones included),
    # minus contact cost, unsubscribe and churn penalties
    "net": RewardWeights(),
}


def no_contact(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    probs = np.zeros(mask.shape)
    probs[:, 0] = 1.0
    return probs


def train_targets(customers: int, train_steps: int, seed: int) -> dict:
    """Target policies: fixed rules and two learners trained on their own simulated campaigns."""
    env = CustomerJourneyEnv("retail", num_customers=customers, seed=10_000 + seed)
    spaces = (env.single_observation_space, env.single_action_space)
    rules = agents.make("rule_based", *spaces, seed=seed)
    supervised = agents.make("supervised", *spaces, seed=seed)
    supervised.fit(env, total_steps=train_steps)
    bandit = agents.make("softmax", *spaces, seed=seed, temperature=2.0)
    bandit.fit(CustomerJourneyEnv("retail", num_customers=customers, seed=20_000 + seed),
               total_steps=train_steps)
    return {
        "no contact": no_contact,
        "rule_based": rules,
        "rule_based + 30 % random": explore(rules, 0.3),
        "supervised (greedy)": supervised,
        "softmax bandit (T=2)": bandit,
    }


def loggers(spaces: tuple, seed: int, epsilon: float) -> dict:
    rules = agents.make("rule_based", *spaces, seed=seed)
    return {"uniform random": uniform_policy,
            f"rule_based + {epsilon:.0%} exploration": explore(rules, epsilon)}


def _rewards_from_info(info: dict, weights: RewardWeights) -> np.ndarray:
    return reward(Outcomes(
        opens=info["opens"], clicks=info["clicks"], conversions=info["conversions"],
        net_revenue=info["net_revenue"], unsubscribes=info["unsubscribes"],
        churns=info["churned"], contact_cost=info["contact_cost"]), weights)


def log_with_counterfactuals(logger, steps: int, customers: int, seed: int,
                             reward_names: list[str]) -> dict:
    """Log `steps` customer-days under `logger`, with every action's reward on each logged row.

    The dynamics do not depend on the reward weights, so one run gives the logged rewards and the
    counterfactual tables of every reward definition in `reward_names`.
    """
    env = CustomerJourneyEnv("retail", num_customers=customers, seed=seed)
    # immutable configuration is shared by the copies (ContactRules holds a mappingproxy)
    keep = {id(v): v for v in (env.contact_rules, env.scenario, env.catalogue, env.reward_weights)}
    obs, info = env.reset(seed=seed)
    mask = info["action_mask"]
    rng = np.random.default_rng(seed + 1)
    pending = np.zeros(customers, dtype=bool)
    n_actions = env.single_action_space.n
    parts: dict[str, list] = {k: [] for k in ("obs", "mask", "actions", "propensities")}
    for name in reward_names:
        parts[f"rewards:{name}"], parts[f"table:{name}"] = [], []
    rows = 0
    while rows < steps:
        probs = policy_probabilities(logger, obs, mask)
        actions = sample_from(probs, rng)
        # every action's reward today, on copies that share today's random draws
        tables = {name: np.empty((customers, n_actions)) for name in reward_names}
        for a in range(n_actions):
            twin = copy.deepcopy(env, memo=dict(keep))
            twin_info = twin.step(np.full(customers, a))[4]
            for name in reward_names:
                tables[name][:, a] = _rewards_from_info(twin_info, REWARDS[name])
        next_obs, _, terminated, truncated, info = env.step(actions)
        valid = ~pending  # under next-step autoreset the slot after an ended journey only resets
        for key, value in (("obs", obs), ("mask", mask), ("actions", actions),
                           ("propensities", probs[np.arange(customers), actions])):
            parts[key].append(value[valid])
        for name in reward_names:
            rewards = _rewards_from_info(info, REWARDS[name])
            assert np.allclose(rewards[valid], tables[name][valid, actions[valid]]), "copies diverged"
            parts[f"rewards:{name}"].append(rewards[valid])
            parts[f"table:{name}"].append(tables[name][valid])
        rows += int(valid.sum())
        pending = terminated | truncated
        obs, mask = next_obs, info["action_mask"]
    return {k: np.concatenate(v)[:steps] for k, v in parts.items()}


def deployed_value(policy, customers: int, days: int, seed: int, weights: RewardWeights) -> float:
    """Mean per-customer-day reward when `policy` is actually run (sampled from its probabilities)."""
    env = CustomerJourneyEnv("retail", num_customers=customers, seed=seed, reward_weights=weights)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    pending = np.zeros(customers, dtype=bool)
    total, count = 0.0, 0
    for _ in range(days):
        actions = sample_from(policy_probabilities(policy, obs, info["action_mask"]), rng)
        obs, rewards, terminated, truncated, info = env.step(actions)
        total += float(rewards[~pending].sum())
        count += int((~pending).sum())
        pending = terminated | truncated
    return total / count


_TARGETS: dict = {}
_LOGGERS: dict = {}


def one_seed(job: tuple) -> dict:
    """Errors of every estimator for every (reward, target) on one seed's logs (a worker's job)."""
    logger_name, seed, args = job
    torch.set_num_threads(1)
    logs = log_with_counterfactuals(_LOGGERS[logger_name], args.steps, args.customers,
                                    1000 + seed, args.reward_names)
    out: dict = {}
    for reward_name in args.reward_names:
        rewards, table = logs[f"rewards:{reward_name}"], logs[f"table:{reward_name}"]
        model = ope.fit_reward_model(logs["obs"], logs["actions"], rewards, table.shape[1],
                                     kind=args.reward_model, folds=2, seed=seed)
        for name, target in _TARGETS.items():
            target_probs = policy_probabilities(target, logs["obs"], logs["mask"])
            per_row = (target_probs * table).sum(axis=1)
            truth = float(per_row.mean())
            cell = {"truth": truth, "truth_se": float(per_row.std(ddof=1) / np.sqrt(per_row.size))}
            for method in ESTIMATORS:
                result = ope.estimate(rewards, logs["actions"], logs["propensities"], target_probs,
                                      method=method, reward_model=model)
                # relative error is undefined where the truth is exactly 0 (e.g. no contact under
                # the engagement reward): the absolute error is reported there instead
                cell[method] = abs(result.value - truth) / abs(truth) if truth != 0 else np.nan
                cell[f"{method}_abs"] = abs(result.value - truth)
                cell[f"{method}_covered"] = float(result.lower <= truth <= result.upper)
                cell["ess"] = result.ess_share
            out[(reward_name, name)] = cell
    return {"logger": logger_name, "seed": seed, "cells": out}


def report(args: argparse.Namespace, results: list[dict], deployed: dict) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for reward_name in args.reward_names:
        for logger_name in _LOGGERS:
            runs = [r["cells"] for r in results if r["logger"] == logger_name]
            print(f"### Reward `{reward_name}`, logging policy: {logger_name}\n")
            print("| target policy | truth | truth s.e. | deployed | ESS % | "
                  + " | ".join(m.upper() for m in ESTIMATORS) + " |")
            print("|" + "---|" * (5 + len(ESTIMATORS)))
            means: dict[str, list[float]] = {m: [] for m in ESTIMATORS}
            for name in _TARGETS:
                cells = [run[(reward_name, name)] for run in runs]
                def avg(key: str) -> float:
                    return float(np.mean([c[key] for c in cells]))
                def error(m: str) -> str:
                    if np.isnan(avg(m)):
                        return f"abs {avg(m + '_abs'):.4f}"
                    return f"{avg(m):.1%}"
                for m in ESTIMATORS:
                    means[m].append(avg(m))
                print(f"| {name} | {avg('truth'):.3f} | {avg('truth_se'):.3f} | "
                      f"{deployed[(reward_name, name)]:.3f} | {100 * avg('ess'):.1f} | "
                      + " | ".join(f"{error(m)} ({int(sum(c[m + '_covered'] for c in cells))}"
                                   f"/{len(cells)})" for m in ESTIMATORS) + " |")
            overall = {m: float(np.nanmean(v)) for m, v in means.items()}
            summary[f"reward `{reward_name}`, logger {logger_name}"] = overall
            print("| **mean over targets** | | | | | "
                  + " | ".join(f"**{overall[m]:.1%}**" for m in ESTIMATORS) + " |\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds x 20k customer-days")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100_000, help="logged customer-days per seed")
    parser.add_argument("--customers", type=int, default=1000, help="customers simulated in parallel")
    parser.add_argument("--epsilon", type=float, default=0.2, help="exploration of the rule-based logger")
    parser.add_argument("--train-steps", type=int, default=60_000, help="training of the learned targets")
    parser.add_argument("--reward-model", default="ridge", choices=("ridge", "mlp"))
    parser.add_argument("--workers", type=int, default=2, help="processes (one seed each)")
    parser.add_argument("--rewards", default="net",
                        help=f"comma-separated reward definitions among {', '.join(REWARDS)}")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.train_steps = 3, 20_000, 20_000
    reward_names = [r.strip() for r in args.rewards.split(",") if r.strip()]
    unknown = set(reward_names) - set(REWARDS)
    if unknown:
        parser.error(f"unknown reward definition(s) {sorted(unknown)}")
    args.reward_names = reward_names
    torch.set_num_threads(1)
    started = time.perf_counter()

    _TARGETS.update(train_targets(args.customers, args.train_steps, seed=0))
    probe = CustomerJourneyEnv("retail", num_customers=2)
    spaces = (probe.single_observation_space, probe.single_action_space)
    _LOGGERS.update(loggers(spaces, seed=0, epsilon=args.epsilon))
    days = max(1, args.steps // args.customers)
    deployed = {(r, name): deployed_value(t, args.customers, days, 99, REWARDS[r])
                for r in reward_names for name, t in _TARGETS.items()}

    jobs = [(logger_name, seed, args) for logger_name in _LOGGERS for seed in range(args.seeds)]
    results = []
    # fork: the workers inherit the trained targets; one torch thread each
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for result in pool.imap_unordered(one_seed, jobs):
            results.append(result)
            print(f"  {result['logger']} seed {result['seed']} done "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    print(f"## OPE accuracy on `retail`: {args.seeds} seeds x {args.steps:,} logged customer-days "
          f"per logging policy, reward model {args.reward_model} (2-fold cross-fitted)\n")
    print("Estimand: the target's per-decision immediate reward on the logged customer-days. "
          "truth = mean_i sum_a pi(a|x_i) R[i,a], every action replayed on simulator copies that "
          "share the day's random draws; 'truth s.e.' = the spread an on-policy test of the same "
          "size would have; 'deployed' = per-day reward when the target really runs (other states; "
          "context only). Cells: mean |estimate - truth| / |truth| over seeds (seeds whose 95 % "
          "interval covered the truth). ESS % = Kish effective sample size of the weights / n.\n")
    summary = report(args, results, deployed)

    print("### Targets (mean relative error over the target policies and seeds)\n")
    for key, overall in summary.items():
        dr_ok = "met" if overall["dr"] <= 0.05 else "MISSED"
        snips_ok = "met" if overall["snips"] <= 0.10 else "MISSED"
        print(f"- {key}: DR {overall['dr']:.1%} (<= 5 %: {dr_ok}); "
              f"SNIPS {overall['snips']:.1%} (<= 10 %: {snips_ok})")
    print(f"\nwall time {time.perf_counter() - started:.0f} s (2 shared CPU cores; torch 1 thread)")


if __name__ == "__main__":
    main()
