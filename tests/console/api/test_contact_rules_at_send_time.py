"""Driven as a CRM drives it, the contact policy holds when the messages arrive.

Every morning the CRM asks for a decision batch for all its customers; it sends each message at
its `send_at` (after reading the decision's status, as docs/api.md asks), reports the delivery,
and sends back the unsubscribes and consent changes its customers make. Sixty simulated days
later every message that went out is checked against the rules at the time it went out.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.utils import timezone

from crm_console.decisioning import services as decision_services
from tests.console.api.helpers import (
    customer_with_consent, integration, live_campaign, signed_post, token_post, track,
)

pytestmark = pytest.mark.django_db

DAYS = 60
ZONES = ("Europe/London", "America/Los_Angeles", "America/New_York", "Asia/Tokyo",
         "Asia/Kolkata", "Australia/Sydney", "Pacific/Honolulu", "Europe/Berlin")
CAPS = {"email": (2, 7), "sms": (1, 7)}
OVERALL = (3, 7)
MIN_GAP_HOURS = 48
QUIET = (21, 8)


class Clock:
    """The console's clock (django.utils.timezone.now), moved by the test."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _get(client, path, creds):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {creds.token}")


def test_sixty_days_of_crm_traffic_break_no_contact_rule_at_send_time(client, monkeypatch):
    start = datetime(2026, 9, 1, 7, tzinfo=dt_timezone.utc)  # crosses the autumn clock changes
    clock = Clock(start)
    monkeypatch.setattr(timezone, "now", clock)
    # the console samples each decision; seeded, the 60 days are the same traffic every run
    monkeypatch.setattr(decision_services, "_rng", np.random.default_rng(0))
    campaign = live_campaign(caps=CAPS, overall=OVERALL, min_gap_hours=str(MIN_GAP_HOURS),
                             quiet_hours=QUIET)
    creds = integration()
    customers = [f"c{i:02d}" for i in range(24)]
    zone_of = {c: ZONES[i % len(ZONES)] for i, c in enumerate(customers)}
    for c in customers:
        customer_with_consent(c, time_zone=zone_of[c])
    rng = np.random.default_rng(0)
    counter = itertools.count()
    queue: list[tuple[datetime, int, str, dict]] = []  # (when, tie-break, what, details)

    def at(when: datetime, what: str, **details) -> None:
        heapq.heappush(queue, (when, next(counter), what, details))

    def post_event(name: str, customer: str, properties: dict) -> None:
        response = signed_post(client, "/api/v1/events", {"batch": [track(
            customer, f"m{next(counter)}", name, properties,
            timestamp=clock.now.isoformat())]}, creds)
        assert response.status_code == 202, response.content

    for day in range(DAYS):
        at(start + timedelta(days=day), "decide")
    sent: list[tuple[str, str, datetime]] = []  # customer, channel, when it went out
    consent_log: list[tuple[str, str, datetime, bool]] = []  # what the console was told
    released = 0
    while queue:
        when, _, what, details = heapq.heappop(queue)
        clock.now = when
        if what == "decide":
            response = token_post(client, "/api/v1/decisions/batch",
                                  {"campaign": campaign.pk, "customers": customers}, creds)
            assert response.status_code == 201, response.content
            for customer, answer in zip(customers, response.json()["decisions"], strict=True):
                if answer["action"]["contact"]:
                    send_at = datetime.fromisoformat(answer["send_at"])
                    assert send_at >= when
                    at(send_at, "send", decision=answer["decision_id"], customer=customer,
                       channel=answer["action"]["channel"])
            # customers leave and come back at any hour, not only after a message
            for customer in rng.choice(customers, size=2, replace=False):
                at(when + timedelta(hours=float(rng.uniform(0, 24))), "consent",
                   customer=str(customer), channel=str(rng.choice(["email", "sms"])),
                   granted=bool(rng.random() < 0.5))
        elif what == "send":
            status = _get(client, f"/api/v1/decisions/{details['decision']}", creds).json()
            if status["status"] == "released":
                released += 1
                continue
            customer = details["customer"]
            sent.append((customer, details["channel"], when))
            post_event("Message Delivered", customer, {"decision_id": details["decision"]})
            if rng.random() < 0.08:  # the message's unsubscribe link, a few hours later
                whole = rng.random() < 0.5
                at(when + timedelta(hours=float(rng.uniform(0.5, 30))), "unsubscribe",
                   customer=customer, decision=details["decision"],
                   channel=None if whole else details["channel"])
        elif what == "unsubscribe":
            properties = {"decision_id": details["decision"]}
            if details["channel"]:
                properties["channel"] = details["channel"]
            post_event("Unsubscribed", details["customer"], properties)
            for channel in [details["channel"]] if details["channel"] else ("email", "sms"):
                consent_log.append((details["customer"], channel, when, False))
        elif what == "consent":
            post_event("Consent Changed", details["customer"],
                       {"channel": details["channel"], "granted": details["granted"]})
            consent_log.append((details["customer"], details["channel"], when, details["granted"]))

    violations = _violations_at_send_time(sent, consent_log, zone_of)
    assert violations == {"min_gap": 0, "channel_cap": 0, "overall_cap": 0, "quiet_hours": 0,
                          "after_withdrawal": 0}
    assert len(sent) > 250, len(sent)  # enough traffic for the rules to bite
    assert any(not granted for *_, granted in consent_log) and released > 0


def _violations_at_send_time(sent, consent_log, zone_of) -> dict[str, int]:
    counts = dict.fromkeys(("min_gap", "channel_cap", "overall_cap", "quiet_hours",
                            "after_withdrawal"), 0)
    by_customer: dict[str, list[tuple[datetime, str]]] = {}
    for customer, channel, when in sent:
        by_customer.setdefault(customer, []).append((when, channel))
    for customer, sends in by_customer.items():
        sends.sort()
        for i, (when, channel) in enumerate(sends):
            if i and when - sends[i - 1][0] < timedelta(hours=MIN_GAP_HOURS):
                counts["min_gap"] += 1
            limit, days = CAPS[channel]
            window_start = when - timedelta(days=days)
            if sum(1 for t, c in sends if c == channel and window_start < t <= when) > limit:
                counts["channel_cap"] += 1
            limit, days = OVERALL
            if sum(1 for t, _ in sends if when - timedelta(days=days) < t <= when) > limit:
                counts["overall_cap"] += 1
            local = when.astimezone(ZoneInfo(zone_of[customer]))
            hour = local.hour + local.minute / 60
            if hour >= QUIET[0] or hour < QUIET[1]:
                counts["quiet_hours"] += 1
            told = [granted for c, ch, t, granted in sorted(consent_log, key=lambda r: r[2])
                    if c == customer and ch == channel and t <= when]
            if told and not told[-1]:
                counts["after_withdrawal"] += 1
    return counts
