"""Writes for training: runs (create, execute, cancel, recover) and evaluations (batch campaign
runs are decisioning.batch_runs).

A training run is executed by `training_run_execute`, which the `train_policy` Celery task calls.
It may be delivered more than once (acks_late: a worker that dies mid-run hands the message back),
so it is idempotent:

- a finished run (succeeded, failed, cancelled) is left alone;
- a queued run is claimed (status running, heartbeat set) in one short transaction;
- a running run is resumed from its last checkpoint when the message is the same one again (the
  worker that had it died) or its heartbeat is older than `HEARTBEAT_STALE_SECONDS`; a running run
  with a fresh heartbeat belongs to another worker and is left alone;
- the candidate PolicyVersion is created, and the run marked succeeded, in ONE transaction at the
  very end, so a worker killed at any point leaves either no version or a complete one, and never
  promotes anything (promotion is a separate, guarded step).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from datetime import timedelta
from pathlib import Path
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

import agents
from agents import population
from agents.algos.base import TrainingProgress
from agents.common.intervals import mean_with_se, z_score
from agents.common.json_values import json_safe
from crm_console.campaigns.models import Action, Campaign
from crm_console.campaigns.selectors import campaign_catalogue
from crm_console.celery import app as celery_app
from crm_console.celery import task_named, task_start
from crm_console.compliance.services import audit_record
from crm_console.decisioning.attribution import decisions_attribute, priced_decision_count
from crm_console.decisioning.logged_data import logged_arrays_for_campaign, logged_dataset_from_arrays
from crm_console.decisioning.models import PolicyVersion
from crm_console.decisioning.promotion import GUARDRAIL_RULE, guardrail_verdict
from crm_console.decisioning.policy_runtime import policy_agent
from crm_console.decisioning.services import policy_version_create
from crm_console.training import agents_training as bridge
from crm_console.training.models import TrainingRun
from crm_console.training.selectors import (
    HEARTBEAT_STALE_SECONDS, ResponseModelNotTrainable, response_model_for_training,
    training_run_silent_seconds,
)

logger = logging.getLogger(__name__)

TRAIN_POLICY_TASK = "crm_console.training.tasks.train_policy"
SELECT_POPULATION_TASK = "crm_console.training.tasks.select_population"

PROGRESS_SAVE_SECONDS = 2.0
"""Progress, ETA and the learning curve are written at most this often (not on every update)."""
CHECKPOINT_SECONDS = 20.0
"""A checkpoint of the agent is written at most this often (a resumed run continues from it)."""
LOGGED_ROWS_FOR_WARM_START = 200
"""Fewer attributed decisions than this and the warm start is skipped (too little to learn from)."""


class TrainingCancelled(Exception):
    pass


# ---------------------------------------------------------------------------------- runs
@transaction.atomic
def training_run_create(
    *, campaign: Campaign, algorithm: str = "actor_critic", budget_steps: int = 200_000,
    warm_start: bool = True, seed: int = 0, population_size: int = 1,
    created_by: AbstractBaseUser | None = None, enqueue: bool = True,
) -> TrainingRun:
    """Queue a training run; its `train_policy` tasks start after the transaction commits.

    With `population_size` > 1 the run gets that many member runs (seeds from
    `agents.population.member_seeds`), each its own task on the training queue; the last one to
    finish queues the choice among them (`training_population_select`)."""
    if created_by is not None and not created_by.has_perm("training.add_trainingrun"):
        raise PermissionDenied("You may not start training runs.")
    if not campaign.actions.filter(enabled=True).exclude(
            channel=Action.NO_CONTACT_CHANNEL).exists():
        raise ValidationError({"campaign": (
            f"{campaign.name} has no enabled contact action: there is nothing to learn yet. Add "
            "actions to its catalogue (or switch some on) first.")})
    try:
        response_model_for_training(
            campaign=campaign, action_ids=tuple(campaign_catalogue(campaign=campaign)
                                                .values_list("pk", flat=True)))
    except ResponseModelNotTrainable as refused:
        raise ValidationError({"campaign": str(refused)}) from refused
    run = TrainingRun(campaign=campaign, algorithm=algorithm, budget_steps=budget_steps,
                      warm_start=warm_start, seed=seed, population_size=population_size,
                      created_by=created_by)
    run.full_clean()
    _check_population(run)
    run.save()
    if run.is_population:
        for member_seed in population.member_seeds(run.seed, run.population_size):
            TrainingRun.objects.create(
                campaign=campaign, algorithm=algorithm, budget_steps=budget_steps,
                warm_start=warm_start, seed=member_seed, population_of=run, created_by=created_by)
    audit_record(actor=created_by, verb="training_run.created", target=run,
                 details={"algorithm": algorithm, "budget_steps": budget_steps,
                          "population_size": run.population_size, "campaign_id": campaign.pk})
    if enqueue:
        run_ids = training_run_task_ids(training_run=run)
        transaction.on_commit(lambda: [task_named(TRAIN_POLICY_TASK).delay(run_id)
                                       for run_id in run_ids])
    return run


FIXED_POLICIES = ("rule_based", "no_contact", "random")
"""Algorithms whose policy does not depend on what a seed lets it learn: nothing to choose among."""
SEED_MAX = 2**31 - 1
"""The largest seed a run (or a population's last member) may have."""


def _check_population(run: TrainingRun) -> None:
    if run.population_size > 1 and run.algorithm in FIXED_POLICIES:
        raise ValidationError({"population_size": (
            f"{run.get_algorithm_display()} learns nothing, so its members would all be the same "
            "policy: use a population of 1.")})
    last_seed = population.member_seeds(run.seed, run.population_size)[-1]
    if last_seed > SEED_MAX:
        raise ValidationError({"seed": (
            f"With a population of {run.population_size} the last member's seed would be "
            f"{last_seed:,}; use a seed of at most {SEED_MAX - (last_seed - run.seed):,}.")})


def training_run_task_ids(*, training_run: TrainingRun) -> list[int]:
    """The runs whose `train_policy` task to queue: a population's members, else the run."""
    if training_run.is_population:
        return list(training_run.members.order_by("pk").values_list("pk", flat=True))
    return [training_run.pk]


def training_run_start(*, training_run: TrainingRun) -> None:
    """Start a committed run from a page: every member of a population is its own task on the
    training queue, so more workers train them side by side. On the embedded default (eager
    Celery, no worker) the run trains in one background thread, its members one after the other
    (`training_run_execute`), so the page returns at once."""
    if celery_app.conf.task_always_eager:
        task_start(TRAIN_POLICY_TASK, training_run.pk)
        return
    for run_id in training_run_task_ids(training_run=training_run):
        task_named(TRAIN_POLICY_TASK).delay(run_id)


@transaction.atomic
def training_run_cancel(*, training_run: TrainingRun,
                        cancelled_by: AbstractBaseUser | None = None) -> TrainingRun:
    """Ask a run to stop. A queued run is cancelled at once; a running one at its next save."""
    if cancelled_by is not None and not cancelled_by.has_perm("training.change_trainingrun"):
        raise PermissionDenied("You may not cancel training runs.")
    run = TrainingRun.objects.select_for_update().get(pk=training_run.pk)
    if run.is_finished:
        return run
    run.cancel_requested = True
    fields = ["cancel_requested"]
    if run.status == TrainingRun.Status.QUEUED:
        run.status = TrainingRun.Status.CANCELLED
        run.finished_at = timezone.now()
        fields += ["status", "finished_at"]
    run.save(update_fields=fields)
    for member in run.members.exclude(status__in=TrainingRun.FINISHED):
        training_run_cancel(training_run=member)
    audit_record(actor=cancelled_by, verb="training_run.cancel_requested", target=run)
    return run


def checkpoint_path(run: TrainingRun) -> Path:
    return Path(settings.POLICY_CHECKPOINT_DIR) / f"training-run-{run.pk}.pt"


def _claim(run_id: int, task_id: str) -> tuple[TrainingRun | None, bool]:
    """(run to execute or None, resuming?) - the idempotency rules in the module docstring."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.is_finished:
            logger.info("training run %s already %s: nothing to do", run.pk, run.status)
            return None, False
        if run.cancel_requested:
            _finish(run, TrainingRun.Status.CANCELLED)
            return None, False
        resuming = False
        if run.status == TrainingRun.Status.RUNNING:
            same_message = bool(task_id) and task_id == run.celery_task_id
            silent = training_run_silent_seconds(training_run=run)
            if not same_message and silent < HEARTBEAT_STALE_SECONDS:
                logger.info("training run %s is running on another worker", run.pk)
                return None, False
            resuming = True
            run.report = {**run.report, "resumed": run.report.get("resumed", 0) + 1}
        else:
            run.started_at = timezone.now()
        run.status = TrainingRun.Status.RUNNING
        run.celery_task_id = task_id or run.celery_task_id
        run.report = {**run.report, "heartbeat_at": time.time()}
        run.save(update_fields=["status", "celery_task_id", "started_at", "report"])
        if run.is_member:
            TrainingRun.objects.filter(pk=run.population_of_id, status=TrainingRun.Status.QUEUED) \
                .update(status=TrainingRun.Status.RUNNING, started_at=timezone.now())
        return run, resuming


def _finish(run: TrainingRun, status: str, error: str = "") -> None:
    run.status = status
    run.error = error[:5000]
    run.finished_at = timezone.now()
    run.eta_seconds = 0.0 if status == TrainingRun.Status.SUCCEEDED else None
    run.save(update_fields=["status", "error", "finished_at", "eta_seconds"])


RATE_AFTER_FRACTION = 0.03
"""A stage's time left is timed from its own rate once this much of it is done (before, the
first steps' noise would make it swing; its estimate is used)."""


class RunClock:
    """The whole run's progress bar and time left, over its stages (warm start, training,
    measuring), not over the training's steps alone: the warm start can take longer than the
    training, and a bar that waited for the training sat at 0 % then jumped.

    progress = elapsed / (elapsed + time left); time left = the current stage's (from its own
    rate once it reports, else its estimate) + the estimates of the stages after it. The bar never
    goes back (a revised estimate only slows it) and reaches 100 % when the run has finished.
    """

    def __init__(self, estimates: dict[str, float]):
        self.estimates = dict(estimates)
        """Seconds each stage is expected to take, in the order they run."""
        self.started = time.monotonic()
        self.stage: str | None = None
        self.stage_started = self.started
        self.progress = 0.0

    def enter(self, stage: str) -> None:
        now = time.monotonic()
        if self.stage is not None:  # what the stage really took replaces its estimate
            self.estimates[self.stage] = now - self.stage_started
        self.stage, self.stage_started = stage, now

    def work_begins(self) -> None:
        """The stage's measured work starts now (what came before it - loading its data - is
        still counted as elapsed, but not in the rate its fractions are timed at)."""
        self.stage_started = time.monotonic()

    def report(self, fraction: float | None = None,
               stage_seconds_left: float | None = None) -> tuple[float, float | None]:
        """(progress, seconds left) with the current stage `fraction` done (or its time left)."""
        if self.stage is None:
            return self.progress, None
        now = time.monotonic()
        in_stage = now - self.stage_started
        if stage_seconds_left is None:
            if fraction is not None and fraction >= RATE_AFTER_FRACTION:
                stage_seconds_left = in_stage * (1 - fraction) / fraction
            else:
                stage_seconds_left = max(0.0, self.estimates.get(self.stage, 0.0) - in_stage)
        stages = list(self.estimates)
        later = stages[stages.index(self.stage) + 1:] if self.stage in stages else []
        left = max(0.0, stage_seconds_left) + sum(self.estimates[s] for s in later)
        elapsed = now - self.started
        if elapsed + left > 0:
            self.progress = min(0.99, max(self.progress, elapsed / (elapsed + left)))
        return self.progress, left


class _ProgressSaver:
    """The `fit` (and warm start) callback: keeps the curve, saves progress every few seconds,
    honours cancel."""

    def __init__(self, run: TrainingRun, agent: agents.Agent, offset_steps: int, total_steps: int,
                 clock: RunClock):
        self.run = run
        self.clock = clock
        self.agent = agent
        self.offset = offset_steps
        self.total = total_steps
        self.curve_from(run.learning_curve)
        self.last_save = float("-inf")  # the first report is saved at once
        self.last_checkpoint = time.monotonic()
        self.cancelled = False

    def curve_from(self, curve: dict | None) -> None:
        """Continue this learning curve (a resumed run's, up to its checkpoint)."""
        self.steps: list[int] = list((curve or {}).get("steps", []))
        self.returns: list[float] = list((curve or {}).get("returns", []))

    def __call__(self, progress: TrainingProgress) -> bool:
        steps = self.offset + progress.env_steps
        if progress.mean_episode_return is not None and math.isfinite(progress.mean_episode_return):
            self.steps.append(int(steps))
            self.returns.append(round(float(progress.mean_episode_return), 4))
        now = time.monotonic()
        if now - self.last_checkpoint >= CHECKPOINT_SECONDS:
            self.checkpoint(steps)
        if now - self.last_save >= PROGRESS_SAVE_SECONDS:
            self.last_save = now
            self.save(steps, progress.eta_seconds)
            # refresh only the flag from the database: the marketer may have pressed Cancel
            if TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
                self.cancelled = True
                return False
        return True

    def announce(self) -> None:
        """Save the progress and time left of the stage just entered (from its estimate)."""
        self._write(*self.clock.report())

    def warm_start_progress(self, fraction: float) -> None:
        """The warm start's callback (`agents.offline.pretrain`): the bar moves while it learns."""
        if fraction == 0:
            self.clock.work_begins()
        now = time.monotonic()
        if now - self.last_save < PROGRESS_SAVE_SECONDS and fraction < 1:
            return
        self.last_save = now
        progress, left = self.clock.report(fraction=fraction)
        self._write(progress, left)
        if TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            self.cancelled = True
            raise TrainingCancelled()

    def checkpoint(self, steps: int) -> None:
        path = checkpoint_path(self.run)
        temporary = path.with_suffix(".tmp")
        self.agent.save(temporary)
        temporary.replace(path)  # atomic: a kill mid-write never leaves a torn checkpoint
        self.last_checkpoint = time.monotonic()
        self.run.report = {**self.run.report, "checkpoint_steps": int(steps)}
        TrainingRun.objects.filter(pk=self.run.pk).update(report=self.run.report)

    def save(self, steps: int, eta: float | None) -> None:
        """Save the training's progress: `steps` of the budget done, `eta` its seconds left."""
        fraction = (steps - self.offset) / max(1, self.total - self.offset)
        progress, left = self.clock.report(fraction=min(1.0, fraction), stage_seconds_left=eta)
        self._write(progress, left)

    def _write(self, progress: float, eta: float | None) -> None:
        run = self.run
        run.progress = progress
        run.current_return = self.returns[-1] if self.returns else None
        run.eta_seconds = eta
        run.learning_curve = {"steps": self.steps, "returns": self.returns}
        run.report = {**run.report, "heartbeat_at": time.time()}
        TrainingRun.objects.filter(pk=run.pk).update(
            progress=run.progress, current_return=run.current_return, eta_seconds=eta,
            learning_curve=run.learning_curve, report=run.report,
        )


def training_run_execute(*, training_run_id: int, task_id: str = "") -> TrainingRun:
    """Train the run's algorithm for the campaign; on success store a candidate PolicyVersion.

    A population trains its unfinished members here one after the other (a member another worker
    is running is left to it), then chooses among them once all have finished."""
    population_run = TrainingRun.objects.get(pk=training_run_id)
    if population_run.is_population:
        for member_id in population_run.members.exclude(status__in=TrainingRun.FINISHED) \
                .order_by("pk").values_list("pk", flat=True):
            training_run_execute(training_run_id=member_id,
                                 task_id=f"{task_id}-member-{member_id}" if task_id else "")
        return training_population_select(training_run_id=training_run_id)
    run, resuming = _claim(training_run_id, task_id)
    if run is None:
        return TrainingRun.objects.get(pk=training_run_id)
    try:
        return _train(run, resuming)
    except TrainingCancelled:
        _finish(run, TrainingRun.Status.CANCELLED)
        return run
    except ResponseModelNotTrainable as refused:  # said in words, no traceback
        _finish(run, TrainingRun.Status.FAILED, str(refused))
        return run
    except Exception as error:  # any failure ends the run with its reason; no version is made
        logger.exception("training run %s failed", run.pk)
        run.refresh_from_db(fields=["status"])
        if not run.is_finished:
            _finish(run, TrainingRun.Status.FAILED,
                    f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=6)}")
        return run


