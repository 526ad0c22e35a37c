"""Writes for customers: event ingestion, incremental profile updates and consent changes.

Events arrive in batches (the webhook). One batch is one transaction: customers are created or
locked (the same row lock the decision loop takes, so a decision never sees half a batch), events
already stored under their message id are counted as duplicates and skipped, the rest are appended
and folded into each customer's behaviour counters with `agents.features.record_*` - the same
functions the simulator uses - so the very next decision sees them. Consent changes and
unsubscribes write a Consent row and flip the profile's consent at once; a delivery failure
releases the contact its decision had reserved.

Profile time: `profile_state` is valid at `profile_updated_at`. An event later than that first lets
the time in between pass (`advance_days`), then records; an event older than it (late delivery) is
recorded as of `profile_updated_at` (its decay is slightly under-counted; nothing is lost).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from agents import features as agent_features
from agents.catalogue import CHANNELS
from crm_console.campaigns.agents_bridge import utc_offset_hours
from crm_console.customers import event_types
from crm_console.customers.models import Consent, Customer, Event

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0
CHANNEL_INDEX = {channel: i for i, channel in enumerate(CHANNELS)}
IDENTITY_TRAITS = ("email", "phone", "name", "timezone", "consent")
"""Traits of an identify call that land in Customer fields and Consent rows, not in `traits`."""


@dataclass(frozen=True)
class IncomingEvent:
    """One validated Segment event (the API's serializer builds these)."""

    type: str
    user_id: str
    message_id: str
    timestamp: datetime
    name: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    customers_created: int = 0
    released_decisions: int = 0


# ------------------------------------------------------------------------------------- profiles
def profile_states_load(customers: list[Customer], *, at: datetime) -> tuple[agent_features.ProfileState, np.ndarray]:
    """The customers' stored profiles stacked into one ProfileState, and each one's clock (unix s).

    A customer without a profile yet starts empty at `at`, with no consent (consent is granted by
    events or Consent rows, never assumed).
    """
    n = len(customers)
    empty = agent_features.ProfileState.empty(1, consent=False).to_dict()
    dicts = []
    clocks = np.empty(n, dtype=np.float64)
    for i, customer in enumerate(customers):
        stored = customer.profile_state or {}
        if stored and all(f.name in stored for f in fields(agent_features.ProfileState)):
            dicts.append(stored)
            clocks[i] = (customer.profile_updated_at or at).timestamp()
        else:
            fresh = dict(empty)
            moment = at.astimezone(dt_timezone.utc)
            fresh["day_clock"] = [(moment.hour * 3600 + moment.minute * 60 + moment.second) / SECONDS_PER_DAY]
            dicts.append(fresh)
            clocks[i] = at.timestamp()
    arrays = {}
    for f in fields(agent_features.ProfileState):
        # one customer's entry is a length-1 list: [value] or [[per-channel values]]
        stacked = np.array([d[f.name][0] for d in dicts], dtype=object)
        stacked[stacked == None] = np.inf  # noqa: E711 (element-wise: None stands for inf)
        arrays[f.name] = stacked.astype(np.float64).reshape((n, *np.shape(dicts[0][f.name][0])))
    return agent_features.ProfileState(**arrays), clocks


def profile_states_store(customers: list[Customer], state: agent_features.ProfileState,
                         clocks: np.ndarray) -> None:
    """Write the stacked profiles back onto the customer objects (not saved)."""
    as_lists = state.to_dict()
    for i, customer in enumerate(customers):
        customer.profile_state = {name: [values[i]] for name, values in as_lists.items()}
        customer.profile_updated_at = datetime.fromtimestamp(float(clocks[i]), tz=dt_timezone.utc)


def customers_save_fields(customers: list[Customer], field_names: list[str]) -> None:
    """UPDATE these fields of each customer in one statement (PostgreSQL: UPDATE ... FROM VALUES).

    `bulk_update` builds a CASE WHEN per row and field, which costs seconds for a 1,000-customer
    batch; this costs milliseconds. Other databases get one prepared UPDATE run by executemany.
    """
    if not customers:
        return
    meta = Customer._meta
    quote = connection.ops.quote_name
    model_fields = [meta.get_field(name) for name in field_names]
    params: list[Any] = []
    rows = []
    for customer in customers:
        params.append(customer.pk)
        params.extend(f.get_db_prep_save(getattr(customer, f.attname), connection)
                      for f in model_fields)
        rows.append(customer)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            casts = ["%s::bigint", *(f"%s::{f.db_type(connection)}" for f in model_fields)]
            values = ", ".join(f"({', '.join(casts)})" for _ in rows)
            columns = ", ".join(["id", *(quote(f.column) for f in model_fields)])
            assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in model_fields)
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} AS c SET {assignments} "
                f"FROM (VALUES {values}) AS v({columns}) WHERE c.{quote(meta.pk.column)} = v.id",
                params)
        else:
            width = len(model_fields) + 1
            per_row = [params[i * width:(i + 1) * width] for i in range(len(rows))]
            assignments = ", ".join(f"{quote(f.column)} = %s" for f in model_fields)
            cursor.executemany(
                f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s",
                [row[1:] + row[:1] for row in per_row])


