"""Policy quality: train every agent on `retail` and `tabular` under one budget, print one table.

    .venv/bin/python benchmarks/policy_quality.py                    # full run (2M steps each)
    .venv/bin/python benchmarks/policy_quality.py --quick            # smoke test (minutes)
    .venv/bin/python benchmarks/policy_quality.py --agents actor_critic,rule_based,supervised \
        --scenarios retail --seeds 0,1 --steps 2000000

For each scenario and training seed, every agent in `agents.AGENT_NAMES` gets a fresh simulator
(`num_customers` customers in parallel, seeded) and `--steps` customer-days of experience. Each
trained policy is then evaluated by `agents.evaluate.evaluate` on one held-out cohort per seed;
every agent meets the same cohort and the same daily draws (common random numbers), so the
uplift columns are paired customer by customer (`agents.evaluate.uplift`, delta-method 95 % CI).
With several seeds the cohorts are pooled (customers are independent across seeds). On `tabular`
the exact discounted value of each policy is also given as a percentage of the optimum found by
value iteration (`agents.evaluate.percent_of_optimum`).

With `--population K`, actor_critic trains K members per seed (`agents.population`: seeds
seed, seed + 1000, ...), `--jobs` at a time in separate processes, and keeps the member with the
highest mean return on held-out customers of the training world (`selection_seed`, never the
evaluation cohort); with `--retention-guardrail P`, among those whose retention there is within P
points of rule_based's on the same customers (a campaign's retention guardrail,
`agents.population.choose_member`). Its "train s" is the population's wall-clock time; every member's held-out
value and evaluation KPIs are printed (-v) so the members that were not kept are visible too.

With `--attributes`, actor_critic gets the scenario catalogue's action attributes, as the console
gives a campaign's (`action_attributes`; the `tabular` scenario has no catalogue and trains
without).

Agents that cannot be imported yet, or fail, are skipped with a printed note. Wall-clock seconds
are training time only and depend on the machine's load.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents import population  # noqa: E402
from agents.envs import CustomerJourneyEnv, get_scenario  # noqa: E402
from agents.evaluate import (  # noqa: E402
    KPI, EvaluationReport, evaluate, percent_of_optimum, uplift,
)

SCENARIO_NAMES = ("retail", "tabular")
BASELINES = ("rule_based", "supervised")

# Per-scenario settings handed to every agent that has the hyper-parameter. On `tabular` the
# objective is the scenario's discounted value (gamma = scenario.gamma), so the learners use it.
# Agent-specific tuning lives in AGENT_SETTINGS (documented in BENCHMARKS.md).
AGENT_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "retail": {
        "actor_critic": {},
        "dqn": {},
    },
    "tabular": {
        "actor_critic": {},
        "dqn": {},
    },
}

# KPIs printed per row: (column title, KPI name, format)
KPI_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("net revenue / customer", "net_revenue_per_customer", "{:.2f}"),
    ("retention", "retention", "{:.3f}"),
    ("open rate", "open_rate", "{:.3f}"),
    ("CTR", "ctr", "{:.3f}"),
    ("conversion", "conversion_rate", "{:.3f}"),
    ("unsubs / customer", "unsubscribes_per_customer", "{:.3f}"),
    ("contacts / customer", "contacts_per_customer", "{:.2f}"),
    ("cap violations", "cap_violations", "{:.0f}"),
    ("mean return", "mean_return", "{:.2f}"),
)


@dataclass
class Result:
    """One agent on one scenario, over all seeds."""

    scenario: str
    agent: str
    reports: list[EvaluationReport] = field(default_factory=list)
    env_steps: list[int] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    percent_optimum: list[float] = field(default_factory=list)
    members: list[list[dict[str, float]]] = field(default_factory=list)
    note: str = ""


def _agent_settings(name: str, scenario_name: str, agent_cls: type) -> dict[str, Any]:
    settings = dict(AGENT_SETTINGS.get(scenario_name, {}).get(name, {}))
    scenario = get_scenario(scenario_name)
    config_fields = _config_fields(agent_cls)
    if scenario_name == "tabular" and "gamma" in config_fields and "gamma" not in settings:
        settings["gamma"] = float(scenario.gamma)
    return settings


def _config_fields(agent_cls: type) -> set[str]:
    """Names of the agent's hyper-parameters (its config dataclass fields, or __init__ keywords)."""
    module = importlib.import_module(agent_cls.__module__)
    for value in vars(module).values():
        if dataclasses.is_dataclass(value) and isinstance(value, type) and value.__name__.endswith("Config") \
                and value.__module__ == module.__name__:
            fields = {f.name for f in dataclasses.fields(value)}
            if fields:
                return fields
    import inspect
    return set(inspect.signature(agent_cls.__init__).parameters) - {"self", "observation_space",
                                                                     "action_space", "seed"}


