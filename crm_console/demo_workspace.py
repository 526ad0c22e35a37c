"""The demo workspace: a retail campaign whose 90 days of history are honest logged data.

The customers' history is produced by the simulator (`agents.envs.CustomerJourneyEnv`, retail
scenario) acting under today's marketing rules with epsilon exploration, so every logged
Decision carries the true propensity of the action taken, its feature snapshot, mask and the rule
that blocked each masked action; opens, clicks, orders, unsubscribes and churn come back as
events and are attributed to decisions like real CRM events. Off-policy evaluation and offline
learning therefore have real logs from day one.

Customers in the holdout are served by the control policy (the rules, without exploration).
Decisions are made on three campaign days a week (Mon, Wed, Fri), as a batch campaign would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import agents
from agents.catalogue import DEFAULT_CHANNELS, DEFAULT_OFFERS, DEFAULT_SEND_WINDOWS
from agents.envs import CustomerJourneyEnv
from agents.envs.customer_journey import DECISION_HOUR
from crm_console.accounts.roles import ADMIN, COMPLIANCE_REVIEWER, MARKETER
from crm_console.accounts.services import user_role_set
from crm_console.campaigns import services as campaign_services
from crm_console.campaigns.agents_bridge import (
    catalogue_for_campaign, contact_rules_for, reward_weights_for,
)
from crm_console.campaigns.models import Campaign
from crm_console.customers import event_types
from crm_console.customers.models import Consent, Customer, Event
from crm_console.decisioning.attribution import decisions_attribute
from crm_console.decisioning.holdout import in_holdout
from crm_console.decisioning.masks import mask_reasons_compact
from crm_console.decisioning.models import Decision, PolicyVersion
from crm_console.decisioning.services import policy_version_create

logger = logging.getLogger(__name__)

CAMPAIGN_NAME = "Retail next best action"
CONTACT_POLICY_NAME = "Retail standard contact policy"
CAMPAIGN_TIME_ZONE = "Europe/London"
LOGGING_EPSILON = 0.1
DECISION_WEEKDAYS = (0, 2, 4)  # Monday, Wednesday, Friday

DEMO_USERS = (
    # username, role, password (local demo only; seed_demo refuses to run with DEBUG off)
    ("marketer", MARKETER, "marketer-demo-pass"),
    ("reviewer", COMPLIANCE_REVIEWER, "reviewer-demo-pass"),
    ("admin", ADMIN, "admin-demo-pass"),
)
# the simulator's utc offsets as real time zones (what a CRM would send)
TIME_ZONE_BY_OFFSET = {
    0.0: "Europe/London", 1.0: "Europe/Paris", 2.0: "Europe/Athens", -5.0: "America/New_York",
    -8.0: "America/Los_Angeles", 5.5: "Asia/Kolkata",
}


@dataclass
class DemoSummary:
    created: bool
    customers: int
    decisions: int
    events: int
    users: tuple[tuple[str, str, str], ...]


def demo_workspace_exists() -> bool:
    return Campaign.objects.filter(name=CAMPAIGN_NAME).exists()


def demo_users_ensure() -> tuple[tuple[str, str, str], ...]:
    """One user per role; passwords are reset to the documented demo ones. Only the admin is
    staff (opens the Django admin), as user_role_set makes every user."""
    user_model = get_user_model()
    for username, role, password in DEMO_USERS:
        user, _ = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        user.set_password(password)
        user.save()
        user_role_set(user=user, role=role)
    return DEMO_USERS


def demo_workspace_seed(
    *, seed: int = 0, customers: int = 2000, days: int = 90,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Create the demo workspace unless it exists (idempotent: a second run only resets logins)."""
    say = progress or (lambda message: None)
    users = demo_users_ensure()
    if demo_workspace_exists():
        return DemoSummary(False, Customer.objects.count(), Decision.objects.count(),
                           Event.objects.count(), users)
    with transaction.atomic():
        campaign = _campaign_create()
        say(f"Simulating {customers} customers over {days} days of history (seed {seed})")
        _history_simulate(campaign=campaign, seed=seed, n_customers=customers, days=days, say=say)
        say("Attributing outcome events to decisions")
        decisions_attribute(campaign=campaign)
    return DemoSummary(True, Customer.objects.count(), Decision.objects.count(),
                       Event.objects.count(), users)


