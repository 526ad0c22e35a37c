"""API load on the real stack: single decisions p50/p99 at a fixed rate, events ingested per second.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_console_bench \\
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python benchmarks/api_load.py

What it does (loopback only, every loop bounded in time):
1. creates the database if missing, migrates, and sets up a live campaign with the demo's full
   catalogue (4 channels x 4 offers x 3 windows + no contact, the demo's caps and quiet hours), an
   actor_critic live policy (the main agent; untrained weights cost the same to serve), --customers
   customers with consent and an API integration;
2. measures the decision service in-process with the SHAP explanation computed in the request and
   without it (what a worker would take off the request) - the choice in docs/api.md;
3. starts gunicorn (gunicorn.conf.py: warm-up, threaded workers whose concurrent single decisions
   are decided together, see crm_console.decisioning.batching) on 127.0.0.1 and drives it with
   locust (headless): single decisions arriving as a Poisson stream at each of --rates req/s for
   --seconds (p50/p99 with caps, the row lock, the audit write and the explanation; and how many
   requests each batch held, read back from the log: a batch's decisions share their decided_at),
   then the same request without its customer at --floor-rate req/s, refused (400) by the input
   check before any decision work (the floor: what gunicorn, Django, DRF and locust cost alone),
   then signed 1,000-event batches as fast as they go;
4. prints a markdown table with the commands and the machine, and where the CPU went in each phase
   (gunicorn, PostgreSQL, Redis, locust, and the machine as a whole from /proc/stat).

Locust, not wrk: locust's users send as an open-loop Poisson stream (see benchmarks/locustfile.py),
wrk keeps a closed loop of connections each waiting for its answer.

Targets (issue 6): decision p99 <= 30 ms at 200 req/s; >= 5,000 events/s through the webhook.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import runpy
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crm_console_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,25",
                        help="decision requests per second offered, one load phase each")
    parser.add_argument("--seconds", type=int, default=30, help="length of each load phase")
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn worker processes (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per gunicorn worker (default: gunicorn.conf.py's)")
    parser.add_argument("--floor-rate", type=int, default=200,
                        help="req/s of the same request refused at the input check, which measures "
                             "the framework and load generator alone (0: skip)")
    parser.add_argument("--event-users", type=int, default=3, help="parallel event senders")
    parser.add_argument("--service-samples", type=int, default=200)
    parser.add_argument("--port", type=int, default=0, help="0: any free loopback port")
    parser.add_argument("--shared", action="store_true",
                        help="say in the table that the machine was shared with other work")
    return parser.parse_args()


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DB)
    env.setdefault("REDIS_URL", DEFAULT_REDIS)
    env.update({
        "DJANGO_SETTINGS_MODULE": "crm_console.settings", "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
        "DJANGO_SUPPRESSION_HASH_KEY": "benchmark-only-suppression-key",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        # the throttle is per integration; the benchmark's one integration sends everything
        "API_THROTTLE_RATE": "100000000/hour",
    })
    return env


def database_create(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup(customers: int) -> dict[str, str]:
    """Fresh campaign, policy, customers and integration; returns the locust environment."""
    import django

    django.setup()
    from decimal import Decimal

    import gymnasium as gym
    import torch
    from django.core.management import call_command
    from django.utils import timezone

    torch.set_num_threads(1)
    import agents
    from agents.catalogue import DEFAULT_CHANNELS, DEFAULT_OFFERS, DEFAULT_SEND_WINDOWS
    CHANNELS = [c.key for c in DEFAULT_CHANNELS]
    OFFERS = [o.key for o in DEFAULT_OFFERS]
    WINDOW_NAMES = [w.key for w in DEFAULT_SEND_WINDOWS]
    from agents.features import observation_space
    from crm_console.api.services import api_integration_create
    from crm_console.campaigns import services as campaign_services
    from crm_console.campaigns.agents_bridge import catalogue_for_campaign
    from crm_console.campaigns.models import Campaign
    from crm_console.customers.models import Consent, Customer
    from crm_console.decisioning.services import policy_version_create

    call_command("migrate", verbosity=0)
    # earlier runs' campaigns stop serving: each web worker warms up every live campaign
    for earlier in Campaign.objects.filter(name__startswith="Bench campaign ",
                                           status=Campaign.Status.LIVE):
        campaign_services.campaign_update(campaign=earlier, status=Campaign.Status.PAUSED)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    policy = campaign_services.contact_policy_save(
        name=f"Bench policy {stamp}", overall_max_contacts=4, overall_window_days=7,
        min_gap_hours=Decimal("48"), quiet_hours_start=21, quiet_hours_end=8,
        channel_caps=[{"channel": "email", "max_contacts": 2, "window_days": 7},
                      {"channel": "sms", "max_contacts": 1, "window_days": 7},
                      {"channel": "push", "max_contacts": 3, "window_days": 7},
                      {"channel": "call_centre", "max_contacts": 1, "window_days": 30}])
    campaign = campaign_services.campaign_create(
        name=f"Bench campaign {stamp}", contact_policy=policy, holdout_share=Decimal("0.1"),
        time_zone="Europe/London")
    campaign_services.catalogue_generate(campaign=campaign, channels=CHANNELS, offers=OFFERS,
                                         send_windows=WINDOW_NAMES)
    campaign = campaign_services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)
    bridge = catalogue_for_campaign(campaign=campaign)
    agent = agents.make("actor_critic", observation_space(), gym.spaces.Discrete(len(bridge.action_ids)))
    policy_version_create(campaign=campaign, agent=agent, action_ids=bridge.action_ids, status="live")

    existing = Customer.objects.filter(external_id__startswith="bench-").count()
    if existing < customers:
        now = timezone.now()
        rows = Customer.objects.bulk_create(
            [Customer(external_id=f"bench-{i}", time_zone="Europe/London")
             for i in range(existing, customers)], batch_size=5000, ignore_conflicts=True)
        created = Customer.objects.filter(external_id__in=[r.external_id for r in rows])
        Consent.objects.bulk_create(
            [Consent(customer=c, channel=ch, granted=True, source="benchmark", recorded_at=now)
             for c in created for ch in CHANNELS], batch_size=10000)
    creds = api_integration_create(name=f"Bench CRM {stamp}",
                                   scopes=["events:write", "decisions:write"])
    return {"BENCH_TOKEN": creds.token, "BENCH_SECRET": creds.signing_secret,
            "BENCH_CAMPAIGN": str(campaign.pk), "BENCH_CUSTOMERS": str(customers)}


def batch_sizes(campaign_id: int, since: datetime, until: datetime) -> Counter:
    """How many decisions each batch held, from the log: one batch's decisions share decided_at."""
    from django.db.models import Count

    from crm_console.decisioning.models import Decision

    per_batch = (Decision.objects.filter(campaign_id=campaign_id, decided_at__range=(since, until))
                 .values("decided_at").annotate(n=Count("id")).values_list("n", flat=True))
    return Counter(per_batch)


