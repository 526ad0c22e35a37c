"""Writes for decisioning: policy versions and the live decision loop (decide, explain, release)."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
import numpy as np

import agents
from agents import features as agent_features
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.compliance.services import audit_record
from crm_console.customers.locks import customers_lock
from crm_console.customers.models import Customer
from crm_console.customers.services import (
    PROFILE_FIELDS as STORED_FIELDS, SECONDS_PER_DAY, customers_save_fields, profile_states_load,
    profile_states_store,
)
from crm_console.decisioning import caps, serving, storage
from crm_console.decisioning.choice import Choice, choose
from crm_console.decisioning.holdout import in_holdout
from crm_console.decisioning.masks import mask_reasons_compact
from crm_console.decisioning.models import Decision, Explanation, PolicyVersion

logger = logging.getLogger(__name__)


@transaction.atomic
def policy_version_create(
    *, campaign: Campaign, agent: agents.Agent, action_ids: list[int] | tuple[int, ...],
    status: str = PolicyVersion.Status.CANDIDATE, metrics: dict[str, Any] | None = None,
    created_by: AbstractBaseUser | None = None,
) -> PolicyVersion:
    """Store a trained agent as the campaign's next version (its bytes live in the database)."""
    if len(action_ids) != agent.n_actions:
        raise ValueError(f"{len(action_ids)} action ids for an agent with {agent.n_actions} actions")
    artifact = agent.to_bytes()
    next_version = (
        PolicyVersion.objects.select_for_update().filter(campaign=campaign)
        .aggregate(latest=Max("version"))["latest"] or 0
    ) + 1
    version = PolicyVersion.objects.create(
        campaign=campaign, version=next_version, algorithm=agent.name, status=status,
        artifact=artifact, artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        action_ids=list(action_ids),
        feature_names=list(vocabulary().layout_of(agent.n_features).names), metrics=metrics or {},
        promoted_at=timezone.now() if status == PolicyVersion.Status.LIVE else None,
    )
    audit_record(actor=created_by, verb="policy_version.created", target=version,
                 details={"algorithm": agent.name, "status": status})
    return version


# =============================================================================================
# The live decision loop: mask, score, pick, log, explain (see decisioning.serving and caps)
# =============================================================================================
class DecisionError(Exception):
    """A decision request that cannot be served; `fields` says which input is wrong."""

    def __init__(self, fields: dict[str, Any], *, code: str = "invalid"):
        super().__init__(str(fields))
        self.fields = fields
        self.code = code


_rng = np.random.default_rng()
_rng_lock = threading.Lock()


@dataclass
class DecisionOutcome:
    """A logged decision with what the API answers besides the row."""

    decision: Decision
    reasons: list[str]
    explanation: Explanation | None


def campaign_for_decisions(*, campaign_id: int) -> Campaign:
    """The live campaign to decide for (from this process's serving set-up, see serving)."""
    setup = serving.serving_for_campaign_id(campaign_id)
    if setup is None:
        raise DecisionError({"campaign": [f"Unknown campaign {campaign_id}."]})
    campaign = setup.campaign
    if campaign.status != Campaign.Status.LIVE:
        raise DecisionError({"campaign": [
            f"Campaign {campaign_id} is {campaign.get_status_display().lower()}: only live "
            "campaigns make decisions."]})
    if campaign.contact_policy is None:
        raise DecisionError({"campaign": [f"Campaign {campaign_id} has no contact policy."]})
    return campaign


