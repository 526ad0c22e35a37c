"""Writes for customers: event ingestion, incremental profile updates and consent changes.

Events arrive in batches (the webhook). One batch is one transaction: customers are created or
locked (the same row lock the decision loop takes, so a decision never sees half a batch), events
already stored under their message id are counted as duplicates and skipped, the rest are appended
and folded into each customer's behaviour counters with `agents.features.record_*` - the same
functions the simulator uses - so the very next decision sees them. Consent changes and
unsubscribes write a Consent row and flip the profile's consent at once. What a batch means for
decisions (receipts, delivery failures, withdrawn consent, outcomes to price) comes back as
`DeliveryReceipts` for decisioning to apply (`decisioning.delivery.events_record` does both in one
transaction): decisioning builds on customers, so customers never imports decisioning's services.

On PostgreSQL a batch is a handful of set-based statements: one locked read of the customers
(only the columns ingestion needs, each profile as a flat list of numbers), one INSERT ... ON
CONFLICT DO NOTHING RETURNING that stores the events and says which message ids were new, one
UPDATE for profiles and identify fields (every row in one JSON parameter). Other databases (the
embedded SQLite) take the ORM path; both give the same result.

Profile time: `profile_state` is valid at `profile_updated_at`. An event later than that first lets
the time in between pass (`advance_days`), then records; an event older than it (late delivery) is
recorded as of `profile_updated_at` (its decay is slightly under-counted; nothing is lost).
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from agents import features as agent_features
from crm_console import recordsets
from crm_console.campaigns.agents_bridge import utc_offset_hours
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers import event_types
from crm_console.customers.locks import customers_lock
from crm_console.customers.models import Consent, Customer, Event
from crm_console.decisioning.models import Decision

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0
IDENTITY_TRAITS = ("email", "phone", "name", "timezone", "consent")
"""Traits of an identify call that land in Customer fields and Consent rows, not in `traits`."""
IDENTITY_FIELDS = ("email", "phone", "name", "time_zone")
"""The Customer fields identify calls set."""


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
class DeliveryReceipts:
    """What a stored batch says about decisions, for decisioning to apply (see module docstring)."""

    delivered: dict[int, datetime] = field(default_factory=dict)  # decision id -> delivered at
    failed: tuple[int, ...] = ()  # decision ids whose delivery failed (to release)
    withdrawals: tuple[tuple[int, str, datetime], ...] = ()  # (customer id, channel key, at)
    outcome_customers: tuple[int, ...] = ()  # customers whose new outcome events need pricing


@dataclass(frozen=True)
class IngestResult:
    """A batch's counts. `events_ingest` leaves released / delivered at 0 (it only stores);
    `decisioning.delivery.events_record` fills them in when it applies `receipts`."""

    accepted: int
    duplicates: int
    customers_created: int = 0
    released_decisions: int = 0
    delivered_decisions: int = 0
    receipts: DeliveryReceipts = field(default_factory=DeliveryReceipts)


# ------------------------------------------------------------------------------------- profiles
PROFILE_FIELDS = tuple(f.name for f in fields(agent_features.ProfileState))


@dataclass(frozen=True)
class ProfileFormat:
    """How a profile of `n_channels` channels is stored: each field's per-customer shape."""

    n_channels: int
    shapes: dict[str, tuple[int, ...]]


@functools.lru_cache(maxsize=8)
def profile_format(n_channels: int) -> ProfileFormat:
    empty = agent_features.ProfileState.empty(1, n_channels=n_channels)
    shapes = {name: np.shape(getattr(empty, name))[1:] for name in PROFILE_FIELDS}
    return ProfileFormat(n_channels, shapes)


def workspace_channel_count() -> int:
    """How many columns every per-channel array has: one per channel record (campaigns.Channel)."""
    return len(vocabulary().channels)


def order_discounted(properties: dict[str, Any]) -> bool:
    """An order placed with a discount, as its event says (feeds the discount-response features)."""
    return bool(properties.get("discounted") or properties.get("coupon")
                or properties.get("discount"))


def profile_states_empty(n: int, *, consent: bool = False) -> agent_features.ProfileState:
    """n brand-new customers laid out for the workspace's channels."""
    return agent_features.ProfileState.empty(n, consent=consent, n_channels=workspace_channel_count())