def _phase(run: TrainingRun, words: str) -> None:
    """Say what the run is doing between progress reports (the bar does not move meanwhile)."""
    run.report = {**run.report, "phase": words, "heartbeat_at": time.time()}
    TrainingRun.objects.filter(pk=run.pk).update(report=run.report)


def _train(run: TrainingRun, resuming: bool) -> TrainingRun:
    campaign = run.campaign
    _phase(run, "Building the campaign's customer model from its logged decisions")
    simulator = bridge.simulator_for_campaign(
        campaign=campaign, seed=run.seed, customers=bridge.training_customers(run.budget_steps))
    report: dict[str, Any] = dict(run.report)
    report["customer_model"] = simulator.customer_model
    checkpoint = checkpoint_path(run)
    resumes = bool(resuming and checkpoint.exists() and report.get("checkpoint_steps"))
    done_steps = int(report["checkpoint_steps"]) if resumes else 0
    clock = RunClock({
        "warm start": bridge.warm_start_seconds_estimate() if run.warm_start and not resumes else 0.0,
        "training": (run.budget_steps - done_steps) / bridge.FIT_STEPS_PER_SECOND,
        "measuring": bridge.MEASURE_SECONDS,
    })
    saver = _ProgressSaver(run, None, done_steps, run.budget_steps, clock)
    if resumes:
        agent = agents.load(checkpoint)
        report["resumed_from_steps"] = done_steps
        # the curve beyond the checkpoint belongs to work that was lost
        curve = run.learning_curve or {}
        keep = [i for i, s in enumerate(curve.get("steps", [])) if s <= done_steps]
        run.learning_curve = {"steps": [curve["steps"][i] for i in keep],
                              "returns": [curve["returns"][i] for i in keep]}
    else:
        run.learning_curve = {"steps": [], "returns": []}
        constraint = None
        if run.algorithm == "actor_critic" and bridge.training_retention_tolerance(
                campaign=campaign, simulator=simulator) is not None:
            _phase(run, "Measuring how many customers the control policy loses in the customer "
                        "model (the limit of the policy's own losses)")
            constraint = bridge.retention_constraint(campaign=campaign, simulator=simulator,
                                                     seed=run.seed, budget_steps=run.budget_steps)
            report["retention_constraint"] = constraint
        agent = bridge.agent_make(algorithm=run.algorithm, simulator=simulator, seed=run.seed,
                                  campaign=campaign, max_leave_rate=None if constraint is None
                                  else constraint["max_leave_rate"])
        discount = bridge.planning_discount(campaign=campaign, simulator=simulator)
        if discount < campaign.discount_factor and run.algorithm in bridge.DISCOUNTED_ALGORITHMS:
            report["planning_discount"] = {"used": discount,
                                           "campaign": float(campaign.discount_factor)}
        report["outcomes_attributed"] = decisions_attribute(campaign=campaign)
        report["priced_decisions"] = priced_decision_count(campaign=campaign)
        if run.warm_start:
            _phase(run, "Warm-starting from the campaign's logged decisions")
            clock.enter("warm start")
            saver.agent = agent
            saver.announce()  # the estimate at once: loading the logs takes a few seconds
            report.update(_warm_start(agent=agent, campaign=campaign, simulator=simulator,
                                      seed=run.seed, progress=saver.warm_start_progress))
    report["phase"] = "Training in the customer model"
    run.report = report
    TrainingRun.objects.filter(pk=run.pk).update(report=report, learning_curve=run.learning_curve)

    remaining = run.budget_steps - done_steps
    saver.agent = agent
    saver.curve_from(run.learning_curve)
    clock.enter("training")
    if remaining > 0:
        fit_report = bridge.agent_fit(agent=agent, simulator=simulator, total_steps=remaining,
                                      callback=saver)
        if saver.cancelled or fit_report.cancelled:
            raise TrainingCancelled()
        report["fit"] = {"env_steps": done_steps + fit_report.env_steps,
                         "wall_seconds": round(fit_report.wall_seconds, 2)}
        if isinstance(report.get("retention_constraint"), dict):
            report["retention_constraint"] = {
                **report["retention_constraint"], "leave_price": agent.leave_price,
                "leave_rate": fit_report.extra.get("leave_rate")}
    saver.save(run.budget_steps, 0.0)
    if TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
        raise TrainingCancelled()
    clock.enter("measuring")
    if run.is_member:
        _phase(run, "Measuring the policy's return on held-out simulated customers")
        value = bridge.held_out_value(agent=agent, campaign=campaign,
                                      seed=run.population_of.seed)
        return _member_store(run=run, agent=agent, held_out=value.to_dict(),
                             report=json_safe(report))
    _phase(run, "Measuring the trained policy's KPIs in the customer model")
    metrics = bridge.simulator_kpis(agent=agent, simulator=simulator, campaign=campaign,
                                    seed=run.seed)
    metrics["training_run_id"] = run.pk
    metrics["budget_steps"] = run.budget_steps
    metrics = json_safe(metrics)
    report = json_safe(report)
    return _candidate_store(run=run, agent=agent, action_ids=simulator.bridge.action_ids,
                            metrics=metrics, report=report)


