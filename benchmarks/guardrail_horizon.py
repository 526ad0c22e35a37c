"""Would a decision's later days make the paired guardrail see what a policy does over weeks?

The console's guardrail (`training.agents_training.paired_differences`, verdict by
`decisioning.promotion.guardrail_verdict`) prices each logged decision by what it earned until the
next decision: one day. A policy that contacts more earns today and loses customers later, which
that label does not see (issue 17: the guardrail once passed a policy that was 7.3 % worse than
the rules in truth). This measures the obvious repair, labelling each decision with the customer's
reward over the next k days (discounted), on policies whose true effect is known:

1. a world the product does not see (`CustomerJourneyEnv`, seeds 101-103 as in
   `learn_from_logs.py`) logs history under the rules with 10 % exploration;
2. the product fits its `ResponseModel` and trains a population of 4 actor_critic members in it,
   as `learn_from_logs.py` does, plus the members' consensus (`agents.population.keep_consensus`):
   five candidates, most of which lose to the rules on small logs;
3. each candidate runs in the true world against the rules (paired, common random numbers): the
   truth;
4. the paired DR difference candidate - rules is computed on the logged decisions of the last
   `HELD_OUT_DAYS` days whose k following days were logged, with labels of k = 1 (today's
   guardrail), 3 and 7 days, and the guardrail's rule applied (lower bound > 0, effective sample
   >= the settings' floor).

    .venv/bin/python benchmarks/guardrail_horizon.py --size small --scenario churn_rescue --seed 101
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents import population  # noqa: E402
from agents.envs import PLANNING_DISCOUNT, CustomerJourneyEnv, FittedJourneyEnv  # noqa: E402
from agents.evaluate import evaluate, uplift  # noqa: E402
from agents.offline import collect, explore  # noqa: E402
from agents.response_model import (  # noqa: E402
    RESPONSE_INFO_KEYS,
    ResponseLog,
    ResponseModel,
    split_by_days,
)
from benchmarks.learn_from_logs import HELD_OUT_DAYS, SIZES  # noqa: E402

LABELS = ((1, 1.0), (3, PLANNING_DISCOUNT), (7, PLANNING_DISCOUNT))
"""(days, daily discount) of each decision's label; (1, 1.0) is the console's guardrail."""


def reward_over_days(rewards: np.ndarray, customer_ids: np.ndarray, day: np.ndarray, days: int,
                     discount: float) -> np.ndarray:
    """Each decision's reward plus the same customer's next `days - 1` daily rewards, discounted
    (the log holds one decision per customer-day)."""
    order = np.lexsort((day, customer_ids))
    ids, ordered = customer_ids[order], rewards[order]
    total = ordered.copy()
    for ahead in range(1, days):
        same = np.zeros(ordered.size, dtype=bool)
        same[:-ahead] = ids[ahead:] == ids[:-ahead]
        later = np.zeros_like(ordered)
        later[:-ahead] = ordered[ahead:]
        total += discount ** ahead * np.where(same, later, 0.0)
    out = np.empty_like(total)
    out[order] = total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--scenario", default="churn_rescue")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--eval-customers", type=int, default=5000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # a benchmark, not a deployment: no secrets
    import django

    django.setup()
    from django.conf import settings

    from crm_console.decisioning.logged_data import LoggedArrays
    from crm_console.decisioning.promotion import guardrail_verdict
    from crm_console.training import agents_training as bridge

    started = time.perf_counter()
    days, customers = SIZES[args.size]
    held_out_days = HELD_OUT_DAYS[args.size]
    world = CustomerJourneyEnv(args.scenario, num_customers=customers, horizon_days=10_000,
                               seed=args.seed)
    spaces = (world.single_observation_space, world.single_action_space)
    rules = agents.make("rule_based", *spaces, seed=args.seed, catalogue=world.catalogue)
    logged = collect(world, explore(rules, 0.1), days * customers, seed=args.seed,
                     info_keys=RESPONSE_INFO_KEYS)
    train, _ = split_by_days(ResponseLog.from_logged(logged), held_out_days)
    model = ResponseModel.fit(train, world.catalogue, seed=args.seed)

    def in_fitted_model(env_seed: int, n: int, penalty: float = 1.0) -> FittedJourneyEnv:
        return FittedJourneyEnv(model, world.profile, num_customers=n,
                                horizon_days=world.scenario.horizon_days, seed=env_seed,
                                uncertainty_penalty=penalty)

    members, values = [], []
    for member_seed in population.member_seeds(args.seed, 4):
        member = agents.make("actor_critic", *spaces, seed=member_seed, gamma=PLANNING_DISCOUNT,
                             action_attributes=world.catalogue.attributes)
        member.fit(in_fitted_model(member_seed, 1024), total_steps=args.steps)
        members.append(member)
        values.append(population.held_out_value(
            member, seed=args.seed, env=in_fitted_model(population.selection_seed(args.seed),
                                                        population.SELECTION_CUSTOMERS, 0.0)))
    chosen = population.choose_member(values)
    candidates = {f"member {i}{' (kept)' if i == chosen else ''}": m
                  for i, m in enumerate(members)}
    candidates["consensus"], _ = population.keep_consensus(
        members, start=chosen, steps=population.SELECTION_CUSTOMERS * 60, seed=args.seed,
        env=in_fitted_model(args.seed + population.CONSENSUS_SEED_OFFSET,
                            population.SELECTION_CUSTOMERS, 0.0))

    eval_seed = 5_000 + args.seed
    rules_report = evaluate(rules, args.scenario, customers=args.eval_customers, seed=eval_seed)
    truth = {name: uplift(evaluate(c, args.scenario, customers=args.eval_customers,
                                   seed=eval_seed), rules_report, "mean_return")
             for name, c in candidates.items()}

    day = logged.extras["day"]
    print(f"\n{args.size} ({days} d x {customers:,}), {args.scenario} {args.seed}; the rule: "
          f"lower bound > {settings.GUARDRAIL_MARGIN}, effective sample >= "
          f"{settings.GUARDRAIL_MIN_EFFECTIVE_SAMPLE}\n")
    print("| candidate | truth: reward vs rules [95 % CI] | changes the rules' action on | "
          + " | ".join(f"{k}-day label (discount {g:g}): DR difference [95 % CI], verdict"
                       for k, g in LABELS) + " |")
    print("|---|---|---|" + "---|" * len(LABELS))
    cells: dict[str, list[str]] = {name: [] for name in candidates}
    changed: dict[str, float] = {}
    for label_days, discount in LABELS:
        label = reward_over_days(logged.rewards, logged.customer_ids, day, label_days, discount)
        last = day.max() - (label_days - 1)  # the label's later days are all in the log
        rows_mask = (day > last - held_out_days) & (day <= last)
        rows = logged.subset(rows_mask)
        n = len(rows.actions)
        arrays = LoggedArrays(
            obs=rows.obs, actions=rows.actions, propensities=rows.propensities,
            rewards=label[rows_mask], masks=rows.masks, logging_probs=rows.logging_probs,
            holdout=np.zeros(n, dtype=bool), customer_ids=rows.customer_ids,
            decision_ids=np.arange(n), churned=rows.terminated.astype(bool),
            policy_version_ids=np.zeros(n, dtype=np.int64))
        reward_model = bridge.reward_model_for(arrays)
        baseline = bridge.target_probabilities(rules, arrays)
        for name, candidate in candidates.items():
            target = bridge.target_probabilities(candidate, arrays)
            if label_days == 1:
                changed[name] = float((target.argmax(1) != baseline.argmax(1)).mean())
            paired = bridge.paired_differences(arrays=arrays, target_probs=target,
                                               baseline_probs=baseline,
                                               reward_model=reward_model)
            verdict = guardrail_verdict(paired=paired, baseline="live", rows=n)
            dr = paired["dr"]
            cells[name].append(f"{dr['value']:+.2f} [{dr['lower']:+.2f}, {dr['upper']:+.2f}], "
                               f"{'**passed**' if verdict.passed else 'refused'}")
    for name in candidates:
        t = truth[name]
        print(f"| {name} | {t.value:+.1%} [{t.ci_low:+.1%}, {t.ci_high:+.1%}] | "
              f"{changed[name]:.0%} | " + " | ".join(cells[name]) + " |")
    print(f"\nwall {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
