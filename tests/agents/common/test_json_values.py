"""json_safe: reports and explanations as values a JSON column takes."""

from __future__ import annotations

import json

import numpy as np
import torch

from agents.common.json_values import json_safe


def test_numpy_and_torch_scalars_become_python_numbers():
    value = json_safe({"a": np.float32(1.5), "b": np.int64(3), "c": np.bool_(True),
                       "d": torch.tensor(2.0)})
    assert value == {"a": 1.5, "b": 3, "c": True, "d": 2.0}
    assert [type(v) for v in value.values()] == [float, int, bool, float]


def test_non_finite_numbers_become_none_at_any_depth():
    value = json_safe({"x": [float("nan"), np.inf, (1.0, -np.inf)]})
    assert value == {"x": [None, None, [1.0, None]]}
    json.dumps(value, allow_nan=False)  # strict JSON: raises on NaN or infinity


def test_arrays_and_tuples_become_lists_and_keys_strings():
    assert json_safe({1: np.array([[1, 2], [3, 4]]), "t": (1, "a")}) == {
        "1": [[1, 2], [3, 4]], "t": [1, "a"]}


def test_strings_and_none_pass_unchanged():
    assert json_safe(["text", None, b"raw"]) == ["text", None, b"raw"]