def _warm_start(*, agent, campaign, simulator, seed, progress=None) -> dict[str, Any]:
    skip = bridge.warm_start_skip(agent)
    if skip is not None:  # the algorithm declares no warm start: no need to read the logs
        return skip
    arrays = logged_arrays_for_campaign(campaign=campaign, action_ids=simulator.bridge.action_ids)
    if arrays is None or len(arrays) < LOGGED_ROWS_FOR_WARM_START:
        return {"warm_start": "skipped",
                "why": f"{0 if arrays is None else len(arrays)} attributed decisions "
                       f"(fewer than {LOGGED_ROWS_FOR_WARM_START})"}
    result = bridge.warm_start(agent=agent, dataset=logged_dataset_from_arrays(arrays), seed=seed,
                               progress=progress)
    result["logged_rows"] = len(arrays)
    return result


def _candidate_store(*, run, agent, action_ids, metrics, report) -> TrainingRun:
    """The only write that creates the version: one transaction with the run's success."""
    def keep_version(locked: TrainingRun) -> str:
        locked.policy_version = policy_version_create(
            campaign=run.campaign, agent=agent, action_ids=action_ids, metrics=metrics,
            created_by=run.created_by)
        return "policy_version"

    locked = _success_store(run=run, report=report, keep=keep_version)
    if locked.policy_version_id:
        logger.info("training run %s stored candidate %s", run.pk, locked.policy_version_id)
    return locked


