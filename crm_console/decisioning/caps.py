"""Contact caps that hold under concurrency: the customer's row lock plus the decision log.

Choice (see docs/api.md): the counters ARE the Decision rows. A decision takes a row lock on each
of its customers (`SELECT ... FOR UPDATE` on PostgreSQL, ordered by id so two batches never
deadlock), counts that customer's unreleased contacts in the cap windows, masks, picks, writes its
Decision and commits - all in one transaction. A second request for the same customer waits on
the lock and then counts the first one's contact, so 50 parallel requests cannot both take the
last slot; requests for different customers never wait on each other. Releasing a contact (a
delivery failure, or the release endpoint) is a status change that the next count leaves out.

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
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection
from django.db.models import F
from django.utils.dateparse import parse_datetime

from agents.catalogue import CHANNELS
from agents.constraints import ContactRules, ContactState
from crm_console import recordsets
from crm_console.campaigns.models import Action, SuppressionEntry
from crm_console.customers.models import Customer

CHANNEL_INDEX = {channel: i for i, channel in enumerate(CHANNELS)}


def customers_lock(customer_ids: Sequence[int]) -> None:
    """Hold these customers' row locks until the surrounding transaction ends."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    if not connection.in_atomic_block:
        raise RuntimeError("customers_lock needs a transaction (wrap the caller in transaction.atomic)")
    if connection.features.has_select_for_update:
        list(Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk")
             .values_list("pk", flat=True))
    else:
        Customer.objects.filter(pk__in=ids).update(profile_updated_at=F("profile_updated_at"))


