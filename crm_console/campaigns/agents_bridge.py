"""The one place campaign settings become `agents` objects (catalogue, contact rules, reward weights).

Training, serving and the demo all call these, so the simulator a policy learns in and the rules
that mask it live are built from the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import gymnasium as gym
import numpy as np
from django.utils import timezone

import agents
from agents.catalogue import Catalogue, CatalogueAction
from agents.constraints import ContactRules
from agents.rewards import RewardWeights as AgentRewardWeights
from crm_console.campaigns.models import Action, Campaign, ContactPolicy, RewardWeights
from crm_console.campaigns.selectors import campaign_catalogue
from crm_console.campaigns.vocabulary import vocabulary


@dataclass(frozen=True)
class CampaignCatalogue:
    """The campaign's actions as an agents Catalogue, with the database id behind each index."""

    catalogue: Catalogue
    action_ids: tuple[int, ...]
    enabled: np.ndarray

    def index_of_action(self, action_id: int) -> int:
        return self.action_ids.index(action_id)


def catalogue_for_campaign(*, campaign: Campaign) -> CampaignCatalogue:
    """Every action of the campaign (disabled ones too, masked as DISABLED), no contact first,
    over every channel of the workspace (the feature layout is the workspace's)."""
    actions = list(campaign_catalogue(campaign=campaign))
    if not actions or not actions[0].is_no_contact:
        raise ValueError(f"campaign {campaign.pk} has no built-in no-contact action")
    entries = [_catalogue_action(action) for action in actions]
    words = vocabulary()
    return CampaignCatalogue(
        catalogue=Catalogue(tuple(entries), words.channels, words.offers, words.send_windows),
        action_ids=tuple(action.pk for action in actions),
        enabled=np.array([action.enabled for action in actions], dtype=bool),
    )


def _catalogue_action(action: Action) -> CatalogueAction:
    if action.is_no_contact:
        return CatalogueAction(None, None, None, 0.0)
    return CatalogueAction(
        channel=action.channel, offer=action.offer, send_window=action.send_window,
        cost=float(action.cost), variant=action.variant or "default",
    )


def control_agent_make(*, name: str, catalogue: Catalogue, observation_space: gym.Space,
                       action_space: gym.Space, seed: int = 0) -> agents.Agent:
    """A control policy (`Campaign.ControlPolicy`: today's rules, random, no contact) as an agent.

    The one place a control policy is built: serving caches it per campaign, training and
    evaluation score the candidate against it, the review page explains a holdout decision with it.
    """
    extra = {"catalogue": catalogue} if name == Campaign.ControlPolicy.RULE_BASED else {}
    return agents.make(name, observation_space, action_space, seed=seed, **extra)


def utc_offset_hours(time_zone: str, at: datetime | None = None) -> float:
    """The zone's offset from UTC in hours at `at` (now by default), daylight saving included."""
    offset = (at or timezone.now()).astimezone(ZoneInfo(time_zone)).utcoffset()
    return offset.total_seconds() / 3600.0 if offset is not None else 0.0


def contact_rules_for(*, contact_policy: ContactPolicy, campaign: Campaign | None = None) -> ContactRules:
    """The compliance officer's caps as agents ContactRules (validated again by the library)."""
    caps = list(contact_policy.channel_caps.all())
    words = vocabulary()
    return ContactRules(
        channel_caps={cap.channel: (cap.max_contacts, cap.window_days) for cap in caps},
        overall_cap=(contact_policy.overall_max_contacts, contact_policy.overall_window_days),
        min_gap_hours=float(contact_policy.min_gap_hours),
        channel_min_gap_hours={c.channel: float(c.min_gap_hours) for c in caps if c.min_gap_hours},
        quiet_hours=contact_policy.quiet_hours,
        # consent is required everywhere unless a channel's cap row explicitly waives it
        consent_required=frozenset(words.channel_keys) - {c.channel for c in caps
                                                          if not c.consent_required},
        quiet_hours_exempt=words.quiet_hours_exempt,
        overall_cap_exempt=words.overall_cap_exempt,
        campaign_utc_offset_hours=utc_offset_hours(campaign.time_zone) if campaign else 0.0,
    )


def reward_weights_for(*, campaign: Campaign) -> AgentRewardWeights:
    try:
        weights = campaign.reward_weights
    except RewardWeights.DoesNotExist:
        return AgentRewardWeights()
    return AgentRewardWeights(**weights.as_dict())
