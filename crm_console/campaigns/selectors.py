"""Reads of campaigns, their catalogues and the workspace's channels, offers and send windows
(the vocabulary itself, which models read too, is campaigns.vocabulary)."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from crm_console.campaigns.models import (
    Action, Campaign, Channel, ChannelCap, ContactPolicy, Offer, SendWindow, SuppressionEntry,
)
from crm_console.campaigns.suppression import suppression_hash

def channel_list() -> QuerySet[Channel]:
    return Channel.objects.order_by("id")


def offer_list() -> QuerySet[Offer]:
    return Offer.objects.order_by("id")


def send_window_list() -> QuerySet[SendWindow]:
    return SendWindow.objects.order_by("start", "id")


def channel_uses(*, channel: Channel) -> list[str]:
    """What uses the channel, in words (what deleting it would break): campaigns whose actions
    use it, contact policies that cap it, consent recorded for it."""
    from crm_console.customers.models import Consent

    uses = _actions_of(Action.objects.filter(channel=channel.key))
    uses += sorted(f"contact policy {name}" for name in set(
        ChannelCap.objects.filter(channel=channel.key).values_list("contact_policy__name", flat=True)))
    if (not Channel.objects.filter(consent_key=channel.consent).exclude(pk=channel.pk).exists()
            and Consent.objects.filter(channel=channel.consent).exists()):
        uses.append("customers' consent records")
    return uses


def offer_uses(*, offer: Offer) -> list[str]:
    """The campaigns whose actions use the offer (what deleting it would break)."""
    return _actions_of(Action.objects.filter(offer=offer.key))


def send_window_uses(*, send_window: SendWindow) -> list[str]:
    return _actions_of(Action.objects.filter(send_window=send_window.key))


def _actions_of(actions: QuerySet[Action]) -> list[str]:
    return [f"actions of {name}" for name in sorted(set(actions.values_list("campaign__name",
                                                                            flat=True)))]


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
