"""The policy runtime: the one place the console turns a policy into something that acts and explains.

A PolicyVersion's artifact becomes an agent here (checked against its SHA-256, loaded once per
process); a campaign's control policy becomes an agent here (`control_agent_make` builds it); and
each policy gets one SHAP explainer here, against one background recipe: the campaign's last
BACKGROUND_DECISIONS logged feature snapshots, summarised to BACKGROUND_CENTRES weighted centres.
Serving, the decision's review page, dashboards, the what-if and evaluation all go through it, so
an explanation recomputed on the review page is measured against the baseline the stored ones were.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict

import gymnasium as gym
import numpy as np

import agents
from agents import features as agent_features
from agents.constraints import ContactRules
from agents.explain import Explainer
from crm_console.campaigns.agents_bridge import CampaignCatalogue, control_agent_make
from crm_console.campaigns.models import Campaign
from crm_console.campaigns.vocabulary import vocabulary
from crm_console.decisioning.models import Decision, PolicyVersion

logger = logging.getLogger(__name__)

CACHE_SIZE = 16
"""Agents and explainers kept per process (least recently used go first)."""
BACKGROUND_DECISIONS = 2000
BACKGROUND_CENTRES = 10

_lock = threading.RLock()  # held while an agent loads: two requests never load the same one
_agents: OrderedDict[str, agents.Agent] = OrderedDict()
_explainers: OrderedDict[tuple, Explainer] = OrderedDict()


def _remember(cache: OrderedDict, key, value) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)


# ------------------------------------------------------------------------------------- agents
def policy_agent(version: PolicyVersion) -> agents.Agent:
    """The version's agent, loaded once per process (keyed by the artifact's SHA-256)."""
    sha = version.artifact_sha256
    agent = _agents.get(sha)
    if agent is not None:
        return agent
    with _lock:
        agent = _agents.get(sha)
        if agent is None:
            artifact = bytes(PolicyVersion.objects.values_list("artifact", flat=True)
                             .get(pk=version.pk))
            if hashlib.sha256(artifact).hexdigest() != sha:
                raise ValueError(f"policy version {version.pk}: artifact does not match its SHA-256")
            agent = agents.loads(artifact)
            _remember(_agents, sha, agent)
            logger.info("loaded policy version %s (%s)", version.pk, version.algorithm)
    return agent


def control_agent(*, campaign_id: int, name: str, bridge: CampaignCatalogue,
                  n_actions: int | None = None) -> agents.Agent:
    """A control policy (`Campaign.ControlPolicy`) of the campaign over today's features, built
    once per process. `n_actions` other than the catalogue's: a decision logged before the
    catalogue changed (its review page)."""
    layout = vocabulary().feature_layout
    n_actions = bridge.catalogue.n_actions if n_actions is None else n_actions
    key = f"control:{campaign_id}:{name}:{bridge.action_ids}:{layout.channels}:{n_actions}"
    agent = _agents.get(key)
    if agent is None:
        agent = control_agent_make(
            name=name, catalogue=bridge.catalogue, observation_space=layout.observation_space(),
            action_space=gym.spaces.Discrete(n_actions), seed=campaign_id)
        _remember(_agents, key, agent)
    return agent


def deciding_agent(*, campaign: Campaign, bridge: CampaignCatalogue, version: PolicyVersion | None,
                   control_name: str, n_actions: int | None = None) -> agents.Agent:
    """Whoever decides: the policy version, or (None) the named control policy."""
    if version is not None:
        return policy_agent(version)
    return control_agent(campaign_id=campaign.pk, name=control_name, bridge=bridge,
                         n_actions=n_actions)


def agent_view(agent: agents.Agent, observations: np.ndarray) -> np.ndarray:
    """Today's observations as a policy trained before a channel was added saw customers (the
    channels it knew, by name); unchanged for one that knows every channel."""
    if observations.shape[1] == agent.n_features:
        return observations
    words = vocabulary()
    return words.features_in_layout(observations, words.layout_of(agent.n_features))


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


def policy_probabilities(version: PolicyVersion, bridge: CampaignCatalogue,
                         observations: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(n, A) over today's catalogue and features, from a version whose actions or channels may
    be older."""
    agent = policy_agent(version)
    observations = agent_view(agent, observations)
    index = version_action_map(version, bridge)
    if index is None:
        return agent.action_probabilities(observations, allowed)
    own = agent.action_probabilities(observations, allowed[:, index])
    probs = np.zeros_like(allowed, dtype=np.float64)
    probs[:, index] = own
    return probs


def explained_as_served(version: PolicyVersion, bridge: CampaignCatalogue) -> bool:
    """Whether the live explainer can explain this version's decisions as it took them: it knows
    today's actions and channels (otherwise the decision's page explains it later)."""
    return (version_action_map(version, bridge) is None
            and policy_agent(version).n_features == vocabulary().feature_layout.n_features)


# ------------------------------------------------------------------------------------- explainers
def policy_explainer(*, campaign: Campaign, bridge: CampaignCatalogue, rules: ContactRules | None,
                     version: PolicyVersion | None, control_name: str,
                     n_actions: int | None = None) -> Explainer:
    """The explainer of the version (or, None, of the named control policy), built once per
    process against the campaign's logged customers. `n_actions` other than today's catalogue's:
    a decision logged before the catalogue changed, whose actions are explained by index."""
    todays_catalogue = n_actions is None or n_actions == bridge.catalogue.n_actions
    policy_key = (f"version:{version.artifact_sha256}" if version is not None
                  else f"control:{campaign.pk}:{control_name}")
    cache_key = (policy_key, bridge.action_ids, None if todays_catalogue else n_actions, repr(rules))
    explainer = _explainers.get(cache_key)
    if explainer is not None:
        return explainer
    agent = deciding_agent(campaign=campaign, bridge=bridge, version=version,
                           control_name=control_name,
                           n_actions=None if todays_catalogue else n_actions)
    background, weights = explainer_background(campaign, agent.n_features)
    explainer = Explainer(agent, background=background,
                          n_background=None if weights is not None else BACKGROUND_CENTRES,
                          background_weights=weights,
                          catalogue=bridge.catalogue if todays_catalogue else None,
                          contact_rules=rules, seed=0)
    _remember(_explainers, cache_key, explainer)
    return explainer


def explainer_background(campaign: Campaign, n_features: int) -> tuple[np.ndarray, np.ndarray | None]:
    """"A typical customer" of this campaign, in a layout of `n_features`: its last logged
    feature snapshots, with weights when there are too few distinct ones to summarise (a young
    campaign: `shap.kmeans` cannot make more centres than distinct points); a brand-new customer
    before any decision is logged."""
    words = vocabulary()
    own_layout = words.layout_of(n_features)
    widths = {layout.n_features for layout in (own_layout, words.feature_layout)}
    logged = [row for row in Decision.objects.filter(campaign=campaign).order_by("-id")
              .values_list("features", flat=True)[:BACKGROUND_DECISIONS]
              if row and len(row) in widths]  # an erased customer's snapshot is empty
    if logged:
        background = words.features_in_layout(logged, own_layout)
    else:
        background = agent_features.observation(
            agent_features.ProfileState.empty(1, n_channels=own_layout.n_channels))
    unique, counts = np.unique(background, axis=0, return_counts=True)
    if len(unique) <= BACKGROUND_CENTRES:
        return unique, counts.astype(np.float64)
    return background, None


def clear_caches() -> None:
    """Forget loaded agents and explainers (tests)."""
    with _lock:
        _agents.clear()
        _explainers.clear()
