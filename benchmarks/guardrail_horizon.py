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
   guardrail), 3 and 7 days, and the guardrail's rule applied (DR lower bound > 0, SNIPS > 0,
   effective sample >= the settings' floor).

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

from agents import population  # noqa: E402
from agents.envs import PLANNING_DISCOUNT  # noqa: E402
from agents.evaluate import evaluate, uplift  # noqa: E402
from benchmarks.learn_from_logs import (  # noqa: E402
    HELD_OUT_DAYS,
    SIZES,
    guardrail_on_rows,
    logged_world,
    train_population,
)

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
    args.population, args.customers = 4, 1024  # as learn_from_logs.py trains
    torch.set_num_threads(1)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # a benchmark, not a deployment: no secrets
    import django

    django.setup()
    from django.conf import settings

    started = time.perf_counter()
    days, customers = SIZES[args.size]
    setting = logged_world(args.scenario, args.seed, args.size)
    world, rules, logged = setting.world, setting.rules, setting.logged
    selection = population.SELECTION_CUSTOMERS
    trained = train_population(
        (world.single_observation_space, world.single_action_space), args.seed, args,
        train_env=lambda s: setting.fitted_env(s, args.customers),
        held_out_env=setting.fitted_env(population.selection_seed(args.seed), selection, 0.0),
        consensus_env=setting.fitted_env(args.seed + population.CONSENSUS_SEED_OFFSET, selection,
                                         0.0),
        gamma=PLANNING_DISCOUNT, action_attributes=world.catalogue.attributes)
    candidates = {f"member {i}{' (kept)' if i == trained.chosen else ''}": m
                  for i, m in enumerate(trained.members)}
    candidates["consensus"] = trained.kept

    eval_seed = 5_000 + args.seed
    rules_report = evaluate(rules, args.scenario, customers=args.eval_customers, seed=eval_seed)
    truth = {name: uplift(evaluate(c, args.scenario, customers=args.eval_customers,
                                   seed=eval_seed), rules_report, "mean_return")
             for name, c in candidates.items()}

    day = logged.extras["day"]
    held_out_days = HELD_OUT_DAYS[args.size]
    print(f"\n{args.size} ({days} d x {customers:,}), {args.scenario} {args.seed}; the rule: "
          f"lower bound > {settings.GUARDRAIL_MARGIN}, SNIPS > {settings.GUARDRAIL_MARGIN}, "
          f"effective sample >= "
          f"{settings.GUARDRAIL_MIN_EFFECTIVE_SAMPLE}\n")
    print("| candidate | truth: reward vs rules [95 % CI] | changes the rules' action on | "
          + " | ".join(f"{k}-day label (discount {g:g}): DR difference [95 % CI], SNIPS, "
                       "verdict"
                       for k, g in LABELS) + " |")
    print("|---|---|---|" + "---|" * len(LABELS))
    by_label = []
    for label_days, discount in LABELS:
        label = reward_over_days(logged.rewards, logged.customer_ids, day, label_days, discount)
        last = day.max() - (label_days - 1)  # the label's later days are all in the log
        by_label.append(guardrail_on_rows(candidates, rules, logged,
                                          (day > last - held_out_days) & (day <= last), label))
    for name in candidates:
        t = truth[name]
        cells = [f"{j['dr']['value']:+.2f} [{j['dr']['lower']:+.2f}, {j['dr']['upper']:+.2f}], "
                 f"SNIPS {j['snips']['value']:+.2f}, {'**passed**' if j['passed'] else 'refused'}"
                 for j in (judged[name] for judged in by_label)]
        print(f"| {name} | {t.value:+.1%} [{t.ci_low:+.1%}, {t.ci_high:+.1%}] | "
              f"{by_label[0][name]['changed_share']:.0%} | " + " | ".join(cells) + " |")
    print(f"\nwall {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