def batch_summary(sizes: Counter) -> str:
    requests = sum(size * count for size, count in sizes.items())
    batches = sum(sizes.values())
    if not batches:
        return "-"
    shared = sum(size * count for size, count in sizes.items() if size > 1)
    return (f"{requests / batches:.2f} per batch, {100 * shared / requests:.0f} % of requests "
            f"shared one, largest {max(sizes)}")


def gunicorn_settings(workers: int | None, threads: int | None) -> tuple[int, int]:
    """The workers and threads gunicorn runs with: the arguments, else gunicorn.conf.py's."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return workers or config["workers"], threads or config["threads"]


def vacuum(url: str) -> None:
    """VACUUM ANALYZE: set-up and earlier runs leave dead rows (this PostgreSQL runs no autovacuum)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


class CpuMeter:
    """CPU seconds used by each group of processes, and by the whole machine, between two reads.

    A process's time includes its waited-for children's, so PostgreSQL backends that exit
    between the reads still count (in the postmaster's).
    """

    GROUPS = {"gunicorn": "gunicorn crm_console.wsgi", "PostgreSQL": "postgres",
              "Redis": "redis-server", "locust": "locust -f"}

    def __init__(self) -> None:
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        totals = dict.fromkeys(self.GROUPS, 0)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
            for group, needle in self.GROUPS.items():
                if (name == needle) if group == "PostgreSQL" else (needle in command):
                    totals[group] += ticks
                    break
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        totals["machine busy"] = sum(values) - values[3] - values[4]
        hz = os.sysconf("SC_CLK_TCK")
        return {k: v / hz for k, v in totals.items()}

    def used(self) -> dict[str, float]:
        end = self._read()
        return {k: end[k] - self.start[k] for k in end}


