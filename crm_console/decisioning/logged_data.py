"""The campaign's attributed decisions as arrays: what off-policy evaluation and offline learning read.

Every Decision row already carries what the estimators need - the feature snapshot the policy saw,
the allowed actions, the logged action with its true propensity (and the whole distribution), and,
once attribution has run, its reward. This module turns those rows into numpy arrays in one pass
(no Python loop per customer in the maths; the ORM rows are read once) and into an
`agents.offline.LoggedDataset` for warm starts.

Only *mature* decisions are used by default: ones older than the campaign's attribution window, so
a purchase that has not happened yet is not counted as "no purchase".

Decisions of erased customers (their feature snapshot cleared) are left out and said in the notes.

Action indices are re-mapped through the catalogue's action ids, so a row logged before an action
was added still lines up with today's agent; rows logged with a different catalogue width (the
catalogue grew or shrank since) are left out and counted in `LoggedArrays.skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db.models import QuerySet
from django.utils import timezone

from agents.offline import LoggedDataset
from crm_console.campaigns.models import Campaign
from crm_console.campaigns.vocabulary import Vocabulary, vocabulary
from crm_console.decisioning.models import Decision


OUTCOME_COMPONENTS = ("open", "click", "conversion", "revenue", "unsubscribe", "churn")
"""The reward components (decisioning.attribution.reward_components) read back per row."""


@dataclass
class LoggedArrays:
    """Attributed decisions of one campaign, row-aligned (oldest first within each customer)."""

    obs: np.ndarray  # in today's feature layout (campaigns.vocabulary.Vocabulary.features_in_layout)
    """(n, d) feature snapshot the deciding policy saw."""
    actions: np.ndarray
    """(n,) action index in the campaign's current catalogue."""
    propensities: np.ndarray
    """(n,) probability the deciding policy gave the logged action."""
    rewards: np.ndarray
    """(n,) attributed reward (campaign RewardWeights)."""
    masks: np.ndarray
    """(n, A) allowed actions when deciding."""
    logging_probs: np.ndarray | None
    """(n, A) the deciding policy's whole distribution, when every row logged it."""
    holdout: np.ndarray
    """(n,) the row was decided by the control policy (holdout group)."""
    customer_ids: np.ndarray
    """(n,) customer primary keys."""
    decision_ids: np.ndarray
    """(n,) Decision primary keys (for audit trails of an evaluation)."""
    churned: np.ndarray
    """(n,) the customer churned within the decision's attribution window."""
    policy_version_ids: np.ndarray
    """(n,) deciding PolicyVersion pk, -1 for the control policy."""
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)
    """Each attributed outcome count per row, by reward component (open, click, conversion,
    revenue, unsubscribe, churn): what a customer-response model learns from."""
    decided_at: np.ndarray | None = None
    """(n,) when each decision was made, unix seconds (to hold out the most recent days)."""
    skipped: int = 0
    """Rows left out because they were logged with a different catalogue width."""
    notes: list[str] = field(default_factory=list)
    propensity_estimated: np.ndarray | None = None
    """(n,) the row's propensity was estimated from a model of the old system's choices (an
    imported contact that came without one: decisioning.history_import); None: none was."""

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def subset(self, rows: np.ndarray) -> LoggedArrays:
        return LoggedArrays(
            obs=self.obs[rows], actions=self.actions[rows], propensities=self.propensities[rows],
            rewards=self.rewards[rows], masks=self.masks[rows],
            logging_probs=None if self.logging_probs is None else self.logging_probs[rows],
            holdout=self.holdout[rows], customer_ids=self.customer_ids[rows],
            decision_ids=self.decision_ids[rows], churned=self.churned[rows],
            policy_version_ids=self.policy_version_ids[rows],
            outcomes={name: values[rows] for name, values in self.outcomes.items()},
            decided_at=None if self.decided_at is None else self.decided_at[rows],
            skipped=self.skipped, notes=list(self.notes),
            propensity_estimated=(None if self.propensity_estimated is None
                                  else self.propensity_estimated[rows]),
        )

    @property
    def estimated_propensities(self) -> int:
        """How many rows' propensities were estimated, not logged."""
        return 0 if self.propensity_estimated is None else int(self.propensity_estimated.sum())


def logged_decisions(*, campaign: Campaign, mature_before: datetime | None = None,
                     mature_only: bool = True) -> QuerySet[Decision]:
    """The campaign's priced decisions (released ones are left out: nothing was sent)."""
    decisions = Decision.objects.filter(campaign=campaign, reward__isnull=False).exclude(
        status=Decision.Status.RELEASED)
    if mature_only:
        cutoff = mature_before or timezone.now() - timedelta(days=campaign.attribution_window_days)
        decisions = decisions.filter(decided_at__lte=cutoff)
    return decisions


