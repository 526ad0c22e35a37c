"""Which rule blocked which action, stored compactly on each Decision and read back in words.

Stored as {"QUIET_HOURS": [1, 2, 4], "CONSENT": [13, 14]}: rule name (agents.constraints.MaskReason)
-> blocked action indices. Small enough to keep on every logged decision, complete enough for an
auditor: the words are rebuilt from the codes with the decision's own catalogue.
"""

from __future__ import annotations

import numpy as np

from agents.constraints import MaskReason


def mask_reasons_compact(reason_flags: np.ndarray) -> dict[str, list[int]]:
    """(A,) MaskReason flags of one decision -> {rule name: [blocked action indices]}."""
    compact: dict[str, list[int]] = {}
    for reason in MaskReason:
        blocked = np.flatnonzero(np.asarray(reason_flags) & int(reason))
        if blocked.size:
            compact[reason.name] = blocked.tolist()
    return compact


def mask_reasons_flags(compact: dict[str, list[int]], n_actions: int) -> np.ndarray:
    """The inverse of `mask_reasons_compact`: (A,) uint8 flags."""
    flags = np.zeros(n_actions, dtype=np.uint8)
    for name, indices in compact.items():
        flags[np.asarray(indices, dtype=np.int64)] |= np.uint8(MaskReason[name])
    return flags
