"""`manage.py train_demo_policy`: the demo's first RL policy, trained, evaluated, guarded-promoted."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from crm_console.demo_workspace import (
    DEMO_TRAINING_BUDGET, demo_policy_train, demo_workspace_exists,
)


class Command(BaseCommand):
    help = ("Train an actor_critic for the demo campaign (warm start on its logged history), "
            "evaluate it off-policy and promote it only through the guardrail. Runs once: later "
            "calls report the first result.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--budget", type=int, default=DEMO_TRAINING_BUDGET,
                            help="simulated customer-days")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force-reason", default="",
                            help="if the guardrail refuses, force-promote as the demo admin with "
                                 "this written reason (recorded as a forced promotion)")

    def handle(self, *args, budget: int, seed: int, force_reason: str, **options) -> None:
        if not demo_workspace_exists():
            raise CommandError("no demo workspace: run `manage.py seed_demo` first")
        started = time.perf_counter()
        summary = demo_policy_train(budget_steps=budget, seed=seed, force_reason=force_reason,
                                    progress=lambda message: self.stdout.write(message))
        if not summary.trained:
            self.stdout.write(f"Demo policy already trained (run #{summary.training_run_id}; "
                              f"{'live' if summary.promoted else 'not promoted'}).")
            return
        style = self.style.SUCCESS if summary.promoted else self.style.WARNING
        self.stdout.write(style(
            f"{'Promoted' if summary.promoted else 'Kept as a candidate'} in "
            f"{time.perf_counter() - started:.0f} s: {summary.reason}"))
