"""Contact caps that hold under concurrency: the customer's row lock plus the decision log.

Choice (see docs/api.md): the counters ARE the Decision rows. A decision takes a row lock on each
of its customers (`SELECT ... FOR UPDATE` on PostgreSQL, ordered by id so two batches never
deadlock), counts that customer's unreleased contacts in the cap windows, masks, picks, writes its
Decision and commits - all in one transaction. A second request for the same customer waits on
the lock and then counts the first one's contact, so 50 parallel requests cannot both take the
last slot; requests for different customers never wait on each other. Releasing a contact (a
delivery failure, or the release endpoint) is a status change that the next count leaves out.

Each contact is counted at its `send_at` - when the message goes out (its window's start in the
customer's local time, or the delivery receipt's time) - not when it was decided, so the caps and
the minimum gap hold when the message arrives (agents.constraints.send_hours defines it).

Redis counters (INCR / a Lua script) were the alternative: faster per check, but a second store
that can drift from the audit log when a process dies between the counter and the row. With the
lock the audit row and the cap are one write, and the embedded default (SQLite, no Redis) gets the
same guarantee: SQLite has no row locks, so there `customers_lock` takes the database's write lock
with a no-op UPDATE (SQLite serialises writers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
from django.db import connection
from django.utils.dateparse import parse_datetime

from agents.catalogue import DEFAULT_SEND_WINDOWS, SendWindow
from agents.constraints import ContactRules, ContactState, send_hours
from crm_console import recordsets
from crm_console.campaigns.agents_bridge import utc_offset_hours
from crm_console.campaigns.models import Action, SuppressionEntry
from crm_console.campaigns.suppression import suppression_hash
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers.models import Consent
from crm_console.decisioning.models import Decision


@dataclass
class ContactRecords:
    """What the mask needs from the database about n customers, read under their locks."""

    consent: np.ndarray                 # (n, C) bool: the latest Consent row of each channel's key
    suppressed: np.ndarray              # (n,) bool: on the contact policy's suppression list
    contacts: list[tuple[int, str, datetime]]  # unreleased contacts (customer, channel, send at)


def contact_records_read(*, customer_ids: Sequence[int], external_ids: Sequence[str],
                         contact_policy_id: int | None, since: datetime) -> ContactRecords:
    """Consent, suppression and unreleased contacts sent (or scheduled) since `since`, of these
    customers (their ids and, in the same order, their CRM ids), in one round trip.

    The suppression list is matched by the keyed hash of each CRM id (campaigns.suppression).

    Hand-written SQL on purpose: this runs in every decision while the customers' rows are locked,
    and one UNION ALL costs a fraction of three ORM queries. Must be called after the lock was
    taken (a statement started before the lock would not see a contact committed meanwhile).
    """
    n = len(customer_ids)
    words = vocabulary()
    consent = np.zeros((n, len(words.channels)), dtype=bool)
    suppressed = np.zeros(n, dtype=bool)
    contacts: list[tuple[int, str, datetime]] = []
    if not n:
        return ContactRecords(consent, suppressed, contacts)
    quote = connection.ops.quote_name
    ids, id_params = recordsets.any_of(customer_ids)
    row_of_key = {suppression_hash(eid): i for i, eid in enumerate(external_ids)}
    keys, key_params = recordsets.any_of(list(row_of_key))
    consent_table, decision_table = quote(Consent._meta.db_table), quote(Decision._meta.db_table)
    suppression_table = quote(SuppressionEntry._meta.db_table)
    action_table = quote(Action._meta.db_table)
    sql = (
        f"SELECT 0, customer_id, channel, granted, recorded_at, id FROM {consent_table} "
        f"WHERE customer_id {ids} "
        f"UNION ALL SELECT 1, 0, external_id_hash, TRUE, NULL, id FROM {suppression_table} "
        f"WHERE contact_policy_id = %s AND external_id_hash {keys} "
        f"UNION ALL SELECT 2, d.customer_id, a.channel, TRUE, d.send_at, d.id "
        f"FROM {decision_table} d "
        f"JOIN {action_table} a ON a.id = d.action_id "
        f"WHERE d.customer_id {ids} AND d.send_at >= %s AND d.status <> %s AND a.channel <> %s"
    )
    params = [*id_params, contact_policy_id, *key_params, *id_params,
              connection.ops.adapt_datetimefield_value(since), Decision.Status.RELEASED,
              Action.NO_CONTACT_CHANNEL]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    row_of = {pk: i for i, pk in enumerate(customer_ids)}
    latest: dict[tuple[int, str], tuple[datetime, int]] = {}
    granted: dict[tuple[int, str], bool] = {}
    for kind, customer_id, channel, flag, at, row_id in rows:
        if kind == 1:  # the channel column carries the matched key
            suppressed[row_of_key[channel]] = True
            continue
        i = row_of[customer_id]
        at = _aware(at)
        if kind == 2:
            contacts.append((customer_id, channel, at))
        elif (i, channel) not in latest or (at, row_id) > latest[(i, channel)]:
            # the latest row per consent key wins (ties: the later id)
            latest[(i, channel)] = (at, row_id)
            granted[(i, channel)] = bool(flag)
    for (i, consent_key), given in granted.items():
        consent[i, words.channels_needing(consent_key)] = given
    return ContactRecords(consent, suppressed, contacts)


def _aware(value: datetime | str) -> datetime:
    """A timestamp as an aware UTC datetime (SQLite's cursor returns text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt_timezone.utc)


def contact_window_start(*, rules: ContactRules, now: datetime) -> datetime:
    """The earliest send time any cap window or the minimum gap can still see from a send made
    now or later."""
    return now - timedelta(hours=rules.lookback_hours)


def contact_state_for(
    *, customer_ids: Sequence[int], now: datetime, time_zones: Sequence[str],
    consent: np.ndarray, suppressed: np.ndarray, contacts: list[tuple[int, str, datetime]],
    send_windows: tuple[SendWindow, ...] = DEFAULT_SEND_WINDOWS,
) -> ContactState:
    """The agents ContactState of these customers deciding at `now`, from their unreleased
    `contacts` (customer id, channel, send at) since `contact_window_start`.

    Times go to agents.constraints as unix hours. Each customer's UTC offset is taken at `now`
    and again at each window's send time: where a daylight-saving change falls in between, the
    offset at the send is the one that places the message in its local window.
    """
    n = len(customer_ids)
    row_of = {pk: i for i, pk in enumerate(customer_ids)}
    channel_index = vocabulary().channel_index
    listed: dict[tuple[int, int], list[float]] = {}
    for customer_id, channel, send_at in contacts:
        c = channel_index.get(channel)
        if c is not None:
            listed.setdefault((row_of[customer_id], c), []).append(send_at.timestamp() / 3600.0)
    hours = np.full((n, len(channel_index), max([1, *map(len, listed.values())])), -np.inf)
    for (i, c), sends in listed.items():
        hours[i, c, :len(sends)] = sorted(sends, reverse=True)  # newest first
    now_hour = now.timestamp() / 3600.0
    # customers of one time zone share their send times: offsets are looked up once per zone
    zones, zone_of = np.unique(np.asarray(time_zones, dtype=object).astype(str),
                               return_inverse=True)
    at_now = np.array([utc_offset_hours(zone, now) for zone in zones])
    first = send_hours(np.full(len(zones), now_hour), at_now, send_windows)
    at_send = np.array([[utc_offset_hours(zone, datetime_from_hours(hour)) for hour in row]
                        for zone, row in zip(zones, first)]).reshape(first.shape)
    offsets = at_now[zone_of] if (at_send == at_now[:, None]).all() else at_send[zone_of]
    return ContactState(
        now_hours=np.full(n, now_hour), contact_hours=hours, consent=consent,
        utc_offset_hours=offsets, suppressed=suppressed, send_windows=send_windows,
    )


def datetime_from_hours(hours: float) -> datetime:
    """A send time of agents.constraints (unix hours) as an aware UTC datetime."""
    return datetime.fromtimestamp(float(hours) * 3600.0, tz=dt_timezone.utc)
