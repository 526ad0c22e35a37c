"""Serving: one request's customers as every policy of their campaign sees them.

`scored_batch` is the one call the decision service makes here: the campaign's set-up (catalogue,
contact rules, live and shadow versions; cached per process until a config edit marks it stale,
`serving_for_campaign_id`), the customers' features and masks, every policy's probabilities and
the explainers of whoever decides. Features are each customer's stored profile brought up to now
with `agents.features.advance_days`; the mask comes from `agents.constraints.contact_mask` over
the campaign's catalogue and contact rules (via campaigns.agents_bridge) and the customer's
consent, caps, quiet hours and the suppression list, read under the customer's lock. Agents and
explainers come from `policy_runtime`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from agents import features as agent_features
from agents.constraints import ContactRules, contact_mask, nearest_contact_hours
from agents.explain import Explainer
from crm_console.change_markers import ChangeMarker
from crm_console.campaigns.agents_bridge import (
    CampaignCatalogue, catalogue_for_campaign, contact_rules_for, utc_offset_hours,
)
from crm_console.campaigns.models import Action, Campaign
from crm_console.customers.models import Customer
from crm_console.customers.services import profile_states_advance, profile_states_load
from crm_console.decisioning import policy_runtime
from crm_console.decisioning.caps import (
    contact_records_read, contact_state_for, contact_window_start,
)
from crm_console.decisioning.holdout import in_trial
from crm_console.decisioning.models import PolicyTrial, PolicyVersion

logger = logging.getLogger(__name__)

_lock = threading.Lock()


DECIDERS = ("live", "control", "candidate")
"""Who decides a row: the live version, the control policy (the holdout, or every row while no
version is live), or a trial's candidate."""


def deciding_explainer(setup: "CampaignServing", *, decider: str) -> Explainer:
    """The explainer of whoever decides (one of `DECIDERS`)."""
    version = {"live": setup.live, "control": None, "candidate": setup.shadow}[decider]
    return policy_runtime.policy_explainer(
        campaign=setup.campaign, bridge=setup.bridge, rules=setup.rules,
        version=version, control_name=setup.campaign.control_policy)


# ------------------------------------------------------------------------------------- campaign
@dataclass
class CampaignServing:
    """What every decision of one campaign needs, read once per request."""

    campaign: Campaign
    bridge: CampaignCatalogue
    rules: ContactRules
    actions: dict[int, Action]
    live: PolicyVersion | None
    shadow: PolicyVersion | None
    trial: PolicyTrial | None = None
    """The running trial, whose candidate is `shadow` (it decides for the trial's share)."""


SERVING_CHANGED = ChangeMarker("decisioning:serving:changed")
SETUP_MAX_AGE_SECONDS = 60.0
"""A process reuses a campaign's set-up until the shared "serving changed" marker changes
(crm_console.change_markers). Saving a campaign, its contact policy or caps, an action or a policy
version through Django replaces the marker (see decisioning.signals): the saving process sees the
edit on its next decision, every other process within half a second. SETUP_MAX_AGE_SECONDS is the
safety net for edits made outside Django (a DBA's UPDATE). Consent, cap counts and the
suppression list are never cached: they are read under the customer's lock."""
_setups: OrderedDict[int, tuple[float, str | None, CampaignServing]] = OrderedDict()


def serving_for_campaign_id(campaign_id: int) -> CampaignServing | None:
    """The campaign (with its contact policy) and its serving set-up; None if there is none."""
    now = time.monotonic()
    marker = SERVING_CHANGED.current()
    cached = _setups.get(campaign_id)
    if cached is not None and cached[1] == marker and now - cached[0] < SETUP_MAX_AGE_SECONDS:
        return cached[2]
    campaign = Campaign.objects.select_related("contact_policy").filter(pk=campaign_id).first()
    if campaign is None:
        return None
    setup = _campaign_serving_load(campaign)
    with _lock:
        _setups[campaign_id] = (now, marker, setup)
        _setups.move_to_end(campaign_id)
        while len(_setups) > policy_runtime.CACHE_SIZE:
            _setups.popitem(last=False)
    return setup


def campaign_serving(campaign: Campaign) -> CampaignServing:
    """The campaign's serving set-up, for this campaign object (see `serving_for_campaign_id`)."""
    setup = serving_for_campaign_id(campaign.pk)
    if setup is None:
        raise ValueError(f"campaign {campaign.pk} does not exist")
    return setup if setup.campaign is campaign else replace(setup, campaign=campaign)