def _per_channel_relaid(values: list, n_channels: int, empty_value: float) -> list:
    """A stored per-channel list brought to today's channels: channels are only appended (and only
    the newest can be deleted), so a shorter list gains the new channels' empty values and a
    longer one loses the deleted channel's."""
    return (list(values) + [empty_value] * n_channels)[:n_channels]


def profile_states_load(customers: list[Customer], *, at: datetime) -> tuple[agent_features.ProfileState, np.ndarray]:
    """The customers' stored profiles stacked into one ProfileState, and each one's clock (unix s).

    A customer without a profile yet starts empty at `at`, with no consent (consent is granted by
    events or Consent rows, never assumed). A profile stored before a channel was added gets the
    new channel's empty counters. Anything with `profile_state` and `profile_updated_at` will do
    (event ingestion passes its own light rows).
    """
    n = len(customers)
    layout = profile_format(workspace_channel_count())
    empty = agent_features.ProfileState.empty(1, consent=False, n_channels=layout.n_channels)
    empty_dict = empty.to_dict()
    moment = at.astimezone(dt_timezone.utc)
    empty_dict["day_clock"] = [(moment.hour * 3600 + moment.minute * 60 + moment.second) / SECONDS_PER_DAY]
    per_channel = {name: empty_dict[name][0][0] for name in PROFILE_FIELDS
                   if layout.shapes[name] == (layout.n_channels,)}
    required = set(PROFILE_FIELDS)
    dicts = []
    clocks = np.empty(n, dtype=np.float64)
    for i, customer in enumerate(customers):
        stored = customer.profile_state
        if isinstance(stored, dict) and stored.keys() >= required:
            if len(stored["consent"][0]) != layout.n_channels:
                stored = {**stored, **{name: [_per_channel_relaid(stored[name][0], layout.n_channels,
                                                                  empty_value)]
                                       for name, empty_value in per_channel.items()}}
            dicts.append(stored)
            clocks[i] = (customer.profile_updated_at or at).timestamp()
        else:
            dicts.append(empty_dict)
            clocks[i] = at.timestamp()
    # one customer's entry is a length-1 list: [value] or [[per-channel values]]
    arrays = {name: _field_stacked([d[name][0] for d in dicts], layout.shapes[name])
              for name in PROFILE_FIELDS}
    return agent_features.ProfileState(**arrays), clocks


def _field_stacked(values: list, shape: tuple[int, ...]) -> np.ndarray:
    """One profile field of every customer as an (n, *shape) array. None stands for inf (to_dict
    writes every non-finite value so; numpy reads it as nan). Raises ValueError (or TypeError)
    for a value that is not a number or a per-channel list of another length."""
    stacked = np.array(values, dtype=np.float64)
    if stacked.shape != (len(values), *shape):
        raise ValueError(f"a stored profile field has shape {stacked.shape[1:]}, not {shape}")
    stacked[np.isnan(stacked)] = np.inf
    return stacked


def profile_states_store(customers: list[Customer], state: agent_features.ProfileState,
                         clocks: np.ndarray) -> None:
    """Write the stacked profiles back onto the customer objects (not saved)."""
    columns = list(state.to_dict().items())
    for i, customer in enumerate(customers):
        customer.profile_state = {name: [values[i]] for name, values in columns}
        customer.profile_updated_at = datetime.fromtimestamp(float(clocks[i]), tz=dt_timezone.utc)


def customers_save_fields(customers: list[Any], field_names: list[str]) -> None:
    """UPDATE these fields of each customer, set-based (recordsets.rows_update)."""
    recordsets.rows_update(customers, field_names, model=Customer)


def profile_states_advance(state: agent_features.ProfileState, clocks: np.ndarray,
                           to: np.ndarray) -> np.ndarray:
    """Let time pass for each customer up to `to` (unix s); earlier targets leave them as they are."""
    days = np.maximum(to - clocks, 0.0) / SECONDS_PER_DAY
    if np.any(days > 0):
        agent_features.advance_days(state, days)
    return np.maximum(clocks, to)


# PostgreSQL fast path for profiles: the locked read takes each profile apart in the database
# (`_profile_fields_sql`: one JSON array of the fields' values, no keys), and the write sends the
# profiles profile_states_store makes in the same UPDATE as the identify fields. Written out
# because it pays: through the ORM (each profile a JSON object decoded by Django, the identified
# customers read and saved again) the web process spent 127-130 ms of CPU per 1,000-event batch
# instead of 54-70, and events/s fell from 6,133-8,400 to 4,067-5,400
# (benchmarks/before_after.sh, BENCHMARKS.md "Issue 20").


