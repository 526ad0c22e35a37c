"""Where one decision's time goes: a lone request over HTTP, its phases in-process, batch sizes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_console_bench \\
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python benchmarks/decision_latency.py

The service time behind benchmarks/api_load.py's percentiles, on the same set-up (its `setup`:
a live actor_critic campaign over the demo's full catalogue, --customers customers):
1. lone requests: one keep-alive client sends single decisions one at a time (10 ms apart) to
   gunicorn as gunicorn.conf.py runs it - the latency no queue adds to;
2. one decision in-process, phase by phase (wall and this process's CPU, p50 over --samples);
3. `decisions_create` for batches of 1, 2, 4 and 8 customers: what deciding requests together
   saves (crm_console.decisioning.batching).
Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_load  # noqa: E402  (the same set-up, gunicorn and machine description)

PHASES = {  # (module, function) timed inside one decisions_create call
    "locked customer read": ("crm_console.decisioning.services", "_customers_for_decision"),
    "features, consent, caps, mask": ("crm_console.decisioning.serving", "customer_inputs"),
    "policy probabilities": ("crm_console.decisioning.policy_runtime", "policy_probabilities"),
    "choice (holdout, exploration, draw)": ("crm_console.decisioning.services", "choose"),
    "SHAP explanation": ("crm_console.decisioning.services", "_explanations_compute"),
    "profiles updated": ("crm_console.decisioning.services", "_profiles_record_contacts"),
    "write (one statement)": ("crm_console.decisioning.storage", "decisions_write"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=300, help="lone requests over HTTP")
    parser.add_argument("--samples", type=int, default=300, help="in-process decisions timed")
    return parser.parse_args()


def lone_requests(env: dict[str, str], count: int, customers: int) -> list[float]:
    port = api_load.free_port()
    gunicorn = api_load.gunicorn_start(env, port, None, None)
    try:
        api_load.warm(port, env)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies = []
        for _ in range(count):
            body = json.dumps({"customer": f"bench-{random.randrange(customers)}",
                               "campaign": int(env["BENCH_CAMPAIGN"])})
            started = time.perf_counter()
            connection.request("POST", "/api/v1/decisions", body,
                               {"Authorization": f"Bearer {env['BENCH_TOKEN']}",
                                "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 201:
                raise SystemExit(f"decision answered {response.status}")
            time.sleep(0.01)
        connection.close()
        return latencies
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)


def timed(timings: dict, label: str, function):
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            timings[label].append(((time.perf_counter() - wall) * 1000,
                                   (time.process_time() - cpu) * 1000))
    return wrapper


def phases(campaign_id: int, samples: int, customers: int) -> dict[str, tuple[float, float]]:
    import importlib

    from crm_console.decisioning import services

    campaign = services.campaign_for_decisions(campaign_id=campaign_id)
    timings: dict[str, list] = defaultdict(list)
    originals = []
    for label, (module_name, name) in PHASES.items():
        module = importlib.import_module(module_name)
        originals.append((module, name, getattr(module, name)))
        setattr(module, name, timed(timings, label, getattr(module, name)))
    decide = timed(timings, "decisions_create, whole", services.decisions_create)
    try:
        for round_ in range(2):  # the first round warms caches and prepares statements
            timings.clear()
            for _ in range(samples):
                decide(campaign=campaign, customer_external_ids=[f"bench-{random.randrange(customers)}"])
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    return {label: tuple(np.median(np.array(values), axis=0)) for label, values in timings.items()}


def batch_costs(campaign_id: int, samples: int, customers: int) -> dict[int, tuple[float, float]]:
    from crm_console.decisioning import services

    campaign = services.campaign_for_decisions(campaign_id=campaign_id)
    costs = {}
    for size in (1, 2, 4, 8):
        walls, cpus = [], []
        for _ in range(max(20, samples // size)):
            ids = [f"bench-{i}" for i in random.sample(range(customers), size)]
            wall, cpu = time.perf_counter(), time.process_time()
            services.decisions_create(campaign=campaign, customer_external_ids=ids)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        costs[size] = (float(np.median(walls)), float(np.median(cpus)))
    return costs


def write_paths(campaign_id: int, samples: int, customers: int) -> dict[int, dict[str, tuple]]:
    """storage's one statement against the ORM's three writes: the same decided batches (made by
    decisions_create, their write intercepted) written both ways, each in a rolled-back
    transaction, alternating."""
    import copy

    from django.db import transaction

    from crm_console.decisioning import services, storage

    class Intercepted(Exception):
        pass

    def intercept(decisions, explanations, batch_customers):
        batches.append((decisions, explanations, batch_customers))
        raise Intercepted

    campaign = services.campaign_for_decisions(campaign_id=campaign_id)
    paths = {"one statement": storage.decisions_write_one_statement,
             "ORM (3 writes)": storage.decisions_write_orm}
    results: dict[int, dict[str, tuple]] = {}
    original = storage.decisions_write
    for size in (1, 8, 64):
        batches: list[tuple] = []
        storage.decisions_write = intercept
        try:
            for _ in range(max(10, samples // (4 * size))):
                ids = [f"bench-{i}" for i in random.sample(range(customers), size)]
                try:
                    services.decisions_create(campaign=campaign, customer_external_ids=ids)
                except Intercepted:
                    pass
        finally:
            storage.decisions_write = original
        timings: dict[str, list] = defaultdict(list)
        for round_ in range(2):  # the first round prepares statements
            for batch in batches:
                for label, write in paths.items():
                    decisions, explanations, batch_customers = copy.deepcopy(batch)
                    with transaction.atomic():
                        wall, cpu = time.perf_counter(), time.process_time()
                        write(decisions, explanations, batch_customers)
                        if round_:
                            timings[label].append(((time.perf_counter() - wall) * 1000,
                                                   (time.process_time() - cpu) * 1000))
                        transaction.set_rollback(True)
        results[size] = {label: tuple(np.median(np.array(values), axis=0))
                         for label, values in timings.items()}
    return results


def main() -> None:
    args = parse_args()
    env = api_load.environment()
    os.environ.update(env)
    api_load.database_create(env["DATABASE_URL"])
    env.update(api_load.setup(args.customers))
    api_load.vacuum(env["DATABASE_URL"])
    campaign_id = int(env["BENCH_CAMPAIGN"])
    lone = lone_requests(env, args.requests, args.customers)
    phase_times = phases(campaign_id, args.samples, args.customers)
    costs = batch_costs(campaign_id, args.samples, args.customers)
    writes = write_paths(campaign_id, args.samples, args.customers)
    workers, threads = api_load.gunicorn_settings(None, None)

    print(f"\nDecision latency, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, machine: "
          f"{api_load.machine()}; gunicorn {workers} workers x {threads} threads, PostgreSQL + "
          f"Redis on loopback, live actor_critic, {args.customers} customers\n")
    p50, p90, p99 = np.percentile(lone, [50, 90, 99])
    print(f"Lone requests over HTTP (one keep-alive client, {len(lone)} requests 10 ms apart): "
          f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms\n")
    print("| one decision in-process | wall p50 | CPU p50 |")
    print("|---|---|---|")
    for label, (wall, cpu) in sorted(phase_times.items(), key=lambda item: -item[1][0]):
        print(f"| {label} | {wall:.2f} ms | {cpu:.2f} ms |")
    print("\n| customers in one decisions_create | wall p50 | CPU p50 | CPU per decision |")
    print("|---|---|---|---|")
    for size, (wall, cpu) in costs.items():
        print(f"| {size} | {wall:.2f} ms | {cpu:.2f} ms | {cpu / size:.2f} ms |")
    print("\n| decisions written (rolled back) | one statement wall / CPU p50 | ORM (3 writes) "
          "wall / CPU p50 |")
    print("|---|---|---|")
    for size, by_path in writes.items():
        one, orm = by_path["one statement"], by_path["ORM (3 writes)"]
        print(f"| {size} | {one[0]:.2f} / {one[1]:.2f} ms | {orm[0]:.2f} / {orm[1]:.2f} ms |")
    print(f"\nthis script: `{' '.join(sys.argv)}`")


if __name__ == "__main__":
    main()