def serving_changed() -> None:
    """Make every process reload campaign set-ups (this one on its next decision)."""
    SERVING_CHANGED.replace()


def _campaign_serving_load(campaign: Campaign) -> CampaignServing:
    bridge = catalogue_for_campaign(campaign=campaign)
    rules = contact_rules_for(contact_policy=campaign.contact_policy, campaign=campaign)
    actions = {a.pk: a for a in campaign.actions.all()}
    versions = list(PolicyVersion.objects.filter(
        campaign=campaign, status__in=[PolicyVersion.Status.LIVE, PolicyVersion.Status.SHADOW],
    ).defer("artifact").order_by("-version"))
    live = next((v for v in versions if v.status == PolicyVersion.Status.LIVE), None)
    shadow = next((v for v in versions if v.status == PolicyVersion.Status.SHADOW), None)
    trial = PolicyTrial.objects.filter(campaign=campaign,
                                       outcome=PolicyTrial.Outcome.RUNNING).first()
    if trial is not None and (shadow is None or trial.candidate_id != shadow.pk):
        logger.error("trial %s of campaign %s: its candidate is not in shadow; not served",
                     trial.pk, campaign.pk)
        trial = None
    return CampaignServing(campaign, bridge, rules, actions, live, shadow, trial)


# ------------------------------------------------------------------------------------- customers
@dataclass
class CustomerInputs:
    """n customers' feature vectors, profile states and masks at `now`."""

    observations: np.ndarray   # (n, d) float32
    profiles: agent_features.ProfileState
    clocks: np.ndarray         # (n,) unix seconds the profiles are valid at
    allowed: np.ndarray        # (n, A) bool
    reasons: np.ndarray        # (n, A) uint8 MaskReason flags
    send_hours: np.ndarray     # (n, W) when each send window's message would go out (unix hours)
    contact_gap_hours: np.ndarray  # (n, W) from that send back to the nearest other contact


def customer_inputs(serving: CampaignServing, customers: list[Customer], *, now: datetime) -> CustomerInputs:
    """Features and masks for `customers` (call under their row locks so caps are exact)."""
    ids = [c.pk for c in customers]
    profiles, clocks = profile_states_load(customers, at=now)
    clocks = profile_states_advance(profiles, clocks, np.full(len(customers), now.timestamp()))
    policy = serving.campaign.contact_policy
    records = contact_records_read(
        customer_ids=ids, external_ids=[c.external_id for c in customers],
        contact_policy_id=policy.pk if policy is not None else None,
        since=contact_window_start(rules=serving.rules, now=now))
    state = contact_state_for(
        customer_ids=ids, now=now, time_zones=[c.time_zone for c in customers],
        consent=records.consent, suppressed=records.suppressed, contacts=records.contacts,
        send_windows=serving.bridge.catalogue.send_windows,
    )
    # the Consent table is the record compliance edits: the features say what the mask enforces
    profiles.consent[:] = records.consent.astype(np.float64)
    profiles.utc_offset_hours[:] = np.array([utc_offset_hours(c.time_zone, now) for c in customers])
    allowed, reasons = contact_mask(serving.bridge.catalogue, serving.rules, state,
                                    enabled=serving.bridge.enabled)
    return CustomerInputs(agent_features.observation(profiles), profiles, clocks, allowed, reasons,
                          state.send_hours,
                          nearest_contact_hours(state))


@dataclass
class ScoredBatch:
    """A request's customers with what each policy of the campaign makes of them."""

    setup: CampaignServing
    inputs: CustomerInputs
    live: np.ndarray                # (n, A) the live policy's (the control's while none is live)
    control: np.ndarray | None      # (n, A) the control policy's, where the holdout needs them
    live_name: str                  # what the live rows are logged under
    shadow_actions: np.ndarray | None  # (n,) the shadow candidate's greedy picks
    deciders: dict[str, np.ndarray]
    """(n,) bool per decider of `DECIDERS`: the rows it decides (the control: the holdout, or all
    while none is live; a running trial's candidate: its customers, whose `live` rows are its
    probabilities)."""
    explainers: dict[str, Explainer | None]
    """By decider: the explainer of who decided those rows (None: explained later, on the
    decision's page; empty when not asked to explain)."""


