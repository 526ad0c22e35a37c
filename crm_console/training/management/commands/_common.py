"""Shared argument parsing for the training commands."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from crm_console.campaigns.models import Campaign
from crm_console.decisioning.models import PolicyVersion


def campaign_from(value: str | None) -> Campaign:
    """A campaign by id or exact name; the only campaign when there is just one."""
    if value is None:
        campaigns = list(Campaign.objects.all()[:2])
        if len(campaigns) != 1:
            raise CommandError("several campaigns (or none): pass --campaign <id or name>")
        return campaigns[0]
    campaign = Campaign.objects.filter(pk=int(value)).first() if value.isdigit() else \
        Campaign.objects.filter(name=value).first()
    if campaign is None:
        raise CommandError(f"no campaign {value!r}")
    return campaign


def version_from(value: int) -> PolicyVersion:
    version = PolicyVersion.objects.select_related("campaign").filter(pk=value).first()
    if version is None:
        raise CommandError(f"no policy version with id {value}")
    return version


def user_from(username: str | None):
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user