def decision_day_start(now: datetime, campaign_time_zone: str) -> datetime:
    """Midnight (campaign time) that starts the decision day: where agents.constraints counts from."""
    local = now.astimezone(ZoneInfo(campaign_time_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class ContactRecords:
    """What the mask needs from the database about n customers, read under their locks."""

    consent: np.ndarray                 # (n, C) bool: the latest Consent row per channel
    suppressed: np.ndarray              # (n,) bool: on the contact policy's suppression list
    contacts: list[tuple[int, str, datetime]]  # unreleased contacts since the cap windows began


def contact_records_read(*, customer_ids: Sequence[int], contact_policy_id: int | None,
                         since: datetime) -> ContactRecords:
    """Consent, suppression and unreleased contacts of these customers in one round trip.

    Hand-written SQL on purpose: this runs in every decision while the customers' rows are locked,
    and one UNION ALL costs a fraction of three ORM queries. Must be called after the lock was
    taken (a statement started before the lock would not see a contact committed meanwhile).
    """
    from crm_console.customers.models import Consent
    from crm_console.decisioning.models import Decision

    n = len(customer_ids)
    consent = np.zeros((n, len(CHANNELS)), dtype=bool)
    suppressed = np.zeros(n, dtype=bool)
    contacts: list[tuple[int, str, datetime]] = []
    if not n:
        return ContactRecords(consent, suppressed, contacts)
    quote = connection.ops.quote_name
    ids, id_params = recordsets.any_of(customer_ids)
    consent_table, decision_table = quote(Consent._meta.db_table), quote(Decision._meta.db_table)
    suppression_table = quote(SuppressionEntry._meta.db_table)
    customer_table, action_table = quote(Customer._meta.db_table), quote(Action._meta.db_table)
    sql = (
        f"SELECT 0, customer_id, channel, granted, recorded_at, id FROM {consent_table} "
        f"WHERE customer_id {ids} "
        f"UNION ALL SELECT 1, cu.id, '', TRUE, NULL, s.id FROM {suppression_table} s "
        f"JOIN {customer_table} cu ON cu.external_id = s.external_id "
        f"WHERE s.contact_policy_id = %s AND cu.id {ids} "
        f"UNION ALL SELECT 2, d.customer_id, a.channel, TRUE, d.decided_at, d.id "
        f"FROM {decision_table} d "
        f"JOIN {action_table} a ON a.id = d.action_id "
        f"WHERE d.customer_id {ids} AND d.decided_at >= %s AND d.status <> %s AND a.channel <> %s"
    )
    params = [*id_params, contact_policy_id, *id_params, *id_params,
              connection.ops.adapt_datetimefield_value(since), Decision.Status.RELEASED,
              Action.NO_CONTACT_CHANNEL]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    row_of = {pk: i for i, pk in enumerate(customer_ids)}
    latest: dict[tuple[int, int], tuple[datetime, int]] = {}
    for kind, customer_id, channel, flag, at, row_id in rows:
        i = row_of[customer_id]
        if kind == 1:
            suppressed[i] = True
            continue
        at = _aware(at)
        if kind == 2:
            contacts.append((customer_id, channel, at))
        elif channel in CHANNEL_INDEX:  # the latest row per channel wins (ties: the later id)
            c = CHANNEL_INDEX[channel]
            if (i, c) not in latest or (at, row_id) > latest[(i, c)]:
                latest[(i, c)] = (at, row_id)
                consent[i, c] = bool(flag)
    return ContactRecords(consent, suppressed, contacts)


def _aware(value: datetime | str) -> datetime:
    """A timestamp as an aware UTC datetime (SQLite's cursor returns text)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt_timezone.utc)


def cap_windows(rules: ContactRules) -> tuple[np.ndarray, int]:
    """Each channel's cap window in days (CHANNELS order; 1 where uncapped) and the overall one."""
    windows = np.array([rules.channel_caps.get(c, (0, 1))[1] for c in CHANNELS])
    return windows, rules.overall_cap[1] if rules.overall_cap is not None else 1


def contact_window_start(*, rules: ContactRules, now: datetime,
                         campaign_time_zone: str) -> datetime:
    """The earliest contact any cap window or the minimum gap can still see."""
    day_start = decision_day_start(now, campaign_time_zone)
    windows, overall_window = cap_windows(rules)
    longest = max(int(windows.max()), overall_window)
    return min(day_start - timedelta(days=longest - 1),
               day_start - timedelta(hours=float(rules.min_gap_hours) + 24))


def contact_state_for(
    *, customer_ids: Sequence[int], rules: ContactRules, now: datetime, campaign_time_zone: str,
    consent: np.ndarray, utc_offsets: np.ndarray, suppressed: np.ndarray,
    contacts: list[tuple[int, str, datetime]],
) -> ContactState:
    """The agents ContactState of these customers now, counted from their unreleased `contacts`
    (customer id, channel, decided at) since `contact_window_start`.

    Counts follow agents.constraints' conventions: a channel's window of w days is today plus the
    w - 1 days before it; hours since the last contact are measured up to today's midnight (a
    contact earlier today counts as 0 hours ago).
    """
    n = len(customer_ids)
    day_start = decision_day_start(now, campaign_time_zone)
    windows, overall_window = cap_windows(rules)
    row_of = {pk: i for i, pk in enumerate(customer_ids)}
    in_window = np.zeros((n, len(CHANNELS)))
    overall = np.zeros(n)
    last = np.full(n, -np.inf)
    day_start_ts = day_start.timestamp()
    for customer_id, channel, decided_at in contacts:
        i, c = row_of[customer_id], CHANNEL_INDEX.get(channel)
        if c is None:
            continue
        age_days = (day_start_ts - decided_at.timestamp()) / 86400.0  # < 0: today
        if age_days <= windows[c] - 1:
            in_window[i, c] += 1
        if age_days <= overall_window - 1:
            overall[i] += 1
        last[i] = max(last[i], decided_at.timestamp())
    hours = np.where(np.isfinite(last), np.maximum((day_start_ts - last) / 3600.0, 0.0), np.inf)
    return ContactState(
        contacts_in_window=in_window, overall_in_window=overall, hours_since_last_contact=hours,
        consent=consent, utc_offset_hours=utc_offsets, suppressed=suppressed,
    )
