"""`manage.py evaluate_policy --policy-version <id>`: OPE of a candidate vs the live policy and holdout."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from crm_console.training import services
from crm_console.training.management.commands._common import version_from


class Command(BaseCommand):
    help = "Off-policy evaluation (IPS, SNIPS, DR with 95 % intervals) stored on the version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--policy-version", type=int, required=True, help="PolicyVersion id")

    def handle(self, *args, policy_version, **options) -> None:
        report = services.policy_version_evaluate(policy_version=version_from(policy_version))
        if report.get("error"):
            self.stderr.write(report["error"])
            return
        self.stdout.write("| policy | method | estimate | 95 % CI | ESS |")
        self.stdout.write("|---|---|---|---|---|")
        for name, estimates in report["estimates"].items():
            for method in ("ips", "snips", "dr"):
                e = estimates[method]
                self.stdout.write(f"| {name} | {method} | {e['value']:.4f} | "
                                  f"[{e['lower']:.4f}, {e['upper']:.4f}] | {e['effective_sample_size']:.0f} |")
        self.stdout.write(f"Guardrail: {report['guardrail']['explanation']}")