def _profile_fields_sql(column: str) -> str:
    """SQL: the stored profile's fields' values as one JSON array in PROFILE_FIELDS order.

    NULL where the profile lacks a field (the customer starts empty, as in profile_states_load).
    """
    names = ", ".join(f"'{name}'" for name in PROFILE_FIELDS)
    values = ", ".join(f"{column} #> '{{{name},0}}'" for name in PROFILE_FIELDS)
    return (f"CASE WHEN jsonb_typeof({column}) = 'object' AND {column} ?& ARRAY[{names}] "
            f"THEN jsonb_build_array({values})::text END")


def _profile_states_from_fields(
        texts: list[str | None], updated_at: list[datetime | None], *,
        at: datetime) -> tuple[agent_features.ProfileState, np.ndarray] | None:
    """profile_states_load for profiles read with _profile_fields_sql, stacked field by field.

    None when a stored profile does not have today's shape (a value that is not a number, a
    per-channel list of another length: a profile stored before a channel was added): the
    caller reads the JSON instead, and profile_states_load re-lays or refuses it.
    """
    n = len(texts)
    state = profile_states_empty(n)
    layout = profile_format(state.n_channels)
    moment = at.astimezone(dt_timezone.utc)
    state.day_clock[:] = (moment.hour * 3600 + moment.minute * 60 + moment.second) / SECONDS_PER_DAY
    clocks = np.full(n, at.timestamp())
    stored = [i for i, text in enumerate(texts) if text is not None]
    if not stored:
        return state, clocks
    rows = [json.loads(texts[i]) for i in stored]
    for j, name in enumerate(PROFILE_FIELDS):
        try:
            getattr(state, name)[stored] = _field_stacked([row[j] for row in rows],
                                                          layout.shapes[name])
        except (TypeError, ValueError, IndexError):
            return None
    clocks[stored] = [(updated_at[i] or at).timestamp() for i in stored]
    return state, clocks


# ------------------------------------------------------------------------------------- ingestion
@dataclass(eq=False, slots=True)
class _BatchCustomer:
    """A customer row of a batch, read under its lock: only what ingestion reads or changes.

    Identify calls collect their changes here (`identity`: email, phone, name, time_zone;
    `traits`: the other traits, merged over the stored ones when written), so a batch never reads
    a customer's personal data it does not change.
    """

    pk: int
    external_id: str
    profile_state: Any  # the stored JSON, decoded (other databases) or flat (PostgreSQL)
    profile_updated_at: datetime | None
    erased_at: datetime | None
    identity: dict[str, str] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


@transaction.atomic
def events_ingest(*, events: list[IncomingEvent], source: str = "api") -> IngestResult:
    """Store a batch of events (idempotent by message id) and update profiles and consent.

    All or nothing. Decisions are not changed here: the result's `receipts` say what decisioning
    must do (`decisioning.delivery.events_record` stores and applies in one transaction).
    """
    if not events:
        return IngestResult(0, 0)
    now = timezone.now()
    customers, created = _customers_get_or_create_locked(events)
    fresh = _events_store(events, customers, now=now)
    duplicates = len(events) - len(fresh)
    if not fresh:
        return IngestResult(0, duplicates, created)

    # decisions the outcome events name: their channel, and which contacts failed to deliver
    named = {_decision_id(e) for e in fresh} - {None}
    decisions = {
        row["id"]: row for row in Decision.objects.filter(id__in=named).values(
            "id", "customer_id", "status", "action__channel")
    } if named else {}

    touched = sorted({e.user_id for e in fresh})
    rows = [customers[user_id] for user_id in touched]
    position = {user_id: i for i, user_id in enumerate(touched)}
    state, clocks = _profiles_load(rows, at=min(e.timestamp for e in fresh))
    consents: list[Consent] = []
    to_release: list[int] = []
    delivered: dict[int, datetime] = {}
    for batch in _rounds(fresh, position):
        targets = clocks.copy()
        for i, event in batch:
            targets[i] = min(event.timestamp, now).timestamp()
        clocks = profile_states_advance(state, clocks, targets)
        _apply_round(state, batch, rows=rows, decisions=decisions, consents=consents,
                     to_release=to_release, delivered=delivered, source=source)
    _customers_write(rows, state, clocks)
    Consent.objects.bulk_create(consents, batch_size=1000)
    outcome_customers = sorted({customers[e.user_id].pk for e in fresh if e.type == Event.Type.TRACK
                                and event_types.canonical_name(e.name) in event_types.OUTCOME_EVENTS})
    receipts = DeliveryReceipts(delivered=delivered, failed=tuple(to_release),
                                withdrawals=tuple(consent_withdrawals(consents)),
                                outcome_customers=tuple(outcome_customers))
    logger.info("events ingested: %d accepted, %d duplicates, %d customers", len(fresh),
                duplicates, len(rows))
    return IngestResult(len(fresh), duplicates, created, receipts=receipts)


