"""Time `ResponseModel.fit` on 1,000,000 logged decisions (target: <= 120 s on 2 CPU cores).

The rows are real simulator logs: `retail` customers under the marketer's rules with 10 %
exploration (`agents.offline.collect`), 1,000,000 customer-days.

    .venv/bin/python benchmarks/response_model_fit.py [--rows 1000000] [--members 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents  # noqa: E402
from agents.envs import CustomerJourneyEnv  # noqa: E402
from agents.offline import collect, explore  # noqa: E402
from agents.response_model import RESPONSE_INFO_KEYS, ResponseLog, ResponseModel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--seed", type=int, default=104)
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = CustomerJourneyEnv("retail", num_customers=20_000, horizon_days=10_000, seed=args.seed)
    rules = agents.make("rule_based", env.single_observation_space, env.single_action_space,
                        catalogue=env.catalogue)
    started = time.perf_counter()
    log = ResponseLog.from_logged(collect(env, explore(rules, 0.1), args.rows, seed=args.seed,
                                          info_keys=RESPONSE_INFO_KEYS))
    logged = time.perf_counter() - started
    model = ResponseModel.fit(log, env.catalogue, n_members=args.members, seed=0)
    print(f"| rows | contacts | members | epochs | fit seconds | target |\n|---|---|---|---|---|---|\n"
          f"| {len(log):,} | {log.n_contacts:,} | {args.members} | {model.epochs} | "
          f"{model.fit_seconds:.1f} | <= 120 s: {'met' if model.fit_seconds <= 120 else 'MISSED'} |")
    print(f"\n(logging the rows took {logged:.0f} s; torch {torch.__version__}, 1 thread)")


if __name__ == "__main__":
    main()
