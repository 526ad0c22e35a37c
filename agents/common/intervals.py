"""The normal intervals every report gives: a mean over customers and a ratio of totals.

Customers are the units (a customer's contacts are not independent draws), so a ratio such as
opens per contact gets the delta-method interval of sum(y) / sum(x) over customers. One place
computes them for the simulator's KPIs (`agents.evaluate`), the console's dashboard and the OPE
report's observed means.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def z_score(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    return float(stats.norm.ppf(0.5 + confidence / 2))


def mean_with_se(values: np.ndarray) -> tuple[float, float]:
    """The mean and its standard error; (nan, nan) for no values, an error of 0 for one."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        return math.nan, math.nan
    se = float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    return float(values.mean()), se


def ratio_with_se(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """sum(numerator) / sum(denominator) with its delta-method standard error; (nan, nan) when
    there are no values or the denominator's total is 0."""
    y = np.asarray(numerator, dtype=np.float64)
    x = np.asarray(denominator, dtype=np.float64)
    n = y.size
    if n == 0 or x.sum() == 0:
        return math.nan, math.nan
    ratio = float(y.sum() / x.sum())
    if n == 1:
        return ratio, 0.0
    influence = (y - ratio * x) / x.mean()
    return ratio, float(influence.std(ddof=1)) / math.sqrt(n)