def _train_member(name: str, scenario_name: str, seed: int, steps: int, customers: int,
                  settings: dict[str, Any], threads: int) -> tuple[bytes, int, float]:
    """Train one agent (in this process or a worker process); its bytes, env steps and seconds."""
    torch.set_num_threads(threads)
    env = CustomerJourneyEnv(scenario_name, num_customers=customers, seed=seed)
    agent = agents.make(name, env.single_observation_space, env.single_action_space, seed=seed,
                        **settings)
    started = time.perf_counter()
    report = agent.fit(env, total_steps=steps)
    return agent.to_bytes(), int(report.env_steps), time.perf_counter() - started


def _rules_for(scenario_name: str, seed: int) -> agents.Agent:
    """The scenario's rule_based policy: the control the population's retention guardrail holds
    members to (`agents.population.choose_member`)."""
    world = CustomerJourneyEnv(scenario_name, num_customers=1)
    return agents.make("rule_based", world.single_observation_space, world.single_action_space,
                       seed=seed, catalogue=world.catalogue)


def _population_size(name: str, args: argparse.Namespace) -> int:
    return args.population if name == "actor_critic" else 1


def train_and_evaluate(name: str, scenario_name: str, seed: int, args: argparse.Namespace,
                       result: Result) -> None:
    try:
        agent_cls = agents._agent_class(name)
    except Exception as error:  # not written yet, or broken import: skip with a note
        result.note = f"skipped: cannot import ({type(error).__name__}: {error})"
        return
    steps = args.tabular_steps if scenario_name == "tabular" and args.tabular_steps else args.steps
    settings = _agent_settings(name, scenario_name, agent_cls)
    if args.attributes and name == "actor_critic" and scenario_name != "tabular":
        world = CustomerJourneyEnv(scenario_name, num_customers=1)
        settings["action_attributes"] = world.catalogue.attributes
    seeds = population.member_seeds(seed, _population_size(name, args))
    jobs = [(name, scenario_name, s, steps, args.train_customers, settings, args.threads)
            for s in seeds]
    try:
        started = time.perf_counter()
        if len(jobs) == 1:
            trained = [_train_member(*jobs[0])]
        else:
            with ProcessPoolExecutor(max_workers=min(args.jobs, len(jobs))) as pool:
                trained = list(pool.map(_train_member, *zip(*jobs)))
        wall = time.perf_counter() - started
    except Exception as error:
        result.note = f"failed: {type(error).__name__}: {error}"
        return
    members = [agents.loads(artifact) for artifact, _, _ in trained]
    kept = 0
    if len(members) > 1:
        values = [population.held_out_value(m, seed=seed, scenario=scenario_name) for m in members]
        control = None if scenario_name == "tabular" else population.held_out_value(
            _rules_for(scenario_name, seed), seed=seed, scenario=scenario_name)
        tolerance = None if args.retention_guardrail is None else args.retention_guardrail / 100
        kept = population.choose_member(values, control=control, retention_tolerance=tolerance)
        rows = []
        for i, (member, value) in enumerate(zip(members, values)):
            report = evaluate(member, scenario_name, customers=args.eval_customers, seed=10_000 + seed)
            rows.append({"seed": member.seed, "held_out_return": value.value,
                         "held_out_retention": value.retention,
                         "control_retention": control.retention if control else None,
                         "net_revenue": report["net_revenue_per_customer"].value,
                         "mean_return": report["mean_return"].value,
                         "retention": report["retention"].value,
                         "train_s": trained[i][2], "kept": i == kept})
        result.members.append(rows)
    agent = members[kept]
    evaluation = evaluate(agent, scenario_name, customers=args.eval_customers, seed=10_000 + seed)
    result.reports.append(evaluation)
    result.env_steps.append(sum(env_steps for _, env_steps, _ in trained))
    result.wall_seconds.append(wall)
    if scenario_name == "tabular":
        result.percent_optimum.append(percent_of_optimum(agent, scenario_name))
    if args.verbose:
        print(f"  {scenario_name:8s} {name:15s} seed {seed}: "
              f"net revenue {evaluation['net_revenue_per_customer'].value:8.2f}  "
              f"retention {evaluation['retention'].value:.3f}  "
              f"return {evaluation['mean_return'].value:.2f}  "
              f"{sum(e for _, e, _ in trained)} steps in {wall:.1f} s", file=sys.stderr, flush=True)
        for row in (result.members[-1] if len(members) > 1 else []):
            print(f"      member seed {row['seed']:>5}: held-out return {row['held_out_return']:.2f}"
                  f", retention {row['held_out_retention']:.3f}"
                  + (f" (rules {row['control_retention']:.3f})" if row["control_retention"] else "")
                  + 
                  f"  evaluation: net revenue {row['net_revenue']:.2f}, return "
                  f"{row['mean_return']:.2f}, retention {row['retention']:.3f}"
                  f"  ({row['train_s']:.0f} s){'  KEPT' if row['kept'] else ''}",
                  file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# pooling seeds and formatting
def _pooled(reports: Sequence[EvaluationReport]) -> EvaluationReport:
    """One report over the union of the seeds' cohorts (customers are independent across seeds)."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    per_customer = {k: np.concatenate([r.per_customer[k] for r in reports]) for k in first.per_customer}
    fresh = _kpis_from(per_customer, first.confidence)
    return EvaluationReport(first.scenario, sum(r.customers for r in reports), first.days, -1,
                            fresh, per_customer, first.confidence)


def _kpis_from(pc: dict[str, np.ndarray], confidence: float) -> dict[str, KPI]:
    from scipy import stats
    z = stats.norm.ppf(0.5 + confidence / 2)

    def mean(x: np.ndarray) -> KPI:
        half = z * float(x.std(ddof=1)) / np.sqrt(len(x))
        return KPI(float(x.mean()), float(x.mean()) - half, float(x.mean()) + half)

    def ratio(y: np.ndarray, x: np.ndarray) -> KPI:
        if x.sum() <= 0:
            return KPI(float("nan"), float("nan"), float("nan"))
        r = float(y.sum() / x.sum())
        half = z * float(((y - r * x) / x.mean()).std(ddof=1)) / np.sqrt(len(x))
        return KPI(r, r - half, r + half)

    return {
        "open_rate": ratio(pc["opens"], pc["contacts"]), "ctr": ratio(pc["clicks"], pc["contacts"]),
        "conversion_rate": mean(pc["converted"]), "net_revenue_per_customer": mean(pc["net_revenue"]),
        "retention": mean(pc["retained"]), "unsubscribes_per_customer": mean(pc["unsubscribes"]),
        "contacts_per_customer": mean(pc["contacts"]), "cap_violations": mean(pc["cap_violations"]),
        "mean_return": mean(pc["return"]),
    }


def _fmt(kpi: KPI, pattern: str, with_ci: bool = True) -> str:
    if not np.isfinite(kpi.value):
        return "-"
    if not with_ci:
        return pattern.format(kpi.value)
    return f"{pattern.format(kpi.value)} [{pattern.format(kpi.ci_low)}, {pattern.format(kpi.ci_high)}]"


def _fmt_uplift(kpi: KPI | None) -> str:
    if kpi is None:
        return "-"
    return f"{100 * kpi.value:+.1f} % [{100 * kpi.ci_low:+.1f}, {100 * kpi.ci_high:+.1f}]"


def render_table(results: list[Result]) -> str:
    titles = ["scenario", "agent"] + [c[0] for c in KPI_COLUMNS[:2]] + [
        "uplift vs rule_based", "uplift vs supervised"] + [c[0] for c in KPI_COLUMNS[2:]] + [
        "% of optimum", "env steps", "train s"]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    by_key = {(r.scenario, r.agent): r for r in results}
    for r in results:
        if not r.reports:
            lines.append(f"| {r.scenario} | {r.agent} | " + r.note + " |" + " |" * (len(titles) - 3))
            continue
        pooled = _pooled(r.reports)
        uplifts = []
        for baseline in BASELINES:
            base = by_key.get((r.scenario, baseline))
            if base is None or len(base.reports) != len(r.reports) or baseline == r.agent:
                uplifts.append(None)
                continue
            try:
                uplifts.append(uplift(pooled, _pooled(base.reports)))
            except ValueError:
                uplifts.append(None)
        cells = [r.scenario, r.agent]
        cells += [_fmt(pooled[k], f) for _, k, f in KPI_COLUMNS[:2]]
        cells += [_fmt_uplift(u) for u in uplifts]
        cells += [_fmt(pooled[k], f, with_ci=k == "mean_return") for _, k, f in KPI_COLUMNS[2:]]
        cells.append(f"{np.mean(r.percent_optimum):.1f} %" if r.percent_optimum else "-")
        cells.append(f"{int(np.mean(r.env_steps)):,}")
        cells.append(f"{np.mean(r.wall_seconds):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_per_seed(results: list[Result], seeds: Sequence[int]) -> str:
    """Every seed of every learning agent against the rules of the same seed (paired), with its
    mean return next to supervised's and linucb's, then the mean, worst and best seed."""
    by_key = {(r.scenario, r.agent): r for r in results}
    titles = ["scenario", "agent", "seed", "uplift vs rule_based", "mean return",
              "supervised / linucb return", "retention - rule_based's", "% of optimum", "train s"]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for r in results:
        rules = by_key.get((r.scenario, "rule_based"))
        if r.agent == "rule_based" or rules is None or len(r.reports) != len(seeds) \
                or len(rules.reports) != len(seeds):
            continue
        ups = []
        for i, seed in enumerate(seeds):
            report, base = r.reports[i], rules.reports[i]
            up = uplift(report, base)
            ups.append(up.value)
            others = [by_key.get((r.scenario, n)) for n in ("supervised", "linucb")]
            other = " / ".join(f"{o.reports[i]['mean_return'].value:.2f}"
                               if o is not None and len(o.reports) == len(seeds) else "-"
                               for o in others)
            cells = [r.scenario, r.agent, str(seed), _fmt_uplift(up),
                     f"{report['mean_return'].value:.2f}", other,
                     f"{report['retention'].value - base['retention'].value:+.3f}",
                     f"{r.percent_optimum[i]:.1f} %" if r.percent_optimum else "-",
                     f"{r.wall_seconds[i]:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append(f"| {r.scenario} | {r.agent} | **mean / worst / best** | "
                     f"{100 * np.mean(ups):+.1f} % / {100 * min(ups):+.1f} % / {100 * max(ups):+.1f} %"
                     " |" + " |" * (len(titles) - 4))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2_000_000, help="env steps (customer-days) per agent")
    parser.add_argument("--tabular-steps", type=int, default=None,
                        help="override --steps on tabular (default: the same budget)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--agents", default=",".join(agents.AGENT_NAMES), help="comma-separated names")
    parser.add_argument("--scenarios", default=",".join(SCENARIO_NAMES))
    parser.add_argument("--train-customers", type=int, default=1024, help="customers simulated in parallel")
    parser.add_argument("--eval-customers", type=int, default=5000, help="evaluation cohort per seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--population", type=int, default=1,
                        help="actor_critic members per seed, one kept on held-out customers")
    parser.add_argument("--retention-guardrail", type=float, default=None, metavar="POINTS",
                        help="keep only a member within POINTS of rule_based's held-out retention "
                        "(a campaign's retention guardrail; default: none)")
    parser.add_argument("--attributes", action="store_true",
                        help="hand actor_critic the catalogue's action attributes (the console does)")
    parser.add_argument("--jobs", type=int, default=2, help="members trained at once (processes)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 60k steps, 512 customers in parallel, 1000 evaluated")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("-q", "--quiet", dest="verbose", action="store_false")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.train_customers, args.eval_customers = 60_000, 512, 1000
    torch.set_num_threads(args.threads)
    try:
        population.check_size(args.population)
    except ValueError as error:
        parser.error(str(error))
    if args.retention_guardrail is not None and not 0 <= args.retention_guardrail <= 100:
        parser.error(f"--retention-guardrail must be from 0 to 100 points, got "
                     f"{args.retention_guardrail:g}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    names = [n.strip() for n in args.agents.split(",") if n.strip()]
    unknown = sorted(set(names) - set(agents.AGENT_NAMES))
    if unknown:
        parser.error(f"unknown agent(s) {', '.join(unknown)}")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    # baselines first so uplifts can be computed for every row
    names = [n for n in BASELINES if n in names] + [n for n in names if n not in BASELINES]

    results: list[Result] = []
    started = time.perf_counter()
    for scenario_name in scenarios:
        for name in names:
            result = Result(scenario_name, name)
            for seed in seeds:
                train_and_evaluate(name, scenario_name, seed, args, result)
                if result.note:
                    print(f"note: {scenario_name}/{name}: {result.note}", file=sys.stderr)
                    break
            results.append(result)
    order = {n: i for i, n in enumerate(agents.AGENT_NAMES)}
    results.sort(key=lambda r: (scenarios.index(r.scenario), order.get(r.agent, 99)))
    table = render_table(results)
    if len(seeds) > 1:
        table += "\n\nPer seed (paired with rule_based on the same cohort):\n\n" + \
            render_per_seed(results, seeds)
    header = (f"policy_quality: steps={args.steps:,}"
              f"{f' (tabular {args.tabular_steps:,})' if args.tabular_steps else ''}, seeds={seeds}, "
              f"{args.train_customers} customers in parallel, {args.eval_customers} evaluated per seed, "
              f"torch threads={args.threads}, actor_critic population={args.population} "
              f"({args.jobs} at a time"
              + (f", retention guardrail {args.retention_guardrail:g} point"
                 + ("" if args.retention_guardrail == 1 else "s")
                 if args.retention_guardrail is not None else "")
              + f"), total {time.perf_counter() - started:.0f} s")
    print(header)
    print()
    print(table)
    if args.out:
        args.out.write_text(header + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
