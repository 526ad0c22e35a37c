"""Writes to campaigns, catalogues, reward weights and contact policies.

Each function validates with the model's own rules (`full_clean`) inside a transaction, so a bad
value is refused with a field-level message and nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import time
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction

from agents.catalogue import DEFAULT_CHANNELS
from crm_console.campaigns import selectors
from crm_console.campaigns.vocabulary import VOCABULARY_CHANGED, vocabulary
from crm_console.campaigns.models import (
    Action, Campaign, Channel, ChannelCap, ContactPolicy, Offer, RewardWeights, SendWindow,
    SuppressionEntry,
)
from crm_console.campaigns.suppression import suppression_hash
from crm_console.compliance.services import audit_record

"""A contact's one price (agents.catalogue's, which the simulator and the reward preview use too)."""


def _apply(instance: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(instance, name, value)


@transaction.atomic
def campaign_create(
    *, name: str, created_by: AbstractBaseUser | None = None, **fields: Any
) -> Campaign:
    """Create a draft campaign with its built-in "no contact" action and default reward weights."""
    campaign = Campaign(name=name, created_by=created_by, **fields)
    campaign.full_clean()
    campaign.save()
    campaign_builtins_ensure(campaign=campaign)
    audit_record(actor=created_by, verb="campaign.created", target=campaign, details={"name": name})
    return campaign


def campaign_builtins_ensure(*, campaign: Campaign) -> None:
    """Every campaign has its built-in "no contact" action and reward weights, however it was
    made (console, clone, import); a workspace without offers or send windows gets the first
    ones."""
    vocabulary_defaults_ensure()
    Action.objects.get_or_create(campaign=campaign, channel=Action.NO_CONTACT_CHANNEL, offer="",
                                 variant="default", send_window="")
    RewardWeights.objects.get_or_create(campaign=campaign)


@transaction.atomic
def campaign_clone(*, campaign: Campaign, created_by: AbstractBaseUser | None = None) -> Campaign:
    """A draft copy of `campaign`: its settings, catalogue (costs, switched-off actions) and
    reward weights; no policies, decisions or history."""
    copy = campaign_create(
        name=_copy_name(campaign.name), created_by=created_by,
        **{field: getattr(campaign, field) for field in CLONED_SETTINGS},
    )
    Action.objects.bulk_create([
        Action(campaign=copy, channel=a.channel, offer=a.offer, variant=a.variant,
               send_window=a.send_window, cost=a.cost, enabled=a.enabled)
        for a in campaign.actions.exclude(channel=Action.NO_CONTACT_CHANNEL).order_by("pk")
    ])
    weights = RewardWeights.objects.filter(campaign=campaign).first()
    if weights is not None:
        RewardWeights.objects.filter(campaign=copy).update(**weights.as_dict())
    audit_record(actor=created_by, verb="campaign.cloned", target=copy,
                 details={"from": campaign.pk, "name": copy.name})
    return copy


CLONED_SETTINGS = (
    "description", "objective", "horizon_days", "discount_factor", "holdout_share",
    "attribution_window_days", "control_policy", "decision_mode", "exploration_share",
    "retention_guardrail_points", "time_zone", "contact_policy",
)


def _copy_name(name: str) -> str:
    """"Copy of X", then "Copy of X (2)", ... - the first name no campaign has yet."""
    max_length = Campaign._meta.get_field("name").max_length
    base = f"Copy of {name}"[:max_length]
    prefix = base[:max_length - 10]  # what every numbered copy keeps of the name
    taken = set(Campaign.objects.filter(name__startswith=prefix).values_list("name", flat=True))
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        suffix = f" ({n})"
        candidate = base[:max_length - len(suffix)] + suffix
    return candidate


@transaction.atomic
def campaign_update(
    *, campaign: Campaign, updated_by: AbstractBaseUser | None = None, **fields: Any
) -> Campaign:
    """Change a campaign's settings; going live is checked by the model (actions, contact policy)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = _snapshot(campaign, fields)
    _apply(campaign, fields)
    campaign.full_clean()
    campaign.save()
    _audit_change(updated_by, "campaign.updated", campaign, before, _snapshot(campaign, fields))
    return campaign


ACTION_FIELDS = ("channel", "offer", "send_window", "variant", "cost", "enabled")


@transaction.atomic
def action_create(*, campaign: Campaign, created_by: AbstractBaseUser | None = None,
                  **fields: Any) -> Action:
    action = _action_add(campaign=campaign, **fields)
    _audit_change(created_by, "action.created", action, None, _snapshot(action, ACTION_FIELDS))
    return action