def _campaign_create() -> Campaign:
    admin = get_user_model().objects.get(username="admin")
    policy = campaign_services.contact_policy_save(
        name=CONTACT_POLICY_NAME, overall_max_contacts=4, overall_window_days=7,
        min_gap_hours=Decimal("48"), quiet_hours_start=21, quiet_hours_end=8, updated_by=admin,
        channel_caps=[
            {"channel": "email", "max_contacts": 2, "window_days": 7},
            {"channel": "sms", "max_contacts": 1, "window_days": 7},
            {"channel": "push", "max_contacts": 3, "window_days": 7},
            {"channel": "call_centre", "max_contacts": 1, "window_days": 30},
        ],
    )
    marketer = get_user_model().objects.get(username="marketer")
    campaign = campaign_services.campaign_create(
        name=CAMPAIGN_NAME, created_by=marketer, contact_policy=policy,
        description="Every customer, three times a week: which offer, on which channel, when - or "
        "leave them alone - to maximise 90-day net revenue and retention.",
        holdout_share=Decimal("0.10"), time_zone=CAMPAIGN_TIME_ZONE,
    )
    campaign_services.catalogue_generate(
        campaign=campaign, channels=[c.key for c in DEFAULT_CHANNELS],
        offers=[o.key for o in DEFAULT_OFFERS], send_windows=[w.key for w in DEFAULT_SEND_WINDOWS],
    )
    return campaign_services.campaign_update(campaign=campaign, status=Campaign.Status.LIVE)