@transaction.atomic
def decisions_create(
    *, campaign: Campaign, customer_external_ids: list[str], context: dict[str, Any] | None = None,
    contexts: list[dict[str, Any] | None] | None = None, now: datetime | None = None,
    explain: bool = True,
) -> list[DecisionOutcome]:
    """Decide for a batch of customers of one live campaign, all or nothing.

    `context` is logged with every decision; `contexts` instead gives each customer its own (the
    single-decision requests that `batching` decides together).

    Under the customers' row locks: features brought up to now, consent / caps / quiet hours /
    suppression / disabled actions masked, the live policy (or, for the holdout, the control
    policy) picks - sampled with its propensity, or greedy when the campaign says so - and every
    decision is logged with its features, mask and reasons. A shadow policy, if any, scores the
    same inputs and its choice is kept in `context["shadow"]`; while it is on trial it decides
    for the trial's customers instead (logged under its version). When `explain`, the SHAP
    explanations are computed before anything is written and stored in the same transaction: one
    commit per request (the commit costs more than the millisecond of SHAP the lock is held for).
    An explanation that cannot be computed leaves its decision standing, unexplained (its page
    explains it later).
    """
    if not customer_external_ids:
        return []
    now = now or timezone.now()
    if contexts is None:
        contexts = [context] * len(customer_external_ids)
    elif context is not None or len(contexts) != len(customer_external_ids):
        raise ValueError("give either one context or one per customer")
    customers = _customers_for_decision(customer_external_ids)  # read under their row locks
    holdout = np.array([in_holdout(campaign.pk, c.external_id, campaign.holdout_share)
                        for c in customers], dtype=bool)
    scored = serving.scored_batch(campaign, customers, holdout, now=now, explain=explain)
    with _rng_lock:
        draws = _rng.random(len(customers))
    choice = choose(live=scored.live, control=scored.control, holdout=holdout,
                    allowed=scored.inputs.allowed,
                    greedy=campaign.decision_mode == Campaign.DecisionMode.GREEDY,
                    exploration_share=float(campaign.exploration_share), draws=draws)
    decisions = _decisions_build(campaign, scored, customers, choice, holdout, contexts=contexts,
                                 now=now)
    explanations: list[Explanation | None] = [None] * len(decisions)
    if explain:
        try:
            explanations = _explanations_compute(scored, decisions, choice)
        except Exception:  # the decision is logged and answered; its page can explain it later
            logger.exception("explaining %d decisions of campaign %s failed", len(decisions),
                             campaign.pk)
    _profiles_record_contacts(customers, scored, choice.actions)
    storage.decisions_write(decisions, explanations, customers)
    return [DecisionOutcome(d, e.top_reasons[:3] if e is not None else [], e)
            for d, e in zip(decisions, explanations)]


def _decisions_build(campaign: Campaign, scored: serving.ScoredBatch, customers: list[Customer],
                     choice: Choice, holdout: np.ndarray, *,
                     contexts: list[dict[str, Any] | None], now: datetime) -> list[Decision]:
    """The decisions to log (unsaved): what was chosen, from what, and why the rest was not."""
    chosen, probs = choice.actions, choice.probabilities
    serving_setup, inputs, live_name = scored.setup, scored.inputs, scored.live_name
    shadow = _shadow_context(scored, chosen)
    windows = serving_setup.bridge.catalogue.window_index[chosen]
    by_candidate = scored.deciders["candidate"]
    decisions = []
    for i, customer in enumerate(customers):
        action_id = serving_setup.bridge.action_ids[int(chosen[i])]
        row_context = dict(contexts[i] or {})
        if shadow is not None and not by_candidate[i]:  # agreement: with the live policy's
            row_context["shadow"] = shadow[i]
        if by_candidate[i]:
            version, name = serving_setup.shadow, serving_setup.shadow.algorithm
        elif holdout[i]:
            version, name = None, campaign.control_policy
        else:
            version, name = serving_setup.live, live_name
        decisions.append(Decision(
            campaign=campaign, customer=customer, policy_version=version, policy_name=name,
            action=serving_setup.actions[action_id], action_index=int(chosen[i]),
            propensity=float(probs[i, chosen[i]]),
            action_probabilities=np.round(probs[i], 6).tolist(),
            features=np.round(inputs.observations[i].astype(float), 5).tolist(),
            action_mask=inputs.allowed[i].tolist(),
            mask_reasons=mask_reasons_compact(inputs.reasons[i]),
            holdout=bool(holdout[i]), greedy=bool(choice.greedy[i]), context=row_context,
            status=Decision.Status.DECIDED, decided_at=now,
            send_at=(caps.datetime_from_hours(inputs.send_hours[i, windows[i]])
                     if windows[i] >= 0 else None),
        ))
    return decisions


