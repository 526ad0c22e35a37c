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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db.models import Case, Count, IntegerField, Max, Value, When
from django.utils import timezone

from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.selectors import vocabulary
from crm_console.customers.models import Customer, Event
from crm_console.decisioning.models import Decision
from crm_console.shared_cache import cache_get_or_none, cache_set_if_up

Z_95 = 1.959963984540054
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
def mean_estimate(values: np.ndarray) -> Estimate:
    """Mean over customers with the normal 95 % interval."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        return Estimate.empty()
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return Estimate.normal(float(values.mean()), se)


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """sum(y) / sum(x) over customers, delta-method 95 % interval (clustered by customer)."""
    y = np.asarray(numerator, dtype=np.float64)
    x = np.asarray(denominator, dtype=np.float64)
    n = y.size
    if n == 0 or x.sum() <= 0:
        return Estimate.empty()
    ratio = float(y.sum() / x.sum())
    if n == 1:
        return Estimate.normal(ratio, 0.0)
    residual = y - ratio * x
    se = float(math.sqrt(residual.var(ddof=1) / n) / x.mean())
    return Estimate.normal(ratio, se)


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


def campaign_decision_frame(*, campaign: Campaign, since: datetime | None = None) -> DecisionFrame:
    decisions = Decision.objects.filter(campaign=campaign)
    if since is not None:
        decisions = decisions.filter(decided_at__gte=since)
    rows = list(decisions.order_by().values_list(
        "customer_id", "holdout", "action__channel", "action__offer", "action__send_window",
        "decided_at", "reward", "reward_components",
    ))
    n = len(rows)
    components = [row[7] or {} for row in rows]

    def component(name: str) -> np.ndarray:
        return np.fromiter((float(c.get(name, 0.0) or 0.0) for c in components), np.float64, n)

    channel = np.array([row[2] for row in rows], dtype=object)
    return DecisionFrame(
        customer=np.fromiter((row[0] for row in rows), np.int64, n),
        holdout=np.fromiter((bool(row[1]) for row in rows), bool, n),
        sent=channel != Action.NO_CONTACT_CHANNEL if n else np.zeros(0, bool),
        channel=channel,
        offer=np.array([row[3] or "" for row in rows], dtype=object),
        window=np.array([row[4] or "" for row in rows], dtype=object),
        decided_at=np.fromiter((row[5].timestamp() / 86400.0 for row in rows), np.float64, n),
        opened=component("open"), clicked=component("click"), orders=component("conversion"),
        revenue=component("revenue"), churned=component("churn"), cost=component("contact_cost"),
        reward=np.fromiter((float(row[6] or 0.0) for row in rows), np.float64, n),
    )


def _per_customer(frame: DecisionFrame, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Sum each column over the decisions of each customer in `mask` (customers as rows)."""
    customers, inverse = np.unique(frame.customer[mask], return_inverse=True)
    size = customers.size

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=np.asarray(values, np.float64)[mask], minlength=size)

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


def _frame_key(campaign: Campaign, days: int | None, kind: str = "dashboard") -> str:
    """A cache key that changes whenever the campaign's decisions do (a new or priced one)."""
    stamp = Decision.objects.filter(campaign=campaign).aggregate(
        n=Count("id"), latest=Max("decided_at"), priced=Max("attributed_at"))
    raw = f"{campaign.pk}:{days}:{stamp['n']}:{stamp['latest']}:{stamp['priced']}"
    return f"dashboards:{kind}:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CampaignDashboard:
    """Everything the dashboard draws for one campaign and period, read from one decision frame."""

    kpis: CampaignKpis
    trends: list[TrendPoint]
    action_mix: dict[str, dict[str, dict[str, float]]]
    charts: dict[str, dict]
    """"uplift", "trends", "mix": the Plotly figures (building them costs more than the data)."""


def campaign_dashboard(*, campaign: Campaign, days: int | None = None) -> CampaignDashboard:
    """KPIs, weekly trends and the action mix in one pass over the decisions, cached until the
    campaign's decisions change (or CACHE_SECONDS pass: the running week moves on)."""
    key = _frame_key(campaign, days)
    cached = cache_get_or_none(key)
    if cached is not None:
        return cached
    from crm_console.dashboards import figures

    since = _period_start(days)
    frame = campaign_decision_frame(campaign=campaign, since=since)
    policy, holdout, kpis = kpis_from_frame(frame)
    trends = trends_from_frame(frame)
    mix = campaign_action_mix(campaign=campaign, days=days) if len(frame) else {}
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
    from crm_console.decisioning.promotion import how_it_went_live

    words = how_it_went_live(policy_version=live_policy) if live_policy is not None else ""
    return f"; it {words}" if words else ""


def campaign_verdict(*, kpis: CampaignKpis, live_policy=None, days: int | None = None) -> Verdict:
    """Revenue per customer, policy vs holdout, with its 95 % interval, in words.

    The uplift and its interval are the "Revenue per customer" KPI's (`kpis_from_frame`); a
    significant uplift is one whose interval excludes 0 (`Estimate.significant`).
    """
    from crm_console.dashboards.templatetags.console_format import kpi_delta

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


def campaign_action_mix(*, campaign: Campaign, days: int | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{"channel" | "offer" | "window": {group: {value: share of the group's decisions}}}."""
    decisions = Decision.objects.filter(campaign=campaign)
    since = _period_start(days)
    if since is not None:
        decisions = decisions.filter(decided_at__gte=since)
    mix: dict[str, dict[str, dict[str, float]]] = {}
    words = vocabulary()
    labels = {
        "channel": {"none": "No contact", **{c.key: c.label for c in words.channels}},
        "offer": {o.key: o.label for o in words.offers},
        "window": {w.key: w.label for w in words.send_windows},
    }
    for dimension, field in (("channel", "action__channel"), ("offer", "action__offer"),
                             ("window", "action__send_window")):
        counts = decisions.order_by().values("holdout", field).annotate(n=Count("id"))
        per_group: dict[str, dict[str, float]] = {"Policy": {}, "Holdout": {}}
        for row in counts:
            group = "Holdout" if row["holdout"] else "Policy"
            value = row[field] or ""
            name = labels[dimension].get(value) or ("No contact" if not value else value)
            per_group[group][name] = per_group[group].get(name, 0) + row["n"]
        for group, values in per_group.items():
            total = sum(values.values())
            per_group[group] = {k: v / total for k, v in values.items()} if total else {}
        mix[dimension] = per_group
    return mix


def default_campaign() -> Campaign | None:
    """The campaign a newcomer lands on: a live one with the most decisions, else any."""
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
        from crm_console.decisioning.serving import agent_view, policy_agent

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
