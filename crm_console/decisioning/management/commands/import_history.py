"""`python manage.py import_history --campaign ID --events events.jsonl [--contacts contacts.jsonl]`:
import a campaign's past events and the contacts another system made (docs/import-history.md).

Each file is read a line at a time, 5,000 lines per transaction; refused rows are listed with their
line, JSON path and why, and the rest goes in. Importing the same files again changes nothing.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm_console.decisioning.history_import import (
    CHUNK_LINES, HistoryImportError, campaign_for_import, history_import,
)


class Command(BaseCommand):
    help = ("Import a campaign's history: Segment events (JSON Lines, as the webhook takes them) "
            "and past contacts made by another system (JSON Lines), as logged decisions.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", type=int, required=True, help="The campaign's id.")
        parser.add_argument("--events", required=True, help="events.jsonl: one Segment event a line.")
        parser.add_argument("--contacts", help="contacts.jsonl: one past contact a line.")
        parser.add_argument("--chunk", type=int, default=CHUNK_LINES,
                            help=f"Lines per transaction (default {CHUNK_LINES:,}).")

    def handle(self, *args, campaign: int, events: str, contacts: str | None, chunk: int,
               **options) -> None:
        try:
            target = campaign_for_import(campaign_id=campaign)
        except HistoryImportError as error:
            raise CommandError(f"Nothing imported: {error}") from None
        paths = [Path(events)] + ([Path(contacts)] if contacts else [])
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise CommandError(f"Nothing imported: no such file {', '.join(missing)}.")

        def progress(file: str, lines: int) -> None:
            self.stdout.write(f"  {file}: {lines:,} lines processed")
            self.stdout.flush()

        with ExitStack() as files:
            opened = [files.enter_context(path.open(encoding="utf-8", errors="replace"))
                      for path in paths]
            report = history_import(campaign=target, events=opened[0],
                                    contacts=opened[1] if contacts else None,
                                    chunk_lines=max(chunk, 1), progress=progress)
        for row in report.refused:
            self.stdout.write(f"  refused: {row}")
        if report.refused_count > len(report.refused):
            self.stdout.write(f"  ... and {report.refused_count - len(report.refused):,} more "
                              "refused rows")
        self.stdout.write(f"Campaign {target.pk}: {report.summary()}.")
