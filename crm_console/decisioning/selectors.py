"""Reads of the decision log: the explorer's filters and everything a decision's detail page shows.

A decision's explanation is read from its Explanation row; a decision logged before explanations
were computed (or by the demo history) gets one computed on the fly with `agents.explain` for
display only, against a background of the campaign's own logged customers, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from crm_console.campaigns.agents_bridge import catalogue_for_campaign, contact_rules_for
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.decisioning import policy_runtime
from crm_console.decisioning.masks import mask_reasons_flags
from crm_console.decisioning.models import BatchRun, BatchRunChunk, Decision, Explanation

DecisionFilters = dict[str, Any]


def decision_list(*, filters: DecisionFilters | None = None) -> QuerySet[Decision]:
    """Decisions newest first, filtered by campaign, channel, offer, dates, holdout, policy version.

    filters: campaign (id), channel, offer, date_from / date_to (dates, inclusive), holdout
    ("yes" / "no" or bool), policy_version (id), customer (id), reviewed ("yes" / "no").
    """
    filters = filters or {}
    decisions = Decision.objects.select_related("campaign", "customer", "action", "policy_version")
    if filters.get("campaign"):
        decisions = decisions.filter(campaign_id=filters["campaign"])
    if filters.get("channel"):
        decisions = decisions.filter(action__channel=filters["channel"])
    if filters.get("offer"):
        decisions = decisions.filter(action__offer=filters["offer"])
    if filters.get("date_from"):
        decisions = decisions.filter(decided_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        decisions = decisions.filter(decided_at__lt=_day_start(filters["date_to"]) + timedelta(days=1))
    holdout = filters.get("holdout")
    if holdout in ("yes", True):
        decisions = decisions.filter(holdout=True)
    elif holdout in ("no", False):
        decisions = decisions.filter(holdout=False)
    if filters.get("policy_version"):
        decisions = decisions.filter(policy_version_id=filters["policy_version"])
    if filters.get("customer"):
        decisions = decisions.filter(customer_id=filters["customer"])
    reviewed = filters.get("reviewed")
    if reviewed == "yes":
        decisions = decisions.filter(reviews__isnull=False).distinct()
    elif reviewed == "no":
        decisions = decisions.filter(reviews__isnull=True)
    return decisions.order_by("-decided_at", "-id")


def _day_start(day: date | datetime) -> datetime:
    if isinstance(day, datetime):
        return day
    return timezone.make_aware(datetime.combine(day, time.min))


# ------------------------------------------------------------------------------ detail
@dataclass
class MaskedAction:
    index: int
    label: str
    reasons: list[str]
    rules: list[str]


@dataclass
class ActionOdds:
    index: int
    label: str
    probability: float
    allowed: bool
    chosen: bool


@dataclass
class DecisionExplanation:
    """What the detail page shows; `stored` says whether it came from the Explanation row."""

    sentence: str
    method: str
    base_value: float
    score: float | None
    shap_values: dict[str, float]
    labels: dict[str, str]
    runner_up_label: str | None
    runner_up_probability: float | None
    score_gap: float | None
    stored: bool
    own_terms: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def contributions(self, values_in_words: dict[str, str] | None = None) -> list[tuple[str, float]]:
        """(label, SHAP value) per feature; with `values_in_words` the label is the customer's
        own value in words ("last purchase 12 days ago") instead of the feature's name."""
        words = values_in_words or {}
        return [(words.get(name) or self.labels.get(name, name), float(value))
                for name, value in self.shap_values.items()]


@dataclass
class DecisionDetail:
    decision: Decision
    actions: list[ActionOdds]
    runner_up: ActionOdds | None
    masked: list[MaskedAction]
    explanation: DecisionExplanation
    features: list[tuple[str, str, float, str]]
    """(name, label, normalised value, the customer's value in words)."""

    def values_in_words(self) -> dict[str, str]:
        return {name: words for name, _, _, words in self.features}