def _action_add(*, campaign: Campaign, **fields: Any) -> Action:
    action = Action(campaign=campaign, **fields)
    action.full_clean()
    action.save()
    return action


@transaction.atomic
def action_update(*, action: Action, updated_by: AbstractBaseUser | None = None,
                  **fields: Any) -> Action:
    before = _snapshot(action, ACTION_FIELDS)
    _apply(action, fields)
    action.full_clean()
    action.save()
    _audit_change(updated_by, "action.updated", action, before, _snapshot(action, ACTION_FIELDS))
    return action


@transaction.atomic
def catalogue_generate(
    *, campaign: Campaign, channels: Iterable[str], offers: Iterable[str],
    send_windows: Iterable[str], cost_by_channel: dict[str, Decimal] | None = None,
    created_by: AbstractBaseUser | None = None,
) -> list[Action]:
    """Add every channel x offer x send window combination not yet in the catalogue (one audit
    entry for the lot)."""
    channels, offers, send_windows = list(channels), list(offers), list(send_windows)
    costs = {**{c.key: Decimal(str(c.cost)) for c in vocabulary().channels},
             **(cost_by_channel or {})}
    existing = set(campaign.actions.values_list("channel", "offer", "variant", "send_window"))
    created = []
    for channel in channels:
        for offer in offers:
            for window in send_windows:
                if (channel, offer, "default", window) in existing:
                    continue
                created.append(_action_add(
                    campaign=campaign, channel=channel, offer=offer, send_window=window,
                    cost=costs.get(channel, Decimal("0")),
                ))
    if created:
        audit_record(actor=created_by, verb="catalogue.generated", target=campaign, details={
            "actions": len(created), "channels": ", ".join(channels),
            "offers": ", ".join(offers), "send_windows": ", ".join(send_windows)})
    return created


@transaction.atomic
def reward_weights_update(
    *, campaign: Campaign, updated_by: AbstractBaseUser | None = None, **weights: float
) -> RewardWeights:
    reward_weights, _ = RewardWeights.objects.select_for_update().get_or_create(campaign=campaign)
    before = _snapshot(reward_weights, RewardWeights.WEIGHT_FIELDS)
    _apply(reward_weights, weights)
    reward_weights.full_clean()
    reward_weights.save()
    _audit_change(updated_by, "reward_weights.updated", campaign, before,
                  _snapshot(reward_weights, RewardWeights.WEIGHT_FIELDS))
    return reward_weights


@transaction.atomic
def contact_policy_save(
    *, contact_policy: ContactPolicy | None = None, updated_by: AbstractBaseUser | None = None,
    channel_caps: Iterable[dict[str, Any]] | None = None, **fields: Any,
) -> ContactPolicy:
    """Create or change a contact policy and (optionally) replace its per-channel caps."""
    policy = contact_policy or ContactPolicy()
    before = {**_snapshot(policy, fields), "channel_caps": _caps_text(policy)} if policy.pk \
        else None
    _apply(policy, fields)
    policy.updated_by = updated_by
    policy.full_clean()
    policy.save()
    if channel_caps is not None:
        policy.channel_caps.all().delete()
        for cap_fields in channel_caps:
            cap = ChannelCap(contact_policy=policy, **cap_fields)
            cap.full_clean()
            cap.save()
    after = {**_snapshot(policy, fields), "channel_caps": _caps_text(policy)}
    _audit_change(updated_by, "contact_policy.saved", policy, before, after)
    return policy


def _caps_text(policy: ContactPolicy) -> str:
    """The policy's caps in one line, for the audit's before/after."""
    return "; ".join(
        f"{cap.channel} {cap.max_contacts} per {cap.window_days} d"
        f"{f', {cap.min_gap_hours} h apart' if cap.min_gap_hours else ''}"
        f"{'' if cap.consent_required else ', no consent needed'}"
        for cap in policy.channel_caps.order_by("channel")) or "none"