def _customers_for_decision(external_ids: list[str]) -> list[Customer]:
    """The batch's customers, read under their row locks, in the batch's order; a DecisionError
    names each unknown, erased or repeated one by its position."""
    found = storage.customers_locked(external_ids)
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for i, external_id in enumerate(external_ids):
        customer = found.get(external_id)
        if customer is None:
            errors[str(i)] = [f"Unknown customer {external_id!r} (send an identify event first)."]
        elif customer.is_erased:
            errors[str(i)] = [f"Customer {external_id!r} was erased: no decisions."]
        elif external_id in seen:
            errors[str(i)] = [f"Customer {external_id!r} appears twice in the batch."]
        seen.add(external_id)
    if errors:
        raise DecisionError({"customers": errors})
    return [found[e] for e in external_ids]


def _shadow_context(scored: serving.ScoredBatch, chosen: np.ndarray) -> list[dict] | None:
    """What the shadow candidate would have done, per customer, and whether it agrees."""
    picks = scored.shadow_actions
    if picks is None:
        return None
    version = scored.setup.shadow.version
    return [{"version": version, "action_index": int(picks[i]), "agrees": bool(picks[i] == chosen[i])}
            for i in range(len(picks))]


SHADOW_FIELDS = ("version", "action_index", "agrees")
"""What `_shadow_context` logs in `context["shadow"]`."""


def decision_context_console_part(context: Any) -> dict[str, Any]:
    """The part of a decision's context the console wrote itself: the shadow policy's choice and
    when the status changed (`_decisions_status_change`), without the CRM's free-form keys or the
    reasons it gave for a release. All that erasure keeps of a context."""
    context = context if isinstance(context, dict) else {}
    kept: dict[str, Any] = {}
    shadow = context.get("shadow")
    if isinstance(shadow, dict):
        kept["shadow"] = {k: shadow[k] for k in SHADOW_FIELDS if k in shadow}
    for status in (Decision.Status.RELEASED, Decision.Status.DELIVERED):
        stamp = context.get(str(status))
        if isinstance(stamp, dict) and "at" in stamp:
            kept[str(status)] = {"at": stamp["at"]}
    return kept


def offer_carries_incentive(offer: str | None) -> bool:
    """The contact offered something (feeds "share of recent contacts that carried a discount")."""
    return offer not in (None, "", "content")


def _profiles_record_contacts(customers: list[Customer], scored: serving.ScoredBatch,
                              chosen: np.ndarray) -> None:
    """The decision commits to a contact: count it in the profile now (as the simulator does).

    The customers' profile fields are set here and saved with the decisions (`storage.decisions_write`).
    """
    catalogue, inputs = scored.setup.bridge.catalogue, scored.inputs
    channel = catalogue.channel_index[chosen]
    contact = channel >= 0
    if contact.any():
        discounted = np.array([offer_carries_incentive(catalogue.actions[a].offer) for a in chosen])
        agent_features.record_contact(inputs.profiles, contact, channel[contact], discounted[contact])
    profile_states_store(customers, inputs.profiles, inputs.clocks)


