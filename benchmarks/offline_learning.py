"""Learning from logged history: offline actor_critic vs online, and warm-started online training.

1. Log `--log-steps` customer-days (default 200k) of a uniformly random logging policy on `retail`
   (`agents.offline.collect`, propensities recorded).
2. Offline: `agents.offline.pretrain(actor_critic, logs)` - conservative double fitted-Q on the
   logs, then the advantage-weighted policy distilled into the actor_critic's networks. No
   customer is contacted by the learner.
3. Online from scratch: `actor_critic` trained for `--online-steps` customer-days on the simulator.
   Its final net revenue per customer is the online target.
4. Warm start: a pretrained `actor_critic` trained online with the same budget; we report after
   how many online customer-days it first reaches the online target (and 95 % of it).

Every policy is evaluated by `agents.evaluate.evaluate` on the same held-out cohort (common random
numbers; greedy actions) at checkpoints during training, so the curves are comparable.

    .venv/bin/python benchmarks/offline_learning.py            # 200k logs, 2M online steps
    .venv/bin/python benchmarks/offline_learning.py --quick    # 50k logs, 200k online steps
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents.envs import CustomerJourneyEnv, get_scenario  # noqa: E402
from agents.evaluate import evaluate, uplift  # noqa: E402
from agents.offline import OfflineQLearner, collect, pretrain, uniform_policy  # noqa: E402

KPI = "net_revenue_per_customer"
"""The benchmark's yardstick; the agents' objective (mean return) is shown beside it."""


def evaluated(policy, args: argparse.Namespace) -> tuple[float, float]:
    """(net revenue per customer, mean return per customer) on the held-out cohort."""
    report = evaluate(policy, "retail", customers=args.eval_customers, seed=args.eval_seed)
    return float(report[KPI].value), float(report["mean_return"].value)


def online_curve(agent, args: argparse.Namespace, label: str,
                 started: float) -> list[tuple[int, tuple[float, float]]]:
    """Train `agent` online for --online-steps, evaluating it at every checkpoint."""
    curve = [(0, evaluated(agent, args))]
    next_checkpoint = [args.checkpoint]

    def checkpoint(progress) -> None:
        if progress.env_steps >= next_checkpoint[0]:
            curve.append((progress.env_steps, evaluated(agent, args)))
            print(f"  [{label}] {progress.env_steps:,} steps: {curve[-1][1]} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            while next_checkpoint[0] <= progress.env_steps:
                next_checkpoint[0] += args.checkpoint

    env = CustomerJourneyEnv("retail", num_customers=args.customers, seed=args.seed + 1)
    agent.fit(env, total_steps=args.online_steps, callback=checkpoint)
    return curve


def first_reaching(curve: list[tuple[int, tuple[float, float]]], level: float) -> int | None:
    return next((steps for steps, (value, _) in curve if value >= level), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50k logs, 200k online steps")
    parser.add_argument("--log-steps", type=int, default=200_000, help="logged customer-days")
    parser.add_argument("--online-steps", type=int, default=2_000_000, help="online budget per run")
    parser.add_argument("--checkpoint", type=int, default=200_000, help="evaluate every this many steps")
    parser.add_argument("--q-steps", type=int, default=10_000, help="offline Q-learning gradient steps")
    parser.add_argument("--temperature", type=float, default=0.05,
                        help="policy temperature (units of the logged rewards' std)")
    parser.add_argument("--finetune-lr", type=float, default=None,
                        help="actor_critic learning rate of the warm-started online run "
                             "(default: the same as from scratch)")
    parser.add_argument("--q-hidden", default="64,64", help="hidden widths of the offline Q-network")
    parser.add_argument("--cql-alpha", type=float, default=0.1, help="conservative penalty weight")
    parser.add_argument("--customers", type=int, default=1024, help="customers simulated in parallel")
    parser.add_argument("--eval-customers", type=int, default=5000)
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.log_steps, args.online_steps, args.checkpoint = 50_000, 200_000, 50_000
        args.q_steps, args.eval_customers = 5_000, 1000
    torch.set_num_threads(1)
    started = time.perf_counter()

    env = CustomerJourneyEnv("retail", num_customers=args.customers, seed=args.seed)
    spaces = (env.single_observation_space, env.single_action_space)

    # 1. the logs: a uniformly random campaign over the allowed actions
    logs = collect(env, uniform_policy, args.log_steps, seed=args.seed)
    print(f"  logged {len(logs):,} customer-days ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    # 2. offline: learn Q from the logs, distil it into a fresh actor_critic
    offline_agent = agents.make("actor_critic", *spaces, seed=args.seed)
    learner = OfflineQLearner(*spaces, seed=args.seed, gamma=offline_agent.config.gamma,
                              gradient_steps=args.q_steps, cql_alpha=args.cql_alpha,
                              hidden_sizes=tuple(int(h) for h in args.q_hidden.split(",")))
    q_stats = learner.fit_offline(logs)
    report = pretrain(offline_agent, logs, q_learner=learner, temperature=args.temperature)
    print(f"  offline done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    rules = agents.make("rule_based", *spaces, seed=args.seed)
    values = {
        "no contact": evaluated("no_contact", args),
        "uniform random (the logging policy)": evaluated("random", args),
        "rule_based": evaluated(rules, args),
        "offline Q greedy (OfflineQLearner)": evaluated(learner, args),
        "offline actor_critic (pretrain only)": evaluated(offline_agent, args),
    }

    # 3. online from scratch, and 4. online from the warm start, same budget and checkpoints
    scratch = agents.make("actor_critic", *spaces, seed=args.seed)
    scratch_curve = online_curve(scratch, args, "scratch", started)
    finetune = {} if args.finetune_lr is None else {"learning_rate": args.finetune_lr}
    warm = agents.make("actor_critic", *spaces, seed=args.seed, **finetune)
    pretrain(warm, logs, q_learner=learner, temperature=args.temperature)
    warm_curve = online_curve(warm, args, "warm start", started)

    target = scratch_curve[-1][1][0]
    values[f"online actor_critic ({args.online_steps:,} steps)"] = scratch_curve[-1][1]
    values[f"warm-started actor_critic (+{args.online_steps:,} online steps)"] = warm_curve[-1][1]

    print(f"## Learning from logged history on `retail` (seed {args.seed})\n")
    print(f"Logs: {len(logs):,} customer-days of a uniform random policy over allowed actions. "
          f"Offline Q: {args.q_steps:,} gradient steps ({q_stats['seconds']:.0f} s), distillation "
          f"agreement {report.agreement:.1%}. Evaluation: net revenue per customer over "
          f"{get_scenario('retail').horizon_days} days on one held-out cohort of "
          f"{args.eval_customers:,} customers (seed {args.eval_seed}, greedy actions).\n")
    target_return = scratch_curve[-1][1][1]
    print("| policy | net revenue / customer | % of online actor_critic | mean return / customer "
          "(the reward the agents maximise) |")
    print("|---|---|---|---|")
    for name, (value, ret) in values.items():
        print(f"| {name} | {value:.2f} | {100 * value / target:.1f} % | {ret:.2f} |")
    ratio = values["offline actor_critic (pretrain only)"][0] / target
    print(f"\nOffline-learned policy = {ratio:.1%} of the online actor_critic "
          f"(target >= 80 %: {'met' if ratio >= 0.8 else 'MISSED'}).\n")

    print("| online customer-days | from scratch: net revenue (return) | warm start: net revenue (return) |")
    print("|---|---|---|")
    for (steps, a), (_, b) in zip(scratch_curve, warm_curve):
        print(f"| {steps:,} | {a[0]:.2f} ({a[1]:.2f}) | {b[0]:.2f} ({b[1]:.2f}) |")
    for share in (1.0, 0.95):
        level = share * target
        s, w = first_reaching(scratch_curve, level), first_reaching(warm_curve, level)
        fmt = lambda x: "never" if x is None else f"{x:,}"  # noqa: E731
        print(f"\nSteps to reach {share:.0%} of the online target ({level:.2f}): scratch {fmt(s)}, "
              f"warm start {fmt(w)}", end="")
    print(f"\n(online target on the agents' own objective: mean return {target_return:.2f})", end="")
    # paired comparisons on the same cohort (common random numbers): delta-method 95 % intervals
    final = {name: evaluate(agent, "retail", customers=args.eval_customers, seed=args.eval_seed)
             for name, agent in (("offline", offline_agent), ("scratch", scratch), ("warm", warm))}
    print("\n\n| paired comparison (same customers, same draws) | net revenue uplift [95 % CI] "
          "| mean return uplift [95 % CI] |")
    print("|---|---|---|")
    for label, a, b in (("offline actor_critic vs online actor_critic", "offline", "scratch"),
                        ("warm-started vs from scratch, same online budget", "warm", "scratch")):
        cells = []
        for kpi in (KPI, "mean_return"):
            u = uplift(final[a], final[b], kpi)
            cells.append(f"{u.value:+.1%} [{u.ci_low:+.1%}, {u.ci_high:+.1%}]")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\nwall time {time.perf_counter() - started:.0f} s (2 shared CPU cores; torch 1 thread)")


if __name__ == "__main__":
    main()
