"""Online trials: does the trial rule promote candidates that are better in truth, and refuse
those that are not?

A trial lets a candidate decide for a random share of a campaign's customers beside the live
policy (the marketer's rules); the console promotes it when `decisioning.promotion.trial_verdict`
passes on what the two groups did (`trial_evidence`: reward per customer-day and retention, over
customers). This measures that rule in a world the product does not see, for each scenario:

1. the true world (`CustomerJourneyEnv`, world seed 401, used by no other benchmark) and four
   candidates: `rules` (the rules themselves: an A/A trial, every promotion a false one),
   `rules_explore_30` (the rules with 30 % uniformly random allowed actions,
   `agents.offline.explore`), `supervised` (fitted on 30 days x 2,000 customers of the rules' logs
   with 10 % exploration, the small size of `learn_from_logs.py`) and one `actor_critic` trained
   in the true world for `--steps` customer-days;
2. truth: each candidate and the rules on one cohort of `--truth-customers` over the scenario's
   horizon, same seed (paired, common random numbers), `agents.evaluate.uplift` of the mean
   return: "better" when the 95 % CI's lower end is above 0, "worse" when its upper end is below
   0, else "unclear";
3. trials: for each replicate, share and duration, a population of `--customers` split into a
   candidate group of round(share x N) fresh customers and a live group of the rest (its own fresh
   customers: a randomised split, not paired), each run for D days, and the console's
   `trial_evidence` + `trial_verdict` applied at the end of a trial planned for D days (settings
   TRIAL_MIN_CUSTOMERS, TRIAL_RETENTION_TOLERANCE, GUARDRAIL_MARGIN; the console starts no trial
   shorter than TRIAL_MIN_DAYS).

Within a replicate and share, the live group is one cohort that all four candidates are compared
with (as if the trial had four arms): each candidate's trial is still a randomised split, only
the candidates' trials are not independent of each other, and it saves three quarters of the run.
A replicate's seeds do not depend on the duration, and the simulator's first D days do not depend
on the horizon (checked: equal per-customer totals), so the 14-, 28- and 56-day rows are one trial
looked at three times. The summary also counts a trial promoted at any of its looks: what a
verdict read whenever it first looks good would give, which the console prevents by reading a
trial's verdict once, at the end of the days planned when it starts. Trial seeds are >= 1,000,000,
never the truth's (5,000 + seed).

`explore` returns action probabilities, and `evaluate` wants a function that returns actions, so
the 30 % candidate samples from them (`Sampled`, its own generator per cohort).

Defaults: one `evaluate` call of 20,000 customers x 14 days took 1.0-1.2 s on one core (the
rules, supervised or actor_critic alike), so 10 replicates of 20,000 customers (2 shares x 3
durations, a live group each plus 4 candidate groups) fit well inside 25 minutes: the default run
took 7 minutes for both scenarios (2 shared CPU cores, torch 1 thread); a live group of its own
per candidate would have taken about 25.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/online_trial.py
    .venv/bin/python benchmarks/online_trial.py --scenarios retail --trials 3 --steps 50000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents.envs import CustomerJourneyEnv  # noqa: E402
from agents.evaluate import KPI, EvaluationReport, evaluate, uplift  # noqa: E402
from agents.offline import collect, explore, policy_probabilities, pretrain  # noqa: E402

LOG_DAYS, LOG_CUSTOMERS, LOG_EXPLORATION = 30, 2_000, 0.1
"""The supervised candidate's logs: `learn_from_logs.SIZES["small"]`, 10 % exploration."""
TRIAL_SEED_BASE = 1_000_000
REFUSALS = (
    ("not enough evidence that it is better", "gain's lower bound <= margin"),
    ("keeps fewer customers", "retention lower (significant, or beyond the tolerance)"),
    ("its verdict is read once", "planned days not over"),
    ("each group needs at least", "too few customers"),
    ("no priced decisions", "no priced decisions"),
)
"""(phrase of `trial_verdict`'s reason, short name) for the table."""


