"""Stable group assignment: the same customer stays in (or out of) a campaign's control group,
and in (or out of) a trial's candidate group."""

from __future__ import annotations

import hashlib
from decimal import Decimal


def holdout_draw(campaign_id: int, customer_key: str) -> float:
    """A uniform number in [0, 1) fixed by (campaign, customer): no state to store, same everywhere."""
    digest = hashlib.sha256(f"holdout:{campaign_id}:{customer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(campaign_id: int, customer_key: str, holdout_share: Decimal | float) -> bool:
    return holdout_draw(campaign_id, customer_key) < float(holdout_share)


def in_trial(trial_id: int, customer_key: str, share: Decimal | float) -> bool:
    """Whether a trial's candidate decides for this customer: a draw of its own, fixed by (trial,
    customer), so each trial splits the customers afresh and independently of the holdout."""
    digest = hashlib.sha256(f"trial:{trial_id}:{customer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < float(share)