def _history_simulate(*, campaign: Campaign, seed: int, n_customers: int, days: int,
                      say: Callable[[str], None]) -> None:
    """Run the simulator under the logging policy and write customers, decisions and events."""
    bridge = catalogue_for_campaign(campaign=campaign)
    rules = contact_rules_for(contact_policy=campaign.contact_policy, campaign=campaign)
    env = CustomerJourneyEnv(
        "retail", num_customers=n_customers, catalogue=bridge.catalogue, contact_rules=rules,
        reward_weights=reward_weights_for(campaign=campaign), horizon_days=days + 30, seed=seed,
        enabled_actions=bridge.enabled,
    )
    obs, info = env.reset(seed=seed)
    space = env.single_observation_space
    logging_policy = agents.make("rule_based", space, env.single_action_space, seed=seed,
                                 catalogue=bridge.catalogue, epsilon=LOGGING_EPSILON)
    control_policy = agents.make("rule_based", space, env.single_action_space, seed=seed,
                                 catalogue=bridge.catalogue)
    logging_version = policy_version_create(
        campaign=campaign, agent=logging_policy, action_ids=bridge.action_ids,
        status=PolicyVersion.Status.LIVE,
        metrics={"note": f"today's rules with {LOGGING_EPSILON:.0%} exploration (demo history)"},
    )

    customers = _customers_create(campaign=campaign, env=env, n=n_customers)
    holdout = np.array([in_holdout(campaign.pk, c.external_id, campaign.holdout_share)
                        for c in customers])
    zone = ZoneInfo(CAMPAIGN_TIME_ZONE)
    start = datetime.combine(timezone.now().astimezone(zone).date() - timedelta(days=days),
                             time(0, 0), tzinfo=zone)
    _consents_create(customers=customers, consent=env.profile.consent > 0.5, at=start)
    # the simulator's clock (send times) starts at a UTC midnight: `start` is the campaign's
    clock_zero = start + timedelta(hours=rules.campaign_utc_offset_hours)

    rng = np.random.default_rng(seed + 1)
    actions_by_index = {i: aid for i, aid in enumerate(bridge.action_ids)}
    labels = bridge.catalogue.labels
    active = np.ones(n_customers, dtype=bool)   # slots still holding the original customer
    final_profiles: dict[int, dict] = {}         # churned customers' last profile
    consent_changes: list[Consent] = []
    decision_rows: list[Decision] = []
    pending_events: list[tuple[int, Event]] = []   # (index into decision_rows or -1, event)
    for day in range(days):
        today = start + timedelta(days=day)
        decide = today.weekday() in DECISION_WEEKDAYS
        actions = np.zeros(n_customers, dtype=np.int64)
        if decide:
            mask, reasons = info["action_mask"], info["mask_reasons"]
            probs = np.where(holdout[:, None], control_policy.action_probabilities(obs, mask),
                             logging_policy.action_probabilities(obs, mask))
            cumulative = probs.cumsum(axis=1)
            draws = rng.random((n_customers, 1))
            actions = np.minimum((draws > cumulative).sum(axis=1), probs.shape[1] - 1)
            actions = np.where(probs[np.arange(n_customers), actions] > 0, actions, probs.argmax(axis=1))
            decided_at = today + timedelta(hours=DECISION_HOUR)
            for i in np.flatnonzero(active):
                decision_rows.append(Decision(
                    campaign=campaign, customer=customers[i],
                    policy_version=None if holdout[i] else logging_version,
                    policy_name="rule_based", action_id=actions_by_index[int(actions[i])],
                    action_index=int(actions[i]), propensity=float(probs[i, actions[i]]),
                    action_probabilities=np.round(probs[i], 6).tolist(),
                    features=np.round(obs[i].astype(float), 5).tolist(),
                    action_mask=mask[i].tolist(),
                    mask_reasons=mask_reasons_compact(reasons[i]),
                    holdout=bool(holdout[i]), greedy=bool(holdout[i]),
                    status=Decision.Status.DELIVERED, decided_at=decided_at,
                    context={"source": "demo history", "day": day},
                ))
        decision_of = {}
        if decide:
            first = len(decision_rows) - int(active.sum())
            decision_of = {int(i): first + k for k, i in enumerate(np.flatnonzero(active))}
        obs, _, terminated, _, info = env.step(actions)
        for i, row in decision_of.items():
            if info["contacted"][i]:
                decision_rows[row].send_at = clock_zero + timedelta(
                    hours=float(info["send_hours"][i]))
        pending_events.extend(_day_events(
            info=info, actions=actions, active=active, customers=customers, today=today,
            clock_zero=clock_zero, decision_of=decision_of, bridge_labels=labels,
            catalogue=bridge.catalogue, rng=rng,
        ))
        for i in np.flatnonzero(active & (info["unsubscribes"] > 0)):
            consent_changes.append(Consent(
                customer=customers[i], channel=catalogue_channel(bridge.catalogue, actions[i]),
                granted=False, source="unsubscribe link",
                recorded_at=unsubscribed_at(clock_zero, info, i),
            ))
        for i in np.flatnonzero(active & terminated):
            final_profiles[int(i)] = env.profile.take(np.array([i])).to_dict()
        active &= ~terminated
        if day % 15 == 14:
            say(f"  day {day + 1}/{days}: {len(decision_rows)} decisions, {len(pending_events)} events")

    Decision.objects.bulk_create(decision_rows, batch_size=2000)
    events = []
    for index, event in pending_events:
        if index >= 0:
            event.properties["decision_id"] = decision_rows[index].pk
        events.append(event)
    Event.objects.bulk_create(events, batch_size=2000)
    Consent.objects.bulk_create(consent_changes, batch_size=2000)
    _final_profiles_save(customers=customers, env=env, final_profiles=final_profiles)


def _customers_create(*, campaign: Campaign, env: CustomerJourneyEnv, n: int) -> list[Customer]:
    segment_names = env.scenario.segment_names
    segments = env.segments
    offsets = env.profile.utc_offset_hours
    rows = [
        Customer(
            external_id=f"cust-{i + 1:05d}", email=f"customer{i + 1:05d}@example.com",
            name=f"Demo customer {i + 1}",
            time_zone=TIME_ZONE_BY_OFFSET.get(float(offsets[i]), "UTC"),
            # ground truth kept for the demo's analysis pages only; never a model feature
            traits={"demo_segment": segment_names[int(segments[i])], "plan": "retail"},
        )
        for i in range(n)
    ]
    return Customer.objects.bulk_create(rows, batch_size=2000)


