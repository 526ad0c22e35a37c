"""`python manage.py seed_demo --seed 0`: create the demo workspace (idempotent)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from crm_console.demo_workspace import demo_workspace_exists, demo_workspace_seed


class Command(BaseCommand):
    help = (
        "Create a retail demo workspace: campaign, 4x4x3 catalogue + no contact, reward weights, "
        "contact policy, customers with 90 days of simulated history logged as real decisions "
        "and events, and one user per role. Running it again changes nothing but the demo logins."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--if-missing", action="store_true",
                            help="Only report when the workspace already exists.")
        parser.add_argument("--force", action="store_true",
                            help="Allow seeding with DEBUG off (demo passwords are public).")

    def handle(self, *args, seed: int, customers: int, days: int, if_missing: bool, force: bool,
               **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates users with public demo passwords; "
                               "it runs only with DJANGO_DEBUG=true (or --force).")
        if customers < 1 or days < 7:
            raise CommandError("--customers must be >= 1 and --days >= 7")
        existed = demo_workspace_exists()
        started = time.perf_counter()
        summary = demo_workspace_seed(seed=seed, customers=customers, days=days,
                                      progress=lambda message: self.stdout.write(message))
        if existed:
            self.stdout.write("Demo workspace already present: nothing added.")
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Demo workspace created in {time.perf_counter() - started:.0f} s: "
                f"{summary.customers} customers, {summary.decisions} decisions, "
                f"{summary.events} events."
            ))
        self.stdout.write("Log in to the console (the address `make run` prints) with:")
        for username, role, password in summary.users:
            self.stdout.write(f"  {role:<20} {username:<10} password: {password}")