def _audit_change(actor: AbstractBaseUser | None, verb: str, target: models.Model,
                  before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    """One audit entry with what changed (field: "before -> after"); none when nothing did."""
    changes = _diff(before, after)
    if changes:
        audit_record(actor=actor, verb=verb, target=target, details=changes)


@transaction.atomic
def suppression_add(
    *, contact_policy: ContactPolicy, external_ids: Iterable[str], reason: str = "",
    added_by: AbstractBaseUser | None = None,
) -> int:
    """Add customers to the do-not-contact list by the keyed hash of their CRM id (never the id
    itself, see campaigns.suppression); returns how many were new."""
    existing = set(contact_policy.suppressions.values_list("external_id_hash", flat=True))
    new_keys = sorted({suppression_hash(eid) for eid in external_ids if eid.strip()} - existing)
    entries = [
        SuppressionEntry(contact_policy=contact_policy, external_id_hash=key, reason=reason,
                         added_by=added_by)
        for key in new_keys
    ]
    for entry in entries:
        entry.full_clean(validate_unique=False)
    SuppressionEntry.objects.bulk_create(entries)
    audit_record(
        actor=added_by, verb="suppression.added", target=contact_policy,
        details={"count": len(entries)},
    )
    return len(entries)


# ----------------------------------------------------------------------------- vocabulary
DEFAULT_CHANNELS_SEED = tuple(  # key, label, cost (agents.catalogue.DEFAULT_CHANNELS)
    (c.key, c.label, str(c.cost)) for c in DEFAULT_CHANNELS)
DEFAULT_OFFERS = (  # key, label, kind, value, redemption cost (agents.catalogue.DEFAULT_OFFERS)
    ("content", "Content (no discount)", "none", "0", "0"),
    ("discount_10", "10 % off", "percent_off", "10", "0"),
    ("discount_20", "20 % off", "percent_off", "20", "0"),
    ("free_shipping", "Free shipping", "free_shipping", "0", "6.00"),
)
DEFAULT_SEND_WINDOWS = (  # key, label, local start, end (agents.catalogue.DEFAULT_SEND_WINDOWS)
    ("morning", "Morning 08:00-11:00", "08:00", "11:00"),
    ("midday", "Midday 12:00-14:00", "12:00", "14:00"),
    ("evening", "Evening 18:00-21:00", "18:00", "21:00"),
)


def vocabulary_defaults_ensure(offer_model: type[models.Model] = Offer,
                               send_window_model: type[models.Model] = SendWindow,
                               channel_model: type[models.Model] | None = Channel) -> None:
    """The channels, offers and send windows a workspace starts with, where it has none at all
    (a marketer's deletions stay deleted). The migrations that made them records call it with
    their historical models."""
    if channel_model is not None and not channel_model.objects.exists():
        channel_model.objects.bulk_create([
            channel_model(key=key, label=label, cost=Decimal(cost))
            for key, label, cost in DEFAULT_CHANNELS_SEED])
    if not offer_model.objects.exists():
        offer_model.objects.bulk_create([
            offer_model(key=key, label=label, kind=kind, value=Decimal(value),
                        redemption_cost=Decimal(cost))
            for key, label, kind, value, cost in DEFAULT_OFFERS])
    if not send_window_model.objects.exists():
        send_window_model.objects.bulk_create([
            send_window_model(key=key, label=label, start=time.fromisoformat(start),
                              end=time.fromisoformat(end), days=list(range(7)))
            for key, label, start, end in DEFAULT_SEND_WINDOWS])


OFFER_FIELDS = ("key", "label", "kind", "value", "redemption_cost", "validity_days",
                "description", "enabled")
SEND_WINDOW_FIELDS = ("key", "label", "start", "end", "days", "enabled")
CHANNEL_FIELDS = ("key", "label", "cost", "consent_key", "quiet_hours_apply",
                  "counts_toward_overall_cap", "enabled")


def _snapshot(instance: models.Model, names: Iterable[str]) -> dict[str, Any]:
    return {name: _plain(getattr(instance, name)) for name in names}


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, str]:
    """Each changed field as "before -> after" (an audit entry's details; "-" for none)."""
    names = (after or before or {}).keys()
    old, new = before or {}, after or {}
    return {name: f"{old.get(name, '-')} -> {new.get(name, '-')}" for name in names
            if old.get(name, "-") != new.get(name, "-")}


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | list) else str(value)


VocabularyRecord = Channel | Offer | SendWindow


def _vocabulary_save(*, record: VocabularyRecord, names: tuple[str, ...], verb: str,
                     actor: AbstractBaseUser | None, fields: dict[str, Any]) -> VocabularyRecord:
    """Validate and save a channel, offer or send window, audit it with a before/after diff, and tell
    every process (labels, serving set-ups) that the vocabulary changed."""
    unknown = set(fields) - set(names)
    if unknown:
        raise ValidationError({name: "Not a field of this record." for name in sorted(unknown)})
    before = _snapshot(record, names) if record.pk else None
    if record.pk and "key" in fields and fields["key"] != record.key and _key_used(record):
        raise ValidationError({"key": "This key is in use; it cannot change (the logs carry it)."})
    _apply(record, fields)
    record.full_clean()
    record.save()
    _audit_change(actor, verb, record, before, _snapshot(record, names))
    _vocabulary_changed()
    return record


