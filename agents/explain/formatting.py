"""How a number reads to a marketer: counts as integers, signed contributions, percentages, days ago.

The bottom of the package: the words (wording) and the records (result) both format with these.
"""

from __future__ import annotations

import math


def _fmt(value: float) -> str:
    """Counts as integers, others with at most 2 decimals: what a marketer expects to read."""
    if not math.isfinite(value):
        return "n/a"
    if abs(value - round(value)) < 0.05 and abs(value) >= 1 or value == 0:
        return str(int(round(value)))
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _whole(value: float) -> bool:
    return abs(value - round(value)) < 0.05


def _signed(value: float) -> str:
    """+0.25 / -1.30; tiny values keep two significant digits instead of showing +0.00."""
    return f"{value:+.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:+.2g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _days_ago(days: float, what: str, never: str) -> str:
    if days is None or not math.isfinite(days) or days >= 1e6:
        return never
    if days < 1:
        return f"{what} today"
    return f"{what} {_fmt(days)} {'day' if _fmt(days) == '1' else 'days'} ago"
