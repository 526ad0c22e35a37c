"""Attribution: join outcome events to the decision that earned them, and price them as reward.

An outcome event names its decision (`properties.decision_id`) when the CRM knows it (opens and
clicks of the message we sent); otherwise it goes to the customer's latest decision in the
campaign whose attribution window covers the event (a purchase three days after an email). The
reward of a decision is then the campaign's RewardWeights applied to everything attributed to it,
minus the contact cost when a message was actually sent. The joined decisions are the logged data
that off-policy evaluation and offline learning read.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import timedelta

import numpy as np
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from agents.rewards import Outcomes, reward
from crm_console.campaigns.agents_bridge import reward_weights_for
from crm_console.celery import app as celery_app, task_named
from crm_console.campaigns.models import Action, Campaign
from crm_console.customers import event_types
from crm_console.customers.models import Event
from crm_console.decisioning.models import Decision
from crm_console.recordsets import rows_update
from crm_console.shared_cache import SharedCacheDown, shared_cache_call

OUTCOME_NAMES = tuple(event_types.OUTCOME_EVENTS)


def reward_components(*, events: list[Event], contact_cost: float, sent: bool) -> dict[str, float]:
    """Outcome counts of one decision, in the fields of RewardWeights."""
    components = {"open": 0.0, "click": 0.0, "conversion": 0.0, "revenue": 0.0,
                  "unsubscribe": 0.0, "churn": 0.0, "contact_cost": contact_cost if sent else 0.0}
    for event in events:
        if event.name == event_types.MESSAGE_OPENED:
            components["open"] += 1
        elif event.name == event_types.LINK_CLICKED:
            components["click"] += 1
        elif event.name == event_types.ORDER_COMPLETED:
            components["conversion"] += 1
            components["revenue"] += float(event.properties.get("revenue", 0.0) or 0.0)
        elif event.name == event_types.UNSUBSCRIBED:
            components["unsubscribe"] += 1
        elif event.name == event_types.CUSTOMER_CHURNED:
            components["churn"] += 1
    return components


# reward component (RewardWeights field) -> agents.rewards.Outcomes field
OUTCOME_FIELDS = {"open": "opens", "click": "clicks", "conversion": "conversions",
                  "revenue": "net_revenue", "unsubscribe": "unsubscribes", "churn": "churns",
                  "contact_cost": "contact_cost"}


def price(components: list[dict[str, float]], campaign: Campaign) -> np.ndarray:
    """Reward of each decision by `agents.rewards.reward`: the formula the simulator trains on."""
    outcomes = Outcomes(**{field: np.array([c[name] for c in components], dtype=np.float64)
                           for name, field in OUTCOME_FIELDS.items()})
    return reward(outcomes, reward_weights_for(campaign=campaign))


@transaction.atomic
def decisions_attribute(*, campaign: Campaign, customer_ids: list[int] | None = None) -> int:
    """Attribute the campaign's unattributed outcome events and refresh rewards; returns how many.

    `customer_ids` limits the work to those customers (what one event batch touched)."""
    window = timedelta(days=campaign.attribution_window_days)
    scope = Decision.objects.filter(campaign=campaign)
    if customer_ids is not None:
        scope = scope.filter(customer_id__in=customer_ids)
    decisions = list(scope.order_by("customer_id", "decided_at", "id")
                     .values_list("id", "customer_id", "decided_at"))
    if not decisions:
        return 0
    by_customer: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for decision_id, customer_id, decided_at in decisions:
        times, ids = by_customer[customer_id]
        times.append(decided_at)
        ids.append(decision_id)

    pending = Event.objects.filter(
        decision__isnull=True, name__in=OUTCOME_NAMES,
        customer_id__in=scope.values("customer_id"),
    ).only("id", "customer_id", "timestamp", "properties")
    links: dict[int, list[int]] = defaultdict(list)
    campaign_decisions = {d[0] for d in decisions}
    for event in pending.iterator(chunk_size=5000):
        named = event.properties.get("decision_id") if isinstance(event.properties, dict) else None
        if named is not None:
            if int(named) in campaign_decisions:
                links[int(named)].append(event.id)
            continue
        times, ids = by_customer[event.customer_id]
        position = bisect.bisect_right(times, event.timestamp) - 1
        if position >= 0 and event.timestamp - times[position] <= window:
            links[ids[position]].append(event.id)
    rows_update([Event(id=event_id, decision_id=decision_id)
                 for decision_id, event_ids in links.items() for event_id in event_ids],
                ["decision"])
    # decisions that earned nothing still cost their contact: price every one not priced yet
    unpriced = scope.filter(reward__isnull=True).values_list("id", flat=True)
    decisions_reprice(campaign=campaign, decision_ids=sorted(set(links) | set(unpriced)))
    return sum(len(v) for v in links.values())


def campaigns_price_outcomes() -> dict[int, int]:
    """Attribute and price every campaign that has decisions (the scheduled floor under pricing);
    returns the outcome events attributed, by campaign id."""
    campaigns = Campaign.objects.filter(
        pk__in=Decision.objects.values("campaign_id")).order_by("pk")
    return {campaign.pk: decisions_attribute(campaign=campaign) for campaign in campaigns}


PRICING_DELAY_SECONDS = 60
"""After ingestion, outcomes are priced this much later, once for all the batches that arrived
meanwhile (a webhook sends many small batches)."""


def outcomes_pricing_queue(*, customer_ids: list[int]) -> bool:
    """Price the outcomes that these customers' new events brought; returns whether pricing was
    queued (or done).

    With a worker, one pricing of every campaign waits `PRICING_DELAY_SECONDS`; while it waits
    (or Redis is down) nothing more is queued, and the beat's schedule (decisioning/schedule.py)
    is the floor. The ingestion path pays one cache write for it, no query. The embedded default
    has no worker and no schedule, so it prices now, for the campaigns that decided for these
    customers and those customers only.
    """
    if celery_app.conf.task_always_eager:
        campaign_ids = (Decision.objects.filter(customer_id__in=customer_ids)
                        .values_list("campaign_id", flat=True).distinct())
        for campaign in Campaign.objects.filter(pk__in=campaign_ids):
            decisions_attribute(campaign=campaign, customer_ids=customer_ids)
        return True
    try:
        first = shared_cache_call(lambda: cache.add("outcomes-pricing-queued", 1,
                                                    timeout=PRICING_DELAY_SECONDS))
    except SharedCacheDown:
        return False
    if first:
        task_named("crm_console.decisioning.tasks.price_outcomes_everywhere").apply_async(
            countdown=PRICING_DELAY_SECONDS)
    return first


def priced_decision_count(*, campaign: Campaign) -> int:
    return Decision.objects.filter(campaign=campaign, reward__isnull=False).count()


REPRICE_CHUNK = 5_000
"""Decisions repriced per query: no statement's parameters grow with the campaign's size
(PostgreSQL refuses more than 65,535 in one statement)."""


def decisions_reprice(*, campaign: Campaign, decision_ids: list[int] | None = None) -> int:
    """Recompute reward from attributed events with the campaign's current weights."""
    if decision_ids is None:
        decision_ids = list(Decision.objects.filter(campaign=campaign)
                            .order_by("id").values_list("id", flat=True))
    ids = sorted(decision_ids)
    return sum(_decisions_reprice_chunk(campaign=campaign,
                                        decision_ids=ids[start:start + REPRICE_CHUNK])
               for start in range(0, len(ids), REPRICE_CHUNK))


def _decisions_reprice_chunk(*, campaign: Campaign, decision_ids: list[int]) -> int:
    # only what pricing reads: a decision's snapshot, mask and probabilities stay in the database
    updated = list(Decision.objects.filter(campaign=campaign, id__in=decision_ids)
                   .only("id", "status", "action_id"))
    if not updated:
        return 0
    actions = {action.pk: action for action in Action.objects.filter(campaign=campaign)}
    events_by_decision: dict[int, list[Event]] = defaultdict(list)
    for event in Event.objects.filter(decision_id__in=[d.id for d in updated]).only(
            "decision_id", "name", "properties"):
        events_by_decision[event.decision_id].append(event)
    now = timezone.now()
    for decision in updated:
        action = actions[decision.action_id]
        sent = not action.is_no_contact and decision.status != Decision.Status.RELEASED
        decision.reward_components = reward_components(
            events=events_by_decision.get(decision.id, []), contact_cost=float(action.cost),
            sent=sent,
        )
        decision.attributed_at = now
    for decision, value in zip(updated, price([d.reward_components for d in updated], campaign)):
        decision.reward = float(value)
    rows_update(updated, ["reward", "reward_components", "attributed_at"])
    return len(updated)