def _consents_create(*, customers: list[Customer], consent: np.ndarray, at: datetime) -> None:
    rows = [
        Consent(customer=customer, channel=channel, granted=bool(consent[i, c]),
                source="signup form", recorded_at=at - timedelta(days=30))
        for i, customer in enumerate(customers) for c, channel in enumerate(ch.key for ch in DEFAULT_CHANNELS)
    ]
    Consent.objects.bulk_create(rows, batch_size=5000)


def _day_events(*, info, actions, active, customers, today, clock_zero, decision_of, bridge_labels,
                catalogue, rng) -> list[tuple[int, Event]]:
    """Today's outcomes as the CRM would report them (Segment track events)."""
    events: list[tuple[int, Event]] = []
    n = len(customers)
    minutes = rng.integers(5, 180, size=n)
    order_hours = rng.integers(8, 22, size=n)

    def add(i: int, name: str, at: datetime, properties: dict, with_decision: bool) -> None:
        day_key = today.strftime("%Y%m%d")
        message_id = f"demo-{customers[i].external_id}-{day_key}-{name.replace(' ', '-').lower()}"
        events.append((decision_of.get(i, -1) if with_decision else -1, Event(
            message_id=message_id, customer=customers[i], type=Event.Type.TRACK, name=name,
            properties=properties, timestamp=at,
        )))

    for i in np.flatnonzero(active & (info["opens"] > 0)):
        action = catalogue.actions[actions[i]]
        at = clock_zero + timedelta(hours=float(info["send_hours"][i]), minutes=int(minutes[i]))
        add(i, event_types.MESSAGE_OPENED, at, {"channel": action.channel, "offer": action.offer}, True)
        if info["clicks"][i] > 0:
            add(i, event_types.LINK_CLICKED, at + timedelta(minutes=4),
                {"channel": action.channel, "offer": action.offer}, True)
    for i in np.flatnonzero(active & (info["conversions"] > 0)):
        at = today + timedelta(hours=int(order_hours[i]), minutes=int(minutes[i] % 60))
        add(i, event_types.ORDER_COMPLETED, at, {
            "revenue": round(float(info["net_revenue"][i]), 2), "currency": "GBP",
            "discounted": bool(info["discounted_conversions"][i] > 0),
        }, False)
    for i in np.flatnonzero(active & (info["unsubscribes"] > 0)):
        action = catalogue.actions[actions[i]]
        add(i, event_types.UNSUBSCRIBED, unsubscribed_at(clock_zero, info, i),
            {"channel": action.channel}, True)
    for i in np.flatnonzero(active & (info["churned"] > 0)):
        add(i, event_types.CUSTOMER_CHURNED, today + timedelta(hours=23), {}, False)
    return events


def unsubscribed_at(clock_zero: datetime, info: dict, i: int) -> datetime:
    """Three hours after customer i's message went out."""
    return clock_zero + timedelta(hours=float(info["send_hours"][i]) + 3)


def catalogue_channel(catalogue, action_index: int) -> str:
    return catalogue.actions[int(action_index)].channel


def _final_profiles_save(*, customers: list[Customer], env: CustomerJourneyEnv,
                         final_profiles: dict[int, dict]) -> None:
    """Store each customer's behaviour counters as the simulator left them (churned: at churn)."""
    now = timezone.now()
    for i, customer in enumerate(customers):
        if i in final_profiles:
            customer.profile_state = final_profiles[i]
            customer.traits = {**customer.traits, "churned": True}
        else:
            customer.profile_state = env.profile.take(np.array([i])).to_dict()
        customer.profile_updated_at = now
    Customer.objects.bulk_update(customers, ["profile_state", "profile_updated_at", "traits"],
                                 batch_size=1000)


# ---------------------------------------------------------------------------------- first policy
DEMO_TRAINING_BUDGET = 300_000
"""Simulated customer-days for the demo's first actor_critic (about a minute on two cores)."""


