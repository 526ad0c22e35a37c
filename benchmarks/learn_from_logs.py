"""Learning from the workspace's own logs (issue 17): a policy trained in a fitted response model,
judged in the world the product never sees.

For each scenario, seed and log size:
1. the true world (`CustomerJourneyEnv`) logs `days` x `customers` of history under the
   marketer's rules with 10 % exploration (`agents.offline.collect` with the response outcomes);
2. the product fits `ResponseModel` on all but the last days and validates it on them (the logged
   actions replayed through the model vs what happened);
3. it builds `FittedJourneyEnv` from the logged customers' final profiles and trains
   `actor_critic` there for `--steps` customer-days, planning with the console's discount in a
   fitted model (`agents.envs.PLANNING_DISCOUNT`), as a population of `--population` seeds
   with the catalogue's attributes, each member held to the rules' rate of losing customers in
   the fitted model (`max_leave_rate`; `--retention-tolerance` allows a loss, `--unconstrained`
   drops the limit), as the console trains it (`--consensus`: the members' consensus kept instead
   of the best member, `agents.population.keep_consensus`);
4. baselines: the rules, the `supervised` agent fitted on the same logs
   (`agents.offline.pretrain`), and an oracle `actor_critic` trained in the true world with the
   same step budget and population (at the scenario's own discount; its best member on
   held-out customers of the true world kept);
5. every policy runs in the true world on one fresh cohort (same seed: common random numbers);
   uplift vs the rules is paired customer by customer (`agents.evaluate.uplift`);
6. the console's promotion guardrail judges the learned policy against the rules on the held-out
   logged days (`training.agents_training.paired_differences`, the verdict by
   `decisioning.promotion.guardrail_verdict`, the settings' margin and effective-sample floor):
   where it refuses, a trial (`online_trial.trial_of`, the console's `trial_verdict`) lets the
   learned policy decide for `--trial-share` of the world's customers in the true world for
   `--trial-days` beside the rules: "deployed" is the learned policy where the guardrail or the
   trial passed it and the rules where neither did, which is what a marketer running the console
   would get.

"Share of the oracle's uplift" = (learned - rules) / (oracle - rules) on reward per customer (the
objective every agent maximises). Seeds 101-103 are used by no other benchmark.

    .venv/bin/python benchmarks/learn_from_logs.py                       # all sizes, scenarios, seeds
    .venv/bin/python benchmarks/learn_from_logs.py --sizes small --seeds 101
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents import population  # noqa: E402
from agents.envs import PLANNING_DISCOUNT, CustomerJourneyEnv, FittedJourneyEnv  # noqa: E402
from agents.evaluate import evaluate, leave_rate, uplift  # noqa: E402
from agents.offline import collect, explore, pretrain  # noqa: E402
from online_trial import trial_of  # noqa: E402
from agents.response_model import (  # noqa: E402
    RESPONSE_INFO_KEYS,
    ResponseLog,
    ResponseModel,
    split_by_days,
    validate,
)

SIZES = {"large": (90, 20_000), "small": (30, 2_000)}
"""Logged history: (days, customers)."""
HELD_OUT_DAYS = {"large": 7, "small": 5}
CONSENSUS_DAYS = 60
"""Days of the consensus cohort's customers a population's consensus is distilled on (as many as
the console's held-out cohort lives, `agents_training.EVALUATION_DAYS`)."""


def guardrail_on_rows(candidates: dict, rules, logged, rows_mask: np.ndarray,
                      rewards: np.ndarray | None = None) -> dict[str, dict]:
    """The console's paired guardrail, each candidate vs the rules as the live policy, on the
    logged rows of `rows_mask` (priced by `rewards` where given, else by the logged day's reward),
    with one reward model for all of them: {name: passed, explanation, dr, snips, changed_share}."""
    from crm_console.decisioning.logged_data import LoggedArrays
    from crm_console.decisioning.promotion import guardrail_verdict
    from crm_console.training import agents_training as bridge

    rows = logged.subset(rows_mask)
    n = len(rows.actions)
    arrays = LoggedArrays(
        obs=rows.obs, actions=rows.actions, propensities=rows.propensities,
        rewards=rows.rewards if rewards is None else rewards[rows_mask], masks=rows.masks,
        logging_probs=rows.logging_probs, holdout=np.zeros(n, dtype=bool),
        customer_ids=rows.customer_ids, decision_ids=np.arange(n),
        churned=rows.terminated.astype(bool), policy_version_ids=np.zeros(n, dtype=np.int64))
    reward_model = bridge.reward_model_for(arrays)
    baseline = bridge.target_probabilities(rules, arrays)
    judged = {}
    for name, candidate in candidates.items():
        paired = bridge.paired_differences(
            arrays=arrays, target_probs=bridge.target_probabilities(candidate, arrays),
            baseline_probs=baseline, reward_model=reward_model)
        verdict = guardrail_verdict(paired=paired, baseline="live", rows=n)
        judged[name] = {"passed": verdict.passed, "explanation": verdict.reason,
                        "dr": paired["dr"], "snips": paired["snips"],
                        "changed_share": paired["changed_share"]}
    return judged


def guardrail_on_held_out_days(candidate, rules, logged, held_out_days: int) -> dict:
    """The console's paired guardrail on the logged rows of the last `held_out_days` days (those
    the response model was not fitted on)."""
    day = logged.extras["day"]
    return guardrail_on_rows({"candidate": candidate}, rules, logged,
                             day > day.max() - held_out_days)["candidate"]


@dataclass
class LoggedWorld:
    """A true world, the history its rules logged, and the response model fitted on it."""

    world: CustomerJourneyEnv
    rules: Any
    logged: Any
    log: ResponseLog
    held_out: ResponseLog
    model: ResponseModel

    def fitted_env(self, env_seed: int, customers: int, penalty: float = 1.0) -> FittedJourneyEnv:
        return FittedJourneyEnv(self.model, self.world.profile, num_customers=customers,
                                horizon_days=self.world.scenario.horizon_days, seed=env_seed,
                                uncertainty_penalty=penalty)


def logged_world(scenario: str, seed: int, size: str, balance: float | None = None) -> LoggedWorld:
    """Steps 1-2: `SIZES[size]` of history under the rules with 10 % exploration, and the
    response model fitted on all but its last `HELD_OUT_DAYS[size]` days."""
    days, customers = SIZES[size]
    world = CustomerJourneyEnv(scenario, num_customers=customers, horizon_days=10_000, seed=seed)
    rules = agents.make("rule_based", world.single_observation_space, world.single_action_space,
                        seed=seed, catalogue=world.catalogue)
    logged = collect(world, explore(rules, 0.1), days * customers, seed=seed,
                     info_keys=RESPONSE_INFO_KEYS)
    log = ResponseLog.from_logged(logged)
    train, held_out = split_by_days(log, HELD_OUT_DAYS[size])
    model = ResponseModel.fit(train, world.catalogue, seed=seed,
                              **({} if balance is None else {"balance": balance}))
    return LoggedWorld(world, rules, logged, log, held_out, model)


@dataclass
class Population:
    kept: Any
    """The member kept (or, given a consensus cohort, the members' consensus)."""
    values: list[float]
    """Every member's held-out mean return."""
    retention: list[float]
    """Every member's held-out retention."""
    consensus: Any
    """`agents.population.Consensus`, or None."""
    members: list
    chosen: int
    """Index of the member the held-out customers chose."""


def train_population(spaces, seed: int, args: argparse.Namespace, *, train_env,
                     held_out_env=None, held_out_scenario=None, consensus_env=None,
                     control: population.MemberValue | None = None,
                     retention_tolerance: float | None = None, **hyperparams) -> Population:
    """actor_critic as the console trains it: `args.population` members (`agents.population`
    seeds), each in its own `train_env(member_seed)`, the one with the highest mean return on the
    held-out customers of the same world kept; given a `consensus_env` (a cohort of the fitted
    model, built only with `--consensus`), the members' consensus instead, started from that
    member (an alternative the console does not use, measured in BENCHMARKS.md). With a
    `retention_tolerance` and the `control`'s held-out value, the members are kept within the
    retention guardrail as the console keeps them (`population.choose_member`)."""
    members, values = [], []
    for member_seed in population.member_seeds(seed, args.population):
        agent = agents.make("actor_critic", *spaces, seed=member_seed, **hyperparams)
        agent.fit(train_env(member_seed), total_steps=args.steps)
        members.append(agent)
        values.append(population.held_out_value(agent, seed=seed, env=held_out_env,
                                                scenario=held_out_scenario or "retail"))
    chosen = population.choose_member(values, control=control,
                                      retention_tolerance=retention_tolerance)
    kept, consensus = members[chosen], None
    if consensus_env is not None and len(members) >= 2:
        kept, consensus = population.keep_consensus(members, start=chosen, env=consensus_env,
                                                    steps=consensus_env.num_envs * CONSENSUS_DAYS,
                                                    seed=seed)
    return Population(kept, [v.value for v in values], [v.retention for v in values], consensus,
                      members, chosen)


def run_one(scenario: str, seed: int, size: str, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    setting = logged_world(scenario, seed, size, args.balance)
    world, rules, logged, log, model = (setting.world, setting.rules, setting.logged, setting.log,
                                        setting.model)
    spaces = (world.single_observation_space, world.single_action_space)
    check = validate(model, setting.held_out)

    attributes = world.catalogue.attributes  # as the console makes every actor_critic
    selection_env = setting.fitted_env(population.selection_seed(seed),
                                       population.SELECTION_CUSTOMERS, penalty=0.0)
    guarded: dict[str, Any] = {}
    tolerance = None if args.unconstrained else (args.retention_tolerance or 0.0)
    if tolerance is not None:
        # the console's retention constraint in a fitted model (agents_training.
        # training_retention_tolerance): the campaign's guardrail, 0 without one
        control = population.held_out_value(rules, seed=seed, env=selection_env)
        control_rate = leave_rate(rules, setting.fitted_env(seed, args.customers), seed=seed)
        guarded = dict(max_leave_rate=population.daily_leave_limit(
            control_rate, tolerance, world.scenario.horizon_days))
        if args.retention_tolerance is not None:  # the guardrail also holds the choice of member
            guarded.update(control=control, retention_tolerance=args.retention_tolerance)
    trained = train_population(
        spaces, seed, args,
        train_env=lambda s: setting.fitted_env(s, args.customers, args.uncertainty_penalty),
        held_out_env=selection_env,
        consensus_env=setting.fitted_env(seed + population.CONSENSUS_SEED_OFFSET,
                                         population.SELECTION_CUSTOMERS, penalty=0.0)
        if args.consensus else None,
        gamma=PLANNING_DISCOUNT, action_attributes=attributes, **guarded)
    learned, learned_values, consensus = trained.kept, trained.values, trained.consensus
    supervised = agents.make("supervised", *spaces, seed=seed)
    pretrain(supervised, logged)
    oracle_population = train_population(
        spaces, seed, args,
        train_env=lambda s: CustomerJourneyEnv(scenario, num_customers=args.customers, seed=s + 1),
        held_out_scenario=scenario, action_attributes=attributes)
    oracle, oracle_values = oracle_population.kept, oracle_population.values

    guardrail = guardrail_on_held_out_days(learned, rules, logged, HELD_OUT_DAYS[size])
    trial = trial_in_world(learned, rules, scenario, seed, size, args)

    eval_seed = 5_000 + seed
    reports = {name: evaluate(policy, scenario, customers=args.eval_customers, seed=eval_seed)
               for name, policy in (("rules", rules), ("learned", learned),
                                    ("supervised", supervised), ("oracle", oracle))}
    base = reports["rules"]["mean_return"].value
    oracle_gain = reports["oracle"]["mean_return"].value - base
    rows = {}
    for name, report in reports.items():
        row = {
            "revenue": report["net_revenue_per_customer"].value,
            "retention": report["retention"].value,
            "reward": report["mean_return"].value,
            "violations": report.cap_violations_total,
        }
        if name != "rules":
            row["uplift"] = uplift(report, reports["rules"], "mean_return")
            row["revenue_uplift"] = uplift(report, reports["rules"], "net_revenue_per_customer")
            row["share"] = (row["reward"] - base) / oracle_gain if oracle_gain > 0 else float("nan")
        rows[name] = row
    rows["deployed"] = rows["learned"] if guardrail["passed"] or trial.passed else {
        **rows["rules"], "share": 0.0 if oracle_gain > 0 else float("nan"), "uplift": None,
        "revenue_uplift": None}
    return {"scenario": scenario, "seed": seed, "size": size, "rows": rows, "check": check,
            "guardrail": guardrail, "trial": trial, "retention_guardrail": guarded and {
                "tolerance": tolerance, "control": control.retention,
                "max_leave_rate": guarded["max_leave_rate"], "members": trained.retention,
                "prices": [m.leave_price for m in trained.members], "kept": trained.chosen},
            "members": {"learned": learned_values,
                                                "oracle": oracle_values},
            "consensus": consensus,
            "log_rows": len(log), "fit_seconds": model.fit_seconds,
            "seconds": time.perf_counter() - started}


def trial_in_world(candidate, rules, scenario: str, seed: int, size: str,
                   args: argparse.Namespace):
    """A trial among the world's customers (fresh ones: the trial starts after the logs):
    `--trial-share` of them decided by the candidate for `--trial-days`, the rest by the rules;
    the console's verdict."""
    customers = SIZES[size][1]
    in_trial = round(args.trial_share * customers)
    _, verdict = trial_of(
        evaluate(candidate, scenario, customers=in_trial, days=args.trial_days, seed=9_000 + seed),
        evaluate(rules, scenario, customers=customers - in_trial, days=args.trial_days,
                 seed=9_500 + seed), args.trial_days)
    return verdict


def trial_cell(verdict) -> str:
    if verdict.difference is None:
        return f"- ({verdict.reason})"
    return (f"{verdict.difference:+.3f} (lower {verdict.difference_lower:+.3f}), "
            f"{'passed' if verdict.passed else 'refused'}")


def share_text(share: float) -> str:
    return f"{share:.0%}" if np.isfinite(share) else "n/a (oracle not above rules)"


def print_result(r: dict) -> None:
    days, customers = SIZES[r["size"]]
    c = r["check"]
    worst = c["worst_miss"]
    print(f"\n### {r['scenario']}, seed {r['seed']}, {days} days x {customers:,} customers "
          f"({r['log_rows']:,} logged decisions; model fit {r['fit_seconds']:.0f} s; "
          f"run {r['seconds']:.0f} s)\n")
    print("| policy | net revenue / customer | retention | reward / customer | reward uplift vs "
          "rules [95 % CI] | net revenue uplift [95 % CI] | share of oracle's uplift | cap "
          "violations |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"rules": "rules (logging policy)", "learned": "actor_critic trained in the fitted model",
             "supervised": "supervised, fitted on the logs",
             "oracle": "oracle actor_critic (true world)",
             "deployed": "deployed: learned if the guardrail or its trial passed it, else the "
                         "rules"}
    for name, row in r["rows"].items():
        if name == "rules":
            extra = "- | - | - "
        elif row["uplift"] is None:
            extra = "0 (the rules stay) | 0 | 0% "
        else:
            u, v = row["uplift"], row["revenue_uplift"]
            extra = (f"{u.value:+.1%} [{u.ci_low:+.1%}, {u.ci_high:+.1%}] | {v.value:+.1%} "
                     f"[{v.ci_low:+.1%}, {v.ci_high:+.1%}] | {share_text(row['share'])} ")
        print(f"| {names[name]} | {row['revenue']:.2f} | {row['retention']:.3f} | "
              f"{row['reward']:.2f} | {extra}| {row['violations']} |")
    members = r["members"]
    print("\nHeld-out mean return of each member (the kept one is the highest): learned, in the "
          "fitted model " + ", ".join(f"{v:.2f}" for v in members["learned"])
          + "; oracle, in the true world " + ", ".join(f"{v:.2f}" for v in members["oracle"])
          + ".")
    if r.get("retention_guardrail"):
        rg = r["retention_guardrail"]
        print(f"\nRetention constraint {rg['tolerance'] * 100:.1f} points, in the fitted model: "
              f"the rules keep {rg['control']:.3f} of the held-out customers, so each member "
              f"trained to lose at most {rg['max_leave_rate']:.5f} customers per customer-day; the "
              "members kept " + ", ".join(f"{v:.3f}" for v in rg["members"])
              + " (price of a lost customer at the end: "
              + ", ".join(f"{p:.2f}" for p in rg["prices"]) + f"); member {rg['kept']} kept.")
    if r["consensus"] is not None:
        made = r["consensus"]
        print(f"\nThe learned policy is the consensus of the {made.members} members, distilled "
              f"on {made.states:,} customer-days of the fitted model (agreement "
              f"{made.agreement:.1%}).")
    g = r["guardrail"]
    print(f"\nGuardrail on the held-out logged days: **{'passed' if g['passed'] else 'refused'}**. "
          f"{g['explanation']}.")
    t = r["trial"]
    print(f"\nTrial in the true world: **{'passed' if t.passed else 'refused'}**. {t.reason}.")
    kpis = ", ".join(
        f"{k} {v['predicted']:.4g} vs {v['observed']:.4g}"
        + ("" if v["relative_miss"] is None else f" ({v['relative_miss']:.0%})")
        + ("" if v["enough_support"] else " [few events]")
        for k, v in c["totals"].items())
    print(f"\nModel validation on the last {HELD_OUT_DAYS[r['size']]} logged days "
          f"({c['rows']:,} decisions; replayed vs logged): {kpis}. Within 10 % or the 95 % CI: "
          f"**{'yes' if c['within_tolerance'] else 'NO'}**"
          + (f" (worst: {worst['kpi']})" if worst else "") + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="101,102,103")
    parser.add_argument("--scenarios", default="retail,churn_rescue")
    parser.add_argument("--sizes", default="large,small")
    parser.add_argument("--steps", type=int, default=1_000_000,
                        help="actor_critic training budget (customer-days), fitted and oracle")
    parser.add_argument("--customers", type=int, default=1024, help="training slots")
    parser.add_argument("--population", type=int, default=4,
                        help="actor_critic members per policy, learned and oracle alike (the "
                        "console's default; 1: a single seed)")
    parser.add_argument("--balance", type=float, default=None,
                        help="ResponseModel.fit's cap on the inverse-propensity row weights "
                        "(default: the library's; 1: every logged row counts once)")
    parser.add_argument("--consensus", action="store_true",
                        help="keep the learned members' consensus (agents.population."
                        "keep_consensus), not the member the fitted model ranks first (which the "
                        "console keeps)")
    parser.add_argument("--retention-tolerance", type=float, default=None,
                        help="the campaign's retention guardrail, a share (0.01: one point): "
                             "the learned policy trains to lose at most that much retention to "
                             "the rules in the fitted model (actor_critic's max_leave_rate) and "
                             "the member kept must be within it; default: none, and the console's "
                             "default in a fitted model (trained to the rules' rate, 0 points)")
    parser.add_argument("--uncertainty-penalty", type=float, default=1.0,
                        help="how much of the fitted model's doubt training subtracts (the "
                             "console's agents_training.UNCERTAINTY_PENALTY is 1.0)")
    parser.add_argument("--unconstrained", action="store_true",
                        help="train the learned policy with no retention constraint (the console "
                             "before 2026-12-08)")
    parser.add_argument("--eval-customers", type=int, default=5000)
    parser.add_argument("--trial-share", type=float, default=0.25,
                        help="share of the world's customers the learned policy decides for in "
                        "its trial (the console's 1-50 %%)")
    parser.add_argument("--trial-days", type=int, default=28,
                        help="days the trial measures (the console's default)")
    args = parser.parse_args()
    try:
        population.check_size(args.population)
    except ValueError as error:
        parser.error(str(error))
    if not 0.01 <= args.trial_share <= 0.5:
        parser.error(f"--trial-share must lie in [0.01, 0.5], got {args.trial_share:g}")
    if args.balance is not None and not args.balance >= 1:
        parser.error(f"--balance must be a number >= 1, got {args.balance:g}")
    torch.set_num_threads(1)
    # the console's own guardrail judges the learned policy: its settings, no database needed
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # a benchmark, not a deployment: no secrets
    import django

    django.setup()
    started = time.perf_counter()
    results = []
    for size in args.sizes.split(","):
        for scenario in args.scenarios.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                results.append(run_one(scenario, seed, size, args))
                print_result(results[-1])
                sys.stdout.flush()
    print("\n| size | scenario | seed | share of oracle's uplift (reward) | retention learned "
          "vs rules | cap violations | replay within 10 % | guardrail: DR difference [95 % CI], "
          "verdict | trial: gain per customer-day (lower bound), verdict | deployed: share of "
          "oracle's uplift |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        learned, rules, dr = r["rows"]["learned"], r["rows"]["rules"], r["guardrail"]["dr"]
        print(f"| {r['size']} | {r['scenario']} | {r['seed']} | {share_text(learned['share'])} | "
              f"{learned['retention']:.3f} vs {rules['retention']:.3f} | "
              f"{learned['violations']} | {'yes' if r['check']['within_tolerance'] else 'no'} | "
              f"{dr['value']:+.3f} [{dr['lower']:+.3f}, {dr['upper']:+.3f}], "
              f"{'passed' if r['guardrail']['passed'] else 'refused'} | "
              f"{trial_cell(r['trial'])} | "
              f"{share_text(r['rows']['deployed']['share'])} |")
    for who in ("learned", "deployed"):
        shares = {size: [r["rows"][who]["share"] for r in results if r["size"] == size
                         and np.isfinite(r["rows"][who]["share"])] for size in SIZES}
        for size, target in (("large", 0.8), ("small", 0.5)):
            if shares[size]:
                print(f"\n{who}, {size}: share of the oracle's uplift, mean "
                      f"{np.mean(shares[size]):.0%}, worst {np.min(shares[size]):.0%} "
                      f"(target >= {target:.0%})", end="")
    print(f"\n\nwall time {time.perf_counter() - started:.0f} s (2 shared CPU cores, no GPU; "
          "torch 1 thread)")


if __name__ == "__main__":
    main()