def _success_store(*, run: TrainingRun, report: dict[str, Any],
                   keep: Callable[[TrainingRun], str]) -> TrainingRun:
    """A run's success in one transaction with what it keeps (`keep` sets that field on the
    locked run and names it): left alone when someone else finished it meanwhile (cancel, a
    duplicate run), refused when a cancel was asked for."""
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_finished:
            return locked
        if locked.cancel_requested:
            raise TrainingCancelled()
        kept_field = keep(locked)
        locked.status = TrainingRun.Status.SUCCEEDED
        locked.progress = 1.0
        locked.eta_seconds = 0.0
        locked.finished_at = timezone.now()
        locked.report = {**report, **{k: v for k, v in run.report.items() if k not in report},
                         "heartbeat_at": time.time()}
        locked.save(update_fields=[kept_field, "status", "progress", "eta_seconds",
                                   "finished_at", "report"])
    checkpoint_path(run).unlink(missing_ok=True)
    return locked


def _member_store(*, run: TrainingRun, agent: agents.Agent, held_out: dict[str, float],
                  report: dict[str, Any]) -> TrainingRun:
    """A member's end: its policy and held-out value kept on it with its success (its population
    chooses among the members once all have finished)."""
    def keep_policy(locked: TrainingRun) -> str:
        locked.member_artifact = agent.to_bytes()
        return "member_artifact"

    return _success_store(run=run, report={**report, "held_out": held_out}, keep=keep_policy)


