"""KPI queries for the dashboards: policy vs holdout with 95 % confidence intervals and the uplift.

The customer is the unit of randomisation (a stable hash puts a customer in the holdout or not),
so every interval is computed over customers, not decisions: rates are ratio estimators
(sum over customers of the numerator / sum of the denominator) with the delta-method variance,
means are plain means with the normal interval. The uplift is policy minus holdout; the two groups
are disjoint, so their variances add.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import numpy as np
from django.core.cache import cache
from django.db.models import Case, CharField, Count, Func, IntegerField, Max, Q, Value, When
from django.utils import timezone

from agents.common.intervals import mean_with_se, ratio_with_se, z_score
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers.models import Customer, Event
from crm_console.dashboards import figures
from crm_console.dashboards.templatetags.console_format import kpi_delta
from crm_console.decisioning.models import Decision, PolicyTrial
from crm_console.decisioning.promotion import TrialEvidence, how_it_went_live
from crm_console.decisioning.policy_runtime import agent_view, policy_agent
from crm_console.shared_cache import (
    SharedCacheDown,
    cache_get_or_none,
    cache_set_if_up,
    shared_cache_call,
)

Z_95 = z_score(0.95)
CACHE_SECONDS = 300


def workspace_totals() -> dict[str, int]:
    return {
        "campaigns": Campaign.objects.count(),
        "customers": Customer.objects.count(),
        "events": Event.objects.count(),
        "decisions": Decision.objects.count(),
    }


@dataclass(frozen=True)
class Estimate:
    """A number with its 95 % interval; `se` is its standard error (None when not estimable)."""

    value: float | None
    lower: float | None
    upper: float | None
    se: float | None = None

    @classmethod
    def empty(cls) -> Estimate:
        return cls(None, None, None, None)

    @classmethod
    def normal(cls, value: float, se: float) -> Estimate:
        return cls(value, value - Z_95 * se, value + Z_95 * se, se)

    @property
    def significant(self) -> bool:
        """The interval excludes zero (read on an uplift)."""
        return self.lower is not None and (self.lower > 0 or self.upper < 0)


@dataclass(frozen=True)
class KpiComparison:
    key: str
    label: str
    unit: str
    """"pct" (a share shown as %), "money" (currency units) or "ratio" (a multiple)."""
    help: str
    policy: Estimate
    holdout: Estimate
    uplift: Estimate
    relative_uplift: Estimate
    """Uplift as a share of the holdout's value (None when the holdout value is 0 or unknown)."""


@dataclass(frozen=True)
class GroupSize:
    customers: int
    decisions: int
    messages: int


@dataclass(frozen=True)
class CampaignKpis:
    campaign: Campaign
    since: datetime | None
    policy: GroupSize
    holdout: GroupSize
    kpis: list[KpiComparison]

    def by_key(self) -> dict[str, KpiComparison]:
        return {kpi.key: kpi for kpi in self.kpis}


# ------------------------------------------------------------------------------ estimators
def _estimate(value: float, se: float) -> Estimate:
    return Estimate.empty() if math.isnan(value) else Estimate.normal(value, se)


def mean_estimate(values: np.ndarray) -> Estimate:
    """Mean over customers with the normal 95 % interval."""
    return _estimate(*mean_with_se(values))


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """sum(y) / sum(x) over customers, delta-method 95 % interval (clustered by customer)."""
    return _estimate(*ratio_with_se(numerator, denominator))


def difference(policy: Estimate, holdout: Estimate) -> Estimate:
    if policy.value is None or holdout.value is None:
        return Estimate.empty()
    se = math.sqrt((policy.se or 0.0) ** 2 + (holdout.se or 0.0) ** 2)
    return Estimate.normal(policy.value - holdout.value, se)


def relative(uplift: Estimate, holdout: Estimate) -> Estimate:
    if uplift.value is None or not holdout.value:
        return Estimate.empty()
    base = abs(holdout.value)
    return Estimate(uplift.value / base, uplift.lower / base, uplift.upper / base,
                    (uplift.se or 0.0) / base)


def scaled(estimate: Estimate, factor: float) -> Estimate:
    if estimate.value is None:
        return estimate
    return Estimate(estimate.value * factor, estimate.lower * factor, estimate.upper * factor,
                    (estimate.se or 0.0) * abs(factor))