def _customers_get_or_create_locked(
        events: Iterable[IncomingEvent]) -> tuple[dict[str, _BatchCustomer], int]:
    """The batch's customers, created where new, read under their row locks.

    Rows are locked in id order (as customers_lock does) and new customers are inserted while the
    batch holds no lock, in external-id order: batches and decisions never deadlock.
    """
    user_ids = sorted({e.user_id for e in events})
    if recordsets.set_based_sql():
        # usually every customer exists: one locked read; otherwise give the locks back, create
        # the new customers and read again
        savepoint = transaction.savepoint_create()
        rows = _customers_read_locked(user_ids)
        missing = sorted(set(user_ids) - {row.external_id for row in rows})
        if not missing:
            transaction.savepoint_commit(savepoint)
            return {row.external_id: row for row in rows}, 0
        transaction.savepoint_rollback(savepoint)
        _customers_create(missing)
        return {row.external_id: row for row in _customers_read_locked(user_ids)}, len(missing)
    known = set(Customer.objects.filter(external_id__in=user_ids)
                .values_list("external_id", flat=True))
    missing = [u for u in user_ids if u not in known]
    _customers_create(missing)
    query = Customer.objects.filter(external_id__in=user_ids).order_by("pk")
    if connection.features.has_select_for_update:
        query = query.select_for_update()
    rows = [_BatchCustomer(*values) for values in query.values_list(
        "pk", "external_id", "profile_state", "profile_updated_at", "erased_at")]
    if not connection.features.has_select_for_update:
        customers_lock([row.pk for row in rows])
    return {row.external_id: row for row in rows}, len(missing)


def _customers_create(external_ids: list[str]) -> None:
    if external_ids:
        Customer.objects.bulk_create([Customer(external_id=u) for u in external_ids],
                                     ignore_conflicts=True, batch_size=1000)


def _customers_read_locked(external_ids: list[str]) -> list[_BatchCustomer]:
    """PostgreSQL: the rows locked in id order; only what ingestion needs, the profile flat."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, external_id, {_profile_fields_sql('profile_state')}, profile_updated_at, "
            f"erased_at FROM {table} WHERE external_id = ANY(%s) ORDER BY id FOR UPDATE",
            [external_ids])
        return [_BatchCustomer(*values) for values in cursor.fetchall()]


def _profiles_load(rows: list[_BatchCustomer], *,
                   at: datetime) -> tuple[agent_features.ProfileState, np.ndarray]:
    """The rows' profiles stacked (profile_states_load; PostgreSQL parses its flat profiles)."""
    if not recordsets.set_based_sql():
        return profile_states_load(rows, at=at)
    loaded = _profile_states_from_fields([row.profile_state for row in rows],
                                       [row.profile_updated_at for row in rows], at=at)
    if loaded is not None:
        return loaded
    # a profile of another shape: read the JSON and let profile_states_load judge it
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, profile_state::text FROM {table} WHERE id = ANY(%s)",
                       [[row.pk for row in rows]])
        stored = {pk: json.loads(text) for pk, text in cursor.fetchall()}
    for row in rows:
        row.profile_state = stored[row.pk]
    return profile_states_load(rows, at=at)


