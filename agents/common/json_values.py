"""Reports and explanations as plain JSON values, ready for a JSON column or an API answer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars and arrays to Python, tuples to lists, keys to strings, NaN and
    infinity to None (PostgreSQL's JSON and strict parsers reject them)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic) or (hasattr(value, "dtype") and hasattr(value, "item")):
        value = value.item()  # a numpy or torch scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
