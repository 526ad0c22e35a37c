"""Reads for compliance: the review queue, the audit log for a period, a customer's data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from crm_console.compliance.models import AuditEntry, DecisionReview
from crm_console.decisioning.models import Decision


def review_queue(*, filters: dict[str, Any] | None = None) -> QuerySet[Decision]:
    """Decisions to review, newest first, with their latest verdict annotated (`latest_verdict`).

    filters: campaign (id), channel, state ("unreviewed" | "flagged" | "approved" | "all").
    """
    filters = filters or {}
    latest = DecisionReview.objects.filter(decision=OuterRef("pk")).order_by("-created_at", "-id")
    decisions = Decision.objects.select_related("campaign", "customer", "action").annotate(
        latest_verdict=Subquery(latest.values("verdict")[:1]),
        reviewed=Exists(DecisionReview.objects.filter(decision=OuterRef("pk"))),
    )
    if filters.get("campaign"):
        decisions = decisions.filter(campaign_id=filters["campaign"])
    if filters.get("channel"):
        decisions = decisions.filter(action__channel=filters["channel"])
    state = filters.get("state") or "unreviewed"
    if state == "unreviewed":
        decisions = decisions.filter(reviewed=False)
    elif state in ("flagged", "approved"):
        decisions = decisions.filter(latest_verdict=state)
    return decisions.order_by("-decided_at", "-id")


def review_sample(*, queue: QuerySet[Decision], size: int, seed: int = 0) -> QuerySet[Decision]:
    """A reproducible uniform random sample of the queue (same seed, same decisions)."""
    ids = list(queue.values_list("id", flat=True))
    chosen = random.Random(seed).sample(ids, min(size, len(ids)))
    return queue.filter(id__in=chosen)


def review_recent(*, limit: int = 20) -> QuerySet[DecisionReview]:
    """Who did what: the latest verdicts."""
    return DecisionReview.objects.select_related("reviewer", "decision__action").order_by(
        "-created_at", "-id")[:limit]


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (timezone.make_aware(datetime.combine(start, time.min)),
            timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min)))


def audit_entries(*, start: date | None = None, end: date | None = None) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.select_related("actor")
    if start is not None and end is not None:
        low, high = _bounds(start, end)
        entries = entries.filter(created_at__gte=low, created_at__lt=high)
    return entries.order_by("-created_at", "-id")


AUDIT_CSV_HEADER = ("id", "created_at", "actor", "verb", "target_type", "target_id", "details")


def audit_csv_rows(*, start: date, end: date) -> Iterator[tuple]:
    """The audit log of a period, oldest first, as CSV rows (streamed: never all in memory)."""
    import json

    low, high = _bounds(start, end)
    entries = (AuditEntry.objects.filter(created_at__gte=low, created_at__lt=high)
               .select_related("actor").order_by("created_at", "id"))
    yield AUDIT_CSV_HEADER
    for entry in entries.iterator(chunk_size=2000):
        yield (entry.pk, entry.created_at.isoformat(), entry.actor.get_username() if entry.actor else "",
               entry.verb, entry.target_type, entry.target_id,
               json.dumps(entry.details, sort_keys=True, separators=(",", ":")))


def customer_data(*, customer: Any) -> dict[str, Any]:
    """Everything stored about one customer, in plain JSON types (the data-subject export)."""
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "customer": {
            "id": customer.pk, "external_id": customer.external_id, "email": customer.email,
            "phone": customer.phone, "name": customer.name, "traits": customer.traits,
            "time_zone": customer.time_zone, "created_at": when(customer.created_at),
            "erased_at": when(customer.erased_at), "profile_state": customer.profile_state,
            "profile_updated_at": when(customer.profile_updated_at),
        },
        "consents": [
            {"channel": c.channel, "granted": c.granted, "source": c.source,
             "recorded_at": when(c.recorded_at)}
            for c in customer.consents.order_by("recorded_at", "id")
        ],
        "events": [
            {"message_id": e.message_id, "type": e.type, "name": e.name, "properties": e.properties,
             "timestamp": when(e.timestamp), "decision_id": e.decision_id}
            for e in customer.events.order_by("timestamp", "id").iterator(chunk_size=2000)
        ],
        "decisions": [
            {"id": d.pk, "campaign": d.campaign.name, "decided_at": when(d.decided_at),
             "action": d.action.label, "policy": d.policy_name, "holdout": d.holdout,
             "propensity": d.propensity, "reward": d.reward,
             "explanation": getattr(getattr(d, "explanation", None), "sentence", None)}
            for d in customer.decisions.select_related("campaign", "action", "explanation")
            .order_by("decided_at", "id").iterator(chunk_size=2000)
        ],
        "exported_at": timezone.now().isoformat(),
    }