# ------------------------------------------------------------------------------ the data
@dataclass
class DecisionFrame:
    """One row per decision, as numpy columns (what every KPI and chart below reads)."""

    customer: np.ndarray
    holdout: np.ndarray
    sent: np.ndarray
    channel: np.ndarray
    offer: np.ndarray
    window: np.ndarray
    decided_at: np.ndarray
    """Days since the epoch (float)."""
    opened: np.ndarray
    clicked: np.ndarray
    orders: np.ndarray
    revenue: np.ndarray
    churned: np.ndarray
    cost: np.ndarray
    reward: np.ndarray

    def __len__(self) -> int:
        return int(self.customer.size)


def _period_start(days: int | None) -> datetime | None:
    return timezone.now() - timedelta(days=days) if days else None


DECISION_COLUMNS = ("customer_id", "holdout", "action__channel", "action__offer",
                    "action__send_window", "decided_at", "reward", "reward_components")
"""What a DecisionFrame is built from, in this order."""


def campaign_decision_frame(*, campaign: Campaign, since: datetime | None = None) -> DecisionFrame:
    decisions = Decision.objects.filter(campaign=campaign)
    if since is not None:
        decisions = decisions.filter(decided_at__gte=since)
    return _frame_from_rows(list(decisions.order_by().values_list(*DECISION_COLUMNS)))


def _frame_from_rows(rows: list[tuple]) -> DecisionFrame:
    n = len(rows)
    components = [row[7] or {} for row in rows]

    def component(name: str) -> np.ndarray:
        return np.fromiter((float(c.get(name, 0.0) or 0.0) for c in components), np.float64, n)

    # fixed-width strings, not objects: a day's frame pickles into the cache as plain buffers
    channel = np.array([row[2] or "" for row in rows], dtype=str)
    return DecisionFrame(
        customer=np.fromiter((row[0] for row in rows), np.int64, n),
        holdout=np.fromiter((bool(row[1]) for row in rows), bool, n),
        sent=channel != Action.NO_CONTACT_CHANNEL if n else np.zeros(0, bool),
        channel=channel,
        offer=np.array([row[3] or "" for row in rows], dtype=str),
        window=np.array([row[4] or "" for row in rows], dtype=str),
        decided_at=np.fromiter((row[5].timestamp() / 86400.0 for row in rows), np.float64, n),
        opened=component("open"), clicked=component("click"), orders=component("conversion"),
        revenue=component("revenue"), churned=component("churn"), cost=component("contact_cost"),
        reward=np.fromiter((float(row[6] or 0.0) for row in rows), np.float64, n),
    )


def _sums_by(keys: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The distinct keys (values, or rows of a 2-D array) and a function that sums a column of
    the same rows per key, in the keys' order."""
    distinct, inverse = np.unique(keys, axis=None if keys.ndim == 1 else 0, return_inverse=True)
    inverse = inverse.reshape(-1)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=np.asarray(values, np.float64), minlength=len(distinct))

    return distinct, total


