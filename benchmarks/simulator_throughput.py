"""Simulator throughput: customer-days per second of CustomerJourneyEnv under a random policy.

    .venv/bin/python benchmarks/simulator_throughput.py                 # retail, N = 4096 and 16384
    .venv/bin/python benchmarks/simulator_throughput.py --customers 65536 --days 60

The policy samples uniformly among each customer's allowed actions (the mask is honoured), so
the figure includes building the mask, the observation and the policy's sampling - what an agent's
rollout pays per step, minus the network. Single process, numpy only; torch plays no part.
The best of `--repeats` runs is printed because the development machine is shared.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from agents.envs import CustomerJourneyEnv


def random_allowed(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed action per customer (vectorised)."""
    cumulative = np.cumsum(mask, axis=1, dtype=np.float32)
    pick = rng.random(mask.shape[0], dtype=np.float32) * cumulative[:, -1]
    return np.minimum((pick[:, None] >= cumulative).sum(axis=1), mask.shape[1] - 1)


def measure(scenario: str, customers: int, days: int, seed: int) -> tuple[float, float]:
    """(customer-days per second including the policy, share of steps with a contact)."""
    env = CustomerJourneyEnv(scenario, num_customers=customers, seed=seed)
    rng = np.random.default_rng(seed)
    _, info = env.reset()
    contacts = 0.0
    started = time.perf_counter()
    for _ in range(days):
        _, _, _, _, info = env.step(random_allowed(info["action_mask"], rng))
        contacts += float(info["contacted"].sum())
    elapsed = time.perf_counter() - started
    return customers * days / elapsed, contacts / (customers * days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="retail")
    parser.add_argument("--customers", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{'scenario':<14}{'customers':>10}{'days':>6}{'best cust-days/s':>18}{'median':>12}{'contact share':>15}")
    for customers in args.customers:
        runs = [measure(args.scenario, customers, args.days, args.seed + r) for r in range(args.repeats)]
        rates = sorted(r for r, _ in runs)
        print(f"{args.scenario:<14}{customers:>10}{args.days:>6}{rates[-1]:>18,.0f}"
              f"{rates[len(rates) // 2]:>12,.0f}{runs[0][1]:>15.3f}")


if __name__ == "__main__":
    main()
