"""Reads of campaigns, their catalogues and the workspace's vocabulary (offers, send windows)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from agents import catalogue as agent_catalogue
from crm_console.campaigns.models import (
    Action, Campaign, ContactPolicy, Offer, SendWindow, SuppressionEntry,
)
from crm_console.campaigns.suppression import suppression_hash
from crm_console.change_markers import ChangeMarker

VOCABULARY_CHANGED = ChangeMarker("campaigns:vocabulary:changed")
"""Replaced whenever an offer or send window is saved (campaigns.services), so every process
reads the workspace's vocabulary again."""


@dataclass(frozen=True)
class Vocabulary:
    """The workspace's offers and send windows as agents records, every one (switched-off ones
    too: old actions keep using them), in the order the console lists them."""

    offers: tuple[agent_catalogue.Offer, ...]
    send_windows: tuple[agent_catalogue.SendWindow, ...]

    def offer_label(self, key: str) -> str:
        return next((o.label for o in self.offers if o.key == key), key)

    def window_label(self, key: str) -> str:
        return next((w.label for w in self.send_windows if w.key == key), key)

    def send_window(self, key: str) -> agent_catalogue.SendWindow:
        return next(w for w in self.send_windows if w.key == key)


_vocabulary: tuple[str, Vocabulary] | None = None


def vocabulary() -> Vocabulary:
    """The workspace's vocabulary, read once per change (VOCABULARY_CHANGED) in each process."""
    global _vocabulary
    marker = VOCABULARY_CHANGED.current()
    if _vocabulary is not None and _vocabulary[0] == marker:
        return _vocabulary[1]
    loaded = Vocabulary(
        offers=tuple(offer_record(o) for o in Offer.objects.order_by("id")),
        send_windows=tuple(window_record(w) for w in SendWindow.objects.order_by("start", "id")),
    )
    _vocabulary = (marker, loaded)
    return loaded


def offer_record(offer: Offer) -> agent_catalogue.Offer:
    """An offer row as the agents library's record (the one conversion)."""
    return agent_catalogue.Offer(
        key=offer.key, label=offer.label, kind=offer.kind, value=float(offer.value),
        redemption_cost=float(offer.redemption_cost), validity_days=int(offer.validity_days),
        description=offer.description,
    )


def window_record(window: SendWindow) -> agent_catalogue.SendWindow:
    return agent_catalogue.SendWindow(
        key=window.key, label=window.label, start_hour=window.start_hour,
        end_hour=window.end_hour, days=tuple(window.days),
    )


def offer_list() -> QuerySet[Offer]:
    return Offer.objects.order_by("id")


def send_window_list() -> QuerySet[SendWindow]:
    return SendWindow.objects.order_by("start", "id")


def offer_uses(*, offer: Offer) -> list[str]:
    """The campaigns whose actions use the offer (what deleting it would break)."""
    return sorted(set(Action.objects.filter(offer=offer.key)
                      .values_list("campaign__name", flat=True)))


def send_window_uses(*, send_window: SendWindow) -> list[str]:
    return sorted(set(Action.objects.filter(send_window=send_window.key)
                      .values_list("campaign__name", flat=True)))


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