def _events_store(events: list[IncomingEvent], customers: dict[str, _BatchCustomer], *,
                  now: datetime) -> list[IncomingEvent]:
    """Append the batch's events; returns those stored now, in batch order (the rest: duplicates).

    A message id repeated inside the batch counts once (its first event). On PostgreSQL one
    INSERT ... ON CONFLICT DO NOTHING RETURNING both stores the events and says which were new, so
    an event a concurrent batch stored first is not folded into the profile a second time.
    """
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            unique.append(event)

    def name(event: IncomingEvent) -> str:
        return event_types.canonical_name(event.name) if event.type == Event.Type.TRACK else ""

    def properties(event: IncomingEvent) -> dict[str, Any]:
        return event.properties if event.type == Event.Type.TRACK else {"traits": event.traits}

    if recordsets.set_based_sql():
        quote = connection.ops.quote_name
        columns = [Event._meta.get_field(f) for f in
                   ("message_id", "customer", "type", "name", "properties", "timestamp")]
        names = ", ".join(quote(f.column) for f in columns)
        definitions = recordsets.recordset_columns(columns)
        records = json.dumps([
            {"message_id": e.message_id, "customer_id": customers[e.user_id].pk, "type": e.type,
             "name": name(e), "properties": properties(e), "timestamp": e.timestamp.isoformat()}
            for e in unique])
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(Event._meta.db_table)} ({names}, received_at) "
                f"SELECT {names}, %s FROM jsonb_to_recordset(%s::jsonb) AS v({definitions}) "
                f"ON CONFLICT (message_id) DO NOTHING RETURNING message_id", [now, records])
            stored = {message_id for (message_id,) in cursor.fetchall()}
        return [e for e in unique if e.message_id in stored]
    stored = set(Event.objects.filter(message_id__in=[e.message_id for e in unique])
                 .values_list("message_id", flat=True))
    fresh = [e for e in unique if e.message_id not in stored]
    # SQLite lets one writer in at a time, so the ids read above are exact (elsewhere
    # ignore_conflicts is the backstop)
    Event.objects.bulk_create(
        [Event(message_id=e.message_id, customer_id=customers[e.user_id].pk, type=e.type,
               name=name(e), properties=properties(e), timestamp=e.timestamp) for e in fresh],
        batch_size=1000, ignore_conflicts=True,
    )
    return fresh


def _customers_write(rows: list[_BatchCustomer], state: agent_features.ProfileState,
                     clocks: np.ndarray) -> None:
    """Profiles and what identify calls changed, back in one UPDATE (PostgreSQL).

    Contact details are written only where an identify call set them (COALESCE keeps the stored
    value) and added traits are merged over the stored ones in the database (`||`), so neither is
    read. Other databases: the profiles with customers_save_fields, then the identified customers
    read, changed and saved.
    """
    profile_states_store(rows, state, clocks)
    if not recordsets.set_based_sql():
        customers_save_fields(rows, ["profile_state", "profile_updated_at"])
        identified = {row.pk: row for row in rows if row.identity or row.traits}
        customers = list(Customer.objects.filter(pk__in=identified).order_by("pk"))
        for customer in customers:
            row = identified[customer.pk]
            for name, value in row.identity.items():
                setattr(customer, name, value)
            if row.traits:
                customer.traits = {**(customer.traits or {}), **row.traits}
        customers_save_fields(customers, ["traits", *IDENTITY_FIELDS])
        return
    records = [{"id": row.pk, "profile_state": row.profile_state,
                "profile_updated_at": row.profile_updated_at.isoformat(),
                **row.identity, **({"traits": row.traits} if row.traits else {})} for row in rows]
    quote = connection.ops.quote_name
    meta = Customer._meta
    identity = [meta.get_field(name) for name in IDENTITY_FIELDS]
    definitions = recordsets.recordset_columns(identity)
    kept = ", ".join(f"{quote(f.column)} = COALESCE(v.{quote(f.column)}, c.{quote(f.column)})"
                     for f in identity)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS c SET "
            f"profile_state = v.profile_state, "
            f"profile_updated_at = v.profile_updated_at, {kept}, traits = CASE "
            f"WHEN v.traits IS NULL THEN c.traits "
            f"WHEN jsonb_typeof(c.traits) = 'object' THEN c.traits || v.traits ELSE v.traits END "
            f"FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, profile_state jsonb, "
            f"profile_updated_at timestamptz, {definitions}, traits jsonb) WHERE c.id = v.id",
            [json.dumps(records, allow_nan=False)])


