"""Builders shared by the API, service and integration tests: a live campaign, an integration,
signed requests."""

from __future__ import annotations

import json
import time
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

import gymnasium as gym

import agents
from agents.features import observation_space
from crm_console.api.services import api_integration_create
from crm_console.api.signing import signature_header
from crm_console.campaigns import services as campaign_services
from crm_console.campaigns.agents_bridge import catalogue_for_campaign
from crm_console.campaigns.models import Campaign
from crm_console.customers.models import Consent, Customer
from crm_console.decisioning.models import PolicyVersion
from crm_console.decisioning.services import policy_version_create

CHANNELS = ("email", "sms")


def live_campaign(*, algorithm: str = "random", holdout_share: str = "0", min_gap_hours: str = "0",
                  quiet_hours: tuple[int, int] | None = None, caps: dict | None = None,
                  overall: tuple[int, int] = (3, 7), decision_mode: str = "sample",
                  exploration_share: str = "0", name: str = "API test campaign") -> Campaign:
    """A live campaign: email + SMS x content / 10 % off x morning / evening, UTC, a live policy."""
    caps = caps or {"email": (2, 7), "sms": (1, 7)}
    policy = campaign_services.contact_policy_save(
        name=f"{name} policy", overall_max_contacts=overall[0], overall_window_days=overall[1],
        min_gap_hours=Decimal(min_gap_hours),
        quiet_hours_start=quiet_hours[0] if quiet_hours else None,
        quiet_hours_end=quiet_hours[1] if quiet_hours else None,
        channel_caps=[{"channel": c, "max_contacts": m, "window_days": w} for c, (m, w) in caps.items()],
    )
    campaign = campaign_services.campaign_create(
        name=name, contact_policy=policy, holdout_share=Decimal(holdout_share), time_zone="UTC",
        decision_mode=decision_mode, exploration_share=Decimal(exploration_share),
    )
    campaign_services.catalogue_generate(campaign=campaign, channels=CHANNELS,
                                         offers=("content", "discount_10"),
                                         send_windows=("morning", "evening"))
    campaign = campaign_services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)
    policy_add(campaign, algorithm=algorithm, status=PolicyVersion.Status.LIVE)
    return campaign


def policy_add(campaign: Campaign, *, algorithm: str = "random", status: str = "live",
               seed: int = 0) -> PolicyVersion:
    bridge = catalogue_for_campaign(campaign=campaign)
    extra = {"catalogue": bridge.catalogue} if algorithm == "rule_based" else {}
    agent = agents.make(algorithm, observation_space(), gym.spaces.Discrete(len(bridge.action_ids)),
                        seed=seed, **extra)
    return policy_version_create(campaign=campaign, agent=agent, action_ids=bridge.action_ids,
                                 status=status)


def customer_with_consent(external_id: str, *, channels=CHANNELS, time_zone: str = "UTC") -> Customer:
    customer = Customer.objects.create(external_id=external_id, time_zone=time_zone)
    for channel in channels:
        Consent.objects.create(customer=customer, channel=channel, granted=True, source="test",
                               recorded_at=customer.created_at)
    return customer


def integration(scopes=("events:write", "decisions:write"), name: str = "Test CRM"):
    return api_integration_create(name=name, scopes=list(scopes))


def signed_post(client, path: str, payload: Any, creds, *, t: int | None = None,
                signature: str | None = None, token: str | None = None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token or creds.token}"}
    if signature != "":
        headers["HTTP_X_SIGNATURE"] = signature or signature_header(
            creds.signing_secret, body, int(time.time()) if t is None else t)
    return client.generic("POST", path, body, content_type="application/json", **headers)


def token_post(client, path: str, payload: Any, creds, token: str | None = None):
    return client.generic("POST", path, json.dumps(payload).encode(),
                          content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {token or creds.token}")


def track(user_id: str, message_id: str, event: str, properties: dict | None = None,
          timestamp: str | None = None) -> dict:
    timestamp = timestamp or datetime.now(dt_timezone.utc).isoformat()
    return {"type": "track", "userId": user_id, "messageId": message_id, "event": event,
            "properties": properties or {}, "timestamp": timestamp}


def identify(user_id: str, message_id: str, traits: dict, timestamp: str | None = None) -> dict:
    timestamp = timestamp or datetime.now(dt_timezone.utc).isoformat()
    return {"type": "identify", "userId": user_id, "messageId": message_id, "traits": traits,
            "timestamp": timestamp}