class Sampled:
    """A probability policy (e.g. `explore(rules, 0.3)`) as the action function `evaluate` runs:
    one action per customer drawn from its probabilities by its own generator."""

    def __init__(self, policy: Any, seed: int):
        self.policy, self.rng = policy, np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(policy_probabilities(self.policy, obs, mask), axis=1)
        cumulative /= cumulative[:, -1:]  # exactly 1 at the end: a masked last action is never hit
        return (self.rng.random((len(mask), 1)) > cumulative).sum(axis=1)


PolicyFactory = Callable[[int], Any]
"""Given a cohort's seed, what `evaluate` runs for the candidate."""


@dataclass
class TrialRow:
    """One (candidate, share, duration) over the replicates."""

    promoted: int = 0
    gains: list[float] = field(default_factory=list)
    half_widths: list[float] = field(default_factory=list)
    retention_gains: list[float] = field(default_factory=list)
    retention_lowers: list[float] = field(default_factory=list)
    refusals: Counter = field(default_factory=Counter)

    @property
    def trials(self) -> int:
        return len(self.gains)


def candidates(scenario: str, seed: int, steps: int) -> tuple[Any, dict[str, PolicyFactory]]:
    """The rules and the four candidates of step 1 in the scenario's true world."""
    world = CustomerJourneyEnv(scenario, num_customers=LOG_CUSTOMERS, horizon_days=10_000,
                               seed=seed)
    spaces = (world.single_observation_space, world.single_action_space)
    rules = agents.make("rule_based", *spaces, seed=seed, catalogue=world.catalogue)
    supervised = agents.make("supervised", *spaces, seed=seed)
    pretrain(supervised, collect(world, explore(rules, LOG_EXPLORATION),
                                 LOG_DAYS * LOG_CUSTOMERS, seed=seed))
    actor_critic = agents.make("actor_critic", *spaces, seed=seed,
                               action_attributes=world.catalogue.attributes)
    actor_critic.fit(CustomerJourneyEnv(scenario, num_customers=1024, seed=seed + 1),
                     total_steps=steps)
    noisy = explore(rules, 0.3)
    return rules, {"rules": lambda s: rules, "rules_explore_30": lambda s: Sampled(noisy, s),
                   "supervised": lambda s: supervised, "actor_critic": lambda s: actor_critic}


def truth_label(kpi: KPI) -> str:
    return "better" if kpi.ci_low > 0 else "worse" if kpi.ci_high < 0 else "unclear"


def label_of(name: str, truth: KPI) -> str:
    return "A/A" if name == "rules" else truth_label(truth)


def trial_seed(seed: int, replicate: int, share_index: int, arm: int) -> int:
    """Fresh customers per replicate, share and group (arm 0: the live group)."""
    return TRIAL_SEED_BASE * (replicate + 1) + 1_000 * seed + 10 * share_index + arm