@dataclass
class DemoPolicySummary:
    trained: bool
    training_run_id: int | None
    policy_version_id: int | None
    promoted: bool
    reason: str


def demo_policy_train(
    *, budget_steps: int = DEMO_TRAINING_BUDGET, seed: int = 0,
    progress: Callable[[str], None] | None = None, force_reason: str = "",
) -> DemoPolicySummary:
    """Train the demo's first actor_critic (warm start on the logged history), evaluate it off-policy
    on that history and promote it through the guardrail - or record why the guardrail said no.

    With `force_reason`, a refused candidate is then force-promoted by the demo admin with that
    written reason (marked forced in the audit trail and on the version, as any forced promotion).
    Idempotent: once a demo training run has succeeded, nothing is trained again.
    """
    from crm_console.decisioning.promotion import PromotionRefused, policy_version_promote
    from crm_console.training import services as training_services
    from crm_console.training.models import TrainingRun
    from crm_console.training.response_models import response_model_create, response_model_fit
    from crm_console.training.selectors import response_model_validation_in_words

    say = progress or (lambda message: None)
    campaign = Campaign.objects.get(name=CAMPAIGN_NAME)
    marketer = get_user_model().objects.get(username="marketer")
    done = TrainingRun.objects.filter(campaign=campaign, status=TrainingRun.Status.SUCCEEDED,
                                      report__demo=True).first()
    if done is not None:
        version = done.policy_version
        return DemoPolicySummary(False, done.pk, version.pk if version else None,
                                 bool(version and version.status == PolicyVersion.Status.LIVE),
                                 "already trained")
    say("Fitting the campaign's customer-response model from its logged history ...")
    model = response_model_fit(response_model_id=response_model_create(
        campaign=campaign, created_by=marketer).pk)
    if model.status != model.Status.READY:
        say(f"No customer-response model: {model.error}")
    else:
        say(f"Customer-response model #{model.pk}: "
            + response_model_validation_in_words(response_model=model)["verdict"])
    try:
        run = training_services.training_run_create(
            campaign=campaign, algorithm="actor_critic", budget_steps=budget_steps,
            warm_start=True, seed=seed, created_by=marketer, enqueue=False)
    except ValidationError as refused:
        return DemoPolicySummary(True, None, None, False, "; ".join(refused.messages))
    TrainingRun.objects.filter(pk=run.pk).update(report={"demo": True})
    world = ("the customer-response model fitted from that history" if model.trainable
             else "the built-in retail simulator")
    say(f"Training actor_critic for {budget_steps:,} customer-days in {world} "
        "(warm start on the logged history) ...")
    run = training_services.training_run_execute(training_run_id=run.pk, task_id=f"demo-{run.pk}")
    if run.status != TrainingRun.Status.SUCCEEDED:
        return DemoPolicySummary(True, run.pk, None, False, f"training {run.status}: {run.error[:200]}")
    version = run.policy_version
    say(f"Evaluating candidate v{version.version} off-policy on the logged decisions ...")
    report = training_services.policy_version_evaluate(policy_version=version)
    version.refresh_from_db()
    try:
        policy_version_promote(policy_version=version, promoted_by=marketer)
    except PromotionRefused as refused:
        say(f"Not promoted - the guardrail said: {refused.reason}")
        say(f"What the logs cannot certify, a trial measures on live customers: start one on "
            f"the policy's page (/training/policies/{version.pk}/).")
        if not force_reason:
            return DemoPolicySummary(True, run.pk, version.pk, False, refused.reason)
        admin = get_user_model().objects.get(username="admin")
        policy_version_promote(policy_version=version, promoted_by=admin, reason=force_reason,
                               force=True)
        say(f"Force-promoted v{version.version} by admin: {force_reason}")
        return DemoPolicySummary(True, run.pk, version.pk, True,
                                 f"forced past the guardrail ({refused.reason}): {force_reason}")
    reason = (report.get("guardrail") or {}).get("explanation", "")
    say(f"Promoted v{version.version} through the guardrail: {reason}")
    return DemoPolicySummary(True, run.pk, version.pk, True, reason)