def _per_customer(frame: DecisionFrame, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Sum each column over the decisions of each customer in `mask` (customers as rows)."""
    _, by_customer = _sums_by(frame.customer[mask])

    def total(values: np.ndarray) -> np.ndarray:
        return by_customer(np.asarray(values)[mask])

    return {
        "decisions": total(np.ones(len(frame))),
        "sent": total(frame.sent),
        "opened": total((frame.opened > 0) & frame.sent),
        "clicked": total((frame.clicked > 0) & frame.sent),
        "orders": total(frame.orders),
        "revenue": total(frame.revenue),
        "churned": total(frame.churned) > 0,
        "cost": total(frame.cost),
    }


KPI_DEFINITIONS = (
    ("open_rate", "Open rate", "pct", "Messages opened / messages sent."),
    ("ctr", "Click-through rate", "pct", "Messages clicked / messages sent."),
    ("conversion_rate", "Conversion rate", "pct", "Customers who ordered / customers decided for."),
    ("arpu", "Revenue per customer", "money", "Attributed revenue per customer over the period (ARPU)."),
    ("retention", "Retention", "pct", "Customers who did not churn / customers decided for."),
    ("revenue", "Revenue", "money",
     "Attributed revenue of the policy's customers, and what as many holdout customers would have "
     "spent (the holdout's revenue per customer times the policy group's size): the groups differ "
     "in size, so their totals are never compared directly."),
    ("roi", "ROI", "pct",
     "(Revenue - contact cost) / contact cost, as a percentage; the uplift is in percentage points."),
)


def _group_estimates(per: dict[str, np.ndarray]) -> dict[str, Estimate]:
    return {
        "open_rate": ratio_estimate(per["opened"], per["sent"]),
        "ctr": ratio_estimate(per["clicked"], per["sent"]),
        "conversion_rate": mean_estimate(per["orders"] > 0),
        "arpu": mean_estimate(per["revenue"]),
        "retention": mean_estimate(~per["churned"]),
        "roi": ratio_estimate(per["revenue"] - per["cost"], per["cost"]),
    }


def kpis_from_frame(frame: DecisionFrame) -> tuple[GroupSize, GroupSize, list[KpiComparison]]:
    policy_per = _per_customer(frame, ~frame.holdout)
    holdout_per = _per_customer(frame, frame.holdout)
    policy, holdout = _group_estimates(policy_per), _group_estimates(holdout_per)
    n_policy = policy_per["decisions"].size
    # revenue: per customer, scaled to the policy group (the holdout is a tenth of its size, so
    # comparing the two groups' totals would read as a loss); the uplift is the ARPU uplift scaled
    policy["revenue"] = scaled(policy["arpu"], n_policy)
    holdout["revenue"] = scaled(holdout["arpu"], n_policy) if n_policy else Estimate.empty()
    kpis = []
    for key, label, unit, help_text in KPI_DEFINITIONS:
        if key == "revenue":
            uplift = scaled(difference(policy["arpu"], holdout["arpu"]), n_policy)
            rel = relative(difference(policy["arpu"], holdout["arpu"]), holdout["arpu"])
            policy_total = Estimate(float(policy_per["revenue"].sum()), policy["revenue"].lower,
                                    policy["revenue"].upper, policy["revenue"].se) \
                if n_policy else Estimate.empty()
            kpis.append(KpiComparison(key, label, unit, help_text, policy_total, holdout["revenue"],
                                      uplift, rel))
            continue
        uplift = difference(policy[key], holdout[key])
        kpis.append(KpiComparison(key, label, unit, help_text, policy[key], holdout[key], uplift,
                                  relative(uplift, holdout[key])))

    def size(per: dict[str, np.ndarray]) -> GroupSize:
        return GroupSize(int(per["decisions"].size), int(per["decisions"].sum()), int(per["sent"].sum()))

    return size(policy_per), size(holdout_per), kpis


# ------------------------------------------------------------------------------ trials
def trial_evidence(*, days: float, reward: np.ndarray, decisions: np.ndarray,
                   left: np.ndarray, in_candidate_group: np.ndarray) -> TrialEvidence:
    """The two groups compared over their customers (one row each: the summed reward of their
    priced decisions, how many, and whether they left); intervals clustered by customer."""
    reward, decisions = np.asarray(reward, np.float64), np.asarray(decisions, np.float64)
    stayed = ~np.asarray(left, bool)
    groups = (np.asarray(in_candidate_group, bool), ~np.asarray(in_candidate_group, bool))
    per_day = [ratio_estimate(reward[g], decisions[g]) for g in groups]
    retained = [mean_estimate(stayed[g]) for g in groups]

    def gain(pair: list[Estimate]) -> tuple[float, float, float]:
        gained = difference(*pair)
        if gained.value is None:
            return math.nan, math.nan, math.nan
        return gained.value, gained.lower, gained.upper

    return TrialEvidence(
        days=float(days), customers=tuple(int(g.sum()) for g in groups),
        decisions=tuple(int(decisions[g].sum()) for g in groups),
        reward=tuple(e.value for e in per_day), retention=tuple(e.value for e in retained),
        gain=gain(per_day), retention_gain=gain(retained))


def trial_evidence_for(*, trial: PolicyTrial) -> TrialEvidence:
    """What a trial measured so far: its candidate's customers against the live policy's, on
    their priced decisions of the days it measures (the holdout is in neither group)."""
    until = trial.measured_until
    decisions = Decision.objects.filter(
        campaign_id=trial.campaign_id, decided_at__gte=trial.started_at, decided_at__lt=until,
        holdout=False, attributed_at__isnull=False)
    live = Q(policy_version_id=trial.live_id) if trial.live_id else Q(policy_version__isnull=True)
    rows = list(decisions.filter(Q(policy_version_id=trial.candidate_id) | live).order_by()
                .values_list("customer_id", "policy_version_id", "reward", "reward_components"))
    n = len(rows)
    customer = np.fromiter((r[0] for r in rows), np.int64, n)
    candidate = np.fromiter((r[1] == trial.candidate_id for r in rows), bool, n)
    # one row per (customer, group): a customer the candidate could not score stays in both
    groups, total = _sums_by(np.stack([customer, candidate], axis=1))
    left = total(np.fromiter((float((r[3] or {}).get("churn", 0.0) or 0.0) for r in rows),
                             np.float64, n)) > 0
    days = (min(until, timezone.now()) - trial.started_at).total_seconds() / 86400.0
    return trial_evidence(days=days, reward=total(np.fromiter((r[2] for r in rows), np.float64, n)),
                          decisions=total(np.ones(n)), left=left,
                          in_candidate_group=groups[:, 1].astype(bool))


# ------------------------------------------------------------------------------ per-day store
# The dashboard combines one cached frame per UTC day of decisions. A day's cache key holds its
# fingerprint (decisions, last id, last priced): a new decision or a repricing changes the day's
# fingerprint, so only that day (usually today) is read again; the other days come from the cache.
DAY_CACHE_SECONDS = 7 * 86400
SETTLE_SECONDS = 600.0
"""Longest a write may take from stamping `attributed_at` to committing, plus clock skew between
machines. A day priced this recently when it was read may yet receive rows priced earlier than
its last (committed later): its fingerprint would not change, so it is read again once this has
passed since its read."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


class UtcDay(Func):
    """The UTC calendar day of a datetime column as 'YYYY-MM-DD' (one cheap expression per row)."""

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores aware datetimes in SQLite as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        return self.as_sql(compiler, connection, template="substr(%(expressions)s, 1, 10)", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection,
                           template="to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
                           **extra)


@dataclass(frozen=True)
class DayFrame:
    """One UTC day of a campaign's decisions as read at `read_at` (what the day cache holds)."""

    day: str
    fingerprint: tuple
    """(decisions, last id, last attributed_at as ISO text or None) of the rows read."""
    read_at: float
    frame: DecisionFrame
    decided_us: np.ndarray
    """Microseconds since the epoch of each decision (exact, for the period's first day)."""
    mix_counts: dict[tuple[str, bool, str], int]
    """The day's decisions per (mix dimension, holdout, value): its share of the action mix."""

    def trusted(self, now: float) -> bool:
        priced = self.fingerprint[2]
        if priced is None or self.read_at - datetime.fromisoformat(priced).timestamp() >= SETTLE_SECONDS:
            return True
        return now - self.read_at < SETTLE_SECONDS


def _fingerprint(n: int, last_id: int | None, priced: datetime | None) -> tuple:
    return (int(n), int(last_id or 0),
            priced.astimezone(UTC).isoformat() if priced is not None else None)


def _day_start(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _grouped_fingerprints(decisions) -> dict[str, tuple]:
    rows = (decisions.order_by().annotate(day=UtcDay("decided_at")).values_list("day")
            .annotate(n=Count("id"), last_id=Max("id"), priced=Max("attributed_at")))
    return {day: _fingerprint(n, last_id, priced) for day, n, last_id, priced in rows}


def _within_days(days) -> Q:
    within = Q()
    for start, end in _day_ranges(list(days)):
        within |= Q(decided_at__gte=start, decided_at__lt=end)
    return within


def campaign_day_fingerprints(*, campaign: Campaign, first_day: str | None = None) -> dict[str, tuple]:
    """{UTC day: fingerprint} of every day with decisions from `first_day` on.

    Kept per campaign in the cache and brought up to date from the rows that can have changed
    since: new ids, and rows priced since SETTLE_SECONDS before the last pricing seen (a pricing
    committed late carries an earlier stamp). A row neither finds - an insert committed after a
    higher id - shows as a total that does not add up, and every day is counted again.
    """
    key = f"dashboards:day-fingerprints:{campaign.pk}"
    state = cache_get_or_none(key)
    decisions = Decision.objects.filter(campaign=campaign)
    days: dict[str, tuple] | None = None
    if state is not None:
        changed = Q(id__gt=state["last_id"])
        changed |= (Q(attributed_at__gte=state["priced"] - timedelta(seconds=SETTLE_SECONDS))
                    if state["priced"] is not None else Q(attributed_at__isnull=False))
        dirty = set(decisions.filter(changed).order_by().annotate(day=UtcDay("decided_at"))
                    .values_list("day", flat=True).distinct())
        days = dict(state["days"])
        if dirty:
            days.update(_grouped_fingerprints(decisions.filter(_within_days(dirty))))
        if sum(fp[0] for fp in days.values()) != decisions.count():
            days = None
    if days is None:
        days = _grouped_fingerprints(decisions)
    priced = [fp[2] for fp in days.values() if fp[2] is not None]
    cache_set_if_up(key, {
        "days": days, "last_id": max((fp[1] for fp in days.values()), default=0),
        "priced": datetime.fromisoformat(max(priced)) if priced else None,
    }, DAY_CACHE_SECONDS)
    return {day: fp for day, fp in days.items() if first_day is None or day >= first_day}


def _day_key(campaign_id: int, day: str, fingerprint: tuple) -> str:
    raw = f"{campaign_id}:{day}:{fingerprint}"
    return "dashboards:day:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _day_ranges(days: list[str]) -> list[tuple[datetime, datetime]]:
    """Consecutive days merged into [start, end) ranges (one condition per run of days)."""
    ranges: list[tuple[datetime, datetime]] = []
    for day in sorted(days):
        start = _day_start(day)
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + timedelta(days=1))
        else:
            ranges.append((start, start + timedelta(days=1)))
    return ranges


def campaign_days_read(*, campaign: Campaign, days: list[str]) -> dict[str, DayFrame]:
    """Read these UTC days of the campaign's decisions from the database, one frame per day."""
    read_at = time.time()
    rows = Decision.objects.filter(_within_days(days), campaign=campaign).order_by().values_list(
        *DECISION_COLUMNS, "id", "attributed_at")
    by_day: dict[str, list[tuple]] = {}
    for row in rows:
        by_day.setdefault(row[5].astimezone(UTC).date().isoformat(), []).append(row)
    frames = {}
    for day, day_rows in by_day.items():
        priced = [row[9] for row in day_rows if row[9] is not None]
        frame = _frame_from_rows(day_rows)
        frames[day] = DayFrame(
            day=day, read_at=read_at, frame=frame, mix_counts=_mix_counts(frame),
            fingerprint=_fingerprint(len(day_rows), max(row[8] for row in day_rows),
                                     max(priced) if priced else None),
            decided_us=np.fromiter(((row[5] - _EPOCH) // _ONE_US for row in day_rows), np.int64,
                                   len(day_rows)),
        )
    return frames


def campaign_day_frames(*, campaign: Campaign, fingerprints: dict[str, tuple]) -> list[DayFrame]:
    """The frames of these days: from the cache where the day's fingerprint is unchanged (and
    trusted), from the database otherwise (and cached for the next request)."""
    keys = {day: _day_key(campaign.pk, day, fp) for day, fp in fingerprints.items()}
    try:
        cached = shared_cache_call(lambda: cache.get_many(list(keys.values())))
    except SharedCacheDown:
        cached = {}
    now = time.time()
    frames: dict[str, DayFrame] = {}
    for day, key in keys.items():
        entry = cached.get(key)
        if entry is not None and entry.trusted(now):
            frames[day] = entry
    missing = [day for day in keys if day not in frames]
    if missing:
        fresh = campaign_days_read(campaign=campaign, days=missing)
        frames.update(fresh)
        try:
            shared_cache_call(lambda: cache.set_many(
                {_day_key(campaign.pk, day, f.fingerprint): f for day, f in fresh.items()},
                DAY_CACHE_SECONDS))
        except SharedCacheDown:
            pass
    return [frames[day] for day in sorted(frames)]


def _frames_concat(parts: list[DecisionFrame]) -> DecisionFrame:
    if not parts:
        return _frame_from_rows([])
    return DecisionFrame(**{f.name: np.concatenate([getattr(part, f.name) for part in parts])
                            for f in fields(DecisionFrame)})


def _frame_take(frame: DecisionFrame, mask: np.ndarray) -> DecisionFrame:
    return DecisionFrame(**{f.name: getattr(frame, f.name)[mask] for f in fields(DecisionFrame)})


def campaign_period_frame(*, campaign: Campaign, since: datetime | None,
                          fingerprints: dict[str, tuple] | None = None,
                          ) -> tuple[DecisionFrame, Counter]:
    """The decisions since `since` (None: all) and their action-mix counts, combined from the
    per-day frames: the same rows as `campaign_decision_frame(campaign=..., since=...)`."""
    if fingerprints is None:
        fingerprints = campaign_day_fingerprints(campaign=campaign, first_day=_first_day(since))
    parts, counts = [], Counter()
    for day in campaign_day_frames(campaign=campaign, fingerprints=fingerprints):
        if since is not None and day.day == _first_day(since):  # the period starts within it
            part = _frame_take(day.frame, day.decided_us >= (since - _EPOCH) // _ONE_US)
            parts.append(part)
            counts.update(_mix_counts(part))
        else:
            parts.append(day.frame)
            counts.update(day.mix_counts)
    return _frames_concat(parts), counts


def _first_day(since: datetime | None) -> str | None:
    return since.astimezone(UTC).date().isoformat() if since is not None else None


@dataclass(frozen=True)
class CampaignDashboard:
    """Everything the dashboard draws for one campaign and period, read from one decision frame."""

    kpis: CampaignKpis
    trends: list[TrendPoint]
    action_mix: dict[str, dict[str, dict[str, float]]]
    charts: dict[str, dict]
    """"uplift", "trends", "mix": the Plotly figures (building them costs more than the data)."""


def campaign_dashboard(*, campaign: Campaign, days: int | None = None) -> CampaignDashboard:
    """KPIs, weekly trends and the action mix of the period, combined from per-day frames.

    The whole result is cached until a day's fingerprint changes (or CACHE_SECONDS pass: the
    period's start and the running week move on); then only the changed days are read again.
    """
    since = _period_start(days)
    fingerprints = campaign_day_fingerprints(campaign=campaign, first_day=_first_day(since))
    raw = f"{campaign.pk}:{days}:{sorted(fingerprints.items())}"
    key = "dashboards:dashboard:" + hashlib.sha256(raw.encode()).hexdigest()[:32]
    cached = cache_get_or_none(key)
    if cached is not None:
        return cached
    frame, mix_counts = campaign_period_frame(campaign=campaign, since=since,
                                              fingerprints=fingerprints)
    policy, holdout, kpis = kpis_from_frame(frame)
    trends = trends_from_frame(frame)
    mix = action_mix_from_counts(mix_counts) if len(frame) else {}
    # no decisions: no charts (empty axes say nothing; the page says "no data yet")
    charts = {"uplift": figures.uplift_figure(kpis), "trends": figures.trends_figure(trends),
              "mix": figures.action_mix_figure(mix)} if len(frame) else {}
    result = CampaignDashboard(
        kpis=CampaignKpis(campaign=campaign, since=since, policy=policy, holdout=holdout,
                          kpis=kpis),
        trends=trends, action_mix=mix, charts=charts,
    )
    cache_set_if_up(key, result, CACHE_SECONDS)
    return result


def campaign_kpis(*, campaign: Campaign, days: int | None = None) -> CampaignKpis:
    """The campaign's KPIs for policy vs holdout over the last `days` days (None: all history)."""
    return campaign_dashboard(campaign=campaign, days=days).kpis


# ------------------------------------------------------------------------------ the verdict
@dataclass(frozen=True)
class Verdict:
    """The dashboard's answer in one sentence: does the live policy beat the holdout?"""

    outcome: str
    """"no_data", "better", "worse" or "unclear" (the interval includes 0)."""
    sentence: str


def _period_words(days: int | None) -> str:
    return f"Over the last {days} days" if days else "Over all history"


def _went_live_words(live_policy) -> str:
    words = how_it_went_live(policy_version=live_policy) if live_policy is not None else ""
    return f"; it {words}" if words else ""


def campaign_verdict(*, kpis: CampaignKpis, live_policy=None, days: int | None = None) -> Verdict:
    """Revenue per customer, policy vs holdout, with its 95 % interval, in words.

    The uplift and its interval are the "Revenue per customer" KPI's (`kpis_from_frame`); a
    significant uplift is one whose interval excludes 0 (`Estimate.significant`).
    """
    arpu = kpis.by_key().get("arpu")
    period = _period_words(days)
    if kpis.policy.customers == 0 or kpis.holdout.customers == 0 or arpu is None \
            or arpu.uplift.value is None:
        missing = "any decisions" if kpis.policy.customers + kpis.holdout.customers == 0 else (
            "holdout customers" if kpis.holdout.customers == 0 else "policy customers")
        return Verdict("no_data", f"No data yet: {period.lower()} the campaign has no {missing} "
                                  f"to compare, so nothing can be said about the policy.")
    who = (f"the live policy (v{live_policy.version}, {live_policy.get_algorithm_display()})"
           if live_policy is not None else "the policy group")
    uplift = arpu.uplift
    interval = f"95 % CI {kpi_delta(uplift.lower, 'money')} to {kpi_delta(uplift.upper, 'money')}"
    if uplift.significant and uplift.value > 0:
        outcome, conclusion = "better", "better than the holdout"
    elif uplift.significant:
        outcome, conclusion = "worse", "worse than the holdout"
    else:
        outcome, conclusion = "unclear", "not distinguishable from it yet"
    sentence = (f"{period} {who} earned {kpi_delta(uplift.value, 'money')} per customer vs the "
                f"holdout ({interval}, {kpis.policy.customers:,} policy and "
                f"{kpis.holdout.customers:,} holdout customers): {conclusion}"
                f"{_went_live_words(live_policy)}.")
    return Verdict(outcome, sentence)


# ------------------------------------------------------------------------------ charts' data
@dataclass(frozen=True)
class TrendPoint:
    week_start: str
    group: str
    decisions: int
    open_rate: float | None
    revenue_per_decision: float
    reward_per_decision: float
    partial: bool = False
    """The week is still running: its outcomes are not all in, so it reads lower than it will be."""


def _week_number(days_since_epoch):
    # weeks starting on Monday: 1970-01-01 was a Thursday, so shift by 3 days
    return np.floor((np.asarray(days_since_epoch) + 3.0) / 7.0).astype(np.int64)


def campaign_trends(*, campaign: Campaign, days: int | None = None) -> list[TrendPoint]:
    """Weekly policy and holdout series: open rate, revenue and reward per decision."""
    return trends_from_frame(campaign_decision_frame(campaign=campaign, since=_period_start(days)))


def trends_from_frame(frame: DecisionFrame) -> list[TrendPoint]:
    if not len(frame):
        return []
    week = _week_number(frame.decided_at)
    this_week = int(_week_number(timezone.now().timestamp() / 86400.0))
    points = []
    for w in np.unique(week):
        start = datetime.fromtimestamp(float(w * 7 - 3) * 86400.0, tz=UTC).date()
        for group, in_group in (("Policy", ~frame.holdout), ("Holdout", frame.holdout)):
            mask = (week == w) & in_group
            n = int(mask.sum())
            if not n:
                continue
            sent = int(frame.sent[mask].sum())
            opened = int(((frame.opened > 0) & frame.sent)[mask].sum())
            points.append(TrendPoint(
                week_start=start.isoformat(), group=group, decisions=n,
                open_rate=opened / sent if sent else None,
                revenue_per_decision=float(frame.revenue[mask].mean()),
                reward_per_decision=float(frame.reward[mask].mean()),
                partial=int(w) >= this_week,
            ))
    return points


MIX_DIMENSIONS = (("channel", "action__channel"), ("offer", "action__offer"),
                  ("window", "action__send_window"))


def _mix_labels() -> dict[str, dict[str, str]]:
    words = vocabulary()
    return {
        "channel": {"none": "No contact", **{c.key: c.label for c in words.channels}},
        "offer": {o.key: o.label for o in words.offers},
        "window": {w.key: w.label for w in words.send_windows},
    }


def _mix_shares(dimension: str, counts: list[tuple[bool, str, int]],
                labels: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    """(holdout, value, decisions) rows -> {group: {label: share of the group's decisions}}."""
    per_group: dict[str, dict[str, float]] = {"Policy": {}, "Holdout": {}}
    for holdout, value, n in counts:
        group = "Holdout" if holdout else "Policy"
        value = value or ""
        name = labels[dimension].get(value) or ("No contact" if not value else value)
        per_group[group][name] = per_group[group].get(name, 0) + n
    for group, values in per_group.items():
        total = sum(values.values())
        per_group[group] = {k: v / total for k, v in values.items()} if total else {}
    return per_group


def campaign_action_mix(*, campaign: Campaign, days: int | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{"channel" | "offer" | "window": {group: {value: share of the group's decisions}}}."""
    decisions = Decision.objects.filter(campaign=campaign)
    since = _period_start(days)
    if since is not None:
        decisions = decisions.filter(decided_at__gte=since)
    labels = _mix_labels()
    mix: dict[str, dict[str, dict[str, float]]] = {}
    for dimension, field in MIX_DIMENSIONS:
        counts = decisions.order_by().values_list("holdout", field).annotate(n=Count("id"))
        mix[dimension] = _mix_shares(dimension, list(counts), labels)
    return mix


def _mix_counts(frame: DecisionFrame) -> Counter:
    """{(dimension, holdout, value): decisions} of the frame."""
    counts: Counter = Counter()
    for dimension, _ in MIX_DIMENSIONS:
        values = getattr(frame, dimension)
        for holdout in (False, True):
            found, n = np.unique(values[frame.holdout == holdout], return_counts=True)
            counts.update({(dimension, holdout, str(value)): int(k) for value, k in zip(found, n)})
    return counts


def action_mix_from_counts(counts: Counter) -> dict[str, dict[str, dict[str, float]]]:
    """`campaign_action_mix` from counts of decisions (per day, summed), not from SQL."""
    labels = _mix_labels()
    return {dimension: _mix_shares(dimension, [(holdout, value, n) for (dim, holdout, value), n
                                               in sorted(counts.items()) if dim == dimension],
                                   labels)
            for dimension, _ in MIX_DIMENSIONS}


def default_campaign() -> Campaign | None:
    """The campaign a newcomer lands on: a live one with the most decisions, else any."""
    live = list(Campaign.objects.filter(status=Campaign.Status.LIVE)[:2])
    if len(live) == 1:  # the usual case: no need to count every campaign's decisions
        return live[0]
    return (
        Campaign.objects.annotate(
            n=Count("decisions"),
            not_live=Case(When(status=Campaign.Status.LIVE, then=Value(0)), default=Value(1),
                          output_field=IntegerField()),
        ).order_by("not_live", "-n", "name").first()
    )


# ------------------------------------------------------------------------------ policy behaviour
SEGMENT_ROWS = 2000


def _purchase_segments(features: np.ndarray) -> np.ndarray:
    """Marketer segments from state vectors in today's layout: how recently the customer bought."""
    # days_since_purchase is log1p(days) / log1p(365), 1 for never / over a year
    scaled_days = features[:, vocabulary().feature_layout.index("days_since_purchase")]
    days = np.expm1(scaled_days * np.log1p(365.0))
    return np.select(
        [scaled_days >= 0.999, days <= 30, days <= 90],
        ["No purchase in a year", "Bought in the last 30 days", "Bought 31-90 days ago"],
        default="Bought 91-365 days ago",
    )


def policy_action_mix_by_segment(*, policy_version) -> dict[str, dict[str, float]]:
    """{segment: {channel label: share}}: what the version would choose for the campaign's
    recently logged customers (same features and masks), grouped by purchase recency."""
    key = f"dashboards:segment-mix:{policy_version.pk}:{policy_version.artifact_sha256}"
    cached = cache_get_or_none(key)
    if cached is not None:
        return cached
    rows = list(Decision.objects.filter(campaign_id=policy_version.campaign_id)
                .order_by("-decided_at").values_list("features", "action_mask")[:SEGMENT_ROWS])
    n_actions = len(policy_version.action_ids or [])
    # an erased customer's decisions keep no feature snapshot
    rows = [(f, m) for f, m in rows if f and isinstance(m, list) and len(m) == n_actions]
    if not rows:
        return {}
    try:
        agent = policy_agent(policy_version)
        obs = vocabulary().features_in_layout([f for f, _ in rows])
        mask = np.asarray([m for _, m in rows], dtype=bool)
        probs = agent.action_probabilities(agent_view(agent, obs), mask)
    except Exception:  # a broken artifact must not take the page down; the page says "no data"
        return {}
    by_id = dict(Action.objects.filter(pk__in=policy_version.action_ids)
                 .values_list("pk", "channel"))
    words = vocabulary()
    labels = {"none": "No contact", **{c.key: c.label for c in words.channels}}
    channels = np.array([labels.get(by_id.get(aid, ""), "?") for aid in policy_version.action_ids],
                        dtype=object)
    segments = _purchase_segments(obs)
    order = ["Bought in the last 30 days", "Bought 31-90 days ago", "Bought 91-365 days ago",
             "No purchase in a year"]
    mix: dict[str, dict[str, float]] = {}
    for segment in order:
        in_segment = segments == segment
        if not in_segment.any():
            continue
        expected = probs[in_segment].mean(axis=0)
        shares: dict[str, float] = {}
        for channel in dict.fromkeys(channels):
            shares[channel] = float(expected[channels == channel].sum())
        mix[f"{segment} ({int(in_segment.sum())})"] = shares
    cache_set_if_up(key, mix, CACHE_SECONDS)
    return mix