def training_population_ready(*, training_run_id: int) -> bool:
    """Whether every member of the population has finished and the population has not."""
    return TrainingRun.objects.filter(pk=training_run_id).exclude(
        status__in=TrainingRun.FINISHED).exists() and not TrainingRun.objects.filter(
        population_of_id=training_run_id).exclude(status__in=TrainingRun.FINISHED).exists()


def training_population_select(*, training_run_id: int) -> TrainingRun:
    """Keep the member with the highest return on the held-out customers - among those within the
    campaign's retention guardrail, if it sets one (`agents.population.choose_member`, against
    its control policy on the same customers); store it as the run's candidate with every
    member's value, the control's and why it was kept. Nothing happens until every member has
    finished, and a finished population is left alone (the task may be delivered twice)."""
    run = TrainingRun.objects.select_related("campaign").get(pk=training_run_id)
    if not training_population_ready(training_run_id=run.pk):
        return run
    if run.cancel_requested:
        _finish(run, TrainingRun.Status.CANCELLED)
        return run
    members = list(run.members.order_by("pk"))
    values = [m.report.get("held_out") if m.status == TrainingRun.Status.SUCCEEDED
              and m.member_artifact else None for m in members]
    member_values = [None if v is None else population.MemberValue(**v) for v in values]
    tolerance = run.campaign.retention_tolerance
    control = None
    if any(v is not None for v in member_values):
        _phase(run, "Measuring the control policy on the same held-out customers")
        try:
            control = bridge.control_held_out_value(campaign=run.campaign, seed=run.seed)
        except Exception as error:
            logger.exception("measuring training run %s's control policy failed", run.pk)
            if tolerance is not None:  # the guardrail cannot be applied without it
                _finish(run, TrainingRun.Status.FAILED, "Measuring the control policy on the "
                        f"held-out customers failed: {type(error).__name__}: {error}")
                return run
    try:
        kept_index = population.choose_member(member_values, control=control,
                                              retention_tolerance=tolerance)
    except ValueError:
        reasons = "; ".join(f"member #{m.pk} (seed {m.seed}) {m.status}"
                            + (f": {m.error.splitlines()[0]}" if m.error else "") for m in members)
        _finish(run, TrainingRun.Status.FAILED, f"No member of the population finished: {reasons}")
        return run
    try:
        return _population_store(run, members, values, kept_index, control, tolerance)
    except TrainingCancelled:
        _finish(run, TrainingRun.Status.CANCELLED)
        return run
    except Exception as error:
        logger.exception("choosing among training run %s's members failed", run.pk)
        _finish(run, TrainingRun.Status.FAILED, f"{type(error).__name__}: {error}")
        return run