def logged_arrays_for_campaign(
    *, campaign: Campaign, action_ids: tuple[int, ...] | list[int], mature_only: bool = True,
    mature_before: datetime | None = None, limit: int | None = None,
) -> LoggedArrays | None:
    """Read the campaign's logged decisions as arrays; None when there are none."""
    index_of = {int(action_id): i for i, action_id in enumerate(action_ids)}
    n_actions = len(action_ids)
    rows = (
        logged_decisions(campaign=campaign, mature_before=mature_before, mature_only=mature_only)
        .order_by("customer_id", "decided_at", "id")
        .values_list("id", "customer_id", "action_id", "propensity", "reward", "features",
                     "action_mask", "action_probabilities", "holdout", "policy_version_id",
                     "reward_components", "decided_at", "context__propensity_estimated")
    )
    if limit is not None:
        rows = rows[:limit]
    words = vocabulary()
    readable: dict[int, bool] = {}
    kept = []
    skipped = erased = 0
    for row in rows.iterator(chunk_size=5000):
        if not row[5]:  # erasure clears the feature snapshot: nothing left to learn from
            erased += 1
            continue
        width = len(row[5])
        if width not in readable:
            readable[width] = _layout_known(words, width)
        if not readable[width] or len(row[6]) != n_actions or row[2] not in index_of:
            skipped += 1
            continue
        kept.append(row)
    if not kept:
        return None
    notes = []
    if erased:
        notes.append(f"{erased} decisions of erased customers are left out (their feature "
                     "snapshots were erased)")
    (ids, customers, action_id, propensity, reward, features, mask, probs, holdout, version, comps,
     decided, estimated) = zip(*kept, strict=True)
    estimated = np.fromiter((bool(e) for e in estimated), dtype=bool, count=len(kept))
    if estimated.any():
        notes.append(f"{int(estimated.sum())} of {len(kept)} propensities were estimated from a "
                     "model of the old system's choices (imported history without them)")
    all_probs_logged = all(len(p) == n_actions for p in probs)
    if skipped:
        notes.append(f"{skipped} decisions were logged with another catalogue (or a channel "
                     "since deleted) and are left out")
    if not all_probs_logged:
        notes.append("some decisions did not log their whole action distribution: "
                     "support is only checked approximately")
    return LoggedArrays(
        obs=words.features_in_layout(features),
        actions=np.fromiter((index_of[a] for a in action_id), dtype=np.int64, count=len(kept)),
        propensities=np.asarray(propensity, dtype=np.float64),
        rewards=np.asarray(reward, dtype=np.float64),
        masks=np.asarray(mask, dtype=bool),
        logging_probs=np.asarray(probs, dtype=np.float64) if all_probs_logged else None,
        holdout=np.asarray(holdout, dtype=bool),
        customer_ids=np.asarray(customers, dtype=np.int64),
        decision_ids=np.asarray(ids, dtype=np.int64),
        churned=np.fromiter(((c or {}).get("churn", 0) > 0 for c in comps), dtype=bool,
                            count=len(kept)),
        policy_version_ids=np.asarray([-1 if v is None else v for v in version], dtype=np.int64),
        outcomes={name: np.fromiter(((c or {}).get(name, 0.0) for c in comps), dtype=np.float64,
                                    count=len(kept))
                  for name in OUTCOME_COMPONENTS},
        decided_at=np.fromiter((d.timestamp() for d in decided), dtype=np.float64,
                               count=len(kept)),
        skipped=skipped, notes=notes, propensity_estimated=estimated if estimated.any() else None,
    )


def _layout_known(words: Vocabulary, width: int) -> bool:
    try:
        words.layout_of(width)
    except ValueError:
        return False
    return True


def logged_dataset_from_arrays(arrays: LoggedArrays) -> LoggedDataset:
    """An `agents.offline.LoggedDataset`: each row's next state is the customer's next decision.

    A customer's last logged row is `done` (the logs end there) and bootstraps from its own
    features; it is `terminated` (no future value) only when the customer churned.
    """
    n = len(arrays)
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = arrays.customer_ids[1:] == arrays.customer_ids[:-1]
    following = np.where(same_next, np.arange(n) + 1, np.arange(n))
    dones = ~same_next | arrays.churned
    logging_probs = arrays.logging_probs
    if logging_probs is not None:
        # stored rounded to 6 decimals: renormalise so every row is a distribution again
        logging_probs = logging_probs / logging_probs.sum(axis=1, keepdims=True)
    propensities = (logging_probs[np.arange(n), arrays.actions] if logging_probs is not None
                    else arrays.propensities)
    return LoggedDataset(
        obs=arrays.obs, actions=arrays.actions, propensities=propensities,
        rewards=arrays.rewards, next_obs=arrays.obs[following], dones=dones,
        terminated=arrays.churned & dones, masks=arrays.masks,
        next_masks=arrays.masks[following], logging_probs=logging_probs,
        customer_ids=arrays.customer_ids, n_actions=arrays.masks.shape[1],
    )