def _key_used(record: VocabularyRecord) -> bool:
    if isinstance(record, Channel):
        return bool(selectors.channel_uses(channel=record))
    field = "offer" if isinstance(record, Offer) else "send_window"
    return Action.objects.filter(**{field: record.key}).exists()


def _vocabulary_changed() -> None:
    VOCABULARY_CHANGED.replace()
    transaction.on_commit(VOCABULARY_CHANGED.replace)


@transaction.atomic
def channel_create(*, created_by: AbstractBaseUser | None = None, **fields: Any) -> Channel:
    """A new channel of the workspace (e.g. WhatsApp, consent key whatsapp, 0.03 a contact).

    It takes the next position in every per-channel array (profiles, features): existing
    customers start with no consent and no history on it."""
    return _vocabulary_save(record=Channel(), names=CHANNEL_FIELDS, verb="channel.created",
                            actor=created_by, fields=fields)


@transaction.atomic
def channel_update(*, channel: Channel, updated_by: AbstractBaseUser | None = None,
                   **fields: Any) -> Channel:
    return _vocabulary_save(record=channel, names=CHANNEL_FIELDS, verb="channel.updated",
                            actor=updated_by, fields=fields)


@transaction.atomic
def channel_delete(*, channel: Channel, deleted_by: AbstractBaseUser | None = None) -> None:
    """Delete the newest channel while nothing uses it (a typo, a channel never used).

    Any other is switched off instead: every customer profile and logged feature vector keeps a
    column per channel in the channels' order, so only the last one can go without moving the
    others.
    """
    uses = selectors.channel_uses(channel=channel)
    if not uses and Channel.objects.filter(pk__gt=channel.pk).exists():
        raise ValidationError(
            f"Only the newest channel can be deleted (customer profiles keep a column per channel, "
            f"in order); switch {channel.label} off instead.")
    _vocabulary_delete(record=channel, uses=uses, verb="channel.deleted", actor=deleted_by,
                       names=CHANNEL_FIELDS)


@transaction.atomic
def offer_create(*, created_by: AbstractBaseUser | None = None, **fields: Any) -> Offer:
    """A new offer of the workspace (e.g. "Free gift", kind gift, redemption cost 4.00)."""
    return _vocabulary_save(record=Offer(), names=OFFER_FIELDS, verb="offer.created",
                            actor=created_by, fields=fields)


@transaction.atomic
def offer_update(*, offer: Offer, updated_by: AbstractBaseUser | None = None,
                 **fields: Any) -> Offer:
    return _vocabulary_save(record=offer, names=OFFER_FIELDS, verb="offer.updated",
                            actor=updated_by, fields=fields)


@transaction.atomic
def offer_delete(*, offer: Offer, deleted_by: AbstractBaseUser | None = None) -> None:
    """Delete an offer no action uses; one in use is refused with what uses it (switch it off)."""
    _vocabulary_delete(record=offer, uses=selectors.offer_uses(offer=offer), verb="offer.deleted",
                       actor=deleted_by, names=OFFER_FIELDS)


@transaction.atomic
def send_window_create(*, created_by: AbstractBaseUser | None = None,
                       **fields: Any) -> SendWindow:
    """A new send window (e.g. "Lunch 12:30-13:30" on weekdays)."""
    return _vocabulary_save(record=SendWindow(), names=SEND_WINDOW_FIELDS,
                            verb="send_window.created", actor=created_by, fields=fields)


@transaction.atomic
def send_window_update(*, send_window: SendWindow, updated_by: AbstractBaseUser | None = None,
                       **fields: Any) -> SendWindow:
    return _vocabulary_save(record=send_window, names=SEND_WINDOW_FIELDS,
                            verb="send_window.updated", actor=updated_by, fields=fields)


@transaction.atomic
def send_window_delete(*, send_window: SendWindow,
                       deleted_by: AbstractBaseUser | None = None) -> None:
    _vocabulary_delete(record=send_window, uses=selectors.send_window_uses(send_window=send_window),
                       verb="send_window.deleted", actor=deleted_by, names=SEND_WINDOW_FIELDS)


def _vocabulary_delete(*, record: VocabularyRecord, uses: list[str], verb: str,
                       actor: AbstractBaseUser | None, names: tuple[str, ...]) -> None:
    if uses:
        raise ValidationError(
            f"{record.label} is used by {', '.join(uses)} (and their logged decisions); switch "
            "it off instead of deleting it."
        )
    audit_record(actor=actor, verb=verb, target=record,
                 details=_diff(_snapshot(record, names), None))
    record.delete()
    _vocabulary_changed()
