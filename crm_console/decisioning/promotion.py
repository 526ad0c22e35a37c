"""Policy version status changes: guarded promotion, forced promotion, shadow mode, retirement.

Every change goes through one of these functions (nothing else writes PolicyVersion.status), is
atomic, and is written to the audit trail - refusals included.

The guardrail, exactly: a candidate may go live when its off-policy evaluation (stored on it by
`training.services.policy_version_evaluate`) says, on the campaign's logged decisions,

    lower bound (95 % interval) of the DR estimate of  V(candidate) - V(baseline)  > margin,
    the SNIPS estimate of the same difference > margin, and
    the candidate's effective sample size >= the floor,

where both values are estimated on the same rows with the same cross-fitted reward model, so the
interval is the paired one of their difference (agents.ope.estimate_difference). SNIPS must agree
because DR leans on a reward model fitted on the same logs as the customer-response model the
candidate was trained in: where that model flatters the actions the candidate picks (measured:
the same-day effect of a contact over-estimated), both share the error and DR passes what it
should not. SNIPS uses no model of the customers, only how often the live policy made the
candidate's choices. Measured (BENCHMARKS.md, "Learning from the workspace's own logs", the
12-run table of 2026-12-07 17:21): DR alone passed a candidate that in truth earned 9.6 % less
than the rules (+0.56 [+0.38, +0.74] per customer-day, SNIPS -0.12).

The baseline is the version live *now* (or the control policy when nothing is live); if another
version went live since, the candidate must be evaluated again. The margin (reward per
customer-day) and the floor are the settings GUARDRAIL_MARGIN and GUARDRAIL_MIN_EFFECTIVE_SAMPLE.
`guardrail_verdict` is the one place that applies the rule.

What the rule cannot see: each logged decision is priced by what it earned until the next one
(about a day). A candidate that changes many of the live policy's choices also changes the weeks
after them (contact fatigue builds, customers leave), and the logs cannot follow that: with 10 %
exploration a customer's run of changed choices is almost never logged. Labelling each decision
with the customer's next days is no repair. Measured (`benchmarks/guardrail_horizon.py`,
BENCHMARKS.md "What the guardrail cannot see"), on 40 policies whose true effect was known: with
a 3-day label the rule passed four that in truth were not better than the rules (three were 7-10 %
worse); with any label, 1, 3 or 7 days, the estimates ranked the policies no better than chance;
the one-day estimate passed none, and called two significantly worse that were 4.6 % and 8.2 %
better. So the one-day label stays, and the policy page says on how many decisions a candidate
changes the choice and what that hides (`guardrail_blind_spot`).

What the logs cannot certify, a trial can measure: the candidate decides for a random share of
the customers (`decisioning.trials`) and the two groups' priced decisions are compared - what
customers did over weeks, fatigue and leaving included. `trial_verdict` is the one place that
states that rule:

    once the days the trial set out to measure (at least TRIAL_MIN_DAYS) have passed, on those
    days, with TRIAL_MIN_CUSTOMERS priced customers in each group,
    lower bound (95 %) of the candidate group's reward per customer-day minus the live group's
        > GUARDRAIL_MARGIN, and
    its retention minus the live group's neither significantly below 0 (upper bound < 0) nor
        below -TRIAL_RETENTION_TOLERANCE - or, where the campaign sets a retention guardrail
        (points), not below minus that guardrail.

Retention is a guard, not a second proof: showing that it is *not* lower by a point needs about
twice the customers a trial has at a 10 % share, so a trial that kept as many customers as far as
it can tell passes on its reward (which already prices a customer who leaves).

The days are set when the trial starts and the verdict reads those days only: a verdict read
whenever it first looks good would promote a candidate no better than the live policy far more
often than one in forty. The customer is the unit of randomisation, so both intervals are over
customers (`dashboards.selectors.trial_evidence`, the holdout comparison's estimators). Measured
in a world the product does not see: `benchmarks/online_trial.py` (BENCHMARKS.md, "Online trials").

Forced promotion skips the guardrail; it needs the `decisioning.force_promote_policyversion`
permission (admins) and a written reason, and is marked `forced_promotion` on the version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from crm_console.campaigns.models import Campaign
from crm_console.compliance.services import audit_record
from crm_console.decisioning.models import PolicyTrial, PolicyVersion

PROMOTE_PERMISSION = "decisioning.promote_policyversion"
FORCE_PERMISSION = "decisioning.force_promote_policyversion"
GUARDRAIL_RULE = ("lower bound of the DR estimate of the candidate's gain over the baseline "
                  "(paired, same logged decisions) > GUARDRAIL_MARGIN, the SNIPS estimate of the "
                  "gain > GUARDRAIL_MARGIN too, and its effective sample "
                  ">= GUARDRAIL_MIN_EFFECTIVE_SAMPLE")


class PromotionRefused(Exception):
    """The guardrail (or a missing evaluation) said no; `reason` says why, in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class GuardrailResult:
    passed: bool
    reason: str
    difference: float | None = None
    difference_lower: float | None = None
    baseline: str | None = None
    effective_sample: float | None = None