def _explanations_compute(scored: serving.ScoredBatch, decisions: list[Decision],
                          choice: Choice) -> list[Explanation | None]:
    """SHAP explanations of the chosen actions (unsaved), one vectorised call per deciding policy
    (given the probabilities the decision computed: the policy is not run twice).

    A result with a non-finite number is left out (the database's JSON refuses NaN): its
    decision's page explains it later; so are rows whose policy has no explainer here.
    """
    n = len(decisions)
    inputs, chosen = scored.inputs, choice.actions
    explanations: list[Explanation | None] = [None] * n
    for decider, explainer in scored.explainers.items():
        idx = np.flatnonzero(scored.deciders[decider])
        if explainer is None or not idx.size:
            continue
        started = time.perf_counter()
        results = explainer.explain(inputs.observations[idx], inputs.allowed[idx],
                                    actions=chosen[idx], reason_flags=inputs.reasons[idx],
                                    profiles=inputs.profiles.take(idx),
                                    probabilities=choice.deciding_probabilities[idx],
                                    contact_gap_hours=inputs.contact_gap_hours[idx])
        per_row_ms = (time.perf_counter() - started) * 1000.0 / idx.size
        for i, result in zip(idx, results):
            # the few parts stored, not Explanation.to_dict(): a deep copy of everything, slower
            # than the SHAP values themselves for one decision
            numbers = [result.base_value, result.score, *result.shap_values.values()]
            if not np.isfinite(np.asarray(numbers, dtype=np.float64)).all():
                logger.warning("explanation of a %s decision has non-finite values", result.method)
                continue
            explanation = Explanation(
                decision=decisions[i], method=result.method, base_value=result.base_value,
                explained_value=result.score, shap_values=result.shap_values,
                top_reasons=result.reasons(),
                runner_up={"action_index": result.runner_up, "label": result.runner_up_label,
                           "score_gap": _finite_or_none(result.score_gap),
                           "probability_gap": _finite_or_none(result.probability_gap)},
                masked_actions=[{"channel": g.channel, "reason": g.reason, "text": g.text,
                                 "actions": g.actions, "action_labels": g.action_labels}
                                for g in result.masked],  # asdict deep-copies: slower
                sentence=result.sentence, compute_ms=per_row_ms,
            )
            explanations[i] = explanation
    return explanations


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def decisions_release(*, decision_ids: list[int], reason: str) -> int:
    """Free the contacts these decisions reserved (never delivered); returns how many changed.

    Already released decisions are left as they are (a replayed failure changes nothing);
    delivered ones and "no contact" decisions have no contact to free.
    """
    return _decisions_status_change(decision_ids, to=Decision.Status.RELEASED,
                                    from_statuses=[Decision.Status.DECIDED],
                                    note={"reason": reason})


def decisions_mark_delivered(*, delivered_at: dict[int, datetime]) -> int:
    """Record delivery receipts (decision id -> when the message went out); returns how many
    decisions changed.

    A delivered contact counts in the caps from the receipt's time on (its `send_at`) and can no
    longer be released. A receipt for a contact released earlier (a failure reported first, out
    of order) puts it back in the caps: the receipt is the stronger evidence. "No contact"
    decisions delivered nothing and stay as they are.
    """
    return _decisions_status_change(
        list(delivered_at), to=Decision.Status.DELIVERED,
        from_statuses=[Decision.Status.DECIDED, Decision.Status.RELEASED], send_at=delivered_at)


def decisions_release_scheduled(*, withdrawals: list[tuple[int, str, datetime]]) -> int:
    """Release the contacts still to be sent on a channel whose consent was withdrawn (customer
    id, channel, withdrawn at): a message scheduled before an unsubscribe must not go out after
    it. Returns how many were released; the CRM reads the status before sending (docs/api.md)."""
    if not withdrawals:
        return 0
    withdrawn_at: dict[tuple[int, str], datetime] = {}
    for customer_id, channel, at in withdrawals:
        key = (customer_id, channel)
        withdrawn_at[key] = min(at, withdrawn_at.get(key, at))
    scheduled = (Decision.objects
                 .filter(customer_id__in={c for c, _ in withdrawn_at},
                         action__channel__in={ch for _, ch in withdrawn_at},
                         status=Decision.Status.DECIDED,
                         send_at__gte=min(withdrawn_at.values()))
                 .values_list("id", "customer_id", "action__channel", "send_at"))
    cancelled = [pk for pk, customer_id, channel, send_at in scheduled
                 if (customer_id, channel) in withdrawn_at
                 and send_at >= withdrawn_at[(customer_id, channel)]]
    return decisions_release(decision_ids=cancelled, reason="consent withdrawn") if cancelled else 0


