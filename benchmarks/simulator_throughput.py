"""Simulator throughput: customer-days per second of CustomerJourneyEnv under a random policy.

    .venv/bin/python benchmarks/simulator_throughput.py                 # retail, N = 4096 and 16384
    .venv/bin/python benchmarks/simulator_throughput.py --customers 65536 --days 60

The policy samples uniformly among each customer's allowed actions (the mask is honoured), so
the figure includes building the mask, the observation and the policy's sampling - what an agent's
rollout pays per step, minus the network. Single process, numpy only; torch plays no part.
The best of `--repeats` runs is printed because the development machine is shared; "per CPU
second" divides by the process's CPU time, which waiting for a busy core does not inflate.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# one process, one core: BLAS threads would only spin against the simulator on a shared machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from agents.envs import CustomerJourneyEnv  # noqa: E402


def random_allowed(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random allowed action per customer (vectorised)."""
    cumulative = np.cumsum(mask, axis=1, dtype=np.uint8)  # A < 256
    rank = (rng.random(mask.shape[0], dtype=np.float32) * cumulative[:, -1]).astype(np.uint8) + 1
    return np.argmax(cumulative >= rank[:, None], axis=1)  # the rank-th allowed action


def measure(scenario: str, customers: int, days: int, seed: int) -> tuple[float, float, float]:
    """(customer-days per wall second, per CPU second of this process, share of contact steps).

    Per CPU second discounts the time the process waited for a core on a shared machine."""
    env = CustomerJourneyEnv(scenario, num_customers=customers, seed=seed)
    rng = np.random.default_rng(seed)
    _, info = env.reset()
    contacts = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(days):
        _, _, _, _, info = env.step(random_allowed(info["action_mask"], rng))
        contacts += float(info["contacted"].sum())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    steps = customers * days
    return steps / elapsed, steps / cpu, contacts / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="retail")
    parser.add_argument("--customers", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load:.1f}"
    )
    print(
        f"{'scenario':<14}{'customers':>10}{'days':>6}{'best /wall s':>14}{'median /wall s':>16}"
        f"{'best /CPU s':>14}{'contact share':>15}"
    )
    for customers in args.customers:
        runs = [
            measure(args.scenario, customers, args.days, args.seed + r) for r in range(args.repeats)
        ]
        wall = sorted(r[0] for r in runs)
        cpu = max(r[1] for r in runs)
        print(
            f"{args.scenario:<14}{customers:>10}{args.days:>6}{wall[-1]:>14,.0f}"
            f"{wall[len(wall) // 2]:>16,.0f}{cpu:>14,.0f}{runs[0][2]:>15.3f}"
        )


if __name__ == "__main__":
    main()