def guardrail_verdict(*, paired: dict[str, Any], baseline: str, rows: int) -> GuardrailResult:
    """The rule (module docstring) applied to the paired estimates of an evaluation, in words."""
    dr, snips = paired.get("dr") or {}, paired.get("snips") or {}
    value, lower, upper = dr.get("value"), dr.get("lower"), dr.get("upper")
    ess = dr.get("effective_sample_size")
    if None in (value, lower, upper, ess):
        return GuardrailResult(False, "the evaluation has no paired DR estimate to compare")
    margin = float(settings.GUARDRAIL_MARGIN)
    floor = int(settings.GUARDRAIL_MIN_EFFECTIVE_SAMPLE)
    confidence = float(dr.get("confidence", 0.95))
    said = (f"On {rows:,} logged decisions the candidate is estimated to earn {abs(value):.2f} "
            f"{'more' if value >= 0 else 'less'} per customer-day than the {baseline} policy "
            f"({confidence:.0%} CI {lower:+.2f} to {upper:+.2f}")
    if snips.get("value") is not None:
        said += f"; SNIPS: {snips['value']:+.2f}"
    said += ")"
    facts = dict(difference=value, difference_lower=lower, baseline=baseline, effective_sample=ess)
    if ess < floor:
        return GuardrailResult(
            False, f"{said}, but only {ess:,.0f} of those decisions' worth speak for the candidate "
                   f"(effective sample; at least {floor:,} needed)", **facts)
    wanted = "above 0" if margin == 0 else f"above the margin of {margin:+.2f}"
    if lower > margin:
        if snips.get("value") is None:
            return GuardrailResult(
                False, f"{said}, but the evaluation has no SNIPS estimate to check it against: "
                       "evaluate the candidate again", **facts)
        if snips["value"] <= margin:
            return GuardrailResult(
                False, f"{said}, but the estimate that uses no model of the customers (SNIPS) is "
                       f"not {wanted}: the DR estimate leans on a model fitted on the same logs "
                       "the candidate learned from, and without the two agreeing there is not "
                       "enough evidence that it is better", **facts)
        return GuardrailResult(True, said, **facts)
    return GuardrailResult(
        False, f"{said}: the lower bound is not {wanted}, so there is not enough evidence that "
               f"it is better", **facts)


def guardrail_blind_spot(*, paired: dict[str, Any]) -> str | None:
    """What the paired estimate cannot see, in words, with how far the candidate departs from
    the baseline on the logged decisions (None for an evaluation that did not record it)."""
    changed = paired.get("changed_share")
    if changed is None:
        return None
    baseline = paired.get("baseline", "live")
    return (f"The candidate picks a different action from the {baseline} policy's on "
            f"{changed:.0%} of these decisions. The estimate prices each decision by what it "
            f"earned until the next one, so what many changes add up to over the following weeks "
            f"(contact fatigue, customers lost) is not in it: after a promotion, watch retention "
            f"against the holdout group.")


@dataclass(frozen=True)
class TrialEvidence:
    """What a trial measured, per group: the candidate's customers and the live policy's."""

    days: float
    """Days measured: since the trial started, up to its planned days."""
    customers: tuple[int, int]
    """(candidate, live) customers with priced decisions."""
    decisions: tuple[int, int]
    reward: tuple[float | None, float | None]
    """(candidate, live) reward per customer-day (priced decision); None for a group without."""
    retention: tuple[float | None, float | None]
    """(candidate, live) share of the customers who did not leave; None for an empty group."""
    gain: tuple[float, float, float]
    """Candidate minus live reward per customer-day: (value, lower, upper), 95 %."""
    retention_gain: tuple[float, float, float]
    """Candidate minus live retention (a share): (value, lower, upper), 95 %."""