def _catalogue_labels(decision: Decision, n_actions: int) -> tuple[list[str], list[Any]]:
    """Labels and agents CatalogueActions in the decision's action order (no contact first)."""
    try:
        bridge = catalogue_for_campaign(campaign=decision.campaign)
    except ValueError:  # a catalogue without "no contact" cannot be an agents Catalogue
        actions = list(decision.campaign.actions.order_by("id"))
        return ([a.label for a in actions] + [f"action {i}" for i in range(len(actions), n_actions)])[
            :n_actions], [None] * n_actions
    labels = list(bridge.catalogue.labels)
    meta = list(bridge.catalogue.actions)
    version = decision.policy_version
    if version is not None and version.action_ids and list(version.action_ids) != list(bridge.action_ids):
        by_id = {a.pk: a for a in Action.objects.filter(pk__in=version.action_ids)}
        position = {aid: i for i, aid in enumerate(bridge.action_ids)}
        labels = [by_id[aid].label if aid in by_id else f"action {i}"
                  for i, aid in enumerate(version.action_ids)]
        meta = [meta[position[aid]] if aid in position else None for aid in version.action_ids]
    if len(labels) < n_actions:
        labels += [f"action {i}" for i in range(len(labels), n_actions)]
        meta += [None] * (n_actions - len(meta))
    return labels[:n_actions], meta[:n_actions]


def _contact_rules(campaign: Campaign) -> Any:
    if campaign.contact_policy_id is None:
        return None
    return contact_rules_for(contact_policy=campaign.contact_policy, campaign=campaign)


def decision_detail(*, decision: Decision) -> DecisionDetail:
    from agents.constraints import MaskReason, describe_reasons
    from agents.explain import feature_phrases_of_vector
    mask = np.asarray(decision.action_mask, dtype=bool)
    n_actions = mask.size
    labels, meta = _catalogue_labels(decision, n_actions)
    probs = np.asarray(decision.action_probabilities or [0.0] * n_actions, dtype=np.float64)
    if probs.size != n_actions:
        probs = np.zeros(n_actions)
    actions = [ActionOdds(i, labels[i], float(probs[i]), bool(mask[i]), i == decision.action_index)
               for i in range(n_actions)]
    order = np.argsort(-probs, kind="stable")
    runner = next((actions[i] for i in order if i != decision.action_index and mask[i]
                   and probs[i] > 0), None)

    rules = _contact_rules(decision.campaign)
    flags = mask_reasons_flags(decision.mask_reasons or {}, n_actions)
    masked = []
    for i in np.flatnonzero(~mask):
        f = int(flags[i])
        reasons = describe_reasons(f, meta[i], rules) if f else ["blocked by the campaign's mask"]
        masked.append(MaskedAction(int(i), labels[i], [str(r) for r in reasons],
                                   [r.name.replace("_", " ").lower() for r in MaskReason if f & int(r)]))

    features = decision.features or []
    try:
        layout = vocabulary().layout_of(len(features)) if features else None
    except ValueError:  # logged with a channel since deleted: numbers without names
        layout = None
    phrases = feature_phrases_of_vector(features, layout) if layout else {}
    feature_rows = [(name, layout.labels.get(name, name), float(value), phrases.get(name, ""))
                    for name, value in zip(layout.names, features)] if layout else []
    explanation = decision_explanation(decision=decision)
    # the explanation's runner-up is the next best by the policy's own score (ties in probability
    # are common under exploration); fall back to the next most probable allowed action
    named = next((a for a in actions if explanation.runner_up_label
                  and a.label == explanation.runner_up_label and not a.chosen), None)
    return DecisionDetail(decision=decision, actions=actions, runner_up=named or runner,
                          masked=masked, explanation=explanation,
                          features=feature_rows)


def decision_explanation(*, decision: Decision) -> DecisionExplanation:
    """The stored explanation, else one computed now (not saved) with agents.explain."""
    try:
        row = decision.explanation
    except Explanation.DoesNotExist:
        row = None
    if row is not None:
        runner = row.runner_up or {}
        return DecisionExplanation(
            sentence=row.sentence, method=row.method, base_value=row.base_value,
            score=row.explained_value, shap_values=dict(row.shap_values),
            labels=dict(vocabulary().feature_layout.labels),
            runner_up_label=runner.get("label") or runner.get("runner_up_label"),
            runner_up_probability=runner.get("probability") or runner.get("runner_up_probability"),
            score_gap=runner.get("score_gap"), stored=True,
        )
    if not decision.features:  # erasure cleared the snapshot and deleted the explanation
        return _no_explanation("The customer's data was erased: this decision's features and "
                               "explanation were erased with it.")
    try:
        return _explain_now(decision)
    except Exception as error:  # an explanation must never take the audit page down
        return _no_explanation(f"No explanation could be computed: {error}")