def _rounds(events: list[IncomingEvent],
            position: dict[str, int]) -> list[list[tuple[int, IncomingEvent]]]:
    """Round k holds every customer's k-th event in time order, so a round touches each row once."""
    counts: dict[int, int] = defaultdict(int)
    rounds: list[list[tuple[int, IncomingEvent]]] = []
    for event in sorted(events, key=lambda e: e.timestamp):
        i = position[event.user_id]
        k = counts[i]
        counts[i] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append((i, event))
    return rounds


def _decision_id(event: IncomingEvent) -> int | None:
    value = event.properties.get("decision_id") if event.type == Event.Type.TRACK else None
    return int(value) if value is not None else None


def consent_withdrawals(consents: Iterable[Consent]) -> list[tuple[int, str, datetime]]:
    """(customer id, channel key, withdrawn at) of every channel that needs a withdrawn consent:
    decisioning stops the messages still scheduled there (`DeliveryReceipts.withdrawals`)."""
    words = vocabulary()
    return [(c.customer_id, words.channels[position].key, c.recorded_at)
            for c in consents if not c.granted for position in words.channels_needing(c.channel)]


def _named_channel(event: IncomingEvent) -> str | None:
    channel = event.properties.get("channel")
    return channel if isinstance(channel, str) and channel in vocabulary().channel_index else None


def _channel_position(event: IncomingEvent, decisions: dict[int, dict]) -> int:
    """Which channel an open or click happened on: the one the event names, else its decision's,
    else the first channel (email in the seeded workspace)."""
    index = vocabulary().channel_index
    channel = _named_channel(event)
    if channel is None:
        decision = decisions.get(_decision_id(event) or -1)
        channel = decision["action__channel"] if decision is not None else None
    return index.get(channel, 0)


def _apply_round(state: agent_features.ProfileState, batch: list[tuple[int, IncomingEvent]], *,
                 rows: list[_BatchCustomer], decisions: dict[int, dict], consents: list[Consent],
                 to_release: list[int], delivered: dict[int, datetime], source: str) -> None:
    """Fold one round: opens, clicks and orders in one vectorised call each, the rest one by one.

    A round holds at most one event per customer, so the order between customers does not matter.
    """
    opened: list[tuple[int, int]] = []
    clicked: list[tuple[int, int]] = []
    ordered: list[tuple[int, float, bool]] = []
    for i, event in batch:
        name = event_types.canonical_name(event.name) if event.type == Event.Type.TRACK else ""
        if name == event_types.MESSAGE_OPENED:
            opened.append((i, _channel_position(event, decisions)))
        elif name == event_types.LINK_CLICKED:
            clicked.append((i, _channel_position(event, decisions)))
        elif name == event_types.ORDER_COMPLETED:
            props = event.properties
            ordered.append((i, float(props.get("revenue") or 0.0), order_discounted(props)))
        else:
            _apply(state, i, event, customer=rows[i], decisions=decisions, consents=consents,
                   to_release=to_release, delivered=delivered, source=source)
    if opened:
        at, channel = np.array(opened, dtype=np.int64).T
        agent_features.record_open(state, at, channel)
    if clicked:
        at, channel = np.array(clicked, dtype=np.int64).T
        agent_features.record_click(state, at, channel)
    if ordered:
        at, revenue, discounted = zip(*ordered)
        agent_features.record_purchase(state, np.array(at, dtype=np.int64), np.array(revenue),
                                       np.array(discounted, dtype=bool))


def _apply(state: agent_features.ProfileState, i: int, event: IncomingEvent, *,
           customer: _BatchCustomer, decisions: dict[int, dict], consents: list[Consent],
           to_release: list[int], delivered: dict[int, datetime], source: str) -> None:
    """Fold one identify, unsubscribe, consent change or delivery receipt into customer `i`."""
    row = np.array([i])
    if event.type == Event.Type.IDENTIFY:
        _identify(state, row, event, customer=customer, consents=consents, source=source)
        return
    name = event_types.canonical_name(event.name)
    props = event.properties
    if name == event_types.UNSUBSCRIBED:
        # no channel named: unsubscribe from everything (the safe reading for compliance), even
        # when the event names the decision whose message carried the link
        words = vocabulary()
        channel = _named_channel(event)
        consent_keys = ([words.consent_keys[words.channel_index[channel]]] if channel
                        else sorted(set(words.consent_keys)))
        for key in consent_keys:
            _consent(state, row, key, False, customer=customer, at=event.timestamp,
                     consents=consents, source=f"{source}: unsubscribe")
    elif name == event_types.CONSENT_CHANGED:
        for ch, granted in _consent_changes(props).items():
            _consent(state, row, ch, granted, customer=customer, at=event.timestamp,
                     consents=consents, source=f"{source}: consent changed")
    elif name in (event_types.DELIVERY_FAILED, event_types.MESSAGE_DELIVERED):
        decision = decisions.get(_decision_id(event) or -1)
        if decision is not None and decision["customer_id"] == customer.pk:
            if name == event_types.DELIVERY_FAILED:
                to_release.append(decision["id"])
            else:  # the message went out when the receipt says: the caps count it from then
                delivered[decision["id"]] = event.timestamp
    # any other name: kept as a generic event, no counter changes