def _population_store(run: TrainingRun, members: list[TrainingRun], values: list[dict | None],
                      kept_index: int, control: population.MemberValue | None,
                      tolerance: float | None) -> TrainingRun:
    kept = members[kept_index]
    agent = agents.loads(bytes(kept.member_artifact))
    _phase(run, "Measuring the kept policy's KPIs in the customer model")
    simulator = bridge.simulator_for_campaign(campaign=run.campaign, seed=run.seed,
                                              customers=bridge.training_customers(run.budget_steps))
    metrics = bridge.simulator_kpis(agent=agent, simulator=simulator, campaign=run.campaign,
                                    seed=run.seed)
    metrics.update(training_run_id=run.pk, budget_steps=run.budget_steps,
                   member_run_id=kept.pk, member_seed=kept.seed)
    rows = [{"run_id": m.pk, "seed": m.seed, "status": m.status, "held_out": v,
             "train_seconds": (m.report.get("fit") or {}).get("wall_seconds"),
             "kept": i == kept_index} for i, (m, v) in enumerate(zip(members, values))]
    report = {**{k: v for k, v in kept.report.items() if k not in ("held_out", "heartbeat_at")},
              "population": rows, "kept_member": kept.pk,
              "control_held_out": None if control is None else control.to_dict(),
              "retention_guardrail": tolerance,
              "phase": "Kept one of the population's policies"}
    TrainingRun.objects.filter(pk=run.pk).update(learning_curve=kept.learning_curve)
    stored = _candidate_store(run=run, agent=agent, action_ids=simulator.bridge.action_ids,
                              metrics=json_safe(metrics), report=json_safe(report))
    if stored.status == TrainingRun.Status.SUCCEEDED:
        TrainingRun.objects.filter(population_of=run).update(member_artifact=None)
    return stored