def _no_explanation(why: str) -> DecisionExplanation:
    return DecisionExplanation(
        sentence="", method="", base_value=0.0, score=None, shap_values={}, labels={},
        runner_up_label=None, runner_up_probability=None, score_gap=None, stored=False,
        error=why,
    )


def _explain_now(decision: Decision) -> DecisionExplanation:
    """The decision explained now by the policy that took it, with the explainer (and so the
    baseline) serving uses (`policy_runtime.policy_explainer`)."""
    obs = np.asarray(decision.features, dtype=np.float32)[None, :]
    mask = np.asarray(decision.action_mask, dtype=bool)[None, :]
    n_actions = mask.shape[1]
    explainer = policy_runtime.policy_explainer(
        campaign=decision.campaign, bridge=catalogue_for_campaign(campaign=decision.campaign),
        rules=_contact_rules(decision.campaign), version=decision.policy_version,
        control_name=decision.policy_name, n_actions=n_actions)
    obs = policy_runtime.agent_view(explainer.agent, vocabulary().features_in_layout(obs))
    flags = mask_reasons_flags(decision.mask_reasons or {}, n_actions)[None, :]
    result = explainer.explain(obs, mask, actions=np.array([decision.action_index]),
                               reason_flags=flags)[0]
    labels = {c.feature: c.label for c in result.top_contributions}
    return DecisionExplanation(
        sentence=result.sentence, method=result.method, base_value=float(result.base_value),
        score=float(result.score), shap_values={k: float(v) for k, v in result.shap_values.items()},
        labels={**vocabulary().feature_layout.labels, **labels}, runner_up_label=result.runner_up_label,
        runner_up_probability=result.runner_up_probability, score_gap=result.score_gap,
        stored=False, own_terms={k: v for k, v in (result.own_terms or {}).items()
                                 if isinstance(v, (int, float, str))},
    )


# ------------------------------------------------------------------------------ batch runs
def batch_run_list(*, campaign: Campaign | None = None) -> QuerySet[BatchRun]:
    runs = BatchRun.objects.select_related("campaign", "started_by")
    return runs.filter(campaign=campaign) if campaign is not None else runs


def batch_run_progress(*, run: BatchRun) -> dict[str, Any]:
    """How far a run is, read from its chunks (no chunk writes to the run while it works, so
    workers never queue on the run's row): chunks per status and the figures so far."""
    chunks = {row["status"]: row for row in run.chunks.values("status").annotate(
        n=Count("pk"), decisions=Sum("decisions"), delivered=Sum("delivered"),
        customers=Sum("customers"))}
    finished = sum(chunks.get(s, {}).get("n", 0) for s in (BatchRunChunk.Status.DONE,
                                                          BatchRunChunk.Status.FAILED))
    return {
        "chunks": run.chunks_total, "chunks_finished": finished,
        "chunks_failed": chunks.get(BatchRunChunk.Status.FAILED, {}).get("n", 0),
        "customers": run.customers,
        "decisions": sum(row["decisions"] or 0 for row in chunks.values()),
        "delivered": sum(row["delivered"] or 0 for row in chunks.values()),
        "share": finished / run.chunks_total if run.chunks_total else 1.0,
    }


def batch_run_summary(*, run: BatchRun) -> dict[str, Any]:
    """A run's figures as `run_campaign` prints them and its task answers: the final ones once
    finished, the progress so far while running."""
    run.refresh_from_db()
    if run.is_finished:
        return {"batch_run": run.pk, "status": run.status, "customers": run.customers,
                **run.totals, "errors": run.errors}
    progress = batch_run_progress(run=run)
    return {"batch_run": run.pk, "status": run.status, "customers": run.customers,
            "chunks": run.chunks_total, "decisions": progress["decisions"],
            "delivered": progress["delivered"], "errors": []}
