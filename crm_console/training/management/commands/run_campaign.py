"""`manage.py run_campaign`: decide today's batch for a campaign and hand it to a channel adapter."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from crm_console.decisioning.models import Decision
from crm_console.training.management.commands._common import campaign_from
from crm_console.training.services import campaign_run

BATCH_SOURCE = "batch campaign run"


class Command(BaseCommand):
    help = ("Batch-decide every (non-churned) customer of a campaign through the live decision "
            "service - caps, consent, quiet hours and holdout as for an API decision - and hand "
            "the decisions to an adapter (default: the JSON-lines file adapter).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", help="id or name (default: the only campaign)")
        parser.add_argument("--chunk", type=int, default=1000, help="customers scored per call")
        parser.add_argument("--explain", action="store_true",
                            help="store each decision's SHAP explanation now")
        parser.add_argument("--adapter", choices=["file", "console"], default="file")
        parser.add_argument("--once-per-day", action="store_true",
                            help="do nothing if this campaign already had a batch run today")

    def handle(self, *args, campaign: str | None, chunk: int, explain: bool, adapter: str,
               once_per_day: bool, **options) -> None:
        target = campaign_from(campaign)
        today = timezone.localdate()
        if once_per_day and Decision.objects.filter(
            campaign=target, context__source=BATCH_SOURCE, decided_at__date=today,
        ).exists():
            self.stdout.write(f"{target}: already ran today; nothing to do.")
            return
        started = time.perf_counter()
        result = campaign_run(campaign=target, segment={"exclude_churned": True},
                              chunk_size=chunk, adapter_spec={"kind": adapter}, explain=explain)
        self.stdout.write(self.style.SUCCESS(
            f"{target}: {result['decisions']} decisions for {result['customers']} customers in "
            f"{time.perf_counter() - started:.0f} s ({result.get('delivered', 0)} delivered)."))
