"""A campaign and history files for the import_history tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from django.utils import timezone

from crm_console.campaigns import services as campaign_services
from crm_console.campaigns.models import Campaign


def history_campaign() -> Campaign:
    """A campaign whose catalogue is email and SMS x content and 10 % off x morning."""
    campaign = campaign_services.campaign_create(name="Winback", attribution_window_days=7)
    campaign_services.catalogue_generate(campaign=campaign, channels=["email", "sms"],
                                         offers=["content", "discount_10"],
                                         send_windows=["morning"])
    return campaign


def days_ago(days: float) -> datetime:
    return timezone.now().astimezone(dt_timezone.utc) - timedelta(days=days)


def stamp(at: datetime) -> str:
    return at.isoformat()


def identify(user: str, at: datetime, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": f"id-{user}-{at.timestamp():.0f}",
            "timestamp": stamp(at), "traits": {"consent": {"email": True, "sms": True}, **traits}}


def track(user: str, name: str, at: datetime, message_id: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": name, "messageId": message_id,
            "timestamp": stamp(at), "properties": properties}


def contact(contact_id: str, user: str, at: datetime, channel: str = "email",
            offer: str = "content", window: str = "morning", **extra: Any) -> dict[str, Any]:
    return {"contact_id": contact_id, "customer": user, "timestamp": stamp(at),
            "channel": channel, "offer": offer, "window": window, **extra}


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n"
                            for row in rows), encoding="utf-8")
    return path


def standard_history(tmp_path: Path) -> tuple[Path, Path]:
    """Two customers over 40 days: identifies, opens, an order; four contacts (two with a
    propensity, two without)."""
    events = [
        identify("alice", days_ago(40)), identify("bob", days_ago(40)),
        track("alice", "Email Opened", days_ago(29.9), "m-1", channel="email"),
        track("alice", "Order Completed", days_ago(29), "m-2", revenue=50.0),
        track("bob", "Email Opened", days_ago(19.9), "m-3", channel="email"),
    ]
    contacts = [
        contact("c-1", "alice", days_ago(30), propensity=0.5),
        contact("c-2", "alice", days_ago(20), channel="sms", offer="discount_10"),
        contact("c-3", "bob", days_ago(20), propensity=0.25),
        contact("c-4", "bob", days_ago(10), channel="sms"),
    ]
    return jsonl(tmp_path / "events.jsonl", events), jsonl(tmp_path / "contacts.jsonl", contacts)