@transaction.atomic
def _decisions_status_change(decision_ids: list[int], *, to: str, from_statuses: list[str],
                             note: dict[str, Any] | None = None,
                             send_at: dict[int, datetime] | None = None) -> int:
    """Move contact decisions in `from_statuses` to `to` under their customers' locks (the cap
    count reads these statuses), stamping `context[to]` with the time and `note`, and moving
    their `send_at` where given."""
    decisions = list(Decision.objects.filter(id__in=decision_ids).values_list("id", "customer_id"))
    customers_lock([customer_id for _, customer_id in decisions])
    changing = (Decision.objects.filter(id__in=decision_ids, status__in=from_statuses)
                .exclude(action__channel=Action.NO_CONTACT_CHANNEL).select_related("action"))
    stamp = {"at": timezone.now().isoformat(), **(note or {})}
    changed, withdrawn, restored = [], [], []
    for decision in changing:
        if to == Decision.Status.RELEASED:
            withdrawn.append(decision)
        elif decision.status == Decision.Status.RELEASED:
            restored.append(decision)
        decision.status = to
        decision.context = {**(decision.context or {}), str(to): stamp}
        if send_at is not None:
            decision.send_at = send_at.get(decision.pk, decision.send_at)
        changed.append(decision)
    Decision.objects.bulk_update(changed, ["status", "context", "send_at"])
    profiles_contacts_correct(withdrawn, withdraw=True)
    profiles_contacts_correct(restored, withdraw=False)
    return len(changed)


def profiles_contacts_correct(decisions: list[Decision], *, withdraw: bool) -> None:
    """Take released contacts back out of their customers' features, or put contacts a receipt
    revived back in (call under the customers' locks, after the status change).

    A decision counts its contact in the profile when it is made (`_profiles_record_contacts`);
    a contact that never went out must not leave the customer looking recently contacted to the
    next decision. Each change is applied at the profile's own clock (no time passes); a
    withdrawn latest contact hands the channel's recency back to the one before it, as the log
    has it.
    """
    if not decisions:
        return
    customers = list(Customer.objects.filter(pk__in={d.customer_id for d in decisions})
                     .only("id", *storage.PROFILE_COLUMNS).order_by("id"))
    customers = [c for c in customers if isinstance(c.profile_state, dict)
                 and c.profile_state.keys() >= set(STORED_FIELDS) and c.profile_updated_at]
    if not customers:
        return
    row_of = {c.pk: i for i, c in enumerate(customers)}
    channel_index = vocabulary().channel_index
    decisions = [d for d in decisions
                 if d.customer_id in row_of and d.action.channel in channel_index]
    if not decisions:
        return
    profiles, clocks = profile_states_load(customers, at=timezone.now())
    rows = np.array([row_of[d.customer_id] for d in decisions], dtype=np.int64)
    channels = np.array([channel_index[d.action.channel] for d in decisions], dtype=np.int64)
    days_ago = np.maximum(clocks[rows] - np.array([d.decided_at.timestamp() for d in decisions]),
                          0.0) / SECONDS_PER_DAY
    discounted = np.array([offer_carries_incentive(d.action.offer) for d in decisions])
    if withdraw:
        latest_other = dict(
            ((customer_id, channel), at) for customer_id, channel, at in
            Decision.objects.filter(customer_id__in=row_of,
                                    action__channel__in={d.action.channel for d in decisions},
                                    status__in=[Decision.Status.DECIDED, Decision.Status.DELIVERED])
            .exclude(pk__in=[d.pk for d in decisions])
            .values_list("customer_id", "action__channel").annotate(at=Max("decided_at")))
        previous = np.array([
            (clocks[row_of[d.customer_id]] - latest_other[(d.customer_id, d.action.channel)].timestamp())
            / SECONDS_PER_DAY if (d.customer_id, d.action.channel) in latest_other else np.inf
            for d in decisions])
        agent_features.withdraw_contact(profiles, rows, channels, days_ago, discounted,
                                        previous_days_since=np.maximum(previous, 0.0))
    else:
        agent_features.record_past_contact(profiles, rows, channels, days_ago, discounted)
    profile_states_store(customers, profiles, clocks)
    customers_save_fields(customers, list(storage.PROFILE_COLUMNS))


def decision_release(*, decision: Decision, reason: str) -> Decision:
    """Release one decision's contact (the API's release operation); explains a refusal."""
    if decision.status == Decision.Status.DELIVERED:
        raise DecisionError({"decision": ["This contact was delivered: there is nothing to release."]},
                            code="conflict")
    if decision.action.is_no_contact:
        raise DecisionError({"decision": ["A no-contact decision reserved no contact."]},
                            code="conflict")
    decisions_release(decision_ids=[decision.pk], reason=reason)
    decision.refresh_from_db()
    return decision