def training_runs_recover_stale(*, stale_after_seconds: float = HEARTBEAT_STALE_SECONDS) -> list[int]:
    """Runs left 'running' by a dead worker: re-enqueue them (they resume from their checkpoint)."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_seconds)
    stale = []
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, started_at__lte=cutoff):
        if run.is_population:  # its members are recovered themselves; a lost choice is redone
            last_member = run.members.aggregate(last=Max("finished_at"))["last"]
            if training_population_ready(training_run_id=run.pk) and last_member is not None \
                    and last_member <= cutoff:
                stale.append(run.pk)
                task_named(SELECT_POPULATION_TASK).delay(run.pk)
            continue
        if training_run_silent_seconds(training_run=run) >= stale_after_seconds:
            stale.append(run.pk)
            task_named(TRAIN_POLICY_TASK).apply_async(args=[run.pk],
                                                      task_id=run.celery_task_id or None)
    return stale


# ---------------------------------------------------------------------------------- evaluation
def policy_version_evaluate(
    *, policy_version: PolicyVersion, confidence: float = 0.95,
    requested_by: AbstractBaseUser | None = None,
) -> dict[str, Any]:
    """Off-policy evaluation of a version vs the live policy and the holdout; stored on the version.

    `requested_by` is the person who asked for it ("Evaluate again"); the audit names them, and
    the system when a training run or the nightly retrain asked.

    Read on the campaign's mature, attributed, *exploring* decisions (the holdout's control policy
    is greedy, so its rows give no support to other actions and are left out of the weighting; the
    holdout's own observed reward is reported beside). Every policy is scored on the same rows with
    one cross-fitted reward model, so their estimates are comparable.

    The candidate is also compared with the baseline (the live version, or the control policy
    when nothing is live) on the same rows as a paired difference, and the guardrail's verdict on
    it is stored (the rule: decisioning.promotion).
    """
    campaign = policy_version.campaign
    action_ids = list(policy_version.action_ids)
    decisions_attribute(campaign=campaign)
    arrays_all = logged_arrays_for_campaign(campaign=campaign, action_ids=action_ids)
    report: dict[str, Any] = {
        "computed_at": timezone.now().isoformat(), "confidence": confidence,
        "guardrail_rule": GUARDRAIL_RULE,
        "policy_version_id": policy_version.pk, "version": policy_version.version,
    }
    live = (PolicyVersion.objects.filter(campaign=campaign, status=PolicyVersion.Status.LIVE)
            .exclude(pk=policy_version.pk).first())
    report["live_version_id"] = live.pk if live else None
    if arrays_all is None:
        report["error"] = "no attributed decisions old enough to evaluate on"
        return _store_report(policy_version, report, requested_by)
    exploring = arrays_all.subset(~arrays_all.holdout)
    holdout_rows = arrays_all.subset(arrays_all.holdout)
    report["logged"] = {"rows": len(arrays_all), "exploring_rows": len(exploring),
                        "holdout_rows": len(holdout_rows), "skipped": arrays_all.skipped,
                        "estimated_propensities": exploring.estimated_propensities,
                        "notes": arrays_all.notes}
    if len(exploring) < 10:
        report["error"] = f"only {len(exploring)} exploring decisions: too few to evaluate"
        return _store_report(policy_version, report, requested_by)

    reward_model = bridge.reward_model_for(exploring, seed=0)
    candidate = policy_agent(policy_version)
    policies: dict[str, agents.Agent] = {"candidate": candidate}
    if live is not None:
        policies["live"] = policy_agent(live)
    catalogue = bridge.catalogue_for_campaign(campaign=campaign).catalogue
    policies["control"] = bridge.control_agent(
        campaign=campaign, catalogue=catalogue, observation_space=candidate.observation_space,
        action_space=candidate.action_space,
    )
    estimates: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    for name, agent in policies.items():
        targets[name] = bridge.target_probabilities(agent, exploring)
        estimates[name] = {
            "version_id": policy_version.pk if name == "candidate" else (
                live.pk if name == "live" else None),
            "algorithm": agent.name,
            **bridge.off_policy_estimates(arrays=exploring, target_probs=targets[name],
                                          reward_model=reward_model, confidence=confidence),
        }
    report["estimates"] = estimates
    report["logging_policy_observed"] = _observed_mean(exploring.rewards, confidence)
    report["holdout_observed"] = (_observed_mean(holdout_rows.rewards, confidence)
                                  if len(holdout_rows) > 1 else None)
    report["comparisons"] = {
        f"candidate_vs_{other}": {
            "dr_difference": estimates["candidate"]["dr"]["value"] - estimates[other]["dr"]["value"],
            "snips_difference": estimates["candidate"]["snips"]["value"]
            - estimates[other]["snips"]["value"],
        } for other in estimates if other != "candidate"
    }
    baseline = "live" if "live" in estimates else "control"
    report["paired"] = {
        "baseline": baseline, "rows": len(exploring),
        **bridge.paired_differences(arrays=exploring, target_probs=targets["candidate"],
                                    baseline_probs=targets[baseline], reward_model=reward_model,
                                    confidence=confidence),
    }
    verdict = guardrail_verdict(paired=report["paired"], baseline=baseline, rows=len(exploring))
    report["guardrail"] = {"baseline": baseline, "passed": verdict.passed,
                           "explanation": verdict.reason}
    return _store_report(policy_version, report, requested_by)


def _observed_mean(rewards, confidence: float) -> dict[str, float]:
    mean, se = mean_with_se(rewards)
    half = z_score(confidence) * se
    return {"value": mean, "lower": mean - half, "upper": mean + half, "n": int(len(rewards))}


def _store_report(policy_version: PolicyVersion, report: dict[str, Any],
                  requested_by: AbstractBaseUser | None) -> dict[str, Any]:
    report = json_safe(report)
    policy_version.ope_report = report
    PolicyVersion.objects.filter(pk=policy_version.pk).update(ope_report=report)
    audit_record(actor=requested_by, verb="policy_version.evaluated", target=policy_version,
                 details={"guardrail_passed": report.get("guardrail", {}).get("passed"),
                          "error": report.get("error")})
    return report
