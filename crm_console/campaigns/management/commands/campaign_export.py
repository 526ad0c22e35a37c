"""`python manage.py campaign_export --campaign ID > campaign.json`: a campaign as a campaign file."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from crm_console.campaigns.campaign_files import campaign_document
from crm_console.campaigns.models import Campaign


class Command(BaseCommand):
    help = ("Write a campaign (settings, channels, offers, send windows, actions, reward weights, "
            "contact policy) as JSON to standard output; see docs/campaign-file.md.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", type=int, required=True, help="The campaign's id.")

    def handle(self, *args, campaign: int, **options) -> None:
        found = Campaign.objects.select_related("contact_policy").filter(pk=campaign).first()
        if found is None:
            raise CommandError(f"There is no campaign {campaign}.")
        self.stdout.write(json.dumps(campaign_document(campaign=found), indent=2))
