"""A retention constraint in training (actor_critic's `max_leave_rate`), in the true world.

The reward prices a lost customer at the marketer's weight; the best policy by that price can
still keep fewer customers than the rules (BENCHMARKS.md, "Learning from the workspace's own
logs": retail's oracle itself does). With a campaign's retention guardrail the console trains
each member under a limit on customers lost per customer-day: the rules' own rate in the same
world (`agents.evaluate.leave_rate`) plus the guardrail spread over the horizon
(`agents.population.daily_leave_limit`).

For each scenario and seed, one actor_critic trains without the limit and one with it (same seed,
same budget, the catalogue's attributes, as the console makes it); both and the rules then run on
one fresh cohort (common random numbers), and the table gives return and retention against the
rules, paired customer by customer. Seeds 11-13 are used by no other benchmark.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/retention_constraint.py
    .venv/bin/python benchmarks/retention_constraint.py --scenarios retail --seeds 11 \
        --tolerance 0.01
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents import population  # noqa: E402
from agents.envs import CustomerJourneyEnv  # noqa: E402
from agents.evaluate import evaluate, leave_rate, paired_difference, uplift  # noqa: E402


def run_one(scenario: str, seed: int, constrained: bool, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    world = CustomerJourneyEnv(scenario, num_customers=8, seed=seed)
    spaces = (world.single_observation_space, world.single_action_space)
    rules = agents.make("rule_based", *spaces, seed=seed, catalogue=world.catalogue)
    limit = None
    if constrained:
        rate = leave_rate(rules, CustomerJourneyEnv(scenario, num_customers=args.customers,
                                                    seed=seed + 2), seed=seed)
        limit = population.daily_leave_limit(rate, args.tolerance, world.scenario.horizon_days)
    agent = agents.make("actor_critic", *spaces, seed=seed,
                        action_attributes=world.catalogue.attributes,
                        **({} if limit is None else {"max_leave_rate": limit,
                                                     "leave_price_step": args.price_step}))
    agent.fit(CustomerJourneyEnv(scenario, num_customers=args.customers, seed=seed + 1),
              total_steps=args.steps)
    eval_seed = 20_000 + seed
    rules_report = evaluate(rules, scenario, customers=args.eval_customers, seed=eval_seed)
    report = evaluate(agent, scenario, customers=args.eval_customers, seed=eval_seed)
    return {"scenario": scenario, "seed": seed, "limit": limit, "price": agent.leave_price,
            "return": report["mean_return"].value,
            "rules_return": rules_report["mean_return"].value,
            "return_uplift": uplift(report, rules_report, "mean_return"),
            "retention": report["retention"].value,
            "rules_retention": rules_report["retention"].value,
            "retention_gain": paired_difference(report, rules_report, "retention"),
            "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="retail,churn_rescue")
    parser.add_argument("--seeds", default="11,12,13")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=1024, help="training slots")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="the retention guardrail, a share (0.01: one point)")
    parser.add_argument("--price-step", type=float, default=0.05,
                        help="actor_critic's leave_price_step")
    parser.add_argument("--constrained-only", action="store_true",
                        help="skip the unconstrained policies (deterministic per machine)")
    parser.add_argument("--eval-customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    jobs = [(scenario, int(seed), constrained)
            for scenario in args.scenarios.split(",") for seed in args.seeds.split(",")
            for constrained in ((True,) if args.constrained_only else (False, True))]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_one, *zip(*jobs), [args] * len(jobs)))
    print(f"\n{args.steps:,} steps per policy, {args.eval_customers:,} fresh customers over the "
          f"horizon, retention guardrail {args.tolerance * 100:.1f} points, price step "
          f"{args.price_step:g}; wall "
          f"{time.perf_counter() - started:.0f} s\n")
    print("| scenario | seed | training | limit (lost per customer-day) | price at the end | "
          "return vs rules [95 % CI] | retention: policy / rules | retention vs rules, points "
          "[95 % CI] | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        u, g = r["return_uplift"], r["retention_gain"]
        limit = "-" if r["limit"] is None else f"{r['limit']:.5f}"
        print(f"| {r['scenario']} | {r['seed']} | "
              f"{'constrained' if r['limit'] is not None else 'unconstrained'} | {limit} | "
              f"{r['price']:.2f} | {u.value:+.1%} [{u.ci_low:+.1%}, {u.ci_high:+.1%}] | "
              f"{r['retention']:.3f} / {r['rules_retention']:.3f} | {g.value * 100:+.2f} "
              f"[{g.ci_low * 100:+.2f}, {g.ci_high * 100:+.2f}] | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
