"""The serving bridge: policy versions as loaded agents, customers as feature vectors and masks.

Agents are loaded from a PolicyVersion's artifact once per process and cached by the artifact's
SHA-256 (a promoted version is picked up on the next request, an unchanged one is never reloaded);
so are their SHAP explainers, and each campaign's set-up (catalogue, contact rules, versions) until
a config edit marks it stale (`serving_for_campaign_id`). Features are each customer's stored
profile brought up to now with `agents.features.advance_days`; the mask comes from
`agents.constraints.contact_mask` over the campaign's catalogue and contact rules (via
campaigns.agents_bridge) and the customer's consent, caps, quiet hours and the suppression list,
read from the database under the customer's lock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

import agents
from agents import features as agent_features
from agents.constraints import ContactRules, contact_mask, nearest_contact_hours
from agents.explain import Explainer
from crm_console.change_markers import ChangeMarker
from crm_console.campaigns.agents_bridge import (
    CampaignCatalogue, catalogue_for_campaign, contact_rules_for, control_agent_make,
    utc_offset_hours,
)
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.customers.models import Customer
from crm_console.customers.services import profile_states_advance, profile_states_load
from crm_console.decisioning.caps import (
    contact_records_read, contact_state_for, contact_window_start,
)
from crm_console.decisioning.models import Decision, PolicyVersion

logger = logging.getLogger(__name__)

_CACHE_SIZE = 16
_BACKGROUND_CENTRES = 10
_lock = threading.Lock()
_agents: OrderedDict[str, agents.Agent] = OrderedDict()
_explainers: OrderedDict[tuple, Explainer] = OrderedDict()


# ------------------------------------------------------------------------------------- agents
def _remember(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def policy_agent(version: PolicyVersion) -> agents.Agent:
    """The version's agent, loaded once per process (keyed by the artifact's SHA-256)."""
    sha = version.artifact_sha256
    agent = _agents.get(sha)
    if agent is not None:
        return agent
    with _lock:
        agent = _agents.get(sha)
        if agent is None:
            artifact = bytes(PolicyVersion.objects.values_list("artifact", flat=True).get(pk=version.pk))
            if hashlib.sha256(artifact).hexdigest() != sha:
                raise ValueError(f"policy version {version.pk}: artifact does not match its SHA-256")
            agent = agents.loads(artifact)
            _remember(_agents, sha, agent)
            logger.info("loaded policy version %s (%s)", version.pk, version.algorithm)
    return agent


def control_agent(campaign: Campaign, bridge: CampaignCatalogue) -> agents.Agent:
    """The holdout's control policy: today's rules (default), random, or no contact."""
    layout = vocabulary().feature_layout
    key = f"control:{campaign.control_policy}:{bridge.action_ids}:{layout.channels}"
    agent = _agents.get(key)
    if agent is None:
        import gymnasium as gym

        agent = control_agent_make(
            name=campaign.control_policy, catalogue=bridge.catalogue,
            observation_space=layout.observation_space(),
            action_space=gym.spaces.Discrete(bridge.catalogue.n_actions), seed=campaign.pk)
        with _lock:
            _remember(_agents, key, agent)
    return agent


def policy_explainer(key: str, agent: agents.Agent, *, bridge: CampaignCatalogue,
                     rules: ContactRules, campaign: Campaign) -> Explainer:
    """One Explainer per policy (and catalogue), against the campaign's logged feature snapshots."""
    cache_key = (key, bridge.action_ids, repr(rules))
    explainer = _explainers.get(cache_key)
    if explainer is not None:
        return explainer
    words = vocabulary()
    own_layout = words.layout_of(agent.n_features)
    widths = {layout.n_features for layout in (own_layout, words.feature_layout)}
    logged = [row for row in Decision.objects.filter(campaign=campaign).order_by("-id")
              .values_list("features", flat=True)[:2000]
              if row and len(row) in widths]  # an erased customer's snapshot is empty
    if logged:
        background = words.features_in_layout(logged, own_layout)
    else:  # no logs yet: compare with a brand-new customer
        background = agent_features.observation(
            agent_features.ProfileState.empty(1, n_channels=own_layout.n_channels))
    unique, counts = np.unique(background, axis=0, return_counts=True)
    if len(unique) <= _BACKGROUND_CENTRES:
        # few distinct customers (a young campaign): use them as they are, weighted by how many
        # (shap.kmeans cannot make more centres than distinct points)
        explainer = Explainer(agent, background=unique, n_background=None,
                              background_weights=counts.astype(np.float64),
                              catalogue=bridge.catalogue, contact_rules=rules, seed=0)
    else:
        explainer = Explainer(agent, background=background, n_background=_BACKGROUND_CENTRES,
                              catalogue=bridge.catalogue, contact_rules=rules, seed=0)
    with _lock:
        _remember(_explainers, cache_key, explainer)
    return explainer


def deciding_explainer(setup: "CampaignServing", *, holdout: bool) -> Explainer:
    """The explainer of whoever decides: the live policy, or for the holdout the control policy."""
    campaign = setup.campaign
    if holdout:
        key = f"control:{campaign.pk}:{campaign.control_policy}"
        agent = control_agent(campaign, setup.bridge)
    else:
        key, agent = f"version:{setup.live.artifact_sha256}", policy_agent(setup.live)
    return policy_explainer(key, agent, bridge=setup.bridge, rules=setup.rules, campaign=campaign)


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
        _remember(_setups, campaign_id, (now, marker, setup))
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
    return CampaignServing(campaign, bridge, rules, actions, live, shadow)


def agent_view(agent: agents.Agent, observations: np.ndarray) -> np.ndarray:
    """Today's observations as a policy trained before a channel was added saw customers (the
    channels it knew, by name); unchanged for one that knows every channel."""
    if observations.shape[1] == agent.n_features:
        return observations
    words = vocabulary()
    return words.features_in_layout(observations, words.layout_of(agent.n_features))


def explained_as_served(version: PolicyVersion, bridge: CampaignCatalogue) -> bool:
    """Whether the live explainer can explain this version's decisions as it took them: it knows
    today's actions and channels (otherwise the decision's page explains it later)."""
    return (version_action_map(version, bridge) is None
            and policy_agent(version).n_features == vocabulary().feature_layout.n_features)


def version_action_map(version: PolicyVersion, bridge: CampaignCatalogue) -> np.ndarray | None:
    """Index map from the version's action indices to today's catalogue (None if identical).

    A policy trained before an action was added still serves: new actions are unknown to it and
    stay masked for it; a catalogue that lost one of its actions cannot be served.
    """
    if tuple(version.action_ids) == bridge.action_ids:
        return None
    missing = set(version.action_ids) - set(bridge.action_ids)
    if missing:
        raise ValueError(f"policy version {version.version} uses actions no longer in the "
                         f"catalogue: {sorted(missing)}")
    return np.array([bridge.index_of_action(a) for a in version.action_ids], dtype=np.int64)


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
                    policy_agent(version)
            if explained_as_served(setup.live, setup.bridge):
                deciding_explainer(setup, holdout=False)
            if setup.campaign.holdout_share > 0:
                deciding_explainer(setup, holdout=True)
        except Exception:
            logger.exception("warming up campaign %s failed", campaign_id)
            continue
        warmed.append(campaign_id)
    return warmed


def clear_caches() -> None:
    """Forget loaded agents and explainers (tests)."""
    with _lock:
        _agents.clear()
        _explainers.clear()
        _setups.clear()
    SERVING_CHANGED.forget()