def profile_states_advance(state: agent_features.ProfileState, clocks: np.ndarray,
                           to: np.ndarray) -> np.ndarray:
    """Let time pass for each customer up to `to` (unix s); earlier targets leave them as they are."""
    days = np.maximum(to - clocks, 0.0) / SECONDS_PER_DAY
    if np.any(days > 0):
        agent_features.advance_days(state, days)
    return np.maximum(clocks, to)


# ------------------------------------------------------------------------------------- ingestion
@transaction.atomic
def events_ingest(*, events: list[IncomingEvent], source: str = "api") -> IngestResult:
    """Store a batch of events (idempotent by message id) and update profiles and consent."""
    from crm_console.decisioning.models import Decision

    if not events:
        return IngestResult(0, 0)
    now = timezone.now()
    customers, created = _customers_get_or_create_locked(events)

    # idempotency: skip message ids already stored, and repeats inside the batch
    stored = set(Event.objects.filter(message_id__in=[e.message_id for e in events])
                 .values_list("message_id", flat=True))
    fresh: list[IncomingEvent] = []
    for event in events:
        if event.message_id in stored:
            continue
        stored.add(event.message_id)
        fresh.append(event)
    duplicates = len(events) - len(fresh)
    if not fresh:
        return IngestResult(0, duplicates, created)

    Event.objects.bulk_create(
        [Event(message_id=e.message_id, customer=customers[e.user_id], type=e.type,
               name=event_types.canonical_name(e.name) if e.type == Event.Type.TRACK else "",
               properties=e.properties if e.type == Event.Type.TRACK else {"traits": e.traits},
               timestamp=e.timestamp) for e in fresh],
        batch_size=1000, ignore_conflicts=True,
    )

    # decisions the outcome events name: their channel, and which contacts failed to deliver
    named = {_decision_id(e) for e in fresh} - {None}
    decisions = {
        row["id"]: row for row in Decision.objects.filter(id__in=named).values(
            "id", "customer_id", "status", "action__channel")
    } if named else {}

    touched = sorted({e.user_id for e in fresh})
    rows = [customers[user_id] for user_id in touched]
    position = {user_id: i for i, user_id in enumerate(touched)}
    state, clocks = profile_states_load(rows, at=min(e.timestamp for e in fresh))
    consents: list[Consent] = []
    to_release: list[int] = []
    # events in time order per customer; the k-th event of every customer is applied together
    per_customer: dict[str, list[IncomingEvent]] = defaultdict(list)
    for event in sorted(fresh, key=lambda e: e.timestamp):
        per_customer[event.user_id].append(event)
    rounds = max(len(v) for v in per_customer.values())
    for k in range(rounds):
        targets = clocks.copy()
        batch = [(position[u], evs[k]) for u, evs in per_customer.items() if len(evs) > k]
        for i, event in batch:
            targets[i] = min(event.timestamp, now).timestamp()
        clocks = profile_states_advance(state, clocks, targets)
        for i, event in batch:
            _apply(state, i, event, customer=rows[i], decisions=decisions, consents=consents,
                   to_release=to_release, source=source)
    profile_states_store(rows, state, clocks)
    customers_save_fields(rows, ["profile_state", "profile_updated_at"])
    identified = sorted({e.user_id for e in fresh if e.type == Event.Type.IDENTIFY})
    customers_save_fields([customers[u] for u in identified],
                          ["traits", "email", "phone", "name", "time_zone"])
    Consent.objects.bulk_create(consents, batch_size=1000)
    released = 0
    if to_release:
        from crm_console.decisioning.services import decisions_release
        released = decisions_release(decision_ids=to_release, reason="delivery failed")
    logger.info("events ingested: %d accepted, %d duplicates, %d customers", len(fresh),
                duplicates, len(rows))
    return IngestResult(len(fresh), duplicates, created, released)


def _customers_get_or_create_locked(events: Iterable[IncomingEvent]) -> tuple[dict[str, Customer], int]:
    """The batch's customers, created where new, read under their row locks (one query)."""
    from crm_console.decisioning.caps import customers_lock

    user_ids = sorted({e.user_id for e in events})
    known = set(Customer.objects.filter(external_id__in=user_ids).values_list("external_id", flat=True))
    missing = [u for u in user_ids if u not in known]
    if missing:
        Customer.objects.bulk_create([Customer(external_id=u) for u in missing],
                                     ignore_conflicts=True, batch_size=1000)
    if connection.features.has_select_for_update:
        # same lock order as customers_lock (by id): batches and decisions never deadlock
        rows = Customer.objects.select_for_update().filter(external_id__in=user_ids).order_by("pk")
        return {c.external_id: c for c in rows}, len(missing)
    rows = list(Customer.objects.filter(external_id__in=user_ids))
    customers_lock([c.pk for c in rows])
    return {c.external_id: c for c in rows}, len(missing)


