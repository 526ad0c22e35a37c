"""Writes to campaigns, catalogues, reward weights and contact policies.

Each function validates with the model's own rules (`full_clean`) inside a transaction, so a bad
value is refused with a field-level message and nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from agents.catalogue import CHANNEL_COSTS
from crm_console.campaigns.models import (
    Action, Campaign, ChannelCap, ContactPolicy, RewardWeights, SuppressionEntry,
)
from crm_console.campaigns.suppression import suppression_hash
from crm_console.compliance.services import audit_record

DEFAULT_CHANNEL_COST = {channel: Decimal(str(cost)) for channel, cost in CHANNEL_COSTS.items()}
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
    made (console, clone, import)."""
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
    "time_zone", "contact_policy",
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
    _apply(campaign, fields)
    campaign.full_clean()
    campaign.save()
    audit_record(
        actor=updated_by, verb="campaign.updated", target=campaign,
        details={k: str(v) for k, v in fields.items()},
    )
    return campaign


@transaction.atomic
def action_create(*, campaign: Campaign, **fields: Any) -> Action:
    action = Action(campaign=campaign, **fields)
    action.full_clean()
    action.save()
    return action


@transaction.atomic
def action_update(*, action: Action, **fields: Any) -> Action:
    _apply(action, fields)
    action.full_clean()
    action.save()
    return action


@transaction.atomic
def catalogue_generate(
    *, campaign: Campaign, channels: Iterable[str], offers: Iterable[str],
    send_windows: Iterable[str], cost_by_channel: dict[str, Decimal] | None = None,
) -> list[Action]:
    """Add every channel x offer x send window combination not yet in the catalogue."""
    costs = {**DEFAULT_CHANNEL_COST, **(cost_by_channel or {})}
    existing = set(campaign.actions.values_list("channel", "offer", "variant", "send_window"))
    created = []
    for channel in channels:
        for offer in offers:
            for window in send_windows:
                if (channel, offer, "default", window) in existing:
                    continue
                created.append(action_create(
                    campaign=campaign, channel=channel, offer=offer, send_window=window,
                    cost=costs.get(channel, Decimal("0")),
                ))
    return created


@transaction.atomic
def reward_weights_update(
    *, campaign: Campaign, updated_by: AbstractBaseUser | None = None, **weights: float
) -> RewardWeights:
    reward_weights, _ = RewardWeights.objects.select_for_update().get_or_create(campaign=campaign)
    _apply(reward_weights, weights)
    reward_weights.full_clean()
    reward_weights.save()
    audit_record(actor=updated_by, verb="reward_weights.updated", target=campaign, details=weights)
    return reward_weights


@transaction.atomic
def contact_policy_save(
    *, contact_policy: ContactPolicy | None = None, updated_by: AbstractBaseUser | None = None,
    channel_caps: Iterable[dict[str, Any]] | None = None, **fields: Any,
) -> ContactPolicy:
    """Create or change a contact policy and (optionally) replace its per-channel caps."""
    policy = contact_policy or ContactPolicy()
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
    audit_record(
        actor=updated_by, verb="contact_policy.saved", target=policy,
        details={k: str(v) for k, v in fields.items()},
    )
    return policy


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