def service_timing(campaign_id: int, customers: int, samples: int) -> dict[str, float]:
    """In-process decide() with the explanation in the request vs without (a worker's share)."""
    import random

    import numpy as np

    from crm_console.campaigns.models import Campaign
    from crm_console.decisioning.batching import decision_create

    campaign = Campaign.objects.select_related("contact_policy").get(pk=campaign_id)
    out = {}
    for explain in (True, False, True):  # first pass warms the agent and explainer caches
        times = []
        for _ in range(samples):
            customer = f"bench-{random.randrange(customers)}"
            started = time.perf_counter()
            decision_create(campaign=campaign, customer_external_id=customer, explain=explain)
            times.append((time.perf_counter() - started) * 1000)
        out["with" if explain else "without"] = (float(np.percentile(times, 50)),
                                                 float(np.percentile(times, 99)))
    return out


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_start(env: dict[str, str], port: int, workers: int | None,
                   threads: int | None) -> subprocess.Popen:
    """gunicorn on 127.0.0.1:port, returned once every worker has warmed up.

    The port opens before the workers have loaded their policies and explainers (seconds each):
    timing from then on would measure a worker still warming up on the same two cores, and the
    requests queued on its connections meanwhile.
    """
    if not port_free(port):
        raise SystemExit(f"port {port} is busy; pass --port")
    command = [str(ROOT / ".venv/bin/gunicorn"), "crm_console.wsgi", "--config",
               str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
               "--log-level", "info"]
    if workers is not None:
        command += ["--workers", str(workers)]
    if threads is not None:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                               stderr=subprocess.PIPE, text=True)
    warmed = threading.Semaphore(0)

    def log_read() -> None:  # drained for the process's whole life, or gunicorn blocks on it
        for line in process.stderr:
            if "serving warmed up" in line or "serving warm-up failed" in line:
                warmed.release()
            if "[INFO]" not in line:
                sys.stderr.write(line)

    threading.Thread(target=log_read, daemon=True).start()
    deadline = time.time() + 120
    for _ in range(gunicorn_settings(workers, threads)[0]):
        if not warmed.acquire(timeout=max(0.0, deadline - time.time())) or process.poll() is not None:
            raise SystemExit("gunicorn's workers did not warm up")
    while port_free(port):
        if time.time() > deadline or process.poll() is not None:
            raise SystemExit("gunicorn did not start")
        time.sleep(0.2)
    return process


