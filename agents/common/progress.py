"""The learning curve and progress reports shared by the agents' `fit` loops.

Records the mean return of recently finished customers about `points` times per fit and tells the
progress callback, which may cancel training (the console's progress bar and cancel button).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from agents.common.vec import CustomerBatch

if TYPE_CHECKING:
    from agents.algos.base import Agent, ProgressCallback, TrainingReport


class CurveReporter:
    """Call `after_step(batch)` once per env step; it returns False when training is cancelled."""

    def __init__(self, agent: Agent, report: TrainingReport, callback: ProgressCallback | None,
                 total_steps: int, points: int = 50):
        self.agent, self.report, self.callback = agent, report, callback
        self.total_steps = total_steps
        self.every = max(1, total_steps // points)
        self.next_report = self.every
        self.finished_at_report = 0
        self.started = time.perf_counter()

    def after_step(self, batch: CustomerBatch) -> bool:
        if batch.env_steps < self.next_report and batch.env_steps < self.total_steps:
            return True
        self.next_report += self.every
        mean_return = None
        if batch.n_finished > self.finished_at_report:
            mean_return = batch.recent_mean_return()
            self.report.record(batch.env_steps, mean_return)
            self.finished_at_report = batch.n_finished
        return self.agent._report_progress(self.callback, self.report, batch.env_steps,
                                           self.total_steps, mean_return, self.started)
