"""`manage.py train_policy --campaign <id|name> --algorithm actor_critic --budget 200000`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

import agents
from crm_console.training import services
from crm_console.training.management.commands._common import campaign_from, user_from
from crm_console.training.models import TrainingRun


class Command(BaseCommand):
    help = ("Train a candidate policy for a campaign in this process (the same service the "
            "train_policy Celery task runs), then evaluate it off-policy.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", help="campaign id or name (default: the only one)")
        parser.add_argument("--algorithm", default="actor_critic", choices=agents.AGENT_NAMES)
        parser.add_argument("--budget", type=int, default=200_000, help="simulated customer-days")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--population", type=int, default=1,
                            help="policies trained with different seeds; the best on held-out "
                                 "simulated customers is kept")
        parser.add_argument("--no-warm-start", action="store_true")
        parser.add_argument("--no-evaluate", action="store_true")
        parser.add_argument("--user", help="username recorded as the run's creator")
        parser.add_argument("--queue", action="store_true",
                            help="enqueue on the training queue instead of running here")

    def handle(self, *args, campaign, algorithm, budget, seed, population, no_warm_start,
               no_evaluate, user, queue, **options) -> None:
        try:
            run = services.training_run_create(
                campaign=campaign_from(campaign), algorithm=algorithm, budget_steps=budget,
                warm_start=not no_warm_start, seed=seed, population_size=population,
                created_by=user_from(user), enqueue=queue)
        except ValidationError as refused:
            raise CommandError("; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in refused.message_dict.items()
            )) from refused
        if queue:
            self.stdout.write(f"Training run #{run.pk} queued.")
            return
        self.stdout.write(f"Training run #{run.pk}: {algorithm}, {budget} customer-days"
                          + (f" x {population} policies" if population > 1 else "") + " ...")
        run = services.training_run_execute(training_run_id=run.pk, task_id=f"command-{run.pk}")
        if run.status != TrainingRun.Status.SUCCEEDED:
            self.stderr.write(f"Run #{run.pk} {run.status}: {run.error.splitlines()[0] if run.error else ''}")
            return
        version = run.policy_version
        kpis = version.metrics.get("candidate", {}).get("mean_return", {})
        self.stdout.write(self.style.SUCCESS(
            f"Candidate v{version.version} (id {version.pk}); simulator mean return "
            f"{kpis.get('value', float('nan')):.2f}"))
        if not no_evaluate:
            report = services.policy_version_evaluate(policy_version=version)
            guard = report.get("guardrail") or {}
            self.stdout.write(f"Off-policy evaluation: {guard.get('explanation', report.get('error'))}")
