"""`python manage.py campaign_import campaign.json [--update]`: create or update a campaign from a
campaign file; on any error nothing is written and every error is listed with its JSON path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm_console.campaigns.campaign_files import CampaignFileError, campaign_import


class Command(BaseCommand):
    help = ("Create the campaign a campaign file describes (docs/campaign-file.md); with --update, "
            "bring an existing one (and its offers, send windows, contact policy) in line.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="The campaign file (JSON); - for standard input.")
        parser.add_argument("--update", action="store_true",
                            help="Change what exists and differs instead of refusing.")

    def handle(self, *args, path: str, update: bool, **options) -> None:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        try:
            result = campaign_import(document, update=update)
        except CampaignFileError as error:
            lines = [f"  {where}: {' '.join(messages)}" for where, messages in error.errors.items()]
            raise CommandError("Nothing imported:\n" + "\n".join(lines)) from None
        if not result.changed:
            self.stdout.write(f"Campaign {result.campaign.pk} ({result.campaign.name}): unchanged.")
            return
        self.stdout.write(f"Campaign {result.campaign.pk} ({result.campaign.name}): "
                          f"{len(result.created)} created, {len(result.updated)} updated.")
