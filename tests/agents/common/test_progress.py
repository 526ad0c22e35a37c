"""CurveReporter: the learning curve and the cancel signal shared by the agents' fit loops."""

from __future__ import annotations

import agents
from agents.common.progress import CurveReporter
from agents.common.vec import CustomerBatch
from agents.envs import CustomerJourneyEnv


def _fit_with(callback, total_steps: int = 2_000) -> agents.TrainingReport:
    env = CustomerJourneyEnv("retail", num_customers=64, horizon_days=10, seed=0)
    agent = agents.make("epsilon_greedy", env.single_observation_space, env.single_action_space)
    return agent.fit(env, total_steps=total_steps, callback=callback)


def test_curve_is_recorded_and_progress_reaches_the_end():
    seen = []
    report = _fit_with(lambda progress: seen.append(progress.env_steps))
    assert report.curve_steps and report.curve_steps == sorted(report.curve_steps)
    assert seen[-1] >= 2_000 and not report.cancelled


def test_callback_returning_false_cancels_training():
    report = _fit_with(lambda progress: False)
    assert report.cancelled
    assert report.env_steps < 2_000


def test_reporter_is_quiet_between_report_points():
    env = CustomerJourneyEnv("retail", num_customers=8, horizon_days=5, seed=0)
    agent = agents.make("random", env.single_observation_space, env.single_action_space)
    calls = []
    reporter = CurveReporter(agent, agents.TrainingReport("random"),
                             lambda p: calls.append(p.env_steps), total_steps=800, points=4)
    batch = CustomerBatch(env, env.single_observation_space, env.single_action_space)
    batch.reset(seed=0)
    for _ in range(100):
        batch.step(batch.mask.argmax(axis=1))
        assert reporter.after_step(batch)
    assert calls == [200, 400, 600, 800]