def scored_batch(campaign: Campaign, customers: list[Customer], holdout: np.ndarray, *,
                 now: datetime, explain: bool) -> ScoredBatch:
    """Features, masks and every policy's probabilities for `customers` (under their row locks).

    The live policy's probabilities (the control policy's while no learned policy is live: the
    marketer's rules are the status quo), the control policy's where the holdout needs them, the
    shadow candidate's greedy picks, and when `explain` the deciding policies' explainers. While
    a trial runs, the customers it draws (outside the holdout, `holdout.in_trial`) get the
    candidate's probabilities in place of the live ones. An explainer or a shadow that cannot be
    built is logged and left out: the decisions stand (a trial's rows then follow the live
    policy).
    """
    setup = campaign_serving(campaign)
    inputs = customer_inputs(setup, customers, now=now)
    control = None
    if setup.live is None or holdout.any():
        control = policy_runtime.control_agent(
            campaign_id=campaign.pk, name=campaign.control_policy, bridge=setup.bridge,
        ).action_probabilities(inputs.observations, inputs.allowed)
    if setup.live is None:
        live, live_name = control, campaign.control_policy
    else:
        live = policy_runtime.policy_probabilities(setup.live, setup.bridge, inputs.observations,
                                                   inputs.allowed)
        live_name = setup.live.algorithm
    shadow = _shadow_probabilities(setup, inputs)
    by_candidate = np.zeros(len(customers), dtype=bool)
    if setup.trial is not None and shadow is not None:
        by_candidate = ~holdout & np.array(
            [in_trial(setup.trial.pk, c.external_id, setup.trial.share) for c in customers],
            dtype=bool)
        live = np.where(by_candidate[:, None], shadow, live)
    by_control = holdout.copy() if setup.live is not None else ~by_candidate
    deciders = {"live": ~by_control & ~by_candidate, "control": by_control,
                "candidate": by_candidate}
    scored = ScoredBatch(setup, inputs, live, control, live_name,
                         None if shadow is None else shadow.argmax(axis=1), deciders, {})
    if explain:
        scored.explainers = _deciding_explainers(scored)
    return scored


def _shadow_probabilities(setup: CampaignServing, inputs: CustomerInputs) -> np.ndarray | None:
    """The shadow candidate's probabilities (same mask); None without a shadow that can score."""
    if setup.shadow is None:
        return None
    try:
        return policy_runtime.policy_probabilities(
            setup.shadow, setup.bridge, inputs.observations, inputs.allowed)
    except ValueError:
        logger.exception("shadow policy version %s cannot score this campaign", setup.shadow.pk)
        return None


def _deciding_explainers(scored: ScoredBatch) -> dict[str, Explainer | None]:
    setup = scored.setup
    explainers: dict[str, Explainer | None] = {}
    for decider in DECIDERS:
        if not scored.deciders[decider].any():
            continue
        version = {"live": setup.live, "candidate": setup.shadow}.get(decider)
        if version is not None and not policy_runtime.explained_as_served(version, setup.bridge):
            explainers[decider] = None  # an older catalogue or channels: left to the review page
            continue
        try:
            explainers[decider] = deciding_explainer(setup, decider=decider)
        except Exception:  # the decisions are logged and answered; their pages explain them later
            logger.exception("no explainer for campaign %s (%s)", setup.campaign.pk, decider)
            explainers[decider] = None
    return explainers


def serving_warm_up() -> list[int]:
    """Load every live campaign's set-up, policies and explainers now; returns the campaign ids.

    A web process calls this when it starts (gunicorn.conf.py), so no CRM request pays for
    loading an agent and building its SHAP explainer (seconds). A campaign that cannot be
    served is logged and skipped: its requests get the error they would get anyway.
    """
    warmed = []
    live_ids = Campaign.objects.filter(status=Campaign.Status.LIVE).values_list("pk", flat=True)
    for campaign_id in live_ids:
        try:
            setup = serving_for_campaign_id(campaign_id)
            if setup is None or setup.live is None:
                continue
            for version in (setup.live, setup.shadow):
                if version is not None:
                    policy_runtime.policy_agent(version)
            if policy_runtime.explained_as_served(setup.live, setup.bridge):
                deciding_explainer(setup, decider="live")
            if setup.campaign.holdout_share > 0:
                deciding_explainer(setup, decider="control")
            if setup.trial is not None and policy_runtime.explained_as_served(setup.shadow,
                                                                              setup.bridge):
                deciding_explainer(setup, decider="candidate")
        except Exception:
            logger.exception("warming up campaign %s failed", campaign_id)
            continue
        warmed.append(campaign_id)
    return warmed


def clear_caches() -> None:
    """Forget campaign set-ups, loaded agents and explainers (tests)."""
    policy_runtime.clear_caches()
    with _lock:
        _setups.clear()
    SERVING_CHANGED.forget()
