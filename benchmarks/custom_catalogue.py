"""A marketer's own catalogue: do the learners use custom channels, offers and windows well?

    .venv/bin/python benchmarks/custom_catalogue.py --seeds 0 --steps 1000000
    .venv/bin/python benchmarks/custom_catalogue.py --quick          # smoke test (a minute)
    .venv/bin/python benchmarks/custom_catalogue.py --agents actor_critic,actor_critic+attributes \
        --seeds 0,1,2,3    # the policy with and without a part shared through the actions' attributes

The catalogue is the demo's plus what a marketer would add (issue 13): a WhatsApp channel (0.03 a
contact, at most 2 a week; the simulator has never heard of it, so it behaves like the average of
its channels), three offers ("15 % off" between the simulator's 10 % and 20 % anchors, a "Free
gift" that costs 4.00 a redemption, "Double points" at 1.50), and two windows ("Lunch
12:30-13:30" on weekdays, "Weekend late morning" 10:00-12:00 on Saturdays and Sundays): 7 x 5 x 5
+ 1 = 176 actions instead of 49. Each agent trains on `retail` with that catalogue and is evaluated
on a held-out cohort (5000 customers, common random numbers) against the marketer's rules on the
same catalogue; the last columns say how often the trained policy picks something the demo
catalogue lacks (a custom channel, offer or window) among its contacts.
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
from agents.catalogue import (  # noqa: E402
    DEFAULT_CHANNELS, DEFAULT_OFFERS, DEFAULT_SEND_WINDOWS, Catalogue, Channel, Offer, SendWindow,
    default_catalogue,
)
from agents.constraints import ContactRules, default_contact_rules  # noqa: E402
from agents.envs import CustomerJourneyEnv  # noqa: E402
from agents.evaluate import evaluate, uplift  # noqa: E402

CUSTOM_CHANNELS = (Channel("whatsapp", "WhatsApp", 0.03),)
CUSTOM_OFFERS = (
    Offer("discount_15", "15 % off", "percent_off", 15.0),
    Offer("free_gift", "Free gift", "gift", redemption_cost=4.0, validity_days=14),
    Offer("double_points", "Double points", "points_multiplier", 2.0, redemption_cost=1.5),
)
CUSTOM_WINDOWS = (
    SendWindow("lunch", "Lunch 12:30-13:30", 12.5, 13.5, days=(0, 1, 2, 3, 4)),
    SendWindow("weekend", "Weekend late morning", 10.0, 12.0, days=(5, 6)),
)


def custom_catalogue() -> Catalogue:
    return default_catalogue((*DEFAULT_CHANNELS, *CUSTOM_CHANNELS),
                             (*DEFAULT_OFFERS, *CUSTOM_OFFERS),
                             (*DEFAULT_SEND_WINDOWS, *CUSTOM_WINDOWS))


def custom_rules() -> ContactRules:
    rules = default_contact_rules()
    return ContactRules(channel_caps={**rules.channel_caps, "whatsapp": (2, 7)},
                        overall_cap=rules.overall_cap, min_gap_hours=rules.min_gap_hours,
                        quiet_hours=rules.quiet_hours)


def custom_share(agent, catalogue: Catalogue, rules: ContactRules, seed: int) -> tuple[float, float]:
    """(share of contacts using a custom channel, offer or window; contacts per customer-day)
    over 30 days of 2000 held-out customers."""
    env = CustomerJourneyEnv(num_customers=2000, catalogue=catalogue, contact_rules=rules,
                             seed=20_000 + seed, horizon_days=30)
    custom = np.array([not a.is_no_contact and (
        a.channel in {c.key for c in CUSTOM_CHANNELS} or a.offer in {o.key for o in CUSTOM_OFFERS}
        or a.send_window in {w.key for w in CUSTOM_WINDOWS}) for a in catalogue.actions])
    obs, info = env.reset()
    sent = custom_sent = 0
    for _ in range(30):
        actions = agent.act(obs, info["action_mask"], deterministic=True)
        obs, _, _, _, info = env.step(actions)
        contacted = info["contacted"] > 0
        sent += int(contacted.sum())
        custom_sent += int(custom[info["action_sent"][contacted]].sum())
    return custom_sent / max(sent, 1), sent / (2000 * 30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="actor_critic,supervised,linucb,random",
                        help="agent names; NAME+attributes hands the catalogue's action attributes "
                             "to an agent that takes them (actor_critic)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--eval-customers", type=int, default=5000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.eval_customers = 20_000, 500
    torch.set_num_threads(1)
    catalogue, rules = custom_catalogue(), custom_rules()
    print(f"catalogue: {catalogue.n_actions} actions; steps {args.steps:,}; "
          f"eval cohort {args.eval_customers}", flush=True)
    print("| seed | agent | vs rule_based (net revenue / customer, 95 % CI) | net revenue / "
          "customer | retention | custom share of contacts | contacts / customer-day | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        env = CustomerJourneyEnv(num_customers=1024, catalogue=catalogue, contact_rules=rules,
                                 seed=seed)
        rules_agent = agents.make("rule_based", env.single_observation_space,
                                  env.single_action_space, catalogue=catalogue)
        baseline = evaluate(rules_agent, "retail", customers=args.eval_customers,
                            seed=10_000 + seed, catalogue=catalogue, contact_rules=rules)
        rows = [("rule_based", rules_agent, baseline, 0.0)]
        for name in args.agents.split(","):
            env = CustomerJourneyEnv(num_customers=1024, catalogue=catalogue, contact_rules=rules,
                                     seed=seed)
            algorithm, _, extra = name.partition("+")
            settings = {"action_attributes": catalogue.attributes} if extra == "attributes" else {}
            agent = agents.make(algorithm, env.single_observation_space, env.single_action_space,
                                seed=seed, **settings)
            started = time.perf_counter()
            agent.fit(env, total_steps=args.steps)
            wall = time.perf_counter() - started
            report = evaluate(agent, "retail", customers=args.eval_customers, seed=10_000 + seed,
                              catalogue=catalogue, contact_rules=rules)
            rows.append((name, agent, report, wall))
        for name, agent, report, wall in rows:
            share, rate = custom_share(agent, catalogue, rules, seed)
            lift = "-" if name == "rule_based" else _uplift(report, baseline)
            print(f"| {seed} | {name} | {lift} | {report['net_revenue_per_customer'].value:.2f} | "
                  f"{report['retention'].value:.3f} | {share:.0%} | {rate:.3f} | {wall:.0f} |",
                  flush=True)
    return 0


def _uplift(report, baseline) -> str:
    kpi = uplift(report, baseline, "net_revenue_per_customer")
    return f"{kpi.value:+.1%} [{kpi.ci_low:+.1%}, {kpi.ci_high:+.1%}]"


if __name__ == "__main__":
    raise SystemExit(main())
