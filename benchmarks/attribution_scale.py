"""Attribution at scale (issue 18): one campaign with 1M decisions, priced on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_console_attribution \\
    .venv/bin/python benchmarks/attribution_scale.py --decisions 1000000 --orders 200000

Builds a campaign whose --decisions decisions (over --customers customers, one a minute apart)
and --orders "Order Completed" events (each a few hours after one of them) are not priced yet,
then times `decisions_attribute` (crm_console.decisioning.attribution) three ways: the first
pricing of everything, a second call with nothing new (what the ten-minute schedule costs a quiet
campaign), and a call after 1,000 new orders. Target: the first pricing <= 120 s.

The rows are made by copying one ORM-made decision and event with INSERT ... SELECT over
generate_series: building a million rows through the ORM would take longer than what is measured.
The database is the script's own: it refuses one that holds other campaigns.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=100_000)
    return parser.parse_args()


def rows_copy(model, template_id: int, count: int, replace: dict[str, str]) -> None:
    """`count` copies of row `template_id` of `model`, the columns in `replace` computed from the
    series number `i` (SQL expressions)."""
    from django.db import connection

    quote = connection.ops.quote_name
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    selected = [replace.get(column, f"t.{quote(column)}") for column in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "
            f"SELECT {', '.join(selected)} FROM {quote(model._meta.db_table)} t, "
            f"generate_series(1, %s) AS i WHERE t.id = %s", [count, template_id])


def build(decisions: int, orders: int, customers: int) -> int:
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from crm_console.campaigns.models import Campaign
    from crm_console.customers.models import Customer, Event
    from crm_console.decisioning.models import Decision
    from tests.factories import DecisionFactory

    call_command("migrate", verbosity=0)
    if Campaign.objects.exists():
        raise SystemExit("this database holds campaigns: give the benchmark its own DATABASE_URL")
    started = time.perf_counter()
    Customer.objects.bulk_create([Customer(external_id=f"scale-{i}") for i in range(customers)],
                                 batch_size=10_000)
    first_customer = Customer.objects.order_by("id").values_list("id", flat=True).first()
    template = DecisionFactory(customer_id=first_customer, reward=None, attributed_at=None)
    start = timezone.now() - timedelta(days=decisions // 1440 + 30)
    rows_copy(Decision, template.pk, decisions - 1, {
        "customer_id": f"{first_customer} + (i %% {customers})",
        "decided_at": f"TIMESTAMPTZ '{start.isoformat()}' + i * INTERVAL '1 minute'",
        "send_at": f"TIMESTAMPTZ '{start.isoformat()}' + i * INTERVAL '1 minute'",
    })
    order = Event.objects.create(message_id="scale-order-0", customer_id=first_customer,
                                 type="track", name="Order Completed",
                                 properties={"revenue": 30.0}, timestamp=start)
    step = max(1, decisions // max(1, orders))
    rows_copy(Event, order.pk, orders, {
        "message_id": "'scale-order-' || i",
        "customer_id": f"{first_customer} + ((i * {step}) %% {customers})",
        "timestamp": f"TIMESTAMPTZ '{start.isoformat()}' + (i * {step}) * INTERVAL '1 minute' "
                     "+ INTERVAL '3 hours'",
    })
    from django.db import connection

    with connection.cursor() as cursor:  # statistics, as autovacuum gathers after a bulk load
        cursor.execute("ANALYZE")
    print(f"built {decisions:,} decisions, {orders:,} orders, {customers:,} customers in "
          f"{time.perf_counter() - started:.0f} s")
    return template.campaign_id


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_console.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # a benchmark, not a deployment: no secrets
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("needs DATABASE_URL=postgres://... (a database of its own)")
    import django

    django.setup()
    from datetime import timedelta

    from django.utils import timezone

    from crm_console.campaigns.models import Campaign
    from crm_console.customers.models import Event
    from crm_console.decisioning.attribution import decisions_attribute
    from crm_console.decisioning.models import Decision

    campaign = Campaign.objects.get(pk=build(args.decisions, args.orders, args.customers))
    timings = []
    for label in ("first pricing of everything", "again, nothing new"):
        started = time.perf_counter()
        attributed = decisions_attribute(campaign=campaign)
        timings.append((label, time.perf_counter() - started, attributed))
    latest = Decision.objects.filter(campaign=campaign).order_by("-decided_at").first()
    Event.objects.bulk_create([
        Event(message_id=f"scale-new-{i}", customer_id=latest.customer_id, type="track",
              name="Order Completed", properties={"revenue": 10.0},
              timestamp=min(timezone.now(), latest.decided_at + timedelta(hours=1)))
        for i in range(1_000)])
    started = time.perf_counter()
    attributed = decisions_attribute(campaign=campaign)
    timings.append(("after 1,000 new orders", time.perf_counter() - started, attributed))

    unpriced = Decision.objects.filter(campaign=campaign, reward__isnull=True).count()
    print(f"\nAttribution at scale, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL\n")
    print("| call | wall s | outcome events attributed |\n|---|---|---|")
    for label, seconds, count in timings:
        print(f"| {label} | {seconds:.1f} | {count:,} |")
    print(f"\n{Decision.objects.filter(campaign=campaign).count():,} decisions, {unpriced} "
          f"left unpriced; target: first pricing <= 120 s "
          f"({'met' if timings[0][1] <= 120 else 'missed'})")
    print(f"this script: `benchmarks/attribution_scale.py --decisions {args.decisions} "
          f"--orders {args.orders} --customers {args.customers}`")


if __name__ == "__main__":
    main()