def locust_run(env: dict[str, str], port: int, user_class: str, users: int, seconds: int,
               folder: Path) -> tuple[dict[str, str], str, dict[str, float]]:
    prefix = folder / user_class
    command = [str(ROOT / ".venv/bin/locust"), "-f", str(ROOT / "benchmarks/locustfile.py"),
               "--headless", "--host", f"http://127.0.0.1:{port}", "-u", str(users),
               "-r", str(users), "-t", f"{seconds}s", "--csv", str(prefix), "--only-summary",
               "--stop-timeout", "5", user_class]
    meter = CpuMeter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=ROOT, env=env, check=False, timeout=seconds + 120,
                          capture_output=True, text=True)
    cpu = meter.used()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # locust has exited: its time is here
    cpu["locust"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    with open(f"{prefix}_stats.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] != "Aggregated"]
    if not rows:
        raise SystemExit(f"locust recorded no {user_class} request:\n{done.stderr[-3000:]}")
    with open(f"{prefix}_failures.csv") as handle:
        for failure in csv.DictReader(handle):  # what failed, so a failure count is never a mystery
            print(f"  {user_class}: {failure['Occurrences']} x {failure['Error']}", flush=True)
    return rows[0], " ".join(shlex.quote(c) for c in command), cpu


def warm(port: int, env: dict[str, str]) -> None:
    """One request per gunicorn worker loads the agent and explainer before timing starts."""
    import json
    import urllib.request

    body = json.dumps({"customer": "bench-0", "campaign": int(env["BENCH_CAMPAIGN"])}).encode()
    for _ in range(12):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/decisions", data=body, method="POST",
            headers={"Authorization": f"Bearer {env['BENCH_TOKEN']}",
                     "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    env = environment()
    os.environ.update(env)
    database_create(env["DATABASE_URL"])
    print(f"setting up {args.customers} customers on {env['DATABASE_URL']} ...", flush=True)
    env.update(setup(args.customers))
    vacuum(env["DATABASE_URL"])
    service = service_timing(int(env["BENCH_CAMPAIGN"]), args.customers, args.service_samples)
    env["BENCH_RATE_PER_USER"] = "1"
    args.port = args.port or free_port()
    gunicorn = gunicorn_start(env, args.port, args.workers, args.threads)
    try:
        warm(args.port, env)
        with tempfile.TemporaryDirectory() as folder:
            decision_phases = []
            for rate in [int(r) for r in args.rates.split(",")]:
                started = datetime.now(timezone.utc)
                phase = locust_run(env, args.port, "DecisionUser", rate, args.seconds, Path(folder))
                sizes = batch_sizes(int(env["BENCH_CAMPAIGN"]), started, datetime.now(timezone.utc))
                decision_phases.append((rate, *phase, sizes))
            floor = None
            if args.floor_rate:
                floor = locust_run(env, args.port, "RefusedDecisionUser", args.floor_rate,
                                   args.seconds, Path(folder))
            events, events_cmd, events_cpu = locust_run(env, args.port, "EventBatchUser",
                                                        args.event_users, args.seconds, Path(folder))
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)

    batch = int(env.get("BENCH_BATCH", "1000"))
    ok_batches = int(events["Request Count"]) - int(events["Failure Count"])
    events_per_s = ok_batches * batch / args.seconds
    load = f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    shared = (f" - shared with other sessions' work ({load}): timings are noisy" if args.shared
              else f" ({load})")
    print()
    print(f"API load, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, machine: {machine()}{shared}")
    workers, threads = gunicorn_settings(args.workers, args.threads)
    print(f"gunicorn {workers} workers x {threads} threads + PostgreSQL + Redis on loopback; locust load "
          f"generator on the same machine; live policy actor_critic over "
          f"{49} actions, {args.customers} customers, caps + quiet hours + row lock + audit row + "
          "SHAP explanation in every decision")
    print()
    print("| measure | p50 | p99 | throughput | failures | target |")
    print("|---|---|---|---|---|---|")
    for rate, decisions, _, _, _ in decision_phases:
        print(f"| single decision over HTTP at {rate} req/s offered | "
              f"{decisions['50%']} ms | {decisions['99%']} ms | "
              f"{float(decisions['Requests/s']):.0f} req/s | "
              f"{decisions['Failure Count']} / {decisions['Request Count']} | "
              f"{'p99 <= 30 ms' if rate == 200 else ''} |")
    if floor is not None:
        refused = floor[0]
        print(f"| the same request refused at the input check (400) at {args.floor_rate} req/s: "
              f"the framework and locust alone | {refused['50%']} ms | {refused['99%']} ms | "
              f"{float(refused['Requests/s']):.0f} req/s | "
              f"{refused['Failure Count']} / {refused['Request Count']} | |")
    print(f"| events through POST /api/v1/events ({batch}/batch, {args.event_users} senders) | "
          f"{events['50%']} ms/batch | {events['99%']} ms/batch | {events_per_s:,.0f} events/s | "
          f"{events['Failure Count']} / {events['Request Count']} | >= 5,000 events/s |")
    w, wo = service["with"], service["without"]
    print(f"| decide() in-process, explanation in the request | {w[0]:.1f} ms | {w[1]:.1f} ms | "
          f"| | |")
    print(f"| decide() in-process, explanation left to a worker | {wo[0]:.1f} ms | {wo[1]:.1f} ms | "
          f"| | |")
    print()
    print()
    print("CPU per decision (ms of CPU time per request served, by process group):")
    print()
    groups = list(CpuMeter.GROUPS) + ["machine busy"]
    print("| phase | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for rate, decisions, _, cpu, _ in decision_phases:
        served = max(1.0, float(decisions["Request Count"]))
        print(f"| decisions at {rate}/s | " + " | ".join(f"{cpu[g] * 1000 / served:.2f}" for g in groups) + " |")
    if floor is not None:
        served = max(1.0, float(floor[0]["Request Count"]))
        print(f"| refused at the input check at {args.floor_rate}/s | " +
              " | ".join(f"{floor[2][g] * 1000 / served:.2f}" for g in groups) + " |")
    batches = max(1.0, float(events["Request Count"]))
    print("| events, per 1,000-event batch | " + " | ".join(f"{events_cpu[g] * 1000 / batches:.0f}" for g in groups) + " |")
    print()
    print("Single decisions decided together (crm_console.decisioning.batching):")
    print()
    for rate, _, _, _, sizes in decision_phases:
        print(f"- at {rate}/s: {batch_summary(sizes)}")
    print()
    for rate, _, command, _, _ in decision_phases:
        print(f"decisions at {rate}/s: `{command}`")
    if floor is not None:
        print(f"refused at the input check: `{floor[1]}`")
    print(f"events: `{events_cmd}`")
    print(f"this script: `{' '.join(shlex.quote(a) for a in sys.argv)}`")


if __name__ == "__main__":
    main()
