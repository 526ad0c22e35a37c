"""Train an agent briefly on the simulator and compare it with random, paired (shared by tests).

Every policy meets the same held-out cohort and daily draws (`agents.evaluate`, common random
numbers), so `uplift` is a paired comparison and a fixed seed makes the test deterministic.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch

try:  # installed with scikit-learn; multi-threaded BLAS on small matrices is 4x slower on 2 cores
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

import agents
from agents.envs import CustomerJourneyEnv
from agents.evaluate import KPI, EvaluationReport, evaluate, uplift

COHORT = dict(customers=1000, days=60, seed=7)


@functools.cache
def random_report(scenario: str = "retail") -> EvaluationReport:
    return evaluate("random", scenario, **COHORT)


def uplift_vs_random(name: str, steps: int = 25_000, scenario: str = "retail",
                     **hyperparams: Any) -> KPI:
    """Relative change of the mean return vs uniformly random, after `steps` customer-days."""
    torch.set_num_threads(1)
    single_blas = (threadpool_limits(1, user_api="blas") if threadpool_limits
                   else contextlib.nullcontext())
    with single_blas:
        env = CustomerJourneyEnv(scenario, num_customers=256, seed=0)
        agent = agents.make(name, env.single_observation_space, env.single_action_space, seed=0,
                            **hyperparams)
        agent.fit(env, total_steps=steps)
        report = evaluate(agent, scenario, **COHORT)
    assert report.cap_violations_total == 0
    return uplift(report, random_report(scenario), "mean_return")