def trial_verdict(*, evidence: TrialEvidence, planned_days: int, baseline: str = "live",
                  retention_tolerance: float | None = None) -> GuardrailResult:
    """The trial's rule (module docstring) applied to what it measured, in words.

    `retention_tolerance`: the campaign's own retention guardrail (a share), when it sets one:
    the marketer's word on how much retention may be traded for reward, so a loss refuses only
    beyond it. None: a loss refuses when significant or over TRIAL_RETENTION_TOLERANCE."""
    margin = float(settings.GUARDRAIL_MARGIN)
    min_customers, min_days = int(settings.TRIAL_MIN_CUSTOMERS), int(settings.TRIAL_MIN_DAYS)
    if planned_days < min_days:
        return GuardrailResult(False, f"a trial measures at least {min_days} days, so that the "
                                      f"weeks after a contact count; this one {planned_days}")
    tolerance = float(settings.TRIAL_RETENTION_TOLERANCE)
    (n_candidate, n_live), (value, lower, upper) = evidence.customers, evidence.gain
    if min(n_candidate, n_live) == 0 or math.isnan(value):
        return GuardrailResult(False, "no priced decisions in both groups yet")
    said = (f"In {evidence.days:.0f} days of trial, {n_candidate:,} customers decided by the "
            f"candidate earned {abs(value):.2f} {'more' if value >= 0 else 'less'} per "
            f"customer-day than {n_live:,} decided by the {baseline} policy (95% CI {lower:+.2f} "
            f"to {upper:+.2f}); {evidence.retention[0]:.1%} of them stayed against "
            f"{evidence.retention[1]:.1%}")
    facts = dict(difference=value, difference_lower=lower, baseline=baseline)
    if evidence.days < planned_days:
        left = math.ceil(planned_days - evidence.days)
        return GuardrailResult(False, f"{said}, but the trial measures {planned_days} days and "
                                      f"has {left} to go: its verdict is read once, at the end",
                               **facts)
    if min(n_candidate, n_live) < min_customers:
        return GuardrailResult(False, f"{said}, but each group needs at least "
                                      f"{min_customers:,} customers", **facts)
    wanted = "above 0" if margin == 0 else f"above the margin of {margin:+.2f}"
    if lower <= margin:
        return GuardrailResult(False, f"{said}: the lower bound is not {wanted}, so there is not "
                                      "enough evidence that it is better", **facts)
    kept, kept_lower, kept_upper = evidence.retention_gain
    if retention_tolerance is not None:
        if kept < -retention_tolerance:
            return GuardrailResult(
                False, f"{said}: it keeps fewer customers (retention {kept * 100:+.1f} points, "
                       f"95% CI {kept_lower * 100:+.1f} to {kept_upper * 100:+.1f}) than the "
                       f"campaign's retention guardrail allows ({retention_tolerance * 100:.1f} "
                       "points)", **facts)
        return GuardrailResult(True, said, **facts)
    if kept_upper < 0 or kept < -tolerance:
        return GuardrailResult(
            False, f"{said}: it keeps fewer customers (retention {kept * 100:+.1f} points, 95% "
                   f"CI {kept_lower * 100:+.1f} to {kept_upper * 100:+.1f}; a loss that is "
                   f"significant or over {tolerance * 100:.1f} points refuses it)", **facts)
    return GuardrailResult(True, said, **facts)


def trial_check(*, trial: PolicyTrial, evidence: TrialEvidence) -> GuardrailResult:
    """`trial_verdict` for this trial: its planned days, its baseline, its campaign's retention
    guardrail."""
    return trial_verdict(evidence=evidence, planned_days=trial.days, baseline=trial.baseline,
                         retention_tolerance=trial.campaign.retention_tolerance)


