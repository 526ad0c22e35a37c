"""`manage.py run_campaign`: decide today's batch for a campaign and hand it to a channel adapter."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from crm_console.decisioning.batch_runs import batch_run_resume, batch_run_start
from crm_console.decisioning.models import BatchRun
from crm_console.decisioning.selectors import batch_run_progress, batch_run_summary
from crm_console.training.management.commands._common import campaign_from


class Command(BaseCommand):
    help = ("Batch-decide every (non-churned) customer of a campaign through the live decision "
            "service - caps, consent, quiet hours and holdout as for an API decision - and hand "
            "the decisions to an adapter (default: the JSON-lines file adapter). The run is cut "
            "into chunks that the workers on the `decisions` queue decide in parallel (inline on "
            "the embedded default).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", help="id or name (default: the only campaign)")
        parser.add_argument("--chunk", type=int, default=1000, help="customers per chunk task")
        parser.add_argument("--explain", action="store_true",
                            help="store each decision's SHAP explanation now")
        parser.add_argument("--adapter", choices=["file", "console"], default="file")
        parser.add_argument("--once-per-day", action="store_true",
                            help="do nothing if this campaign already had a batch run today")
        parser.add_argument("--no-wait", action="store_true",
                            help="queue the run's chunks and return at once (the console shows "
                                 "its progress)")
        parser.add_argument("--resume", type=int, metavar="RUN_ID",
                            help="queue again only the chunks of this run that did not finish")

    def handle(self, *args, campaign: str | None, chunk: int, explain: bool, adapter: str,
               once_per_day: bool, no_wait: bool, resume: int | None, **options) -> None:
        if resume is not None:
            run = BatchRun.objects.select_related("campaign").filter(pk=resume).first()
            if run is None:
                raise CommandError(f"no batch run {resume}")
            queued = batch_run_resume(run=run)
            self.stdout.write(f"Batch run #{run.pk}: {queued} unfinished chunks queued again.")
        else:
            target = campaign_from(campaign)
            run, created = batch_run_start(
                campaign=target, segment={"exclude_churned": True}, chunk_size=chunk,
                adapter_spec={"kind": adapter}, explain=explain, once_per_day=once_per_day)
            if not created:
                self.stdout.write(f"{target}: already ran today (batch run #{run.pk}, "
                                  f"{run.get_status_display().lower()}); nothing to do.")
                return
            self.stdout.write(f"{target}: batch run #{run.pk}, {run.customers:,} customers in "
                              f"{run.chunks_total:,} chunks.")
        if not no_wait:
            self._wait(run)
        self._report(run)

    def _wait(self, run: BatchRun) -> None:
        shown = -1
        while True:
            run.refresh_from_db()
            if run.is_finished:
                return
            progress = batch_run_progress(run=run)
            if progress["chunks_finished"] != shown:
                shown = progress["chunks_finished"]
                self.stdout.write(f"  {shown:,} of {progress['chunks']:,} chunks, "
                                  f"{progress['decisions']:,} decisions")
            time.sleep(2)

    def _report(self, run: BatchRun) -> None:
        result = batch_run_summary(run=run)
        if not run.is_finished:
            self.stdout.write(f"Batch run #{run.pk} is running: {result['decisions']:,} decisions "
                              f"so far; see its page in the console.")
            return
        if result["customers"] == 0:
            self.stdout.write(self.style.WARNING(
                f"Batch run #{run.pk}: the segment matched no customer; nothing decided."))
            return
        line = (f"Batch run #{run.pk} {run.get_status_display().lower()}: "
                f"{result['decisions']:,} decisions for {result['customers']:,} customers in "
                f"{result.get('seconds', 0):.0f} s ({result.get('delivered', 0):,} delivered).")
        if run.status == BatchRun.Status.FINISHED:
            self.stdout.write(self.style.SUCCESS(line))
            return
        self.stdout.write(self.style.WARNING(line))
        for error in result["errors"]:
            self.stdout.write(f"  chunk {error['chunk']} (customers {error['first_customer_id']}"
                              f"-{error['last_customer_id']}): {error['error']}")
        self.stdout.write(f"Resume it with: manage.py run_campaign --resume {run.pk}")