def group_rows(report: EvaluationReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = report.per_customer
    return c["return"], c["days"], c["retained"] == 0


def trial_of(candidate_group: EvaluationReport, live_group: EvaluationReport,
             days: int) -> tuple[Any, Any]:
    """The console's evidence and verdict (`trial_evidence`, `trial_verdict`) for a trial planned
    for `days` whose two groups ran `days` in the true world."""
    from crm_console.dashboards.selectors import trial_evidence
    from crm_console.decisioning.promotion import trial_verdict

    reward, decisions, left = (np.concatenate(pair) for pair in zip(group_rows(candidate_group),
                                                                      group_rows(live_group)))
    evidence = trial_evidence(
        days=days, reward=reward, decisions=decisions, left=left,
        in_candidate_group=np.r_[np.ones(candidate_group.customers, bool),
                                 np.zeros(live_group.customers, bool)])
    return evidence, trial_verdict(evidence=evidence, planned_days=days, baseline="live")


def refusal_name(reason: str) -> str:
    return next((short for phrase, short in REFUSALS if phrase in reason), reason[:60])


def run_scenario(scenario: str, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    rules, factories = candidates(scenario, args.seed, args.steps)
    built = time.perf_counter() - started
    truth_seed = 5_000 + args.seed
    baseline = evaluate(rules, scenario, customers=args.truth_customers, seed=truth_seed)
    reports = {name: evaluate(make(truth_seed), scenario, customers=args.truth_customers,
                              seed=truth_seed) for name, make in factories.items()}
    truth = {name: uplift(report, baseline, "mean_return") for name, report in reports.items()}
    kept = {name: report["retention"].value - baseline["retention"].value
            for name, report in reports.items()}
    truth_seconds = time.perf_counter() - started - built
    rows: dict[tuple[str, float, int], TrialRow] = {}
    promoted_at_a_look: dict[tuple[str, float], set[int]] = {}
    for replicate in range(args.trials):
        for share_index, share in enumerate(args.shares):
            n_candidate = round(share * args.customers)
            n_live = args.customers - n_candidate
            for days in args.durations:
                live = evaluate(rules, scenario, customers=n_live, days=days,
                                seed=trial_seed(args.seed, replicate, share_index, 0))
                for arm, (name, make) in enumerate(factories.items(), start=1):
                    cohort_seed = trial_seed(args.seed, replicate, share_index, arm)
                    evidence, verdict = trial_of(
                        evaluate(make(cohort_seed), scenario, customers=n_candidate, days=days,
                                 seed=cohort_seed), live, days)
                    row = rows.setdefault((name, share, days), TrialRow())
                    value, lower, upper = evidence.gain
                    row.gains.append(value)
                    row.half_widths.append((upper - lower) / 2)
                    row.retention_gains.append(evidence.retention_gain[0])
                    row.retention_lowers.append(evidence.retention_gain[1])
                    looked = promoted_at_a_look.setdefault((name, share), set())
                    if verdict.passed:
                        row.promoted += 1
                        looked.add(replicate)
                    else:
                        row.refusals[refusal_name(verdict.reason)] += 1
    return {"scenario": scenario, "truth": truth, "kept": kept, "rows": rows,
            "looks": promoted_at_a_look,
            "built": built, "truth_seconds": truth_seconds,
            "trial_seconds": time.perf_counter() - started - built - truth_seconds}


def truth_text(name: str, kpi: KPI) -> tuple[str, str]:
    label = label_of(name, kpi)
    return f"{kpi.value:+.1%} [{kpi.ci_low:+.1%}, {kpi.ci_high:+.1%}]", label


def print_scenario(r: dict, args: argparse.Namespace) -> None:
    print(f"\n### {r['scenario']}, world seed {args.seed}\n")
    print(f"Candidates built in {r['built']:.0f} s, truth ({args.truth_customers:,} customers, "
          f"the scenario's horizon) in {r['truth_seconds']:.0f} s, trials in "
          f"{r['trial_seconds']:.0f} s.\n")
    print("| candidate | share | days | truth: reward uplift vs rules [95 % CI] | truth | truth: "
          "retention vs rules (points) | promoted | gain / customer-day, mean [mean CI "
          "half-width] | retention gain, mean [mean lower bound] (points) | most common "
          "refusal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, share, days), row in r["rows"].items():
        uplift_text, label = truth_text(name, r["truth"][name])
        refusal = (f"{row.refusals.most_common(1)[0][0]} ({row.refusals.most_common(1)[0][1]})"
                   if row.refusals else "-")
        print(f"| {name} | {share:.0%} | {days} | {uplift_text} | {label} | "
              f"{r['kept'][name] * 100:+.1f} | {row.promoted} of {row.trials} | "
              f"{np.mean(row.gains):+.3f} "
              f"[{np.mean(row.half_widths):.3f}] | {np.mean(row.retention_gains) * 100:+.2f} "
              f"[{np.mean(row.retention_lowers) * 100:+.2f}] | {refusal} |")


def summary_line(when: str, outcomes: list[tuple[str, int, int]]) -> str:
    """One line of the summary from (truth label, promoted, trials) of its rows."""
    counts: Counter = Counter()
    for label, promoted, trials in outcomes:
        for kind in {"A/A": ("false", "A/A"), "worse": ("false",)}.get(label, (label,)):
            counts[kind, "promoted"] += promoted
            counts[kind, "trials"] += trials

    def k_of(kind: str) -> str:
        n = counts[kind, "trials"]
        return f"{counts[kind, 'promoted']} of {n}" if n else "none"

    return (f"| {when} | {k_of('false')} | {k_of('A/A')} | {k_of('better')} | "
            f"{k_of('unclear')} |")


def print_summary(results: list[dict], args: argparse.Namespace) -> None:
    print("\n### Summary over scenarios and shares\n")
    print("| trial looked at | false promotions (A/A or truth worse) | of which A/A | true "
          "promotions (truth better) | unclear truth promoted |")
    print("|---|---|---|---|---|")
    for days in args.durations:
        print(summary_line(f"{days} days", [
            (label_of(name, r["truth"][name]), row.promoted, row.trials)
            for r in results for (name, _, d), row in r["rows"].items() if d == days]))
    looks = ", ".join(str(days) for days in args.durations)
    print(summary_line(f"{looks} days, promoted at the first passing look (the same trials; "
                       "what the planned days prevent)", [
        (label_of(name, r["truth"][name]), len(replicates), args.trials)
        for r in results for (name, _), replicates in r["looks"].items()]))


def parse_list(text: str, kind: type) -> list:
    return [kind(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="retail,churn_rescue")
    parser.add_argument("--seed", type=int, default=401, help="the true world's seed")
    parser.add_argument("--steps", type=int, default=300_000,
                        help="actor_critic training budget (customer-days), one seed")
    parser.add_argument("--truth-customers", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=10, help="replicates per share and duration")
    parser.add_argument("--durations", default="14,28,56", help="trial days")
    parser.add_argument("--shares", default="0.1,0.2", help="candidate group's share")
    parser.add_argument("--customers", type=int, default=20_000,
                        help="customers in a trial, both groups")
    args = parser.parse_args()
    args.durations, args.shares = parse_list(args.durations, int), parse_list(args.shares, float)
    if not all(0 < share < 1 for share in args.shares):
        parser.error("every share must lie strictly between 0 and 1")
    if min(args.durations, default=0) < 1 or args.trials < 1:
        parser.error("durations and --trials must be >= 1")
    torch.set_num_threads(1)
    # the console's own trial rule: its settings, no database needed
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # a benchmark, not a deployment: no secrets
    import django

    django.setup()
    from django.conf import settings

    if min(args.durations) < settings.TRIAL_MIN_DAYS:
        parser.error(f"the console starts no trial shorter than TRIAL_MIN_DAYS "
                     f"({settings.TRIAL_MIN_DAYS} days)")
    started = time.perf_counter()
    print(f"Trial rule: TRIAL_MIN_DAYS {settings.TRIAL_MIN_DAYS}, TRIAL_MIN_CUSTOMERS "
          f"{settings.TRIAL_MIN_CUSTOMERS}, TRIAL_RETENTION_TOLERANCE "
          f"{settings.TRIAL_RETENTION_TOLERANCE}, GUARDRAIL_MARGIN {settings.GUARDRAIL_MARGIN}; "
          f"{args.trials} trials of {args.customers:,} customers per candidate, share and "
          f"duration; actor_critic {args.steps:,} steps.")
    results = []
    for scenario in args.scenarios.split(","):
        results.append(run_scenario(scenario, args))
        print_scenario(results[-1], args)
        sys.stdout.flush()
    print_summary(results, args)
    print(f"\nwall time {time.perf_counter() - started:.0f} s (2 shared CPU cores, no GPU; "
          "torch 1 thread)")


if __name__ == "__main__":
    main()
