"""How long does the dashboard take on the server? (issue 15: <= 300 ms on the demo)

Seeds the `make run` demo workspace (2,000 customers, 90 days) into its own SQLite file unless it
is there, then requests the dashboard through Django's test client as the demo marketer and prints
the server time of each kind of request:

  cold       the first request after the cache is cleared (reads every decision of the period)
  warm       later requests (no decision changed: the whole result comes from the cache)
  new        each request right after one more decision is logged today (today is read again)
  repriced   each request right after an old decision (60 days ago) is repriced (its day is
             read again)

    DJANGO_DEBUG=true .venv/bin/python benchmarks/dashboard_time.py [--customers 2000] [--days 90]

The database is var/bench-dashboard.sqlite3 (DATABASE_URL overrides it); every run adds
`--requests` decisions to it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_DEBUG", "true")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench-dashboard.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    call_command("seed_demo", seed=0, customers=args.customers, days=args.days, if_missing=True)
    print(f"demo ready in {time.perf_counter() - started:.1f} s")
    from crm_console.dashboards.selectors import default_campaign
    from crm_console.decisioning.attribution import decisions_reprice
    from crm_console.decisioning.models import Decision

    campaign = default_campaign()
    client = Client()
    client.force_login(get_user_model().objects.get(username="marketer"))
    print(f"{Decision.objects.count():,} decisions · {platform.processor() or platform.machine()} · "
          f"{os.cpu_count()} cpus · {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")

    def timed(period: str) -> float:
        t0 = time.perf_counter()
        response = client.get("/", {"days": period})
        assert response.status_code == 200
        return (time.perf_counter() - t0) * 1000

    def log_a_decision() -> None:
        # a copy of the newest decision, logged now: what a live campaign does all day
        decision = Decision.objects.filter(campaign=campaign).order_by("-id").first()
        decision.pk, decision.decided_at = None, timezone.now()
        decision.reward = decision.attributed_at = None
        decision.reward_components = {}
        decision.save()

    old = list(Decision.objects.filter(
        campaign=campaign, decided_at__lt=timezone.now() - timedelta(days=60))
        .order_by("-decided_at").values_list("id", flat=True)[:args.requests])

    def reprice_an_old_decision() -> None:
        decisions_reprice(campaign=campaign, decision_ids=[old.pop()])

    for period in ("90", "0"):
        cache.clear()
        cold = timed(period)
        warm = [timed(period) for _ in range(args.requests)]
        print(f"period {period or 'all':>3} days: cold {cold:6.0f} ms · warm p50 "
              f"{statistics.median(warm):4.0f} ms, max {max(warm):4.0f} ms")
        for label, change in (("new decision", log_a_decision),
                              ("old repriced", reprice_an_old_decision)):
            timings = []
            for _ in range(args.requests // 2):
                change()
                timings.append(timed(period))
            print(f"    right after each {label}: p50 {statistics.median(timings):4.0f} ms, "
                  f"max {max(timings):4.0f} ms")


if __name__ == "__main__":
    main()