def _decision_id(event: IncomingEvent) -> int | None:
    value = event.properties.get("decision_id") if event.type == Event.Type.TRACK else None
    return int(value) if value is not None else None


def _channel_of(event: IncomingEvent, decisions: dict[int, dict]) -> str | None:
    channel = event.properties.get("channel")
    if channel in CHANNEL_INDEX:
        return channel
    decision = decisions.get(_decision_id(event) or -1)
    if decision is not None and decision["action__channel"] in CHANNEL_INDEX:
        return decision["action__channel"]
    return None


def _apply(state: agent_features.ProfileState, i: int, event: IncomingEvent, *, customer: Customer,
           decisions: dict[int, dict], consents: list[Consent], to_release: list[int],
           source: str) -> None:
    """Fold one event into customer `i`'s counters (and its customer row / consent)."""
    row = np.array([i])
    if event.type == Event.Type.IDENTIFY:
        _identify(state, row, event, customer=customer, consents=consents, source=source)
        return
    name = event_types.canonical_name(event.name)
    props = event.properties
    channel = _channel_of(event, decisions)
    if name == event_types.MESSAGE_OPENED:
        agent_features.record_open(state, row, CHANNEL_INDEX[channel or "email"])
    elif name == event_types.LINK_CLICKED:
        agent_features.record_click(state, row, CHANNEL_INDEX[channel or "email"])
    elif name == event_types.ORDER_COMPLETED:
        discounted = bool(props.get("discounted") or props.get("coupon") or props.get("discount"))
        agent_features.record_purchase(state, row, float(props.get("revenue") or 0.0), discounted)
    elif name == event_types.UNSUBSCRIBED:
        # no channel named: unsubscribe from everything (the safe reading for compliance)
        for ch in [channel] if channel else CHANNELS:
            _consent(state, row, ch, False, customer=customer, at=event.timestamp,
                     consents=consents, source=f"{source}: unsubscribe")
    elif name == event_types.CONSENT_CHANGED:
        for ch, granted in _consent_changes(props).items():
            _consent(state, row, ch, granted, customer=customer, at=event.timestamp,
                     consents=consents, source=f"{source}: consent changed")
    elif name == event_types.DELIVERY_FAILED:
        decision = decisions.get(_decision_id(event) or -1)
        if decision is not None and decision["customer_id"] == customer.pk:
            to_release.append(decision["id"])
    # any other name: kept as a generic event, no counter changes


def _consent_changes(props: dict[str, Any]) -> dict[str, bool]:
    """{"channel": "sms", "granted": false} or {"consent": {"sms": false, "email": true}}."""
    if isinstance(props.get("consent"), dict):
        return {ch: bool(v) for ch, v in props["consent"].items()}
    return {props["channel"]: bool(props["granted"])}


def _identify(state: agent_features.ProfileState, row: np.ndarray, event: IncomingEvent, *,
              customer: Customer, consents: list[Consent], source: str) -> None:
    traits = event.traits
    if customer.is_erased:
        # an erased customer's personal data stays erased, whatever the CRM still sends
        traits = {k: v for k, v in traits.items() if k in ("timezone", "consent")}
    for name in ("email", "phone", "name"):
        if traits.get(name):
            setattr(customer, name, str(traits[name]))
    if traits.get("timezone"):
        customer.time_zone = traits["timezone"]
        state.utc_offset_hours[row] = utc_offset_hours(customer.time_zone, event.timestamp)
    for channel, granted in (traits.get("consent") or {}).items():
        _consent(state, row, channel, bool(granted), customer=customer, at=event.timestamp,
                 consents=consents, source=f"{source}: identify")
    other = {k: v for k, v in traits.items() if k not in IDENTITY_TRAITS}
    if other:
        customer.traits = {**(customer.traits or {}), **other}


def _consent(state: agent_features.ProfileState, row: np.ndarray, channel: str, granted: bool, *,
             customer: Customer, at: datetime, consents: list[Consent], source: str) -> None:
    agent_features.set_consent(state, row, CHANNEL_INDEX[channel], granted)
    consents.append(Consent(customer=customer, channel=channel, granted=granted,
                            source=source[:100], recorded_at=at))


@transaction.atomic
def consent_change(*, customer: Customer, channel: str, granted: bool, source: str,
                   recorded_at: datetime | None = None) -> Consent:
    """Record one consent change and apply it to the profile at once (console and admin use)."""
    from crm_console.decisioning.caps import customers_lock

    customers_lock([customer.pk])
    customer.refresh_from_db()
    at = recorded_at or timezone.now()
    consent = Consent(customer=customer, channel=channel, granted=granted, source=source,
                      recorded_at=at)
    consent.full_clean()
    consent.save()
    if customer.profile_state:
        state, clocks = profile_states_load([customer], at=at)
        agent_features.set_consent(state, np.array([0]), CHANNEL_INDEX[channel], granted)
        profile_states_store([customer], state, clocks)
        customer.save(update_fields=["profile_state", "profile_updated_at"])
    return consent