def guardrail_check(*, policy_version: PolicyVersion) -> GuardrailResult:
    """Does the stored OPE report let this version go live now? (see the module docstring)"""
    report = policy_version.ope_report or {}
    if not report:
        return GuardrailResult(False, "not evaluated yet: run evaluate_policy first")
    if report.get("error"):
        return GuardrailResult(False, f"the evaluation could not be made: {report['error']}")
    live = current_live_version(campaign=policy_version.campaign)
    live_id = live.pk if live is not None and live.pk != policy_version.pk else None
    if report.get("live_version_id") != live_id:
        return GuardrailResult(
            False, "the live policy changed since this evaluation: evaluate the candidate again")
    paired = report.get("paired")
    if not paired:
        return GuardrailResult(
            False, "this evaluation predates the paired guardrail: evaluate the candidate again")
    return guardrail_verdict(paired=paired, baseline=paired.get("baseline", "live"),
                             rows=int(paired.get("rows", 0)))


def how_it_went_live(*, policy_version: PolicyVersion) -> str:
    """"went live forced past the guardrail on 4 Dec 2026" ("" when it never went live)."""
    if policy_version.promoted_at is None:
        return ""
    how = ("forced past the guardrail" if policy_version.forced_promotion
           else "through a trial" if policy_version.trials.filter(
               outcome=PolicyTrial.Outcome.PROMOTED).exists()
           else "through the guardrail")
    when = timezone.localtime(policy_version.promoted_at)
    return f"went live {how} on {when.day} {when:%b %Y}"


def current_live_version(*, campaign: Campaign) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(campaign=campaign, status=PolicyVersion.Status.LIVE).first()


def policy_version_promote(
    *, policy_version: PolicyVersion, promoted_by: AbstractBaseUser | None, reason: str = "",
    force: bool = False,
) -> PolicyVersion:
    """Make the version live (the previous live one is retired), through the guardrail or forced.

    `promoted_by=None` is the system (the nightly job): it may promote through the guardrail only.
    Raises PermissionDenied (missing permission), ValidationError (forced without a reason, wrong
    status) or PromotionRefused (guardrail); a refusal is recorded in the audit trail first.
    """
    reason = (reason or "").strip()
    if force:
        if promoted_by is None or not promoted_by.has_perm(FORCE_PERMISSION):
            raise PermissionDenied("Forcing a promotion past the guardrail needs the "
                                   "'force promote' permission (admins).")
        if not reason:
            raise ValidationError({"reason": "A forced promotion needs a written reason."})
    elif promoted_by is not None and not promoted_by.has_perm(PROMOTE_PERMISSION):
        raise PermissionDenied("You may not promote policies.")
    if policy_version.status not in (PolicyVersion.Status.CANDIDATE, PolicyVersion.Status.SHADOW):
        raise ValidationError({"status": f"Only a candidate or shadow version can be promoted; "
                                         f"this one is {policy_version.status}."})
    guard = guardrail_check(policy_version=policy_version)
    if not force and not guard.passed:
        audit_record(actor=promoted_by, verb="policy_version.promotion_refused",
                     target=policy_version, details={"reason": guard.reason})
        raise PromotionRefused(guard.reason)
    return _promote(policy_version=policy_version, promoted_by=promoted_by,
                    reason=reason or guard.reason, forced=force, guard=guard)


@transaction.atomic
def _promote(*, policy_version: PolicyVersion, promoted_by, reason: str, forced: bool,
             guard: GuardrailResult, by_trial: bool = False) -> PolicyVersion:
    # lock the campaign row: concurrent promotions of one campaign queue up here
    Campaign.objects.select_for_update().get(pk=policy_version.campaign_id)
    version = PolicyVersion.objects.select_for_update().get(pk=policy_version.pk)
    if version.status not in (PolicyVersion.Status.CANDIDATE, PolicyVersion.Status.SHADOW):
        raise ValidationError({"status": f"This version is already {version.status}."})
    previous = list(PolicyVersion.objects.select_for_update().filter(
        campaign_id=version.campaign_id, status=PolicyVersion.Status.LIVE))
    for old in previous:  # retire first: the one-live-per-campaign constraint holds at every step
        old.status = PolicyVersion.Status.RETIRED
        old.save(update_fields=["status"])
        audit_record(actor=promoted_by, verb="policy_version.retired", target=old,
                     details={"replaced_by": version.pk})
    version.status = PolicyVersion.Status.LIVE
    version.promoted_at = timezone.now()
    version.promoted_by = promoted_by
    version.promotion_reason = reason
    version.forced_promotion = forced
    version.save(update_fields=["status", "promoted_at", "promoted_by", "promotion_reason",
                                "forced_promotion"])
    _trials_close(campaign_id=version.campaign_id, promoted=version, by=promoted_by,
                  by_trial=by_trial)
    audit_record(actor=promoted_by, verb="policy_version.promoted", target=version, details={
        "forced": forced, "reason": reason, "guardrail_passed": guard.passed,
        "gain": guard.difference, "gain_lower": guard.difference_lower,
        "baseline": guard.baseline, "effective_sample": guard.effective_sample,
        "previous_live": previous[0].pk if previous else None,
    })
    return version


