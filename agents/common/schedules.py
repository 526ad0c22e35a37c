"""Schedules: a value as a function of training progress (0 at the start, 1 at the end)."""

from __future__ import annotations

from collections.abc import Callable

Schedule = Callable[[float], float]


def constant_schedule(value: float) -> Schedule:
    """The same value all along."""
    return lambda progress: float(value)


def linear_schedule(start: float, end: float, end_fraction: float = 1.0) -> Schedule:
    """Linear from `start` to `end` over the first `end_fraction` of training, then flat.

    SB3's `get_linear_fn`: epsilon decay in DQN, learning-rate annealing in PPO.
    """
    if not 0.0 < end_fraction <= 1.0:
        raise ValueError("end_fraction must be in (0, 1]")

    def schedule(progress: float) -> float:
        if progress >= end_fraction:
            return float(end)
        return float(start + (end - start) * max(0.0, progress) / end_fraction)

    return schedule
