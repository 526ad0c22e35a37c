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
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection
from django.db.models import F

from agents.catalogue import CHANNELS
from agents.constraints import ContactRules, ContactState
from crm_console.campaigns.models import Action
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


def contact_state_for(
    *, customer_ids: Sequence[int], rules: ContactRules, now: datetime, campaign_time_zone: str,
    consent: np.ndarray, utc_offsets: np.ndarray, suppressed: np.ndarray,
) -> ContactState:
    """The agents ContactState of these customers now, counted from their unreleased contacts.

    Counts follow agents.constraints' conventions: a channel's window of w days is today plus the
    w - 1 days before it; hours since the last contact are measured up to today's midnight (a
    contact earlier today counts as 0 hours ago).
    """
    from crm_console.decisioning.models import Decision

    n = len(customer_ids)
    day_start = decision_day_start(now, campaign_time_zone)
    windows = np.array([rules.channel_caps.get(c, (0, 1))[1] for c in CHANNELS])
    overall_window = rules.overall_cap[1] if rules.overall_cap is not None else 1
    longest = max(int(windows.max()), overall_window)
    since = min(day_start - timedelta(days=longest - 1),
                day_start - timedelta(hours=float(rules.min_gap_hours) + 24))
    contacts = (
        Decision.objects.filter(customer_id__in=customer_ids, decided_at__gte=since)
        .exclude(status=Decision.Status.RELEASED)
        .exclude(action__channel=Action.NO_CONTACT_CHANNEL)
        .values_list("customer_id", "action__channel", "decided_at")
    )
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
