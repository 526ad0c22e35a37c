"""Reads of campaigns and their catalogues."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from crm_console.campaigns.models import Action, Campaign, ContactPolicy, SuppressionEntry
from crm_console.campaigns.suppression import suppression_hash


def campaign_list() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("contact_policy").annotate(
        enabled_actions=Count("actions", filter=Q(actions__enabled=True) & ~Q(actions__channel="none"))
    ).order_by("name")


def campaign_catalogue(*, campaign: Campaign, enabled_only: bool = False) -> QuerySet[Action]:
    """The campaign's actions in a stable order: "no contact" first, then by id."""
    actions = campaign.actions.all()
    if enabled_only:
        actions = actions.filter(enabled=True)
    no_contact_first = Case(
        When(channel=Action.NO_CONTACT_CHANNEL, then=Value(0)), default=Value(1),
        output_field=IntegerField(),
    )
    return actions.order_by(no_contact_first, "id")


def contact_policy_list() -> QuerySet[ContactPolicy]:
    return ContactPolicy.objects.prefetch_related("channel_caps").order_by("name")


def suppression_entry_for(*, contact_policy: ContactPolicy,
                          external_id: str) -> SuppressionEntry | None:
    """This CRM id's entry on the policy's suppression list, if any (the list holds only hashes,
    so this is the one way to ask about a given customer)."""
    key = suppression_hash(external_id)
    return contact_policy.suppressions.filter(external_id_hash=key).first()