def policy_version_promote_on_trial(*, trial: PolicyTrial, evidence: TrialEvidence,
                                    promoted_by: AbstractBaseUser | None) -> PolicyVersion:
    """Make a running trial's candidate live when what the trial measured (`evidence`, from
    `dashboards.selectors.trial_evidence_for`) passes `trial_verdict`; raises PromotionRefused
    (recorded in the audit trail first) when it does not."""
    if promoted_by is not None and not promoted_by.has_perm(PROMOTE_PERMISSION):
        raise PermissionDenied("You may not promote policies.")
    if trial.outcome != PolicyTrial.Outcome.RUNNING:
        raise ValidationError({"trial": f"This trial is {trial.get_outcome_display().lower()}."})
    verdict = trial_check(trial=trial, evidence=evidence)
    if not verdict.passed:
        audit_record(actor=promoted_by, verb="policy_version.promotion_refused",
                     target=trial.candidate, details={"reason": verdict.reason, "trial": trial.pk})
        raise PromotionRefused(verdict.reason)
    with transaction.atomic():
        if PolicyTrial.objects.select_for_update().get(pk=trial.pk).outcome \
                != PolicyTrial.Outcome.RUNNING:
            raise ValidationError({"trial": "This trial ended meanwhile."})
        return _promote(policy_version=trial.candidate, promoted_by=promoted_by,
                        reason=verdict.reason, forced=False, guard=verdict, by_trial=True)


def _trials_close(*, campaign_id: int, promoted: PolicyVersion, by, by_trial: bool) -> None:
    """A promotion ends the campaign's running trial: promoted if its candidate went live on the
    trial's result, else stopped (the policy it was measured against is no longer live)."""
    for trial in PolicyTrial.objects.select_for_update().filter(
            campaign_id=campaign_id, outcome=PolicyTrial.Outcome.RUNNING):
        won = by_trial and trial.candidate_id == promoted.pk
        trial.outcome = PolicyTrial.Outcome.PROMOTED if won else PolicyTrial.Outcome.STOPPED
        trial.ended_at, trial.ended_by = timezone.now(), by
        trial.end_reason = (
            "its candidate went live on the trial's result" if won
            else "its candidate went live without the trial's verdict"
            if trial.candidate_id == promoted.pk
            else f"version {promoted.version} went live instead")
        trial.save(update_fields=["outcome", "ended_at", "ended_by", "end_reason"])
        audit_record(actor=by, verb="policy_trial.ended", target=trial,
                     details={"outcome": trial.outcome, "reason": trial.end_reason})


@transaction.atomic
def policy_version_shadow(*, policy_version: PolicyVersion,
                          changed_by: AbstractBaseUser | None) -> PolicyVersion:
    """Let a candidate score live traffic without acting (one shadow per campaign at a time)."""
    if changed_by is not None and not changed_by.has_perm(PROMOTE_PERMISSION):
        raise PermissionDenied("You may not change policy versions.")
    version = PolicyVersion.objects.select_for_update().get(pk=policy_version.pk)
    if version.status != PolicyVersion.Status.CANDIDATE:
        raise ValidationError({"status": "Only a candidate can be put in shadow mode."})
    if PolicyTrial.objects.filter(campaign_id=version.campaign_id,
                                  outcome=PolicyTrial.Outcome.RUNNING).exists():
        raise ValidationError({"status": "A trial is running on this campaign (its candidate is "
                                         "the shadow): stop it first."})
    for other in PolicyVersion.objects.select_for_update().filter(
            campaign_id=version.campaign_id, status=PolicyVersion.Status.SHADOW):
        other.status = PolicyVersion.Status.CANDIDATE
        other.save(update_fields=["status"])
        audit_record(actor=changed_by, verb="policy_version.shadow_ended", target=other)
    version.status = PolicyVersion.Status.SHADOW
    version.save(update_fields=["status"])
    audit_record(actor=changed_by, verb="policy_version.shadow_started", target=version)
    return version
