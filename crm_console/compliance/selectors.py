"""Reads for compliance: the review queue, the audit log for a period, a customer's data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import (
    BooleanField,
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from crm_console.api.selectors import idempotent_answers_naming
from crm_console.campaigns.models import Action, Offer, SuppressionEntry
from crm_console.campaigns.suppression import suppression_hash
from crm_console.compliance.models import AuditEntry, DecisionReview
from crm_console.decisioning.models import Decision, Explanation

if TYPE_CHECKING:
    from crm_console.api.models import IdempotentRequest


LOW_PROPENSITY = 0.05
"""A decision its policy gave less than this chance: an exploration or an odd choice, read first."""

REVIEW_RISKS: dict[str, tuple[str, int]] = {
    # key: (what the reviewer reads, weight in the queue's order)
    "forced": ("policy went live forced past the guardrail", 8),
    "complaint": ("the customer unsubscribed after it", 6),
    "low_propensity": (f"its policy gave it under {LOW_PROPENSITY:.0%} chance", 4),
    "near_caps": ("the customer was at a contact cap", 2),
    "incentive": ("it carries an incentive", 1),
}
"""Why a decision is read before another; the weights order the queue by the sum of its risks."""


def _risk_conditions() -> dict[str, Q]:
    incentive_offers = Offer.objects.exclude(kind=Offer.Kind.NONE).values("key")
    return {
        "forced": Q(policy_version__forced_promotion=True),
        "complaint": Q(reward_components__unsubscribe__gt=0),
        "low_propensity": Q(propensity__lt=LOW_PROPENSITY),
        "near_caps": Q(mask_reasons__has_key="CHANNEL_CAP") | Q(mask_reasons__has_key="OVERALL_CAP"),
        "incentive": Q(action__offer__in=incentive_offers),
    }


def review_risks(decision: Decision) -> list[str]:
    """The annotated risks of one queue row, in words, heaviest first."""
    return [words for key, (words, _) in REVIEW_RISKS.items() if getattr(decision, f"risk_{key}", False)]


def review_queue(*, filters: dict[str, Any] | None = None) -> QuerySet[Decision]:
    """Decisions to review, riskiest first (then newest), with their latest verdict (`latest_verdict`),
    each risk of REVIEW_RISKS as `risk_<key>` and their weighted sum as `risk_score`.

    filters: campaign (id), channel, state ("unreviewed" | "flagged" | "approved" | "all"),
    risk (a key of REVIEW_RISKS: only decisions with it), order ("risk" | "newest").
    """
    filters = filters or {}
    latest = DecisionReview.objects.filter(decision=OuterRef("pk")).order_by("-created_at", "-id")
    conditions = _risk_conditions()
    flags = {f"risk_{key}": Case(When(condition, then=Value(True)), default=Value(False),
                                 output_field=BooleanField())
             for key, condition in conditions.items()}
    score = sum((Case(When(condition, then=Value(REVIEW_RISKS[key][1])), default=Value(0),
                      output_field=IntegerField()) for key, condition in conditions.items()),
                Value(0, output_field=IntegerField()))
    decisions = Decision.objects.select_related("campaign", "customer", "action").annotate(
        latest_verdict=Subquery(latest.values("verdict")[:1]),
        reviewed=Exists(DecisionReview.objects.filter(decision=OuterRef("pk"))),
        risk_score=score, **flags,
    )
    if filters.get("campaign"):
        decisions = decisions.filter(campaign_id=filters["campaign"])
    if filters.get("channel"):
        decisions = decisions.filter(action__channel=filters["channel"])
    if filters.get("risk") in conditions:
        decisions = decisions.filter(conditions[filters["risk"]])
    state = filters.get("state") or "unreviewed"
    if state == "unreviewed":
        decisions = decisions.filter(reviewed=False)
    elif state in ("flagged", "approved"):
        decisions = decisions.filter(latest_verdict=state)
    if filters.get("order") == "newest":
        return decisions.order_by("-decided_at", "-id")
    return decisions.order_by("-risk_score", "-decided_at", "-id")


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


@dataclass(frozen=True)
class ErasureCounts:
    """What erasing one customer changes. Counted once, by `customer_erasure_counts`, for the erase
    page, the erasure's own answer and its audit entry alike."""

    events: int
    """Events rewritten: message id replaced, personal properties dropped."""
    decisions: int
    """Decisions whose free-form context and feature snapshot are cleared (they stay countable)."""
    explanations: int
    """Explanations deleted: their sentence and SHAP values are made of the features."""
    review_notes: int
    """Reviewer notes cleared (the verdicts stay)."""
    stored_answers: int
    """API answers kept for Idempotency-Key retries whose copy of the time zone is replaced."""
    scheduled_contacts: int
    """Contacts still to be sent, released."""
    consents_kept: int
    """Consent history rows, kept as proof of what the customer agreed to."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ErasureScope:
    """The rows erasing one customer changes: counted for the page, changed by
    compliance.data_requests.customer_erase, so the two can never tell different stories."""

    events: QuerySet
    decisions: QuerySet[Decision]
    explanations: QuerySet[Explanation]
    review_notes: QuerySet[DecisionReview]
    scheduled_contacts: QuerySet[Decision]
    stored_answers: list[IdempotentRequest]
    consents: QuerySet

    def counts(self) -> ErasureCounts:
        return ErasureCounts(
            events=self.events.count(), decisions=self.decisions.count(),
            explanations=self.explanations.count(), review_notes=self.review_notes.count(),
            stored_answers=len(self.stored_answers),
            scheduled_contacts=self.scheduled_contacts.count(), consents_kept=self.consents.count())


def customer_erasure_scope(*, customer: Any, now: datetime | None = None) -> ErasureScope:
    """Every row that holds the customer's personal or behavioural data, besides the customer's
    own: events, decisions (context, feature snapshot), explanations, reviewer notes, stored API
    answers, and the contacts still to be sent at `now`."""
    decisions = Decision.objects.filter(customer=customer)
    return ErasureScope(
        events=customer.events.all(),
        decisions=decisions,
        explanations=Explanation.objects.filter(decision__customer=customer),
        review_notes=DecisionReview.objects.filter(decision__customer=customer).exclude(note=""),
        scheduled_contacts=decisions.filter(status=Decision.Status.DECIDED,
                                            send_at__gt=now or timezone.now())
        .exclude(action__channel=Action.NO_CONTACT_CHANNEL),
        stored_answers=idempotent_answers_naming(
            decided_at=dict(decisions.values_list("id", "decided_at"))),
        consents=customer.consents.all(),
    )


def customer_erasure_counts(*, customer: Any, now: datetime | None = None) -> ErasureCounts:
    """What erasing this customer now would change (see ErasureCounts)."""
    return customer_erasure_scope(customer=customer, now=now).counts()


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
             "propensity": d.propensity, "reward": d.reward, "status": d.status,
             "send_at": when(d.send_at), "context": d.context, "features": d.features,
             "explanation": getattr(getattr(d, "explanation", None), "sentence", None)}
            for d in customer.decisions.select_related("campaign", "action", "explanation")
            .order_by("decided_at", "id").iterator(chunk_size=2000)
        ],
        "reviews": [
            {"decision_id": r.decision_id, "verdict": r.verdict, "note": r.note,
             "created_at": when(r.created_at)}
            for r in DecisionReview.objects.filter(decision__customer=customer)
            .order_by("created_at", "id")
        ],
        "suppressions": [
            {"contact_policy": e.contact_policy.name, "reason": e.reason,
             "added_at": when(e.added_at)}
            for e in SuppressionEntry.objects.filter(
                external_id_hash=suppression_hash(customer.external_id))
            .select_related("contact_policy").order_by("added_at", "id")
        ],
        "exported_at": timezone.now().isoformat(),
    }
