"""Stable holdout assignment: the same customer stays in (or out of) a campaign's control group."""

from __future__ import annotations

import hashlib
from decimal import Decimal


def holdout_draw(campaign_id: int, customer_key: str) -> float:
    """A uniform number in [0, 1) fixed by (campaign, customer): no state to store, same everywhere."""
    digest = hashlib.sha256(f"holdout:{campaign_id}:{customer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(campaign_id: int, customer_key: str, holdout_share: Decimal | float) -> bool:
    return holdout_draw(campaign_id, customer_key) < float(holdout_share)
