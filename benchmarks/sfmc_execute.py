"""Journey Builder's execute call, in-process: latency of the split's answer for a warm campaign.

    .venv/bin/python benchmarks/sfmc_execute.py                  # embedded SQLite (a temp file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_console_bench \\
        .venv/bin/python benchmarks/sfmc_execute.py              # PostgreSQL

Set-up: a live actor_critic campaign over the demo's full catalogue (4 channels x offers x
windows), --customers customers with consent on every channel, a Journey Builder activity with
its JWT signing secret. Each call is what Journey Builder sends: a PyJWT-signed HS256 token as
the body (application/jwt), through Django's whole request stack (Django's test client, no
network). After --warm calls (the serving set-up loaded, the policy read), it times:
1. first calls: every call a new activity instance, so each makes, explains and logs a decision;
2. retries: the same calls again, answered from the first answer (no decision).
The issue's target: p99 <= 50 ms for first calls.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "benchmark-jwt-signing-secret-0123456789abcdef"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=500, help="first calls timed")
    parser.add_argument("--warm", type=int, default=30, help="untimed calls first")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def setup(customers: int) -> int:
    """Migrate, then a live campaign, its customers and its activity; returns the campaign id."""
    import django

    django.setup()
    import gymnasium as gym
    import torch
    from django.core.management import call_command
    from django.utils import timezone

    torch.set_num_threads(1)
    import agents
    from agents.catalogue import DEFAULT_CHANNELS, DEFAULT_OFFERS, DEFAULT_SEND_WINDOWS
    from agents.features import observation_space
    from crm_console.campaigns import services as campaign_services
    from crm_console.campaigns.agents_bridge import catalogue_for_campaign
    from crm_console.campaigns.models import Campaign
    from crm_console.customers.models import Consent, Customer
    from crm_console.decisioning.services import policy_version_create
    from crm_console.sfmc.models import SfmcActivity

    call_command("migrate", verbosity=0)
    channels = [c.key for c in DEFAULT_CHANNELS]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    from decimal import Decimal

    for earlier in Campaign.objects.filter(status=Campaign.Status.LIVE,
                                           name__startswith="SFMC bench "):
        campaign_services.campaign_update(campaign=earlier, status=Campaign.Status.PAUSED)
    policy = campaign_services.contact_policy_save(
        name=f"SFMC bench policy {stamp}", overall_max_contacts=4, overall_window_days=7,
        min_gap_hours=Decimal("48"), quiet_hours_start=21, quiet_hours_end=8,
        channel_caps=[{"channel": "email", "max_contacts": 2, "window_days": 7},
                      {"channel": "sms", "max_contacts": 1, "window_days": 7}])
    campaign = campaign_services.campaign_create(
        name=f"SFMC bench {stamp}", contact_policy=policy, holdout_share=Decimal("0.1"),
        time_zone="Europe/London")
    campaign_services.catalogue_generate(
        campaign=campaign, channels=channels, offers=[o.key for o in DEFAULT_OFFERS],
        send_windows=[w.key for w in DEFAULT_SEND_WINDOWS])
    campaign = campaign_services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)
    bridge = catalogue_for_campaign(campaign=campaign)
    agent = agents.make("actor_critic", observation_space(),
                        gym.spaces.Discrete(len(bridge.action_ids)))
    policy_version_create(campaign=campaign, agent=agent, action_ids=bridge.action_ids,
                          status="live")
    existing = Customer.objects.filter(external_id__startswith="sfmc-bench-").count()
    if existing < customers:
        now = timezone.now()
        rows = Customer.objects.bulk_create(
            [Customer(external_id=f"sfmc-bench-{i}", time_zone="Europe/London")
             for i in range(existing, customers)], batch_size=2000)
        Consent.objects.bulk_create(
            [Consent(customer=c, channel=ch, granted=True, source="benchmark", recorded_at=now)
             for c in rows for ch in channels], batch_size=5000)
    SfmcActivity.objects.create(campaign=campaign, jwt_signing_secret=SECRET)
    return campaign.pk


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    args = parse_args()
    random.seed(args.seed)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    folder = None
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import api_load  # the same database creation as the API benchmarks

        api_load.database_create(os.environ["DATABASE_URL"])
    if "DATABASE_URL" not in os.environ:
        folder = tempfile.TemporaryDirectory()
        os.environ["DATABASE_URL"] = f"sqlite:///{folder.name}/bench.sqlite3"
    started = time.perf_counter()
    campaign_id = setup(args.customers)
    print(f"set-up ({args.customers} customers, {os.environ['DATABASE_URL'].split(':')[0]}): "
          f"{time.perf_counter() - started:.1f} s", flush=True)

    import jwt
    from django.test import Client

    client = Client()
    path = f"/integrations/sfmc/{campaign_id}/execute"

    def call(instance: str, contact: str) -> float:
        now = int(time.time())
        token = jwt.encode({
            "inArguments": [{"contactKey": contact}], "outArguments": [],
            "activityObjectID": "bench-activity", "journeyId": "bench-journey",
            "activityId": "bench-activity", "definitionInstanceId": "bench-definition",
            "activityInstanceId": instance, "keyValue": contact, "mode": 0,
            "iat": now, "exp": now + 300}, SECRET, algorithm="HS256")
        began = time.perf_counter()
        response = client.generic("POST", path, token.encode(), content_type="application/jwt")
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200 or "branchResult" not in response.json():
            raise SystemExit(f"execute answered {response.status_code}: {response.content!r}")
        return elapsed

    for i in range(args.warm):
        call(f"warm-{i}", f"sfmc-bench-{random.randrange(args.customers)}")
    sent = [(f"run-{i}", f"sfmc-bench-{random.randrange(args.customers)}")
            for i in range(args.calls)]
    cpu = time.process_time()
    first = [call(instance, contact) for instance, contact in sent]
    cpu_first = (time.process_time() - cpu) * 1000 / len(sent)
    retries = [call(instance, contact) for instance, contact in sent]

    from crm_console.decisioning.models import Decision
    decided = Decision.objects.filter(campaign_id=campaign_id).count()
    print(f"{'calls':<28}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, values in (("first call (decides)", first), ("retry (first answer)", retries)):
        print(f"{label:<28}{len(values):>6}{statistics.median(values):>9.1f}"
              f"{percentile(values, 95):>9.1f}{percentile(values, 99):>9.1f}{max(values):>9.1f}")
    print(f"CPU per first call: {cpu_first:.1f} ms; decisions logged: {decided} "
          f"(warm-up {args.warm} + {args.calls} first calls; retries made none)")
    if folder is not None:
        folder.cleanup()


if __name__ == "__main__":
    main()