def _consent_changes(props: dict[str, Any]) -> dict[str, bool]:
    """{"channel": "sms", "granted": false} or {"consent": {"sms": false, "email": true}}."""
    if isinstance(props.get("consent"), dict):
        return {ch: bool(v) for ch, v in props["consent"].items()}
    return {props["channel"]: bool(props["granted"])}


def _identify(state: agent_features.ProfileState, row: np.ndarray, event: IncomingEvent, *,
              customer: _BatchCustomer, consents: list[Consent], source: str) -> None:
    traits = event.traits
    if customer.is_erased:
        # an erased customer's personal data (the time zone too) stays erased, whatever the CRM
        # still sends; consent changes still count
        traits = {k: v for k, v in traits.items() if k == "consent"}
    for name in ("email", "phone", "name"):
        if traits.get(name):
            customer.identity[name] = str(traits[name])
    if traits.get("timezone"):
        customer.identity["time_zone"] = traits["timezone"]
        state.utc_offset_hours[row] = utc_offset_hours(traits["timezone"], event.timestamp)
    for channel, granted in (traits.get("consent") or {}).items():
        _consent(state, row, channel, bool(granted), customer=customer, at=event.timestamp,
                 consents=consents, source=f"{source}: identify")
    customer.traits.update((k, v) for k, v in traits.items() if k not in IDENTITY_TRAITS)


def consent_key_of(key: str) -> str:
    """The consent key a CRM names (a consent key, or a channel's key for its consent)."""
    words = vocabulary()
    if key in words.consent_keys:
        return key
    return words.consent_keys[words.channel_index[key]]


def _set_consent(state: agent_features.ProfileState, row: np.ndarray, consent_key: str,
                 granted: bool) -> None:
    for position in vocabulary().channels_needing(consent_key):
        agent_features.set_consent(state, row, position, granted)


def _consent(state: agent_features.ProfileState, row: np.ndarray, channel: str, granted: bool, *,
             customer: _BatchCustomer, at: datetime, consents: list[Consent], source: str) -> None:
    """Record a consent change under its consent key; every channel that needs it follows."""
    key = consent_key_of(channel)
    _set_consent(state, row, key, granted)
    consents.append(Consent(customer_id=customer.pk, channel=key, granted=granted,
                            source=source[:100], recorded_at=at))


@transaction.atomic
def consent_change(*, customer: Customer, channel: str, granted: bool, source: str,
                   recorded_at: datetime | None = None) -> Consent:
    """Record one consent change and apply it to the profile at once.

    Messages still scheduled on a withdrawn channel are decisioning's to stop: a withdrawal goes
    through `decisioning.delivery.consent_record`, which does both in one transaction.
    """
    customers_lock([customer.pk])
    customer.refresh_from_db()
    at = recorded_at or timezone.now()
    words = vocabulary()
    if channel not in words.consent_keys and channel not in words.channel_index:
        raise ValidationError({"channel": f"No channel needs the consent {channel!r}."})
    channel = consent_key_of(channel)
    consent = Consent(customer=customer, channel=channel, granted=granted, source=source,
                      recorded_at=at)
    consent.full_clean()
    consent.save()
    if customer.profile_state:
        state, clocks = profile_states_load([customer], at=at)
        _set_consent(state, np.array([0]), channel, granted)
        profile_states_store([customer], state, clocks)
        customer.save(update_fields=["profile_state", "profile_updated_at"])
    return consent
